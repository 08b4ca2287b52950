"""Who this host is (hostname, kernel, OS, Python), read through the file seam.

Reading /proc and /etc through `fs` rather than `socket` or `platform` lets the
simulator's virtual hosts answer with their own names.
"""

import platform


def _os_name(os_release):
    fields = {}
    for line in (os_release or "").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields.get("PRETTY_NAME") or fields.get("NAME") or ""


def read_host_facts(fs):
    """HostFacts fields known without the GPU driver; "" where unreadable."""
    return {
        "hostname": (fs.read("/proc/sys/kernel/hostname", 256) or "").strip(),
        "kernel": (fs.read("/proc/sys/kernel/osrelease", 256) or "").strip(),
        "os": _os_name(fs.read("/etc/os-release", 8192)),
        "python": platform.python_version(),
    }
