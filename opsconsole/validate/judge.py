"""Each tool's output against the host class's thresholds: a `CheckResult` with the
measured figure, the expected one and a one-line why. Pure: the runner passes the
command's exit status and output in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from opsconsole.validate.model import CheckResult, CheckStatus
from opsconsole.validate.parsers import (
    ParseError,
    parse_compute_apps,
    parse_dcgm_diag,
    parse_gpu_reset,
    parse_ib_sysfs,
    parse_ib_write_bw,
    parse_nccl_tests,
    parse_nvlink_status,
    parse_pcie_links,
)
from opsconsole.validate.settings import Thresholds

EXIT_NOT_FOUND = 127
RAW_CAP_CHARS = 64_000
"""Raw output kept per check: a long dcgmi run is a few KB; a hostile host gets no more."""


@dataclass(frozen=True, slots=True)
class Output:
    command: str
    exit_status: int | None
    stdout: str
    stderr: str = ""

    @property
    def raw(self) -> str:
        text = self.stdout + (f"\n[stderr]\n{self.stderr}" if self.stderr.strip() else "")
        return text[:RAW_CAP_CHARS]

    @property
    def not_installed(self) -> bool:
        return self.exit_status == EXIT_NOT_FOUND


def _result(
    name: str,
    hosts: Iterable[str],
    status: CheckStatus,
    summary: str,
    out: Output,
    figures: dict[str, Any] | None = None,
    blame: Iterable[str] = (),
) -> CheckResult:
    return CheckResult(
        name=name,
        hosts=tuple(hosts),
        status=status,
        summary=summary,
        figures=figures or {},
        command=out.command,
        raw=out.raw,
        exit_status=out.exit_status,
        blame=tuple(blame),
    )


def _no_answer(name: str, hosts: list[str], out: Output) -> CheckResult | None:
    """The command never ran to an exit status (SSH down, timed out): unproven, not a
    tool's verdict, whatever the check would say about empty output."""
    if out.exit_status is not None:
        return None
    why = out.stderr.strip() or "no exit status"
    return _result(name, hosts, CheckStatus.ERROR, why[:200], out)


def _unreadable(name: str, host: str, out: Output, exc: ParseError) -> CheckResult:
    first = (out.stderr.strip() or out.stdout.strip()).splitlines()[:1]
    extra = f" ({first[0][:120]})" if first else ""
    return _result(name, [host], CheckStatus.ERROR, f"{exc}{extra}", out)


def judge_dcgm(host: str, out: Output, level: int) -> CheckResult:
    if (early := _no_answer("dcgm", [host], out)) is not None:
        return early
    if out.not_installed:
        return _result("dcgm", [host], CheckStatus.SKIP, "dcgmi not installed", out)
    try:
        report = parse_dcgm_diag(out.stdout)
    except ParseError as exc:
        return _unreadable("dcgm", host, out, exc)
    figures = {
        "level": level,
        "version": report.version,
        "tests": len({(r.category, r.test) for r in report.results}),
        "failed": [
            {"test": r.test, "gpu": r.gpu, "warnings": list(r.warnings)} for r in report.failures
        ],
    }
    if report.runtime_error:
        return _result("dcgm", [host], CheckStatus.ERROR, report.runtime_error, out, figures)
    if report.failures:
        words = ", ".join(
            f"{r.test} on GPU {r.gpu}" if r.gpu is not None else r.test for r in report.failures
        )
        first_warning = next((w for r in report.failures for w in r.warnings), "")
        summary = f"dcgmi diag -r {level} failed: {words}"
        if first_warning:
            summary += f" ({first_warning[:120]})"
        return _result("dcgm", [host], CheckStatus.FAIL, summary, out, figures)
    return _result(
        "dcgm", [host], CheckStatus.PASS, f"dcgmi diag -r {level}: {figures['tests']} tests pass",
        out, figures,
    )  # fmt: skip


def judge_pcie(host: str, out: Output, limits: Thresholds) -> CheckResult:
    if (early := _no_answer("pcie", [host], out)) is not None:
        return early
    try:
        links = parse_pcie_links(out.stdout)
    except ParseError as exc:
        return _unreadable("pcie", host, out, exc)
    figures = {
        "links": [
            {"gpu": x.gpu, "gen": x.gen_current, "gen_max": x.gen_max,
             "width": x.width_current, "width_max": x.width_max}
            for x in links
        ]
    }  # fmt: skip
    problems = []
    for link in links:
        width_min = limits.pcie_width_min or link.width_max
        if link.width_current is not None and width_min and link.width_current < width_min:
            problems.append(f"GPU {link.gpu} x{link.width_current} (expected x{width_min})")
        # Idle GPUs drop the link generation to save power: judge what it can train to.
        if limits.pcie_gen_min and link.gen_max is not None and link.gen_max < limits.pcie_gen_min:
            problems.append(f"GPU {link.gpu} Gen{link.gen_max} (expected Gen{limits.pcie_gen_min})")
    if problems:
        return _result("pcie", [host], CheckStatus.FAIL, "; ".join(problems), out, figures)
    widths = {x.width_current for x in links}
    summary = f"{len(links)} GPUs, x{'/'.join(str(w) for w in sorted(widths, key=str))}"
    return _result("pcie", [host], CheckStatus.PASS, summary, out, figures)


