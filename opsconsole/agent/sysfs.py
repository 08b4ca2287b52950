"""Fabric and host readings from sysfs and procfs, through a small file-reading seam.

`RealFs` reads the host; `DictFs` serves a dict of path -> text (agentless mode builds
one from `grep -r` output, the simulator builds a virtual host with it). The readers
below skip anything missing or malformed: one odd file never costs a whole sample.
"""

import os
import re

IB_ROOT = "/sys/class/infiniband"
NET_ROOT = "/sys/class/net"
LOADAVG = "/proc/loadavg"
MAX_IB_PORTS = 64
MAX_ETH_INTERFACES = 64
MAX_COUNTERS = 128

# Container and overlay plumbing: hundreds of these on a busy host, none of them fabric.
VIRTUAL_IFACE_PREFIXES = (
    "veth", "docker", "br-", "virbr", "cali", "flannel", "cni", "vxlan", "tunl", "kube-",
    "lxc", "tap", "genev", "nodelocaldns", "cilium", "weave", "gre", "ip6tnl", "sit",
)  # fmt: skip

_RATE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*Gb/sec")


class RealFs:
    """The host's own files. Every error reads as "absent"; nothing here raises.

    `root` prefixes every path (tests point it at a directory tree shaped like /sys).
    """

    def __init__(self, root=""):
        self.root = root.rstrip("/")

    def listdir(self, path):
        try:
            return sorted(os.listdir(self.root + path))
        except (OSError, ValueError):
            return []

    def read(self, path, max_bytes=4096):
        """One os.read: a sysfs or procfs file answers in one (and a few hundred are read
        per sample, where Python's buffered file objects cost three times as much)."""
        try:
            fd = os.open(self.root + path, os.O_RDONLY)
        except (OSError, ValueError):
            return None
        try:
            data = os.read(fd, max_bytes)
        except OSError:
            return None
        finally:
            os.close(fd)
        return data.decode("utf-8", "replace").rstrip()


class DictFs:
    """Files held in memory: {absolute path: text}. Directories are implied by paths."""

    def __init__(self, files):
        self.files = dict(files)
        self._dirs = {}
        for path in self.files:
            parts = path.rstrip("/").split("/")
            for depth in range(1, len(parts)):
                parent = "/".join(parts[:depth]) or "/"
                self._dirs.setdefault(parent, set()).add(parts[depth])

    def listdir(self, path):
        path = path.rstrip("/") or "/"
        return sorted(self._dirs.get(path, ()))

    def read(self, path, max_bytes=4096):
        text = self.files.get(path)
        return None if text is None else text[:max_bytes].rstrip()


def _after_colon(text):
    """ "4: ACTIVE" -> "ACTIVE"; "LinkUp" stays "LinkUp"."""
    if text is None:
        return None
    value = text.split(":", 1)[-1].strip()
    return value or None


def _counter(text):
    try:
        value = int(text.strip())
    except (AttributeError, ValueError):
        return None
    return value if value >= 0 else None


def _counters(fs, directory):
    counters = {}
    for name in fs.listdir(directory)[:MAX_COUNTERS]:
        value = _counter(fs.read(directory + "/" + name, 64))
        if value is not None:
            counters[name] = value
    return counters


def read_ib_ports(fs):
    """Every InfiniBand / RoCE port: state, physical state, rate and raw counters."""
    ports = []
    for device in fs.listdir(IB_ROOT):
        base = "%s/%s/ports" % (IB_ROOT, device)
        for port_name in fs.listdir(base):
            if not port_name.isdigit() or len(ports) >= MAX_IB_PORTS:
                continue
            path = "%s/%s" % (base, port_name)
            rate = _RATE.match(fs.read(path + "/rate", 256) or "")
            ports.append(
                {
                    "device": device,
                    "port": int(port_name),
                    "state": _after_colon(fs.read(path + "/state", 256)),
                    "phys_state": _after_colon(fs.read(path + "/phys_state", 256)),
                    "rate_gbps": float(rate.group(1)) if rate else None,
                    "link_layer": (fs.read(path + "/link_layer", 256) or "").strip() or None,
                    "counters": _counters(fs, path + "/counters"),
                }
            )
    return ports


def _is_fabric_iface(name):
    return name != "lo" and not name.startswith(VIRTUAL_IFACE_PREFIXES)


def read_eth(fs):
    """Physical-looking network interfaces: operstate, speed and statistics counters."""
    interfaces = []
    for name in fs.listdir(NET_ROOT):
        if not _is_fabric_iface(name) or len(interfaces) >= MAX_ETH_INTERFACES:
            continue
        path = "%s/%s" % (NET_ROOT, name)
        speed = _counter(fs.read(path + "/speed", 64) or "")  # -1 (unknown) -> None
        interfaces.append(
            {
                "name": name,
                "operstate": (fs.read(path + "/operstate", 64) or "").strip() or None,
                "speed_mbps": speed,
                "counters": _counters(fs, path + "/statistics"),
            }
        )
    return interfaces


def read_load(fs):
    """1, 5 and 15 minute load averages from /proc/loadavg (None where unreadable)."""
    fields = (fs.read(LOADAVG, 256) or "").split()
    load = {}
    for key, index in (("load1", 0), ("load5", 1), ("load15", 2)):
        try:
            value = float(fields[index])
        except (IndexError, ValueError):
            value = None
        load[key] = value if value is not None and 0 <= value < float("inf") else None
    return load
