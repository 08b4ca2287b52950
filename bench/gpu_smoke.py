"""Smoke check of the agent on a real GPU machine: real pynvml, real sysfs, real kernel log.

Emits a hello and three samples (one second apart), decodes each with the console's
strict decoder, and prints a short human summary: GPUs, which readings this hardware
supports, the agent's own cost, and any errors. Then runs the agent as the console ships
it (the bundle, with its own copy of pynvml, on this python3) once, and checks it came
up in NVML mode with the same GPUs. Needs only the standard library,
nvidia-ml-py and msgspec; run it from anywhere:

    python3 bench/gpu_smoke.py [--samples 3] [--interval 1] [--show-lines] [--no-bundle]

Exit status 0 when every line decodes and NVML mode came up, 1 otherwise.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import subprocess

from opsconsole.agent.agent import Agent, encode
from opsconsole.agent.bundle import agent_command
from opsconsole.agent.commands import run_command
from opsconsole.agent.kernel_log import open_kernel_log
from opsconsole.agent.nvml_sample import read_gpu, read_nvlink
from opsconsole.agent.sysfs import RealFs
from opsconsole.wire import ProtocolError, decode_line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--show-lines", action="store_true", help="print the JSON lines too")
    parser.add_argument(
        "--no-bundle", action="store_true", help="skip the run of the shipped command"
    )
    args = parser.parse_args(argv)

    import pynvml

    fs = RealFs()
    started = time.perf_counter()
    agent = Agent(nvml=pynvml, fs=fs, kernel_log=open_kernel_log(fs, run_command))
    print(f"agent start: {(time.perf_counter() - started) * 1000:.1f} ms, mode {agent.mode}")
    messages = [agent.hello()]
    cpu_ms = []
    for index in range(args.samples):
        if index:
            time.sleep(args.interval)
        cpu_before = time.process_time()
        messages.append(agent.sample())
        cpu_ms.append((time.process_time() - cpu_before) * 1000)

    problems = []
    decoded = []
    for message in messages:
        line = encode(message)
        if args.show_lines:
            print(line)
        try:
            decoded.append(decode_line(line.encode()))
        except ProtocolError as exc:
            problems.append(f"{message['type']} line refused by the console: {exc}")

    hello = messages[0]
    print(f"host: {hello['host']}")
    print(f"capabilities: {', '.join(hello['capabilities'])}")
    for gpu in hello["gpus"]:
        print(f"  GPU {gpu['index']}: {gpu.get('name')} {gpu.get('pci_bus_id')} {gpu.get('uuid')}")
    if agent.mode != "nvml":
        problems.append(
            f"NVML mode did not come up (mode {agent.mode}): {agent.unavailable_detail}"
        )

    reasons = collections.Counter()
    for sample in messages[1:]:
        for gpu in sample["gpus"]:
            for field, reason in gpu["na"].items():
                reasons[(field, reason)] += 1
            if gpu["state"] != "ok":
                problems.append(f"seq {sample['seq']} GPU {gpu['index']} state {gpu['state']}")
        if sample["driver"] != "ok":
            problems.append(
                f"seq {sample['seq']} driver {sample['driver']}: {sample['driver_detail']}"
            )
    last = messages[-1]
    fields = [field for field in (last["gpus"][0] if last["gpus"] else {}) if field != "na"]
    print(f"readings per GPU: {len(fields)} fields; null with a reason:")
    for (field, reason), count in sorted(reasons.items()):
        print(f"  {field}: {reason} ({count}x)")
        if reason.startswith("error"):
            problems.append(f"{field}: {reason}")
    if last["gpus"]:
        gpu = last["gpus"][0]
        print(
            f"GPU 0 PCIe gen {gpu.get('pcie_gen')}/{gpu.get('pcie_gen_max')} x"
            f"{gpu.get('pcie_width')}/{gpu.get('pcie_width_max')}, P{gpu.get('pstate')}, "
            f"slowdown {gpu.get('temp_slowdown_c')} C, shutdown {gpu.get('temp_shutdown_c')} C, "
            f"energy {gpu.get('energy_mj')} mJ, memory used {gpu.get('mem_used_mib')} MiB"
        )
        print(
            f"GPU 0 now: {gpu['util_gpu_pct']}% util, {gpu['temp_c']} C, {gpu['power_w']} W, "
            f"{len(gpu.get('nvlink', {}).get('up', []))} NVLinks, {len(gpu['mig'])} MIG, "
            f"{len(gpu['processes'])} procs"
        )
    print(f"events in the samples: {sum(len(s['events']) for s in messages[1:])}")
    print(f"ib ports: {len(last['ib'])}, eth: {len(last['eth'])}, load: {last['load']}")
    print("collect_ms per sample: " + ", ".join(f"{s['collect_ms']:.1f}" for s in messages[1:]))
    print("agent CPU ms per sample: " + ", ".join(f"{ms:.1f}" for ms in cpu_ms))
    _profile(agent)
    bundle_problems = [] if args.no_bundle else _bundle_check(len(hello["gpus"]))
    problems.extend(bundle_problems)

    for problem in problems:
        print("PROBLEM:", problem)
    ok = len(decoded) == len(messages) and agent.mode == "nvml" and not bundle_problems
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


def _bundle_check(gpus: int) -> list[str]:
    """The shipped command (bundled pynvml, nothing from this checkout), run once."""
    command = agent_command(1.0, python="python3") + " --once"
    try:
        result = subprocess.run(
            ["bash", "-c", command], input=b"", capture_output=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        return ["bundle: the shipped agent did not answer within 120 s"]
    lines = result.stdout.splitlines()
    try:
        hello = decode_line(lines[0])
        sample = decode_line(lines[1])
    except (IndexError, ProtocolError) as exc:
        return [f"bundle: no hello and sample ({exc}); stderr: {result.stderr[-300:]!r}"]
    print(
        f"bundle on python3: mode {getattr(hello, 'mode', '?')}, "
        f"{len(getattr(hello, 'gpus', []))} GPUs, driver {getattr(sample, 'driver', '?')}"
    )
    if getattr(hello, "mode", None) != "nvml" or len(hello.gpus) != gpus:
        return [f"bundle: came up in mode {getattr(hello, 'mode', '?')}, not nvml"]
    return []


def _profile(agent: Agent) -> None:
    """Where the time goes on this hardware: one GPU's readings, and its NVLinks alone."""
    if agent.nvml is None or not agent.nvml.gpus:
        return
    gpu = agent.nvml.gpus[0]
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        read_gpu(agent.nvml.nvml, gpu, agent.fs)
    per_gpu = (time.perf_counter() - started) * 1000 / rounds
    started = time.perf_counter()
    for _ in range(rounds):
        read_nvlink(agent.nvml.nvml, gpu.handle, gpu.links)
    per_links = (time.perf_counter() - started) * 1000 / rounds
    links = len(gpu.links)
    print(f"one GPU's readings: {per_gpu:.2f} ms, of which {links} NVLinks: {per_links:.2f} ms")


if __name__ == "__main__":
    sys.exit(main())
