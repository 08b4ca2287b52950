"""The agent's NVML mode: inventory, host facts, per-GPU samples and XID events.

`nvml` is any pynvml-like module: the real `pynvml` (shipped in the agent bundle), the
tests' double, or the simulator's module. Every call into it goes through the driver
watchdog, one watchdog call per GPU per sample, so a hang costs the GPUs not yet read and
nothing else.

Each GPU is known by its PCI bus id, which survives loss and recovery; handles are
matched by the address they point to, never by object equality (pynvml builds a new
pointer object for every handle it returns). A GPU that gives no handle is asked again on
every sample; when it answers it regains its UUID, NVLinks and XID registration at once.
What was learnt about a GPU is never wiped by an inventory refresh while it is lost.
"""

import ctypes
import time

from .nvml_errors import as_text, classify, field_value
from .nvml_sample import call_first, const, empty_gpu, read_gpu
from .pci import normalize_bus_id, nvidia_gpu_bus_ids

MIB = 1024.0 * 1024.0
MAX_EVENTS_PER_POLL = 64
MAX_NVLINKS = 64  # the protocol's bound on a GPU's NVLink lists
XID_CRITICAL_ERROR = 0x8  # nvmlEventTypeXidCriticalError


class GpuHandle:
    """What a sample needs to know about one GPU between inventory refreshes, and the
    NVLink error counters last read from it (re-read every `nvlink_counters_every_s`)."""

    __slots__ = (
        "handle", "index", "links", "nvlink_counters", "nvlink_fields", "nvlink_read_at",
        "pci_bus_id", "quiet", "reason", "uuid",
    )  # fmt: skip

    def __init__(self, index, handle=None, uuid=None, pci_bus_id=None, links=(), reason=None):
        self.index = index
        self.reason = reason  # why there is no handle: "lost" or "error: ..."
        self.handle = handle
        self.uuid = uuid
        self.pci_bus_id = pci_bus_id
        self.links = list(links)
        self.nvlink_counters = None  # {counter: [value by link]}, None until first read
        self.nvlink_fields = None  # [(link, counter, NVML field id)], worked out once
        self.nvlink_read_at = None
        self.quiet = {}  # readings asked again only with the counters (nvml_sample._Reader)


def handle_key(handle):
    """What identifies an NVML handle: the address a ctypes pointer holds (pynvml returns
    a new pointer object each time), else the object itself (test doubles, simulator)."""
    if isinstance(handle, ctypes._Pointer):
        return ctypes.cast(handle, ctypes.c_void_p).value
    return id(handle)


def _quiet(fn, *args):
    """fn(*args), or None when NVML says no (inventory facts are best effort)."""
    try:
        return fn(*args)
    except Exception:
        return None


