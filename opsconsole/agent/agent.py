"""The agent: one hello, then one sample per interval, as JSON lines on stdout.

`Agent` assembles protocol messages from injected seams (an NVML module, a file reader,
a kernel-log source, a clock, a command runner), so tests and the simulator drive the
very code that runs on hosts. The process around it (ticks, stdout, stdin EOF) is in
process.py. Nothing is ever written to disk.
"""

import json
import math
import time
from typing import Any, Dict, List

from . import AGENT_VERSION, PROTOCOL_VERSION
from .commands import run_command as default_run_command
from .host import read_host_facts
from .lean import WIRE_VERSION, LeanEncoder
from .nvml_errors import error_text
from .nvml_reader import NvmlReader
from .nvml_sample import empty_gpu
from .smi_reader import SmiReader, SmiUnavailable
from .sysfs import IB_ROOT, NET_ROOT, RealFs, read_eth, read_ib_ports, read_load
from .watchdog import DriverUnresponsive, Watchdog
from .xid_merge import XidMerger

INVENTORY_EVERY_S = 600.0
NVLINK_COUNTERS_EVERY_S = 30.0
"""NVLink error counters are 4 NVML calls per link (18 links on an H100/H200), so they are
re-read this often and sent from a per-GPU cache in between; link state is read every
sample."""


SAMPLE_BUDGET_SHARE = 0.8
MIN_SAMPLE_BUDGET_S = 0.5
"""A sample waits for driver calls at most this share of the interval (or the minimum, or
the watchdog's timeout if shorter), so a call that hangs costs no tick: the sample goes
out on time saying "unresponsive", and so does every sample until the call returns."""


