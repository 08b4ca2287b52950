"""Fabric and load readers over a directory tree shaped like the host's /sys and /proc."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.agent.sysfs import DictFs, RealFs, read_eth, read_ib_ports, read_load

IB_COUNTERS = {
    "symbol_error": "0",
    "link_error_recovery": "2",
    "link_downed": "17",
    "port_rcv_errors": "0",
    "port_xmit_discards": "5",
    "port_xmit_wait": "918273645",
    "port_rcv_data": "18446744073709551",
    "VL15_dropped": "0",
}


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text + "\n")


@pytest.fixture
def host_tree(tmp_path: Path) -> Path:
    ib = "/sys/class/infiniband"
    write(tmp_path, f"{ib}/mlx5_0/ports/1/state", "4: ACTIVE")
    write(tmp_path, f"{ib}/mlx5_0/ports/1/phys_state", "5: LinkUp")
    write(tmp_path, f"{ib}/mlx5_0/ports/1/rate", "400 Gb/sec (4X NDR)")
    write(tmp_path, f"{ib}/mlx5_0/ports/1/link_layer", "InfiniBand")
    for name, value in IB_COUNTERS.items():
        write(tmp_path, f"{ib}/mlx5_0/ports/1/counters/{name}", value)
    write(tmp_path, f"{ib}/mlx5_1/ports/1/state", "1: DOWN")
    write(tmp_path, f"{ib}/mlx5_1/ports/1/phys_state", "2: Polling")
    write(tmp_path, f"{ib}/mlx5_1/ports/1/rate", "10 Gb/sec (4X)")
    write(tmp_path, f"{ib}/mlx5_1/ports/1/link_layer", "InfiniBand")
    write(tmp_path, f"{ib}/mlx5_1/ports/1/counters/link_downed", "3")
    write(tmp_path, f"{ib}/mlx5_1/ports/1/counters/port_rcv_errors", "not-a-number")
    (tmp_path / f"{ib.lstrip('/')}/mlx5_1/ports/1/counters/symbol_error").mkdir()  # unreadable
    (tmp_path / f"{ib.lstrip('/')}/mlx5_1/ports/lost+found").mkdir()  # not a port number
    net = "/sys/class/net"
    write(tmp_path, f"{net}/ens1f0np0/operstate", "up")
    write(tmp_path, f"{net}/ens1f0np0/speed", "200000")
    for name, value in {"rx_errors": "0", "tx_dropped": "12", "rx_bytes": "9182736450"}.items():
        write(tmp_path, f"{net}/ens1f0np0/statistics/{name}", value)
    write(tmp_path, f"{net}/eno1/operstate", "down")
    write(tmp_path, f"{net}/eno1/speed", "-1")
    write(tmp_path, f"{net}/lo/operstate", "unknown")
    write(tmp_path, f"{net}/veth3a2b1c/operstate", "up")
    write(tmp_path, "/proc/loadavg", "0.52 0.58 0.59 1/467 12345")
    return tmp_path


def test_ib_ports_state_rate_and_raw_counters(host_tree):
    active, polling = read_ib_ports(RealFs(str(host_tree)))
    assert active == {
        "device": "mlx5_0",
        "port": 1,
        "state": "ACTIVE",
        "phys_state": "LinkUp",
        "rate_gbps": 400.0,
        "link_layer": "InfiniBand",
        "counters": {name: int(value) for name, value in IB_COUNTERS.items()},
    }
    assert (polling["state"], polling["phys_state"], polling["rate_gbps"]) == (
        "DOWN",
        "Polling",
        10.0,
    )
    assert polling["counters"] == {"link_downed": 3}  # garbage and unreadable files skipped


def test_ethernet_skips_loopback_and_container_plumbing(host_tree):
    interfaces = {iface["name"]: iface for iface in read_eth(RealFs(str(host_tree)))}
    assert set(interfaces) == {"ens1f0np0", "eno1"}
    assert interfaces["ens1f0np0"]["speed_mbps"] == 200000
    assert interfaces["ens1f0np0"]["counters"]["tx_dropped"] == 12
    assert interfaces["eno1"]["speed_mbps"] is None and interfaces["eno1"]["operstate"] == "down"


def test_load_average(host_tree):
    assert read_load(RealFs(str(host_tree))) == {"load1": 0.52, "load5": 0.58, "load15": 0.59}
    assert read_load(DictFs({"/proc/loadavg": "nan x"})) == {
        "load1": None,
        "load5": None,
        "load15": None,
    }


def test_missing_trees_read_as_empty(tmp_path):
    fs = RealFs(str(tmp_path))
    assert read_ib_ports(fs) == [] and read_eth(fs) == []
    assert fs.read("/nope") is None and fs.listdir("/nope") == []


def test_dict_fs_implies_directories():
    fs = DictFs({"/a/b/c": "1", "/a/b/d": "2\n", "/a/e": "3"})
    assert fs.listdir("/a") == ["b", "e"] and fs.listdir("/a/b/") == ["c", "d"]
    assert fs.read("/a/b/d") == "2" and fs.read("/a/b") is None


@given(st.dictionaries(st.sampled_from(["state", "phys_state", "rate", "link_layer",
                                        "counters/link_downed", "counters/x"]),
                       st.text(max_size=30)))  # fmt: skip
def test_ib_reader_never_raises_on_odd_values(files):
    fs = DictFs({f"/sys/class/infiniband/mlx5_0/ports/1/{k}": v for k, v in files.items()})
    for port in read_ib_ports(fs):
        assert all(value >= 0 for value in port["counters"].values())
