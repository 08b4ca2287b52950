"""Just enough of a POSIX shell to run what the console sends a host without an agent.

The agentless command is a `;` list of `a || b` alternatives over nvidia-smi, `[ $? -ne N ]`,
echo and `grep -rHs` with sysfs globs; running it here with the shell's own rules (an `||`
alternative runs whenever the one before exits non-zero, `$?` is that exit status, globs
expand in sorted order,
`2>&1` and `2>/dev/null` redirect) keeps the simulated output honest to what a real host
would print. Anything else is "command not found", exit 127.
"""

from __future__ import annotations

import shlex

from opsconsole.sim import tools
from opsconsole.sim.ipmi import run_ipmitool
from opsconsole.sim.smi import run_nvidia_smi
from opsconsole.sim.sysfs import SimSysfs
from opsconsole.sim.world import SimHost

EXIT_NOT_FOUND = 127


def run_command_line(host: SimHost, fs: SimSysfs, command: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of a command line; the status is the last one's."""
    out: list[str] = []
    err: list[str] = []
    status = 0
    for statement in _split(command, ";"):
        for alternative in _split(statement, "||"):
            status, o, e = _run_simple(host, fs, alternative, status)
            out.append(o)
            err.append(e)
            if status == 0:
                break
    return status, "".join(out), "".join(err)


def run_argv(host: SimHost, fs: SimSysfs, argv: list[str]) -> tuple[int, str, str]:
    """One command, already split (the agent's `run_command` seam)."""
    if not argv:
        return 0, "", ""
    name = argv[0]
    if name == "nvidia-smi":
        if argv[1:2] == ["nvlink"]:
            return tools.run_nvlink_status(host)
        if "--gpu-reset" in argv or "-r" in argv:
            return tools.run_gpu_reset(host)
        if any(a.startswith("--query-compute-apps=") for a in argv):
            return tools.run_compute_apps(host)
        return run_nvidia_smi(host, argv)
    if name in _TOOLS:
        return _TOOLS[name](host, argv)
    if name == "echo":
        return 0, " ".join(argv[1:]) + "\n", ""
    if name == "true":
        return 0, "", ""
    if name == "grep":
        return _grep(fs, argv[1:])
    if name == "ipmitool":
        return run_ipmitool(host, argv)
    return EXIT_NOT_FOUND, "", f"bash: {name}: command not found\n"


_TOOLS = {
    "dcgmi": tools.run_dcgmi,
    "all_reduce_perf": tools.run_all_reduce,
    "mpirun": tools.run_mpirun,
    "ib_write_bw": tools.run_ib_write_bw,
    "kill": tools.run_kill,
}
"""The validation tools (see tools.py)."""


def _split(text: str, separator: str) -> list[str]:
    """Split on a separator outside single quotes (all the quoting these commands use)."""
    parts: list[str] = []
    current: list[str] = []
    quoted, i = False, 0
    while i < len(text):
        ch = text[i]
        if ch == "'":
            quoted = not quoted
        if not quoted and text.startswith(separator, i):
            parts.append("".join(current))
            current = []
            i += len(separator)
            continue
        current.append(ch)
        i += 1
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


_INT_TESTS = {
    "-eq": int.__eq__, "-ne": int.__ne__, "-lt": int.__lt__,
    "-le": int.__le__, "-gt": int.__gt__, "-ge": int.__ge__,
}  # fmt: skip


def _test(words: list[str]) -> tuple[int, str, str]:
    """The shell's `[ A -op B ]` for integers (the agentless command's exit-status test)."""
    if len(words) != 5 or words[4] != "]" or words[2] not in _INT_TESTS:
        return 2, "", "bash: [: only `[ INT -op INT ]` is simulated\n"
    try:
        a, b = int(words[1]), int(words[3])
    except ValueError:
        return 2, "", f"bash: [: {words[1]}: integer expression expected\n"
    return (0 if _INT_TESTS[words[2]](a, b) else 1), "", ""


def _run_simple(
    host: SimHost, fs: SimSysfs, command: str, last_status: int = 0
) -> tuple[int, str, str]:
    try:
        words = shlex.split(command)
    except ValueError as exc:
        return 2, "", f"bash: syntax error: {exc}\n"
    words = [str(last_status) if word == "$?" else word for word in words]
    if words and words[0] == "[":
        return _test(words)
    if words and words[0] == "exec":
        words = words[1:]
    merge_stderr = drop_stderr = False
    argv = []
    for word in words:
        if word == "2>&1":
            merge_stderr = True
        elif word == "2>/dev/null":
            drop_stderr = True
        elif "*" in word:
            argv.extend(_glob(fs, word) or [word])  # no match: bash passes the pattern on
        else:
            argv.append(word)
    status, out, err = run_argv(host, fs, argv)
    if merge_stderr:
        out, err = out + err, ""
    if drop_stderr:
        err = ""
    return status, out, err


def _glob(fs: SimSysfs, pattern: str) -> list[str]:
    """Expand `*` path components against the virtual tree, sorted like bash does."""
    paths = [""]
    for part in pattern.strip("/").split("/"):
        expanded: list[str] = []
        for base in paths:
            if "*" in part:
                prefix, _, suffix = part.partition("*")
                expanded.extend(
                    f"{base}/{name}"
                    for name in fs.listdir(base or "/")
                    if name.startswith(prefix) and name.endswith(suffix)
                )
            else:
                expanded.append(f"{base}/{part}")
        paths = expanded
    return sorted(p for p in paths if fs.listdir(p) or fs.read(p) is not None)


def _grep(fs: SimSysfs, args: list[str]) -> tuple[int, str, str]:
    """`grep -rHs . PATH...`: every non-empty line as "path:line"."""
    flags = [a for a in args if a.startswith("-")]
    rest = [a for a in args if not a.startswith("-")]
    if not rest or rest[0] != "." or not any("r" in f for f in flags):
        return 2, "", "grep: only `grep -rHs . PATH...` is simulated\n"
    lines: list[str] = []
    for path in rest[1:]:
        for file in fs.walk_files(path):
            text = fs.read(file, 1 << 20)
            lines.extend(f"{file}:{line}" for line in (text or "").splitlines() if line)
    return (0 if lines else 1), "".join(line + "\n" for line in lines), ""