class Agent:
    """Builds hello and sample messages (dicts) for one host."""

    def __init__(
        self,
        nvml=None,
        fs=None,
        kernel_log=None,
        clock=time.time,
        watchdog_timeout_s=10.0,
        expected_interval_s=2.0,
        run_command=None,
        nvlink_counters_every_s=NVLINK_COUNTERS_EVERY_S,
    ) -> None:
        self.fs = fs if fs is not None else RealFs()
        self.kernel_log = kernel_log
        self.clock = clock
        self.watchdog = Watchdog(watchdog_timeout_s, name="gpu-driver")
        self.nvml = (
            None
            if nvml is None
            else NvmlReader(nvml, self.watchdog, self.fs, clock, nvlink_counters_every_s)
        )
        self.smi = SmiReader(run_command or default_run_command, self.watchdog)
        self.xids = XidMerger()
        self._sample_budget_s = max(MIN_SAMPLE_BUDGET_S, SAMPLE_BUDGET_SHARE * expected_interval_s)
        self.mode = "none"
        self.unavailable_detail = ""
        self.inventory = []
        self.gpu_facts = {"driver_version": None, "nvml_version": None, "cuda_version": None}
        self.hello_pending = True
        self._retry_every_s = max(30.0, 15.0 * expected_interval_s)
        self._ready = False
        self._started_at = None
        self._inventory_at = None
        self._seq = 0
        self.wire = PROTOCOL_VERSION
        self._wire_wanted = PROTOCOL_VERSION
        self.lean = LeanEncoder()
        self._start()

    # -- mode and inventory ------------------------------------------------------------

    def _start(self):
        """Pick NVML, else nvidia-smi, else nothing; a hung driver keeps the mode."""
        self._started_at = self.clock()
        reasons = []
        if self.nvml is not None:
            try:
                self.nvml.init()
                self.mode = "nvml"
                self._refresh_inventory()
                return
            except DriverUnresponsive:
                self.mode = "nvml"
                return
            except Exception as exc:
                reasons.append("NVML: " + error_text(exc))
        else:
            reasons.append("pynvml: not installed")
        try:
            self.smi.query()
            self.mode = "nvidia-smi"
            self._refresh_inventory()
            return
        except DriverUnresponsive:
            self.mode = "nvidia-smi"
            return
        except SmiUnavailable as exc:
            reasons.append(str(exc))
        except Exception as exc:
            reasons.append("nvidia-smi: " + error_text(exc))
        self.mode = "none"
        self.unavailable_detail = "; ".join(reasons)
        self.inventory = []

    def _refresh_inventory(self):
        if self.mode == "nvml":
            inventory = self.nvml.inventory()
            self.gpu_facts = self.nvml.host_facts()
        else:
            inventory = self.smi.inventory()
            self.gpu_facts = self.smi.host_facts()
        self._inventory_at = self.clock()
        self._ready = True
        self._learn_inventory(inventory)

    def _learn_inventory(self, inventory):
        """A new inventory goes out in a hello; the kernel log learns its bus ids."""
        self.inventory = inventory
        self.hello_pending = True
        set_gpus = getattr(self.kernel_log, "set_gpus", None)
        if set_gpus is not None:
            set_gpus(inventory)

    def _maybe_restart(self, now):
        """Retry a start that hung as soon as the driver answers again, and a host with
        no usable GPU source now and then (a driver may be loaded later)."""
        if self.watchdog.busy or (self._ready and self.mode != "none"):
            return
        if self.mode == "none" and now - self._started_at < self._retry_every_s:
            return
        previous = self.mode
        self._start()
        if self.mode != previous:
            self.hello_pending = True

    # -- messages ----------------------------------------------------------------------

    def capabilities(self):
        caps = [] if self.mode == "none" else [self.mode]
        if self.nvml is not None and self.nvml.events_supported:
            caps.append("events")
        if self.kernel_log is not None:
            caps.append(self.kernel_log.source)
        if self.fs.listdir(IB_ROOT):
            caps.append("ib")
        if self.fs.listdir(NET_ROOT):
            caps.append("eth")
        return caps

    def request_wire(self, version: int) -> None:
        """The console asked for protocol `version` (2: the lean wire, see lean.py); it
        takes effect at the next tick, with a hello. Unknown versions are ignored, so
        the agent stays on what the console already reads. Safe from another thread."""
        if version in (PROTOCOL_VERSION, WIRE_VERSION):
            self._wire_wanted = version

    def hello(self):
        """The hello message; clears `hello_pending`."""
        self.hello_pending = False
        host = read_host_facts(self.fs)
        host.update(self.gpu_facts)
        message = {
            "type": "hello",
            "proto": self.wire,
            "agent_version": AGENT_VERSION,
            "mode": self.mode,
            "ts": self.clock(),
            "host": host,
            "capabilities": self.capabilities(),
            "gpus": list(self.inventory),
        }
        if self.wire == WIRE_VERSION and self.lean.schema is not None:
            message["wire"] = self.lean.schema
        return message

    def sample(self):
        """One sample message. Never raises; a hung driver yields a heartbeat sample."""
        started = time.perf_counter()
        self._seq += 1
        now = self.clock()
        self.watchdog.deadline = time.monotonic() + self._sample_budget_s
        try:
            self._maybe_restart(now)
            driver, detail, gpu_count, gpus = self._read_gpus(now)
            events = self._read_events(now)
        finally:
            self.watchdog.deadline = None
        message = {
            "type": "sample",
            "seq": self._seq,
            "ts": now,
            "driver": driver,
            "driver_detail": detail,
            "gpu_count": gpu_count,
            "gpus": gpus,
            "events": events,
            "ib": _guarded(read_ib_ports, self.fs, []),
            "eth": _guarded(read_eth, self.fs, []),
            "load": _guarded(read_load, self.fs, {}),
        }
        message["collect_ms"] = round((time.perf_counter() - started) * 1000.0, 3)
        return message

    def tick(self) -> List[Dict[str, Any]]:
        """The messages of one interval: a hello first when one is due, then a sample.
        On the lean wire the sample goes out as v2, and a changed layout (a GPU, port
        or counter come or gone) sends a hello with the new schema first."""
        if self._wire_wanted != self.wire:
            self.wire = self._wire_wanted
            self.hello_pending = True
        sample = self.sample()
        if self.wire == WIRE_VERSION:
            if self.hello_pending:
                self.lean.reset()  # the console starts over at a hello: send a full sample
            changed, sample = self.lean.encode(sample)
            self.hello_pending = self.hello_pending or changed
        return [self.hello(), sample] if self.hello_pending else [sample]

    def _unresponsive(self):
        gpus = [empty_gpu(g["index"], g.get("uuid"), "unresponsive", "unresponsive",
                          g.get("pci_bus_id")) for g in self.inventory]  # fmt: skip
        stuck = self.watchdog.hung_for_s()
        detail = "GPU driver call stuck for %.0f s" % stuck if stuck else "GPU driver unresponsive"
        return "unresponsive", detail, None, gpus

    def _read_gpus(self, now):
        if self.mode == "none":
            return "unavailable", self.unavailable_detail, None, []
        if self.watchdog.busy or not self._ready:
            return self._unresponsive()
        try:
            if self.mode == "nvml":
                return self._read_nvml(now)
            else:
                gpus = self.smi.sample_gpus()
                count = len(gpus)
                if count != len(self.inventory) or now - self._inventory_at >= INVENTORY_EVERY_S:
                    self._refresh_inventory()
        except DriverUnresponsive:
            return self._unresponsive()
        except SmiUnavailable as exc:
            return "unavailable", str(exc), None, []
        except Exception as exc:  # e.g. the driver was reloaded: start over next sample
            self._ready = False
            return "unavailable", "%s: %s" % (self.mode, error_text(exc)), None, []
        if self.watchdog.busy:
            return "unresponsive", self._unresponsive()[1], count, gpus
        return "ok", "", count, gpus

    def _read_nvml(self, now):
        """One watchdog call reads the count, every GPU and NVML's XID queue; a changed
        count (or a GPU renumbered) takes inventory first, then reads again."""
        if now - self._inventory_at >= INVENTORY_EVERY_S:
            self._refresh_inventory()
        for _ in range(2):
            read = []
            try:
                count, done = self.watchdog.call(
                    self.nvml.read_pass, read, now, len(self.nvml.gpus)
                )
            except DriverUnresponsive:
                return (
                    "unresponsive",
                    self._unresponsive()[1],
                    None,
                    self.nvml.unresponsive_rest(read),
                )
            if done:
                break
            self._refresh_inventory()
        else:
            return "unavailable", "nvml: the GPU count keeps changing", count, []
        if self.nvml.identity_changed:  # a GPU is back: tell the console who it is
            self.nvml.identity_changed = False
            self._learn_inventory([dict(record) for record in self.nvml.records])
        return "ok", "", count, read

    def _read_events(self, now):
        """XIDs from NVML and the kernel log, each XID once (see xid_merge.py): NVML's
        queue first, then the kernel log, where the driver wrote the line already."""
        nvml_events, kernel_events = [], []
        if self.mode == "nvml" and self._ready and not self.watchdog.busy:
            nvml_events = self.nvml.poll_events()
        if self.kernel_log is not None:
            kernel_events = _guarded(self.kernel_log.read_new, bool(nvml_events), [])
        try:
            events = self.xids.merge(nvml_events, kernel_events, now)
        except Exception:  # never lose an event to a defect in the pairing
            events = list(kernel_events) + list(nvml_events)
        return self._attribute(events)

    def _attribute(self, events):
        """Name each XID's GPU by both index and bus id wherever either is known."""
        by_bus = {g.get("pci_bus_id"): g["index"] for g in self.inventory if g.get("pci_bus_id")}
        by_index = {index: bus for bus, index in by_bus.items()}
        for event in events:
            if not isinstance(event, dict) or event.get("kind") != "xid":
                continue
            if event.get("gpu") is None and event.get("pci_bus_id") in by_bus:
                event["gpu"] = by_bus[event["pci_bus_id"]]
            elif event.get("pci_bus_id") is None and event.get("gpu") in by_index:
                event["pci_bus_id"] = by_index[event["gpu"]]
        return events


def _guarded(fn, arg, default):
    """Readings from the host must never cost the sample: failures read as `default`."""
    try:
        return fn(arg)
    except Exception:
        return default


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def encode(obj):
    """One compact JSON line (no newline); NaN and infinities become null."""
    try:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(obj), separators=(",", ":"), allow_nan=False)


def main(argv=None):
    """Run the agent process (see process.py); returns the exit status."""
    from .process import main as run

    return run(argv)