class NvmlReader:
    def __init__(self, nvml, watchdog, fs=None, clock=time.time, nvlink_counters_every_s=30.0):
        self.nvml = nvml
        self.watchdog = watchdog
        self.fs = fs
        self.clock = clock
        self.nvlink_counters_every_s = nvlink_counters_every_s
        self.gpus = []
        self.records = []  # the inventory dicts, by index, as the hello sends them
        self.identity_changed = False  # a GPU regained its identity: send a new hello
        self.refresh_due = False  # a GPU answered at another bus id: take inventory again
        self.events_supported = False
        self.pending_events = []
        self._event_set = None
        self._registered = set()  # bus ids (else ("index", n)) registered for XID events
        self._by_handle = {}  # handle_key -> GpuHandle

    def init(self):
        """nvmlInit; raises the NVML error (LibraryNotFound...) or DriverUnresponsive."""
        self.watchdog.call(self.nvml.nvmlInit)

    def device_count(self):
        return int(self.watchdog.call(self.nvml.nvmlDeviceGetCount))

    def inventory(self):
        """Inventory dicts for every GPU; also refreshes handles and event registration.
        A GPU that gives no handle keeps what an earlier inventory learnt about it."""
        count = self.device_count()
        pairs = zip(self.gpus, self.records)  # noqa: B905 (strict= is Python 3.10+)
        previous = {gpu.index: (gpu, record) for gpu, record in pairs}
        gpus, records = [], []
        for index in range(count):
            gpu, record = self.watchdog.call(self._inventory_one, index, previous.get(index))
            gpus.append(gpu)
            records.append(record)
        self._bus_ids_from_sysfs(gpus, records)
        self.gpus, self.records = gpus, records
        self._by_handle = {handle_key(g.handle): g for g in gpus if g.handle is not None}
        self.refresh_due = False
        self.identity_changed = False
        self.watchdog.call(self._register_events)
        return [dict(record) for record in records]

    def _inventory_one(self, index, previous=None):
        nvml = self.nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as exc:
            gpu = GpuHandle(index, reason=classify(exc))
            record = {"index": index}
            if previous is not None:  # never forget who it was while it is away
                old, old_record = previous
                gpu.uuid, gpu.pci_bus_id, gpu.links = old.uuid, old.pci_bus_id, list(old.links)
                record = dict(old_record)
            return gpu, record
        pci = _quiet(nvml.nvmlDeviceGetPciInfo, handle)
        memory = _quiet(nvml.nvmlDeviceGetMemoryInfo, handle)
        bus_id = as_text(getattr(pci, "busId", None))
        record = {
            "index": index,
            "uuid": as_text(_quiet(nvml.nvmlDeviceGetUUID, handle)),
            "name": as_text(_quiet(nvml.nvmlDeviceGetName, handle)),
            "serial": as_text(_quiet(nvml.nvmlDeviceGetSerial, handle)),
            "pci_bus_id": normalize_bus_id(bus_id) or bus_id,
            "vbios": as_text(_quiet(getattr(nvml, "nvmlDeviceGetVbiosVersion", None), handle)),
            "memory_total_mib": None if memory is None else memory.total / MIB,
        }
        if previous is not None:  # a field the GPU would not give now keeps its old value
            for key, value in previous[1].items():
                if record.get(key) is None and value is not None and key != "pci_bus_id":
                    record[key] = value
        gpu = GpuHandle(index, handle, record["uuid"], record["pci_bus_id"], self._links(handle))
        return gpu, record

    def _bus_ids_from_sysfs(self, gpus, records):
        """A GPU lost before NVML ever named it still has its bus id in sysfs: take it
        from there when sysfs lists as many GPUs as NVML and agrees on every known one
        (NVML numbers GPUs in PCI order), so its XIDs and samples name it from the start."""
        if self.fs is None or all(gpu.pci_bus_id for gpu in gpus):
            return
        listed = nvidia_gpu_bus_ids(self.fs)
        if len(listed) != len(gpus):
            return
        if any(gpu.pci_bus_id not in (None, listed[gpu.index]) for gpu in gpus):
            return
        for gpu, record in zip(gpus, records):  # noqa: B905 (Python 3.8)
            if gpu.pci_bus_id is None:
                gpu.pci_bus_id = record["pci_bus_id"] = listed[gpu.index]

    def _reacquire(self, gpu):
        """Ask a GPU that gave no handle again; on an answer, learn it as at inventory."""
        try:
            found, record = self._inventory_one(gpu.index)
        except Exception:
            return
        if found.handle is None:
            gpu.reason = found.reason
            return
        known = gpu.pci_bus_id
        if known is not None and found.pci_bus_id not in (None, known):
            self.refresh_due = True  # NVML renumbered its GPUs: a fresh inventory sorts it
            gpu.reason = "lost"
            return
        gpu.handle, gpu.reason = found.handle, None
        gpu.uuid = found.uuid or gpu.uuid
        gpu.pci_bus_id = found.pci_bus_id or gpu.pci_bus_id
        gpu.links = found.links
        gpu.nvlink_counters = gpu.nvlink_fields = gpu.nvlink_read_at = None
        gpu.quiet = {}
        self._by_handle[handle_key(found.handle)] = gpu
        if gpu.index < len(self.records):
            self.records[gpu.index] = record
        self._register_events()
        self.identity_changed = True

    def _links(self, handle):
        """NVLink ids of a GPU: NVML's link count when it has one, else probe until refused."""
        nvml = self.nvml
        link_count = getattr(nvml, "NVML_FI_DEV_NVLINK_LINK_COUNT", None)
        get_fields = getattr(nvml, "nvmlDeviceGetFieldValues", None)
        if link_count is not None and get_fields is not None:
            values = _quiet(get_fields, handle, [link_count])
            count = _quiet(field_value, values[0]) if values else None
            if count is not None:
                return list(range(min(int(count), MAX_NVLINKS)))
        links = []
        for link in range(min(int(const(nvml, "NVML_NVLINK_MAX_LINKS", 18)), MAX_NVLINKS)):
            try:
                nvml.nvmlDeviceGetNvLinkState(handle, link)
            except Exception:
                break
            links.append(link)
        return links

    def host_facts(self):
        """driver_version, nvml_version, cuda_version ("12.4"); None where unknown."""
        return self.watchdog.call(self._host_facts)

    def _host_facts(self):
        nvml = self.nvml
        cuda = None
        try:
            version = call_first(
                nvml, ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion")
            )
            cuda = "%d.%d" % (version // 1000, (version % 1000) // 10)
        except Exception:
            pass
        return {
            "driver_version": as_text(_quiet(nvml.nvmlSystemGetDriverVersion)),
            "nvml_version": as_text(_quiet(getattr(nvml, "nvmlSystemGetNVMLVersion", None))),
            "cuda_version": cuda,
        }

    def _counters_due(self, gpu, now):
        """NVLink error counters are re-read every nvlink_counters_every_s (and when none
        are cached, or the clock went back); link state is read on every sample."""
        read_at = gpu.nvlink_read_at
        if gpu.nvlink_counters is None or read_at is None or now < read_at:
            return True
        return now - read_at >= (self.nvlink_counters_every_s or 0.0)

    def _read_one(self, gpu, due):
        """One GPU, in one watchdog call: ask again for a GPU without a handle, then read."""
        if gpu.handle is None:
            self._reacquire(gpu)
        return read_gpu(self.nvml, gpu, self.fs, due)

    def read_pass(self, out, now, expected_count):
        """The whole of one sample's NVML work, for ONE watchdog call (a thread hand-off
        costs about as much as reading a GPU): the device count; when it is the expected
        one, each GPU's sample appended to `out` as it is read (so a hang keeps the GPUs
        read before it), then the queued XIDs into `pending_events`. Returns
        (count, whether the GPUs were read)."""
        count = int(self.nvml.nvmlDeviceGetCount())
        if count != expected_count or self.refresh_due:
            return count, False
        for gpu in self.gpus:
            due = self._counters_due(gpu, now)
            try:
                sample = self._read_one(gpu, due)
            except Exception as exc:  # a defect in a binding: report, keep going
                sample = empty_gpu(gpu.index, gpu.uuid, "error", "error: " + str(exc)[:80])
                sample["pci_bus_id"] = gpu.pci_bus_id
            else:
                if due and gpu.nvlink_counters is not None:
                    gpu.nvlink_read_at = now
            out.append(sample)
        if self.events_supported:
            self.pending_events.extend(self._drain_events(0))
        return count, True

    def unresponsive_rest(self, read):
        """`read` (the samples a hung pass finished) and the other GPUs as unresponsive."""
        samples = list(read)
        for gpu in self.gpus[len(samples) :]:
            samples.append(
                empty_gpu(gpu.index, gpu.uuid, "unresponsive", "unresponsive", gpu.pci_bus_id)
            )
        return samples

    def _register_events(self):
        nvml = self.nvml
        try:
            if self._event_set is None:
                self._event_set = nvml.nvmlEventSetCreate()
        except Exception:
            return
        kind = const(nvml, "nvmlEventTypeXidCriticalError", XID_CRITICAL_ERROR)
        for gpu in self.gpus:
            key = gpu.pci_bus_id or ("index", gpu.index)
            if gpu.handle is None or key in self._registered:
                continue
            try:
                nvml.nvmlDeviceRegisterEvents(gpu.handle, kind, self._event_set)
            except Exception:
                continue
            self._registered.add(key)
            self.events_supported = True

    def poll_events(self):
        """The XIDs the last read_pass took from NVML's queue (no driver call here)."""
        events, self.pending_events = self.pending_events, []
        return events

    def _drain_events(self, timeout_ms):
        nvml = self.nvml
        kind = const(nvml, "nvmlEventTypeXidCriticalError", XID_CRITICAL_ERROR)
        events = []
        while len(events) < MAX_EVENTS_PER_POLL:
            try:
                data = call_first(
                    nvml, ("nvmlEventSetWait_v2", "nvmlEventSetWait"), self._event_set, timeout_ms
                )
            except Exception:  # NVML_ERROR_TIMEOUT: nothing queued; anything else: try later
                break
            timeout_ms = 0
            if not int(getattr(data, "eventType", kind)) & kind:
                continue
            gpu = self.gpu_of_handle(getattr(data, "device", None))
            events.append(
                {
                    "kind": "xid",
                    "code": int(data.eventData),
                    "ts": self.clock(),
                    "source": "nvml",
                    "gpu": None if gpu is None else gpu.index,
                    "pci_bus_id": None if gpu is None else gpu.pci_bus_id,
                    "message": "Xid %d reported by NVML" % int(data.eventData),
                }
            )
        return events

    def gpu_of_handle(self, device):
        """The GpuHandle an event's device handle is, without a call into a GPU that may
        be lost; NVML's index, then bus id, only for a handle never seen before."""
        if device is None:
            return None
        gpu = self._by_handle.get(handle_key(device))
        if gpu is not None:
            return gpu
        index = _quiet(getattr(self.nvml, "nvmlDeviceGetIndex", None), device)
        if index is not None:
            return next((g for g in self.gpus if g.index == index), None)
        pci = _quiet(self.nvml.nvmlDeviceGetPciInfo, device)
        bus = normalize_bus_id(as_text(getattr(pci, "busId", None)))
        return self.gpu_of_bus(bus)

    def gpu_of_bus(self, bus_id):
        if bus_id is None:
            return None
        return next((g for g in self.gpus if g.pci_bus_id == bus_id), None)
