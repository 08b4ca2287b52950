"""An XID seen both as an NVML event and as a kernel-log line is reported once."""

from __future__ import annotations

import pytest

from opsconsole.agent.agent import Agent
from opsconsole.agent.kernel_log import KernelLog
from opsconsole.agent.kernel_sources import KmsgReader
from opsconsole.agent.xid_merge import XidMerger
from tests.agent.wire import roundtrip
from tests.fakes.fake_pynvml import FakeNvml

T0 = 1_800_000_000.0
BOOT = T0 - 86_400
GPU1_BUS = "0000:28:00.0"  # FakeGpu(1)
DBE = (
    "NVRM: Xid (PCI:0000:28:00): 48, pid=2412, name=python3, An uncorrectable double bit "
    "error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0."
)


def xid_line(code=48, bus="0000:28:00", text="pid=2412, name=python3, details"):
    return f"NVRM: Xid (PCI:{bus}): {code}, {text}"


class Lines:
    """A kernel-log reader: each read returns the (ts, line) pairs logged since the last."""

    name = "kmsg"
    poll_every_s = 0.0

    def __init__(self):
        self.pending: list[tuple[float, str]] = []

    def read(self):
        lines, self.pending = self.pending, []
        return lines


class Host:
    """An agent on the pynvml double with a kernel log the test writes to."""

    def __init__(self, fs, poll_every_s=0.0):
        self.now = T0
        self.nvml = FakeNvml()
        self.reader = Lines()
        self.reader.poll_every_s = poll_every_s
        self.agent = Agent(
            nvml=self.nvml,
            fs=fs,
            kernel_log=KernelLog(self.reader, clock=lambda: self.now),
            clock=lambda: self.now,
            watchdog_timeout_s=5.0,
        )

    def sample(self, nvml=(), kernel=(), step=2.0):
        """Queue NVML XIDs [(gpu, code)] and kernel lines [(ts, line)]; take a sample."""
        self.now += step
        self.nvml.queued_xids += list(nvml)
        self.reader.pending += list(kernel)
        sample = self.agent.sample()
        roundtrip(sample)
        return sample["events"]


def brief(events):
    return [(e["code"], e["source"], e["gpu"], e["pci_bus_id"], e["ts"]) for e in events]


def test_both_copies_in_one_sample_are_one_event_with_the_kernel_time_and_text(host_fs):
    host = Host(host_fs)
    events = host.sample(nvml=[(1, 48)], kernel=[(T0 + 1.6, DBE)])
    assert brief(events) == [(48, "kmsg", 1, GPU1_BUS, T0 + 1.6)]
    assert events[0]["message"].startswith("pid=2412, name=python3, An uncorrectable")
    assert host.sample() == [] and host.sample(step=30) == []


def test_an_nvml_xid_goes_out_in_the_sample_that_read_it_and_its_late_line_is_dropped(host_fs):
    host = Host(host_fs)
    events = host.sample(nvml=[(1, 48)])  # no hold: sent with the sample that read it
    assert brief(events) == [(48, "nvml", 1, GPU1_BUS, T0 + 2.0)]
    assert events[0]["message"] == "Xid 48 reported by NVML"
    # ...and its kernel line, read late but within 15 s, is the same XID: not sent again.
    assert host.sample(kernel=[(T0 + 1.9, DBE)]) == []
    assert host.sample(step=30) == []


def test_an_nvml_copy_that_arrives_after_its_kernel_line_is_dropped(host_fs):
    host = Host(host_fs)
    assert brief(host.sample(kernel=[(T0 + 1.0, DBE)])) == [(48, "kmsg", 1, GPU1_BUS, T0 + 1.0)]
    assert host.sample(nvml=[(1, 48)]) == []
    assert host.sample(step=30) == []


def test_with_no_kernel_log_nvml_xids_go_out_at_once(host_fs):
    fake = FakeNvml()
    agent = Agent(nvml=fake, fs=host_fs, clock=lambda: T0, watchdog_timeout_s=5.0)
    fake.queued_xids.append((1, 48))
    assert [(e["code"], e["source"]) for e in agent.sample()["events"]] == [(48, "nvml")]


def test_a_journal_source_polled_every_10_s_is_read_at_once_when_nvml_has_an_xid(host_fs):
    host = Host(host_fs, poll_every_s=10.0)
    assert host.sample() == []  # the first read (back to boot)
    host.reader.pending.append((T0 + 3.5, DBE))  # logged, but the journal is not due yet
    events = host.sample(nvml=[(1, 48)])
    assert brief(events) == [(48, "kmsg", 1, GPU1_BUS, T0 + 3.5)]
    assert host.sample() == []