def judge_nvlink(host: str, out: Output, limits: Thresholds) -> CheckResult:
    if (early := _no_answer("nvlink", [host], out)) is not None:
        return early
    if "not supported" in (out.stdout + out.stderr).lower() and out.exit_status:
        return _result("nvlink", [host], CheckStatus.SKIP, "no NVLink on this host", out)
    try:
        links = parse_nvlink_status(out.stdout)
    except ParseError as exc:
        return _unreadable("nvlink", host, out, exc)
    speeds = [s for per_gpu in links.values() for s in per_gpu if s is not None]
    inactive = [f"{gpu}:{i}" for gpu, per in links.items() for i, s in enumerate(per) if s is None]
    figures = {
        "links": sum(len(v) for v in links.values()),
        "inactive": inactive,
        "min_gbps": min(speeds) if speeds else None,
        "expected_gbps": limits.nvlink_link_gbps,
    }
    problems = []
    if inactive:
        problems.append(f"{len(inactive)} link(s) inactive ({inactive[0]}…)")
    if limits.nvlink_link_gbps is not None:
        slow = [
            (gpu, i, s)
            for gpu, per in links.items()
            for i, s in enumerate(per)
            if s is not None and s < limits.nvlink_link_gbps
        ]
        if slow:
            gpu, i, s = min(slow, key=lambda x: x[2])
            problems.append(
                f"{len(slow)} link(s) slow: GPU {gpu} link {i} {s:g} GB/s,"
                f" expected >= {limits.nvlink_link_gbps:g} GB/s"
            )
    if problems:
        return _result("nvlink", [host], CheckStatus.FAIL, "; ".join(problems), out, figures)
    summary = f"{figures['links']} links up" + (
        f", >= {figures['min_gbps']:g} GB/s" if speeds else ""
    )
    return _result("nvlink", [host], CheckStatus.PASS, summary, out, figures)


def judge_ib_ports(host: str, out: Output, expected_rate_gbps: float | None) -> CheckResult:
    if (early := _no_answer("ib_ports", [host], out)) is not None:
        return early
    ports = parse_ib_sysfs(out.stdout)
    if not ports:
        return _result("ib_ports", [host], CheckStatus.SKIP, "no InfiniBand ports", out)
    figures = {
        "ports": [{"device": p.device, "state": p.state, "rate_gbps": p.rate_gbps} for p in ports],
        "expected_rate_gbps": expected_rate_gbps,
    }
    problems = [f"{p.device} {p.state}" for p in ports if p.state != "ACTIVE"]
    if expected_rate_gbps is not None:
        problems += [
            f"{p.device} {p.rate_gbps:g} Gb/s (expected {expected_rate_gbps:g})"
            for p in ports
            if p.state == "ACTIVE" and p.rate_gbps is not None and p.rate_gbps < expected_rate_gbps
        ]
    if problems:
        return _result("ib_ports", [host], CheckStatus.FAIL, "; ".join(problems), out, figures)
    return _result("ib_ports", [host], CheckStatus.PASS, f"{len(ports)} ports ACTIVE", out, figures)


def judge_nccl(
    name: str, hosts: list[str], out: Output, gpus: int, limits: Thresholds
) -> CheckResult:
    if (early := _no_answer(name, hosts, out)) is not None:
        return early
    if out.not_installed:
        return _result(name, hosts, CheckStatus.SKIP, "nccl-tests not installed", out)
    try:
        report = parse_nccl_tests(out.stdout)
    except ParseError as exc:
        return _unreadable(name, hosts[0], out, exc)
    expected = limits.busbw_for(gpus)
    figures = {
        "gpus": gpus,
        "ranks": report.ranks,
        "busbw_gbps": report.busbw_gbps,
        "avg_busbw_gbps": report.avg_busbw_gbps,
        "size_b": report.largest.size_b,
        "expected_busbw_gbps": expected,
        "wrong": report.wrong,
    }
    measured = f"all_reduce busbw {report.busbw_gbps:.1f} GB/s over {gpus} GPUs"
    if report.wrong:
        return _result(
            name, hosts, CheckStatus.FAIL, f"{report.wrong} wrong values; {measured}", out, figures
        )
    if expected is not None and report.busbw_gbps < expected:
        summary = f"{measured}, expected >= {expected:g} GB/s"
        return _result(name, hosts, CheckStatus.FAIL, summary, out, figures)
    return _result(name, hosts, CheckStatus.PASS, measured, out, figures)


