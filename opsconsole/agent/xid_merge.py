"""One report per XID, though NVML events and the kernel log both see it.

The driver logs an XID to the kernel log and raises it as an NVML event. The NVML copy
is stamped with the agent's clock when the event queue is polled and says only "Xid N";
the kernel copy carries the kernel's time and the driver's own words. They are paired,
one to one, when they name the same GPU (PCI bus id, else index) and code, and their
times are within WINDOW_S of each other: the pair is reported once, as the kernel line
(its time, source and message, with the GPU index or bus id filled in from the NVML copy
where the line lacked it).

The kernel copy wins because its time is the one that survives an agent restart: the
agent reads the kernel log back to boot on start, and the console recognises the replayed
line by (kind, code, round(ts), bus id). It is also the earlier time whenever the two
clocks agree, as the driver logs the XID before the agent polls for it.

No event is held back: within one sample the NVML queue is drained first and the
kernel log read after it (at once, even for a source otherwise polled every few seconds,
whenever NVML had an XID), and the driver writes the kernel line before it raises the
event, so both copies meet in the same merge. An NVML copy whose line is not there goes
out at once with the sample; its kernel copy, read later, is then dropped as already
sent, and likewise an NVML copy whose kernel line went out before. The only delay an XID
sees is the one tick between the driver raising it and the sample that reads it.
SXIDs come from the kernel log only and pass through untouched.
"""

WINDOW_S = 15.0
"""Largest difference between the two copies' times that still pairs them."""
KEEP_S = 120.0
"""How long a sent XID is remembered for pairing with a copy that turns up late."""
MAX_REMEMBERED = 512


def _identity(event):
    """(bus id, GPU index, code) of an XID event, or None for anything else."""
    if not isinstance(event, dict) or event.get("kind") != "xid":
        return None
    return event.get("pci_bus_id"), event.get("gpu"), event.get("code")


def _same_xid(a, b, window_s):
    bus_a, gpu_a, code_a = a["id"]
    bus_b, gpu_b, code_b = b["id"]
    if code_a != code_b or abs(a["ts"] - b["ts"]) > window_s:
        return False
    if bus_a is not None and bus_b is not None:
        return bus_a == bus_b
    return gpu_a is not None and gpu_a == gpu_b


def _entry(event, at):
    return {"event": event, "id": _identity(event), "ts": float(event["ts"]), "at": at}


class XidMerger:
    """Pairs the XIDs of the NVML event queue and of the kernel log (see module doc)."""

    def __init__(self, hold_s=0.0, window_s=WINDOW_S):
        self.hold_s = hold_s
        self.window_s = window_s
        self._held = []  # NVML XIDs not sent yet: entries
        self._sent = {"nvml": [], "kernel": []}  # unpaired XIDs already sent, by origin

    def merge(self, nvml_events, kernel_events, now):
        """The events to send now, from this poll's NVML and kernel-log events."""
        out = []
        for event in nvml_events:
            if _identity(event) is None:
                out.append(event)
                continue
            entry = _entry(event, now)
            if self._take(self._sent["kernel"], entry) is None:
                self._held.append(entry)  # else its kernel line was sent already
        for event in kernel_events:
            if _identity(event) is None:
                out.append(event)
                continue
            entry = _entry(event, now)
            if self._take(self._sent["nvml"], entry) is not None:
                continue  # its NVML copy went out already: reported once
            held = self._take(self._held, entry)
            if held is None:
                self._remember("kernel", entry)
            else:
                _fill_in(event, held["event"])
            out.append(event)
        out.extend(self._release(now))
        self._forget(now)
        return out

    def _take(self, entries, wanted):
        """Remove and return the first entry that is the same XID as `wanted`."""
        for i, entry in enumerate(entries):
            if _same_xid(entry, wanted, self.window_s):
                del entries[i]
                return entry
        return None

    def _release(self, now):
        """Held NVML events whose wait is over (or whose clock went back)."""
        due, kept = [], []
        for entry in self._held:
            waited = now - entry["at"]
            (due if waited >= self.hold_s or waited < 0 else kept).append(entry)
        self._held = kept
        for entry in due:
            self._remember("nvml", entry)
        return [entry["event"] for entry in due]

    def _remember(self, origin, entry):
        sent = self._sent[origin]
        sent.append(entry)
        del sent[:-MAX_REMEMBERED]

    def _forget(self, now):
        """Drop sent XIDs too old to pair with anything still to come."""
        for origin, sent in self._sent.items():
            self._sent[origin] = [
                entry
                for entry in sent
                if 0 <= now - entry["at"] <= KEEP_S and entry["ts"] >= now - KEEP_S - self.window_s
            ]


def _fill_in(kernel_event, nvml_event):
    """Complete the kernel copy with what only the NVML copy knew."""
    if kernel_event.get("gpu") is None and nvml_event.get("gpu") is not None:
        kernel_event["gpu"] = nvml_event["gpu"]
    if kernel_event.get("pci_bus_id") is None and nvml_event.get("pci_bus_id") is not None:
        kernel_event["pci_bus_id"] = nvml_event["pci_bus_id"]
