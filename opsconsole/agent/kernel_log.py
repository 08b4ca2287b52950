"""XID and SXID events from the kernel log, read back to boot and then as they arrive.

NVML's event API only reports XIDs raised while someone listens, and not on every driver;
the kernel log also holds the ones raised before the agent started, NVSwitch SXIDs and
the "fallen off the bus" message of a GPU NVML can no longer see. Sources, in order of
preference: /dev/kmsg, `journalctl -k`, `dmesg` (see kernel_sources.py).
"""

import re
import time

from .kernel_sources import open_reader
from .pci import normalize_bus_id

MAX_EVENTS_PER_READ = 256
MAX_CODE = 1000000
FALLEN_OFF_XID = 79
DUPLICATE_WINDOW_S = 10.0

_XID = re.compile(r"NVRM: Xid \((?:PCI:)?([0-9A-Fa-f:.]+)\): ([0-9]{1,7})\b,?\s*(.*)")
_SXID = re.compile(
    r"nvidia-nvswitch[0-9]*: SXid \((?:PCI:)?([0-9A-Fa-f:.]+)\): ([0-9]{1,7})\b,?\s*(.*)"
)
# "Fallen off the bus" lines that carry no Xid number, as older drivers print them (new
# ones print an Xid 79 line too): "NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus."
# and "NVRM: The NVIDIA GPU 0000:3b:00.0 (PCI ID: 10de:2330) installed in this system has
# fallen off the bus and is not responding to commands."
_FALLEN = re.compile(
    r"NVRM: (?:The NVIDIA )?GPU (?:at )?(?:PCI:)?"
    r"([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}(?:\.[0-7])?)"
    r":? .*fallen off the bus"
)


def parse_kernel_line(line, ts, source="kmsg"):
    """A protocol GpuEvent dict for an NVIDIA XID/SXID kernel line, else None."""
    if not isinstance(line, str) or ("NVRM" not in line and "SXid" not in line):
        return None
    kind = "xid"
    match = _XID.search(line)
    if match is None:
        match = _SXID.search(line)
        kind = "sxid"
    if match is not None:
        bus, code, message = match.group(1), int(match.group(2)), match.group(3)
    else:
        match = _FALLEN.search(line)
        if match is None:
            return None
        kind, bus, code, message = (
            "xid",
            match.group(1),
            FALLEN_OFF_XID,
            "GPU has fallen off the bus",
        )
    if code > MAX_CODE:
        return None
    return {
        "kind": kind,
        "code": code,
        "ts": float(ts),
        "source": source,
        "gpu": None,
        "pci_bus_id": normalize_bus_id(bus),
        "message": message.strip()[:512],
    }


class KernelLog:
    """New XID/SXID events from one kernel-log reader, mapped to GPU indices.

    `reader` has `name` ("kmsg", "journal" or "dmesg"), `poll_every_s` and
    `read() -> [(ts, line)]`. A real "fallen off the bus" logs both an Xid 79 line and a
    plain line; the second is dropped when it follows the first within seconds.
    """

    def __init__(self, reader, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.reader = reader
        self.source = reader.name
        self._clock = clock
        self._last_read = None
        self._gpu_by_bus = {}
        self._last_79 = {}

    def set_gpus(self, inventory):
        """Learn which GPU index sits at which PCI address (from the hello inventory)."""
        self._gpu_by_bus = {}
        for gpu in inventory:
            bus = normalize_bus_id(gpu.get("pci_bus_id"))
            if bus is not None:
                self._gpu_by_bus[bus] = gpu.get("index")

    def read_new(self, force=False):
        """Events logged since the previous call (bounded). A command source is run at
        most every `poll_every_s` unless `force` (NVML just raised an XID to pair)."""
        now = self._clock()
        every = getattr(self.reader, "poll_every_s", 0.0)
        if not force and self._last_read is not None and 0 <= now - self._last_read < every:
            return []
        self._last_read = now
        try:
            lines = self.reader.read()
        except Exception:
            return []
        events = []
        for ts, line in lines:
            event = parse_kernel_line(line, ts, self.source)
            if event is None or self._duplicate(event):
                continue
            if event["kind"] == "xid":
                event["gpu"] = self._gpu_by_bus.get(event["pci_bus_id"])
            events.append(event)
        return events[-MAX_EVENTS_PER_READ:]

    def _duplicate(self, event):
        if event["kind"] != "xid" or event["code"] != FALLEN_OFF_XID:
            return False
        key = event["pci_bus_id"]
        previous = self._last_79.get(key)
        self._last_79[key] = event["ts"]
        return previous is not None and abs(event["ts"] - previous) < DUPLICATE_WINDOW_S


def open_kernel_log(fs, run_command, timeout_s=5.0):
    """A KernelLog on the first readable source, or None when the host allows none."""
    reader = open_reader(fs, run_command, timeout_s)
    return None if reader is None else KernelLog(reader)
