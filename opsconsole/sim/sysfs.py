"""A simulated host's /sys, /proc and kernel log, answered straight from its state.

Same seam as the agent's `DictFs` (listdir(path) -> sorted names, read(path, max_bytes)
-> text or None), but without building a dict of a few hundred files on every sample:
1,000 hosts at one sample every 2 s read about 100,000 files a second.
"""

from __future__ import annotations

from opsconsole.agent.kernel_log import KernelLog
from opsconsole.sim import hardware as hw
from opsconsole.sim.world import SimHost

_IB_PORT_FILES = ["counters", "link_layer", "phys_state", "rate", "state"]
_IB_COUNTERS = sorted(hw.IB_COUNTERS)
_ETH_COUNTERS = sorted(hw.ETH_COUNTERS)
_NET_FILES = ["address", "mtu", "operstate", "speed", "statistics"]
_EXTRA_IFACES = {"lo": "unknown", "docker0": "down"}
"""Interfaces every real host has and the agent must skip."""


def _fast_paths() -> dict[str, tuple[str, str, str]]:
    paths = {}
    for device in hw.IB_DEVICES:
        base = f"/sys/class/infiniband/{device}/ports/1"
        for leaf, attr in (("state", "state"), ("phys_state", "phys_state"),
                           ("rate", "rate_text"), ("link_layer", "link_layer")):  # fmt: skip
            paths[f"{base}/{leaf}"] = ("ib", device, attr)
        for counter in hw.IB_COUNTERS:
            paths[f"{base}/counters/{counter}"] = ("ibc", device, counter)
    for name, _ in hw.ETH_INTERFACES:
        for counter in hw.ETH_COUNTERS:
            paths[f"/sys/class/net/{name}/statistics/{counter}"] = ("eth", name, counter)
    return paths


_FAST_PATHS = _fast_paths()


def _sysfs_bus(gpu: hw.SimGpu) -> str:
    """NVML's "00000000:18:00.0" as sysfs names the device: "0000:18:00.0"."""
    return gpu.pci_bus_id[4:].lower()


