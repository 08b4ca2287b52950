"""What the agent costs a GPU host: CPU per sample and resident memory of the shipped
agent (the bundle, as the console starts it) on a bare python3, 8 GPUs x 18 NVLinks.

    .venv/bin/python bench/agent_cost.py [--samples 200] [--interval 0.05] [--python ...]

Modes:
* nvml       - the bundled pynvml against tests/fakes/fake_libnvml.c (built here with
               gcc; its control file is checked at most once a second, as a driver does
               no such thing), so the cost is the agent's and ctypes', not a driver's.
* nvidia-smi - no libnvidia-ml.so.1; a fake `nvidia-smi` on PATH (a shell script that
               prints the simulator's answer to the agent's probed query), so the agent's
               own cost is measured; a real nvidia-smi adds tens of ms per run on top.

Also the NVML readings alone, in-process (the agent's GPU part, without the host's
sysfs fabric counters, which cost what the host's NICs cost).

CPU is the agent process's (every thread, from /proc/PID/task/*/schedstat, in ns) over
the samples after the first few, divided by their number; the children's CPU (the fake
nvidia-smi, the kernel-log command if any) is shown apart. RSS is VmRSS at the end and
VmHWM (the peak). The host's /dev/kmsg is read if it can be, as on a real host. Prints
figures only; nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pynvml

from opsconsole.agent import smi
from opsconsole.agent.bundle import agent_command
from opsconsole.sim.smi import help_query_gpu, run_nvidia_smi
from opsconsole.sim.world import SimFleet
from tests.fakes.fake_libnvml import Control, build

REPO = Path(__file__).resolve().parents[1]
WARMUP_SAMPLES = 5
GPU_PART = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import pynvml
from opsconsole.agent.agent import Agent
from opsconsole.agent.sysfs import DictFs
agent = Agent(nvml=pynvml, fs=DictFs({}), watchdog_timeout_s=10.0,
              run_command=lambda argv, t: (127, "", ""))
assert agent.mode == "nvml", agent.unavailable_detail
for _ in range(20):
    agent.sample()
n = max(1, int(sys.argv[3]) // 5)
rounds = []
for _ in range(5):
    started = time.process_time()
    for _ in range(n):
        agent.sample()
    rounds.append((time.process_time() - started) * 1000.0 / n)
print(sorted(rounds)[2])
"""
"""The GPU part alone (NVML through pynvml, no sysfs, no output), in-process: the median
of five rounds, as other work on a shared machine inflates single runs."""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _fake_nvidia_smi(directory: Path) -> Path:
    """A `nvidia-smi` that prints an 8-GPU H200 host's answers from files."""
    host = SimFleet(1, seed=1, start_ts=1_767_225_600.0).host("sg1-r01-n01")
    host.advance(1_767_225_700.0)
    help_text = help_query_gpu()
    fields = smi.probed_fields(smi.query_names(help_text))
    (directory / "help").write_text(help_text)
    (directory / "query").write_text(run_nvidia_smi(host, smi.query_command(fields))[1])
    (directory / "remap").write_text(run_nvidia_smi(host, smi.remap_command())[1])
    bin_dir = directory / "bin"
    bin_dir.mkdir()
    script = bin_dir / "nvidia-smi"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        f"  --help-query-gpu) exec cat {directory}/help ;;\n"
        f"  --query-remapped-rows=*) exec cat {directory}/remap ;;\n"
        f"  *) exec cat {directory}/query ;;\n"
        "esac\n"
    )
    script.chmod(0o755)
    return bin_dir


def _cpu_ns(pid: int) -> int:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


def _children_cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) * 1000.0 / CLOCK_TICKS  # cutime + cstime


