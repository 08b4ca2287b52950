"""Agentless mode, for hosts without python3: one shell command per interval, parsed on
the console with the agent's own parsers into the same protocol messages.

The command prints nvidia-smi's CSV, a marker, the remapped-rows CSV, a marker, then
`grep -rHs .` over the sysfs/procfs files the agent would read ("path:line" per line).
Those lines become a `DictFs`, so the sysfs readers run unchanged.
"""

from typing import Any, Dict

from . import AGENT_VERSION, PROTOCOL_VERSION
from .host import read_host_facts
from .smi import (
    SMI_EXIT_INVALID_ARGUMENT,
    driver_version_from_csv,
    error_detail,
    inventory_from_csv,
    merge_remapped_rows,
    parse_query_csv,
    remap_command,
    smi_command,
)
from .sysfs import DictFs, read_eth, read_ib_ports, read_load

__all__ = ["AGENTLESS_COMMAND", "DictFs", "parse_agentless_hello", "parse_agentless_output"]

REMAP_MARKER = "@@opsconsole-agentless remap"
FILES_MARKER = "@@opsconsole-agentless files"
GREPPED_FILES = [
    "/proc/sys/kernel/hostname",
    "/proc/sys/kernel/osrelease",
    "/etc/os-release",
    "/proc/loadavg",
    "/sys/class/infiniband/*/ports/*/state",
    "/sys/class/infiniband/*/ports/*/phys_state",
    "/sys/class/infiniband/*/ports/*/rate",
    "/sys/class/infiniband/*/ports/*/link_layer",
    "/sys/class/infiniband/*/ports/*/counters",
    "/sys/class/net/*/operstate",
    "/sys/class/net/*/speed",
    "/sys/class/net/*/statistics",
]
_FILE_PREFIXES = ("/proc/", "/sys/", "/etc/")


def _build_command():
    # Field lists hold no shell metacharacters, so they need no quoting. A driver older
    # than 535 refuses the first query and answers the legacy spelling. nvidia-smi exits
    # 2 ("a supplied argument is invalid") when it refuses a field, and only then is the
    # legacy query run: with a GPU off the bus it exits 15 after printing the other rows,
    # and running the legacy query too would print every row twice.
    return "; ".join(
        [
            "%s 2>&1 || [ $? -ne %d ] || %s 2>&1"
            % (" ".join(smi_command()), SMI_EXIT_INVALID_ARGUMENT, " ".join(smi_command(True))),
            "echo '%s'" % REMAP_MARKER,
            "%s 2>&1" % " ".join(remap_command()),
            "echo '%s'" % FILES_MARKER,
            "grep -rHs . %s 2>/dev/null" % " ".join(GREPPED_FILES),
            "true",
        ]
    )


AGENTLESS_COMMAND = _build_command()


def split_output(text):
    """(nvidia-smi text, remapped-rows text, {path: content}) of one command output."""
    smi_text, _, rest = (text or "").partition(REMAP_MARKER)
    remap_text, _, grep_text = rest.partition(FILES_MARKER)
    files = {}
    for line in grep_text.splitlines():
        if not line.startswith(_FILE_PREFIXES):
            continue
        path, sep, value = line.partition(":")
        if sep:
            files[path] = files[path] + "\n" + value if path in files else value
    return smi_text, remap_text, files


def parse_agentless_output(text: str, seq: int, ts: float) -> Dict[str, Any]:
    """A protocol `sample` dict from one run of AGENTLESS_COMMAND; never raises."""
    smi_text, remap_text, files = split_output(text)
    fs = DictFs(files)
    gpus = merge_remapped_rows(parse_query_csv(smi_text), remap_text)
    detail = error_detail(smi_text)
    if gpus:
        driver, gpu_count = "ok", len(gpus)
    else:
        driver, gpu_count = "unavailable", None
        detail = detail or "nvidia-smi printed no GPU rows"
    return {
        "type": "sample",
        "seq": seq,
        "ts": ts,
        "driver": driver,
        "driver_detail": detail,
        "gpu_count": gpu_count,
        "gpus": gpus,
        "events": [],
        "ib": read_ib_ports(fs),
        "eth": read_eth(fs),
        "load": read_load(fs),
        "collect_ms": None,
    }


def parse_agentless_hello(text: str, ts: float) -> Dict[str, Any]:
    """A protocol `hello` dict (mode "agentless") from the same command's output."""
    smi_text, _, files = split_output(text)
    fs = DictFs(files)
    host = read_host_facts(fs)
    host["python"] = ""
    host.update(
        {
            "driver_version": driver_version_from_csv(smi_text),
            "nvml_version": None,
            "cuda_version": None,
        }
    )
    capabilities = ["nvidia-smi"] if inventory_from_csv(smi_text) else []
    capabilities += [
        name for name, found in (("ib", read_ib_ports(fs)), ("eth", read_eth(fs))) if found
    ]
    return {
        "type": "hello",
        "proto": PROTOCOL_VERSION,
        "agent_version": AGENT_VERSION,
        "mode": "agentless",
        "ts": ts,
        "host": host,
        "capabilities": capabilities,
        "gpus": inventory_from_csv(smi_text),
    }