class SimSysfs:
    """Read-only view of one SimHost as files; missing paths read as None / []."""

    def __init__(self, host: SimHost):
        self.host = host
        self._ib = {p.device: p for p in host.ib_ports}
        self._eth = {e.name: e for e in host.eth}

    def listdir(self, path: str) -> list[str]:
        parts = path.strip("/").split("/")
        host = self.host
        if parts == ["sys", "bus", "pci", "drivers", "nvidia"]:  # every GPU, lost or not
            return sorted(_sysfs_bus(gpu) for gpu in host.gpus)
        if parts[:3] == ["sys", "class", "infiniband"]:
            rest = parts[3:]
            if not rest:
                return list(self._ib)
            if rest[0] not in self._ib:
                return []
            if len(rest) == 1:
                return ["fw_ver", "node_guid", "ports"]
            if rest[1] != "ports":
                return []
            if len(rest) == 2:
                return ["1"]
            if rest[2] != "1":
                return []
            if len(rest) == 3:
                return _IB_PORT_FILES
            return _IB_COUNTERS if rest[3:] == ["counters"] else []
        if parts[:3] == ["sys", "class", "net"]:
            rest = parts[3:]
            names = sorted([*self._eth, *_EXTRA_IFACES])
            if not rest:
                return names
            if rest[0] not in names:
                return []
            if len(rest) == 1:
                return _NET_FILES
            return _ETH_COUNTERS if rest[1:] == ["statistics"] else []
        if parts == ["proc"]:
            pids = {pid for gpu in host.gpus for pid, _, _ in gpu.processes}
            return sorted([*map(str, pids), "loadavg", "stat", "sys", "uptime"])
        return []

    def read(self, path: str, max_bytes: int = 4096) -> str | None:
        fast = _FAST_PATHS.get(path)
        if fast is not None:  # the ~200 port files read on every sample
            kind, name, attr = fast
            if kind == "ib":
                text = getattr(self._ib[name], attr) if attr else None
            else:
                port = self._eth.get(name) if kind == "eth" else self._ib.get(name)
                text = None if port is None else port.counters.get(attr)
            if text is not None:
                return str(text)[:max_bytes]
        text = self._text(path)
        return None if text is None else text[:max_bytes].rstrip()

    def _text(self, path: str) -> str | None:
        parts = path.strip("/").split("/")
        host = self.host
        if parts[:4] == ["sys", "bus", "pci", "devices"] and parts[5:] == ["class"]:
            gpu_buses = {_sysfs_bus(gpu) for gpu in host.gpus}
            return "0x030200" if parts[4] in gpu_buses else None
        if parts[:3] == ["sys", "class", "infiniband"] and len(parts) >= 5:
            return self._ib_file(parts[3:])
        if parts[:3] == ["sys", "class", "net"] and len(parts) >= 5:
            return self._net_file(parts[3:])
        if parts[0] == "proc":
            if parts[1:] == ["loadavg"]:
                l1, l5, l15 = host.load
                running = 1 + sum(1 for g in host.gpus if g.processes)
                return f"{l1:.2f} {l5:.2f} {l15:.2f} {running}/1873 {4_000_000 + host.index}\n"
            if parts[1:] == ["stat"]:
                return f"cpu  0 0 0 0 0 0 0 0 0 0\nbtime {int(host.boot_ts)}\n"
            if parts[1:] == ["uptime"]:
                up = host.now_ts - host.boot_ts
                return f"{up:.2f} {up * 100:.2f}\n"
            if parts[1:] == ["sys", "kernel", "hostname"]:
                return host.name + "\n"
            if parts[1:] == ["sys", "kernel", "osrelease"]:
                return host.kernel_release + "\n"
            if len(parts) == 3 and parts[2] == "comm" and parts[1].isdigit():
                return self._comm(int(parts[1]))
        if path == "/etc/os-release":
            return f'PRETTY_NAME="{host.os_name}"\nNAME="Ubuntu"\nVERSION_ID="22.04"\n'
        return None

    def _ib_file(self, rest: list[str]) -> str | None:
        port = self._ib.get(rest[0])
        if port is None:
            return None
        if rest[1:] == ["fw_ver"]:
            return "28.42.1000\n"
        if rest[1:] == ["node_guid"]:
            i = hw.IB_DEVICES.index(port.device)
            return f"a088:c203:00{self.host.index % 256:02x}:{i:04x}\n"
        if rest[1:3] != ["ports", "1"]:
            return None
        leaf = rest[3:]
        if leaf == ["state"]:
            return port.state + "\n"
        if leaf == ["phys_state"]:
            return port.phys_state + "\n"
        if leaf == ["rate"]:
            return port.rate_text + "\n"
        if leaf == ["link_layer"]:
            return port.link_layer + "\n"
        if len(leaf) == 2 and leaf[0] == "counters":
            value = port.counters.get(leaf[1])
            return None if value is None else f"{value}\n"
        return None

    def _net_file(self, rest: list[str]) -> str | None:
        name, leaf = rest[0], rest[1:]
        iface = self._eth.get(name)
        if iface is None:
            state = _EXTRA_IFACES.get(name)
            if state is None:
                return None
            if leaf == ["operstate"]:
                return state + "\n"
            if leaf == ["mtu"]:
                return "65536\n" if name == "lo" else "1500\n"
            if len(leaf) == 2 and leaf[0] == "statistics" and leaf[1] in hw.ETH_COUNTERS:
                return "0\n"
            return None  # speed of lo / a down bridge: EINVAL, unreadable
        if leaf == ["operstate"]:
            return iface.operstate + "\n"
        if leaf == ["speed"]:
            return f"{iface.speed_mbps}\n" if iface.operstate == "up" else "-1\n"
        if leaf == ["mtu"]:
            return "9000\n" if iface.speed_mbps > 1000 else "1500\n"
        if leaf == ["address"]:
            i = hw.ETH_INTERFACES.index((iface.name, iface.speed_mbps))
            return (
                f"7c:c2:55:{self.host.index >> 8 & 255:02x}:{self.host.index & 255:02x}:{i:02x}\n"
            )
        if len(leaf) == 2 and leaf[0] == "statistics":
            value = iface.counters.get(leaf[1])
            return None if value is None else f"{value}\n"
        return None

    def _comm(self, pid: int) -> str | None:
        for gpu in self.host.gpus:
            for proc_pid, name, _ in gpu.processes:
                if proc_pid == pid:
                    return name + "\n"
        return None

    def walk_files(self, root: str) -> list[str]:
        """Every file under root, depth first in sorted order, as `grep -r` visits them."""
        out: list[str] = []
        names = self.listdir(root)
        if not names:
            return [root] if self._text(root) is not None else []
        for name in names:
            out.extend(self.walk_files(f"{root.rstrip('/')}/{name}"))
        return out


class _SimKmsgSource:
    """The host's kernel ring buffer as the agent's kernel-log readers present it:
    (epoch ts, line) pairs, from boot on the first read, then only new lines."""

    name = "kmsg"
    poll_every_s = 0.0

    def __init__(self, host: SimHost):
        self.host = host
        self._last_seq = 0

    def read(self) -> list[tuple[float, str]]:
        lines = self.host.kernel_lines
        new = []
        for seq, uptime_s, text in reversed(lines):
            if seq <= self._last_seq:
                break
            new.append((self.host.boot_ts + uptime_s, text))
        if lines:
            self._last_seq = lines[-1][0]
        new.reverse()
        return new


class SimKernelLog(KernelLog):
    """The agent's own KernelLog (its XID line parser and "fallen off the bus"
    de-duplication) reading the simulated host's kernel lines."""

    def __init__(self, host: SimHost):
        super().__init__(_SimKmsgSource(host), clock=lambda: host.now_ts)
