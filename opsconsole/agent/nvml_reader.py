"""The agent's NVML mode: inventory, host facts, per-GPU samples and XID events.

`nvml` is any pynvml-like module: the real `pynvml`, the tests' double, or the
simulator's module. Every call into it goes through the driver watchdog, one watchdog
call per GPU per sample, so a hang costs the GPUs not yet read and nothing else.
"""

import time

from .nvml_errors import as_text, classify, field_value
from .nvml_sample import call_first, const, empty_gpu, read_gpu
from .pci import normalize_bus_id
from .watchdog import DriverUnresponsive

MIB = 1024.0 * 1024.0
MAX_EVENTS_PER_POLL = 64
MAX_NVLINKS = 64  # the protocol's bound on a GPU's NVLink lists
XID_CRITICAL_ERROR = 0x8  # nvmlEventTypeXidCriticalError


class GpuHandle:
    """What a sample needs to know about one GPU between inventory refreshes, and the
    NVLink error counters last read from it (re-read every `nvlink_counters_every_s`)."""

    __slots__ = (
        "handle", "index", "links", "nvlink_counters", "nvlink_fields", "nvlink_read_at",
        "pci_bus_id", "reason", "uuid",
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
        self.events_supported = False
        self._event_set = None
        self._registered = set()

    def init(self):
        """nvmlInit; raises the NVML error (LibraryNotFound...) or DriverUnresponsive."""
        self.watchdog.call(self.nvml.nvmlInit)

    def device_count(self):
        return int(self.watchdog.call(self.nvml.nvmlDeviceGetCount))

    def inventory(self):
        """Inventory dicts for every GPU; also refreshes handles and event registration."""
        count = self.device_count()
        gpus, records = [], []
        for index in range(count):
            gpu, record = self.watchdog.call(self._inventory_one, index)
            gpus.append(gpu)
            records.append(record)
        self.gpus = gpus
        self.watchdog.call(self._register_events)
        return records

    def _inventory_one(self, index):
        nvml = self.nvml
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as exc:
            return GpuHandle(index, reason=classify(exc)), {"index": index}
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
        gpu = GpuHandle(index, handle, record["uuid"], record["pci_bus_id"], self._links(handle))
        return gpu, record

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

    def sample_gpus(self):
        """GpuSample dicts; after a hang the remaining GPUs read `unresponsive`."""
        samples = []
        hung = self.watchdog.busy
        now = self.clock()
        for gpu in self.gpus:
            if not hung:
                try:
                    due = self._counters_due(gpu, now)
                    sample = self.watchdog.call(read_gpu, self.nvml, gpu, self.fs, due)
                    if due and gpu.nvlink_counters is not None:
                        gpu.nvlink_read_at = now
                    samples.append(sample)
                    continue
                except DriverUnresponsive:
                    hung = True
                except Exception as exc:  # a defect in a binding: report, keep going
                    sample = empty_gpu(gpu.index, gpu.uuid, "error", "error: " + str(exc)[:80])
                    samples.append(sample)
                    continue
            samples.append(empty_gpu(gpu.index, gpu.uuid, "unresponsive", "unresponsive"))
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
            key = gpu.uuid or gpu.index
            if gpu.handle is None or key in self._registered:
                continue
            try:
                nvml.nvmlDeviceRegisterEvents(gpu.handle, kind, self._event_set)
            except Exception:
                continue
            self._registered.add(key)
            self.events_supported = True

    def poll_events(self, timeout_ms=0):
        """XID events NVML has queued, waiting at most timeout_ms for the first one."""
        if not self.events_supported:
            return []
        return self.watchdog.call(self._drain_events, timeout_ms)

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
            gpu = self._gpu_of(getattr(data, "device", None))
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

    def _gpu_of(self, device):
        index = _quiet(getattr(self.nvml, "nvmlDeviceGetIndex", None), device)
        for gpu in self.gpus:
            if gpu.index == index or (index is None and gpu.handle == device):
                return gpu
        return None
