"""XID/SXID kernel lines, the kernel-log sources, and their mapping to GPU indices."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.agent.kernel_log import KernelLog, parse_kernel_line
from opsconsole.agent.kernel_sources import (
    DmesgReader,
    JournalReader,
    KmsgReader,
    boot_time,
    open_reader,
)
from opsconsole.agent.sysfs import DictFs
from opsconsole.agent.watchdog import Watchdog
from opsconsole.wire import GpuEvent

LINES = {
    79: "NVRM: Xid (PCI:0000:3b:00): 79, pid='<unknown>', name=<unknown>, "
    "GPU has fallen off the bus.",
    48: "NVRM: Xid (PCI:0000:18:00): 48, pid=2412, name=python3, An uncorrectable double bit "
    "error (DBE) has been detected on GPU in the framebuffer at partition 6, subpartition 0.",
    63: "NVRM: Xid (PCI:0000:18:00): 63, pid=2412, name=python3, Row Remapper: New row marked "
    "for remapping, reset gpu to activate.",
    94: "NVRM: Xid (PCI:0000:9a:00): 94, pid=7731, name=pt_main_thread, Contained: SM (0x1). "
    "RST: No, D-RST: No",
}


@pytest.mark.parametrize("code", sorted(LINES))
def test_xid_lines(code):
    event = parse_kernel_line(LINES[code], 1_800_000_000.5, "journal")
    assert (event["kind"], event["code"], event["source"]) == ("xid", code, "journal")
    assert event["pci_bus_id"] in ("0000:3b:00.0", "0000:18:00.0", "0000:9a:00.0")
    assert event["ts"] == 1_800_000_000.5 and event["gpu"] is None
    GpuEvent(**event)


def test_xid_message_keeps_the_drivers_words():
    assert parse_kernel_line(LINES[94], 0.0)["message"].startswith("pid=7731, name=pt_main_thread")


def test_fallen_off_the_bus_is_xid_79():
    for line in (
        "NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.",
        "[ 1234.5678] NVRM: GPU at PCI:0000:3b:00: GPU has fallen off the bus.",
        "NVRM: The NVIDIA GPU 0000:3b:00.0 (PCI ID: 10de:2330) installed in this system has"
        " fallen off the bus and is not responding to commands.",
    ):
        event = parse_kernel_line(line, 5.0)
        assert (event["kind"], event["code"], event["pci_bus_id"]) == ("xid", 79, "0000:3b:00.0")


def test_sxid_from_nvswitch():
    line = (
        "nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 12028, Non-fatal, Link 32 egress "
        "non-posted PRIV error (First)"
    )
    event = parse_kernel_line(line, 9.0)
    assert (event["kind"], event["code"], event["pci_bus_id"]) == ("sxid", 12028, "0000:05:00.0")
    assert event["message"].startswith("Non-fatal, Link 32")


@pytest.mark.parametrize(
    "line",
    [
        "",
        "NVRM: Xid",
        "NVRM: Xid (PCI:zz:zz): abc",
        "NVRM: GPU at PCI:0000:3b:00: GPU-b9f9e81b-bee7-34bc-af17-132ef6592740",
        "NVRM: loading NVIDIA UNIX x86_64 Kernel Module  550.90.07",
        "NVRM: Xid (PCI:0000:3b:00): 99999999999, overflow",
        "eth0: Link is Up - 100Gbps/Full",
        "\x00\xff\ufffd NVRM SXid",
    ],
)
def test_other_lines_are_ignored(line):
    assert parse_kernel_line(line, 1.0) is None


@given(st.text(), st.floats(min_value=0, max_value=4e9))
def test_parse_never_raises(line, ts):
    event = parse_kernel_line(line, ts)
    if event is not None:
        GpuEvent(**event)


@given(st.integers(0, 0xFFFF), st.integers(0, 255), st.integers(0, 31),
       st.integers(0, 999999), st.text(max_size=80))  # fmt: skip
def test_generated_xid_lines_parse_back(domain, bus, device, code, tail):
    line = f"NVRM: Xid (PCI:{domain:04x}:{bus:02x}:{device:02x}): {code}, {tail}"
    event = parse_kernel_line(line, 1.0)
    assert event["code"] == code
    assert event["pci_bus_id"] == f"{domain:04x}:{bus:02x}:{device:02x}.0"


class ListReader:
    name = "kmsg"
    poll_every_s = 0.0

    def __init__(self, batches):
        self.batches = list(batches)

    def read(self):
        return self.batches.pop(0) if self.batches else []


def test_kernel_log_maps_bus_ids_to_gpus_and_drops_the_second_fallen_off_line():
    reader = ListReader(
        [
            [(100.0, LINES[79]), (100.0, "NVRM: GPU 0000:3b:00.0: GPU has fallen off the bus.")],
            [(200.0, LINES[48]), (201.0, "random line")],
        ]
    )
    log = KernelLog(reader)
    log.set_gpus([{"index": 3, "pci_bus_id": "00000000:3B:00.0"}, {"index": 0, "pci_bus_id": None}])
    first = log.read_new()
    assert [(e["code"], e["gpu"], e["source"]) for e in first] == [(79, 3, "kmsg")]
    assert [(e["code"], e["gpu"]) for e in log.read_new()] == [(48, None)]
    assert log.read_new() == []


def test_command_sources_are_polled_at_most_every_few_seconds():
    reader = ListReader([[(1.0, LINES[48])], [(2.0, LINES[63])]])
    reader.poll_every_s = 10.0
    now = [0.0]
    log = KernelLog(reader, clock=lambda: now[0])
    assert len(log.read_new()) == 1
    now[0] = 5.0
    assert log.read_new() == []
    now[0] = 10.5
    assert [e["code"] for e in log.read_new()] == [63]


def test_kmsg_records_are_read_back_to_boot_then_only_new_ones(tmp_path):
    path = tmp_path / "kmsg"
    path.write_bytes(
        b"6,1234,5000000,-;NVRM: Xid (PCI:0000:3b:00): 79, pid=1, GPU has fallen off the bus.\n"
        b" SUBSYSTEM=pci\n DEVICE=+pci:0000:3b:00.0\n"
        b"6,1235,5000100,-;eth0: link up\n"
        b"4,1236,5000200,-;nvidia-nvswitch0: SXid (PCI:0000:05:00.0): 12028, Non-fatal\n"
    )
    reader = KmsgReader(btime=1_700_000_000.0, path=str(path))
    lines = reader.read()
    assert [ts for ts, _ in lines] == [1_700_000_005.0, 1_700_000_005.0002]
    assert lines[1][1].startswith("nvidia-nvswitch0: SXid")
    assert reader.read() == []
    with path.open("ab") as handle:
        handle.write(b"3,1237,9000000,-;NVRM: Xid (PCI:0000:18:00): 48, pid=2, DBE\n")
    assert [line for _, line in reader.read()] == ["NVRM: Xid (PCI:0000:18:00): 48, pid=2, DBE"]
    reader.close()


def test_kmsg_times_are_the_same_for_every_reader_of_a_record(tmp_path):
    """An agent restarted later reads the ring buffer back to boot again: each record must
    get the time it got the first time, to the microsecond, from whole-second boot time."""
    path = tmp_path / "kmsg"
    path.write_bytes(
        b"3,7,86399600001,-;NVRM: Xid (PCI:0000:18:00): 48, pid=2, DBE\n"
        b"3,8,86400123457,-;NVRM: Xid (PCI:0000:18:00): 63, pid=2, remap\n"
    )
    first = KmsgReader(btime=1_700_000_000.0, path=str(path))
    later = KmsgReader(btime=1_700_000_000.4, path=str(path))  # btime read another way
    times = [ts for ts, _ in first.read()]
    assert times == [ts for ts, _ in later.read()]
    assert times == [1_700_086_399.600001, 1_700_086_400.123457]
    first.close(), later.close()


def test_boot_time_without_btime_is_the_clock_less_uptime_to_the_second():
    fs = DictFs({"/proc/uptime": "86400.62 1000.0"})
    assert boot_time(fs, clock=lambda: 1_800_000_000.9) == 1_799_913_600.0
    assert boot_time(fs, clock=lambda: 1_800_000_001.1) == 1_799_913_600.0


def test_the_real_kmsg_reads_without_blocking():
    if not os.access("/dev/kmsg", os.R_OK):
        pytest.skip("/dev/kmsg is not readable here")
    reader = KmsgReader(btime=0.0)
    assert isinstance(reader.read(), list)  # back to boot, whatever this host logged
    assert isinstance(reader.read(), list)  # then nothing new: returns, does not block
    reader.close()


def test_boot_time():
    assert (
        boot_time(DictFs({"/proc/stat": "cpu  1 2 3\nbtime 1795930460\nprocesses 9"})) == 1795930460
    )
    assert boot_time(DictFs({})) == 0.0


def test_journal_reads_from_boot_then_after_its_cursor():
    answers = [
        "1795930500.123456 sg1-r01-n01 kernel: " + LINES[48] + "\n-- cursor: s=abc;i=1\n",
        "-- No entries --\n-- cursor: s=abc;i=2\n",
    ]
    argvs = []

    def run(argv, timeout_s):
        argvs.append(argv)
        return 0, answers.pop(0), ""

    reader = JournalReader(run, Watchdog(5.0))
    assert reader.read() == [(1795930500.123456, LINES[48])]
    assert reader.read() == []
    assert "-b" in argvs[0] and "--after-cursor=s=abc;i=1" in argvs[1]


def test_dmesg_keeps_only_lines_newer_than_last_time():
    output = f"[    5.000000] {LINES[48]}\n[   10.500000] {LINES[63]}\n"
    answers = [output, output + f"[   12.000000] {LINES[94]}\n"]
    reader = DmesgReader(lambda argv, timeout_s: (0, answers.pop(0), ""), Watchdog(5.0), 100.0)
    assert [ts for ts, _ in reader.read()] == [105.0, 110.5]
    assert [ts for ts, _ in reader.read()] == [112.0]


def test_sources_are_tried_in_order(tmp_path):
    missing = str(tmp_path / "no-kmsg")

    def journal_only(argv, timeout_s):
        if argv[0] == "journalctl":
            return 0, "1795930500.1 host kernel: hello\n", ""
        return 1, "", "dmesg: read kernel buffer failed: Operation not permitted"

    def dmesg_only(argv, timeout_s):
        if argv[0] == "dmesg":
            return 0, "[    1.000000] Linux version 6.1\n", ""
        return 1, "", "No journal files were opened due to insufficient permissions."

    fs = DictFs({"/proc/stat": "btime 1795930460"})
    assert open_reader(fs, journal_only, kmsg_path=missing).name == "journal"
    assert open_reader(fs, dmesg_only, kmsg_path=missing).name == "dmesg"
    assert open_reader(fs, lambda argv, t: (127, "", ""), kmsg_path=missing) is None