def _status_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def measure(python: str, mode: str, env: dict[str, str], samples: int, interval_s: float):
    """(mode, agent CPU ms per sample, children CPU ms per sample, RSS MiB, peak MiB,
    mean collect_ms) of one agent run."""
    process = subprocess.Popen(
        ["bash", "-c", agent_command(interval_s, python=python)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=env["HOME"],
    )
    seen: list[bytes] = []
    counted = threading.Condition()

    def read() -> None:
        for line in process.stdout:
            with counted:
                seen.append(line)
                counted.notify_all()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()

    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 60 + n * interval_s * 4
        with counted:
            while len([x for x in seen if b'"sample"' in x]) < n:
                if not counted.wait(max(0.0, deadline - time.monotonic())):
                    raise RuntimeError(f"{mode}: agent gave {len(seen)} lines")

    try:
        wait_for(WARMUP_SAMPLES)
        cpu0, child0 = _cpu_ns(process.pid), _children_cpu_ms(process.pid)
        with counted:
            first = len([x for x in seen if b'"sample"' in x])
        wait_for(first + samples)
        cpu1, child1 = _cpu_ns(process.pid), _children_cpu_ms(process.pid)
        with counted:
            last = len([x for x in seen if b'"sample"' in x])
        rss = _status_kib(process.pid, "VmRSS") / 1024
        peak = _status_kib(process.pid, "VmHWM") / 1024
    finally:
        process.stdin.close()
        process.wait(timeout=30)
        reader.join(timeout=5)
    lines = [x for x in seen if b'"sample"' in x][WARMUP_SAMPLES:]
    mode_seen = next((x for x in seen if b'"hello"' in x), b"")
    if f'"mode":"{mode}"'.encode() not in mode_seen:
        raise RuntimeError(f"expected mode {mode}, got {mode_seen[:200]!r}")
    import json

    collect = [json.loads(x)["collect_ms"] for x in lines]
    n = last - first
    return (
        (cpu1 - cpu0) / 1e6 / n,
        (child1 - child0) / n,
        rss,
        peak,
        sum(collect) / len(collect),
    )


def gpu_part_ms(python: str, env: dict[str, str], work: Path, samples: int) -> float:
    """CPU ms per sample of the agent's NVML readings alone (the real pynvml)."""
    only_pynvml = work / "pynvml-only"
    if not only_pynvml.exists():
        only_pynvml.mkdir()
        shutil.copy(pynvml.__file__, only_pynvml / "pynvml.py")
    out = subprocess.run(
        [python, "-I", "-c", GPU_PART, str(only_pynvml), str(REPO), str(samples)],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return float(out.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument(
        "--python",
        nargs="*",
        default=[p for p in ("/root/.pyenv/versions/3.8.18/bin/python", sys.executable)
                 if os.access(p, os.X_OK)],
    )  # fmt: skip
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="agent-cost-"))
    try:
        library = build(work / "lib")
        control = Control(work / "control")
        smi_bin = _fake_nvidia_smi(work)
        home = work / "home"
        home.mkdir()
        base = {"PATH": "/usr/bin:/bin", "HOME": str(home), "LC_ALL": "C"}
        modes = {
            "nvml": dict(base, **control.env(library, reload_ms=1000)),
            "nvidia-smi": dict(base, PATH=f"{smi_bin}:/usr/bin:/bin"),
        }
        print(f"{args.samples} samples at {args.interval} s after {WARMUP_SAMPLES} warm-up;"
              " 8 GPUs x 18 NVLinks")  # fmt: skip
        print("| python | mode | agent CPU ms/sample | children CPU ms/sample | RSS MiB |"
              " peak RSS MiB | collect_ms |")  # fmt: skip
        print("|---|---|---|---|---|---|---|")
        gpu_part: dict[str, float] = {}
        for python in args.python:
            version = subprocess.run(
                [python, "-c", "import sys; print(sys.version.split()[0])"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()  # fmt: skip
            for mode, env in modes.items():
                cpu, child, rss, peak, collect = measure(
                    python, mode, env, args.samples, args.interval
                )
                print(f"| {version} | {mode} | {cpu:.2f} | {child:.2f} | {rss:.1f} |"
                      f" {peak:.1f} | {collect:.2f} |")  # fmt: skip
            gpu_part[version] = gpu_part_ms(python, modes["nvml"], work, args.samples)
        print("\nNVML readings alone (in-process, no sysfs, no output; median of 5 rounds),"
              " CPU ms per sample:")  # fmt: skip
        for version, ms in gpu_part.items():
            print(f"  Python {version}: {ms:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