def judge_ib_pair(
    server: str, client: str, device: str, out: Output, limits: Thresholds
) -> CheckResult:
    hosts = [server, client]
    if (early := _no_answer("ib_write_bw", hosts, out)) is not None:
        return early
    if out.not_installed:
        return _result("ib_write_bw", hosts, CheckStatus.SKIP, "perftest not installed", out)
    try:
        report = parse_ib_write_bw(out.stdout)
    except ParseError as exc:
        return _unreadable("ib_write_bw", client, out, exc)
    expected = limits.ib_write_bw_gbps
    figures = {"device": device, "avg_gbps": report.avg_gbps, "expected_gbps": expected}
    measured = f"{device} {server}->{client} {report.avg_gbps:.1f} Gb/s"
    if expected is not None and report.avg_gbps < expected:
        summary = f"{measured}, expected >= {expected:g} Gb/s"
        return _result("ib_write_bw", hosts, CheckStatus.FAIL, summary, out, figures)
    return _result("ib_write_bw", hosts, CheckStatus.PASS, measured, out, figures)


def attribute_pairs(checks: list[CheckResult]) -> list[CheckResult]:
    """Pairwise tests fail both ends; when a host has a passing test on the same device
    the slow end is the other one. Returns the checks with `blame` filled in."""
    passing = {
        (host, c.figures.get("device"))
        for c in checks
        if c.name == "ib_write_bw" and c.status == CheckStatus.PASS
        for host in c.hosts
    }
    out = []
    suspects_all: set[str] = set()
    for check in checks:
        if check.name != "ib_write_bw" or check.status != CheckStatus.FAIL:
            out.append(check)
            continue
        device = check.figures.get("device")
        suspects = tuple(h for h in check.hosts if (h, device) not in passing) or check.hosts
        suspects_all.update(suspects)
        summary = check.summary
        if suspects != check.hosts:
            summary = f"{summary} (slow end {', '.join(suspects)})"
        out.append(
            CheckResult(
                check.name, check.hosts, check.status, summary, check.figures, check.command,
                check.raw, check.exit_status, suspects,
            )
        )  # fmt: skip
    if suspects_all:  # a slow all-reduce is the slow port's doing
        out = [
            CheckResult(
                c.name, c.hosts, c.status, c.summary, c.figures, c.command, c.raw,
                c.exit_status, tuple(sorted(suspects_all)),
            )
            if c.name == "nccl_fabric" and c.status == CheckStatus.FAIL
            else c
            for c in out
        ]  # fmt: skip
    return out


def judge_processes(host: str, out: Output) -> tuple[CheckResult, list[int]]:
    """Leftover compute processes; returns the check and the pids found."""
    if (early := _no_answer("processes", [host], out)) is not None:
        return early, []
    try:
        apps = parse_compute_apps(out.stdout)
    except ParseError as exc:
        return _unreadable("processes", host, out, exc), []
    figures = {"processes": [{"pid": a.pid, "name": a.name, "bus_id": a.bus_id} for a in apps]}
    if apps:
        names = ", ".join(sorted({f"{a.name} (pid {a.pid})" for a in apps})[:3])
        summary = f"{len(apps)} compute process(es) left on the GPUs: {names}"
        return _result("processes", [host], CheckStatus.FAIL, summary, out, figures), [
            a.pid for a in apps
        ]
    return _result("processes", [host], CheckStatus.PASS, "no compute processes", out, figures), []


def judge_gpu_reset(host: str, out: Output) -> CheckResult:
    if (early := _no_answer("gpu_reset", [host], out)) is not None:
        return early
    try:
        result = parse_gpu_reset(out.stdout + "\n" + out.stderr)
    except ParseError as exc:
        return _unreadable("gpu_reset", host, out, exc)
    figures = {"reset": list(result.reset), "failed": [list(f) for f in result.failed]}
    if not result.ok:
        bus, why = result.failed[0] if result.failed else ("?", "no GPU reset")
        summary = f"GPU reset failed on {len(result.failed)} GPU(s): {bus} {why}"
        return _result("gpu_reset", [host], CheckStatus.FAIL, summary, out, figures)
    return _result(
        "gpu_reset", [host], CheckStatus.PASS, f"{len(result.reset)} GPUs reset", out, figures
    )