def test_a_kernel_line_whose_bus_the_inventory_knows_carries_the_gpu_index(host_fs):
    host = Host(host_fs)
    events = host.sample(kernel=[(T0 + 1.0, xid_line(13, bus="0000:58:00"))])
    assert brief(events) == [(13, "kmsg", 4, "0000:58:00.0", T0 + 1.0)]


@pytest.mark.parametrize(
    ("nvml", "line", "ts"),
    [
        ((2, 48), xid_line(48), T0 + 1.0),  # another GPU
        ((1, 63), xid_line(48), T0 + 1.0),  # another code
        ((1, 48), xid_line(48), T0 + 2.0 - 15.5),  # more than 15 s apart
    ],
)
def test_different_xids_are_both_reported(host_fs, nvml, line, ts):
    host = Host(host_fs)
    first = host.sample(nvml=[nvml], kernel=[(ts, line)])
    later = host.sample() + host.sample()
    assert sorted(e["source"] for e in first + later) == ["kmsg", "nvml"]


def test_copies_within_15_s_pair(host_fs):
    host = Host(host_fs)
    events = host.sample(nvml=[(1, 48)], kernel=[(T0 + 2.0 - 14.5, xid_line())])
    assert [e["source"] for e in events + host.sample() + host.sample()] == ["kmsg"]


def test_pairs_are_one_to_one(host_fs):
    host = Host(host_fs)
    lines = [(T0 + 0.5 + i / 10, xid_line(13, text=f"Graphics Exception {i}")) for i in range(3)]
    events = host.sample(nvml=[(1, 13)] * 3, kernel=lines)
    events += host.sample() + host.sample()
    assert [(e["source"], e["ts"]) for e in events] == [("kmsg", ts) for ts, _ in lines]
    events = host.sample(nvml=[(1, 13)] * 2, kernel=lines[:0])  # two more, no lines
    events += host.sample() + host.sample()
    assert [e["source"] for e in events] == ["nvml", "nvml"]


def test_a_kernel_line_without_a_gpu_index_takes_it_from_the_nvml_copy(host_fs):
    host = Host(host_fs)
    host.agent.kernel_log.set_gpus([])  # e.g. no inventory mapping for this bus id
    events = host.sample(nvml=[(1, 48)], kernel=[(T0 + 1.0, DBE)])
    assert brief(events) == [(48, "kmsg", 1, GPU1_BUS, T0 + 1.0)]


def test_sxids_and_unmatched_kernel_xids_pass_through(host_fs):
    host = Host(host_fs)
    sxid = "nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 12028, Non-fatal, Link 32"
    events = host.sample(kernel=[(T0 + 1.0, sxid), (T0 + 1.0, xid_line(79, "0000:58:00"))])
    assert [(e["kind"], e["code"], e["source"]) for e in events] == [
        ("sxid", 12028, "kmsg"),
        ("xid", 79, "kmsg"),
    ]


def test_a_restarted_agent_replays_the_kernel_log_with_the_same_event_identity(host_fs, tmp_path):
    """The console drops a replayed event by (kind, code, round(ts), bus id): the event sent
    for an XID seen by both sources must be the one the kernel log replays after a restart,
    even when the host's clock runs ahead of the kernel's time line."""
    kmsg = tmp_path / "kmsg"
    usec = int((T0 + 1.6 - BOOT) * 1e6)
    kmsg.write_bytes(b"3,9001,%d,-;%s\n" % (usec, DBE.encode()))

    def start(now):
        fake = FakeNvml()
        log = KernelLog(KmsgReader(btime=BOOT, path=str(kmsg)))
        agent = Agent(nvml=fake, fs=host_fs, kernel_log=log, clock=lambda: now,
                      watchdog_timeout_s=5.0)  # fmt: skip
        return fake, agent

    fake, agent = start(T0 - 1.0)  # the NVML copy is stamped before the kernel line
    fake.queued_xids.append((1, 48))
    first = agent.sample()["events"]
    _, restarted = start(T0 + 600)
    replay = restarted.sample()["events"]

    def identity(events):
        return [(e["kind"], e["code"], round(e["ts"]), e["pci_bus_id"]) for e in events]

    assert identity(first) == identity(replay) == [("xid", 48, round(T0 + 1.6), GPU1_BUS)]
    assert first == replay


def test_the_merger_survives_odd_input():
    merger = XidMerger()
    odd = [{"kind": "xid", "code": 1, "ts": 5.0}, {"kind": "sxid", "code": 2, "ts": 1.0}]
    out = merger.merge([], odd, now=10.0)
    assert out == odd
    unnamed = {"kind": "xid", "code": 1, "ts": 9.0}  # no GPU to pair it by: sent as it is
    assert merger.merge([unnamed], [], now=20.0) == [unnamed]
