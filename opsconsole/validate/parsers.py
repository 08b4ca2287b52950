"""Parsers for what the validation tools print, each in the tool's own format: DCGM's
`dcgmi diag -j` JSON (DCGM 3's "DCGM GPU Diagnostic" with `gpu_ids` and DCGM 4's "DCGM
Diagnostic" with entities), nccl-tests' `all_reduce_perf` table, perftest's
`ib_write_bw` table (Gb/s with `--report_gbits`, MiB/s without), and nvidia-smi's CSV,
`nvlink -s` and `--gpu-reset` text.

Pure functions over text: no SSH, no store. A text that is not the tool's output raises
`ParseError` naming what was expected, so a check can say "could not read dcgmi output"
rather than pass a node whose tool crashed.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


class ParseError(ValueError):
    """The text is not the tool's output (crash, usage message, truncated)."""


# -- dcgmi diag -j ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DcgmResult:
    category: str
    test: str
    gpu: int | None
    """None: a test of the whole node (Deployment checks)."""
    status: str
    """Lower case: pass, fail, warn, skip, not run."""
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DcgmReport:
    version: str | None
    results: tuple[DcgmResult, ...]
    runtime_error: str | None = None

    @property
    def failures(self) -> tuple[DcgmResult, ...]:
        return tuple(r for r in self.results if r.status == "fail")

    @property
    def passed(self) -> bool:
        return self.runtime_error is None and not self.failures and bool(self.results)


def parse_dcgm_diag(text: str) -> DcgmReport:
    """`dcgmi diag -r N -j`. DCGM prints progress lines before the JSON on some versions,
    so the object is taken from the first `{` to the last `}`."""
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise ParseError("no JSON object in dcgmi output")
    try:
        doc = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise ParseError(f"dcgmi output is not valid JSON: {exc.msg} at char {exc.pos}") from None
    if not isinstance(doc, dict):
        raise ParseError("dcgmi output is not a JSON object")
    body = doc.get("DCGM Diagnostic") or doc.get("DCGM GPU Diagnostic")
    if not isinstance(body, dict):
        raise ParseError('dcgmi output has no "DCGM Diagnostic" object')
    found = doc.get("metadata")
    metadata: dict[str, Any] = found if isinstance(found, dict) else doc
    version = metadata.get("version")
    results: list[DcgmResult] = []
    for category in _list(body.get("test_categories")):
        cat_name = str(category.get("category", ""))
        for test in _list(category.get("tests")):
            name = str(test.get("name", ""))
            for result in _list(test.get("results")):
                status = str(result.get("status", "")).strip().lower()
                warnings = _warnings(result.get("warnings"))
                for gpu in _result_gpus(result):
                    results.append(DcgmResult(cat_name, name, gpu, status, warnings))
    runtime_error = body.get("runtime_error") or doc.get("runtime_error")
    if not results and not runtime_error:
        raise ParseError("dcgmi output lists no test results")
    return DcgmReport(
        str(version) if version is not None else None,
        tuple(results),
        str(runtime_error) if runtime_error else None,
    )


def _list(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _warnings(value: object) -> tuple[str, ...]:
    """DCGM 3+ gives objects with "warning"; DCGM 2 gave a plain string."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(
            str(w.get("warning", "")) if isinstance(w, dict) else str(w) for w in value if w
        )
    return ()


def _result_gpus(result: dict[str, Any]) -> list[int | None]:
    """DCGM 4: entity_group "GPU" + entity_id; DCGM 3: "gpu_ids" as "0,1,2" or "0"."""
    if "entity_id" in result:
        if str(result.get("entity_group", "GPU")).upper() != "GPU":
            return [None]
        return [_int(result["entity_id"])]
    ids = result.get("gpu_ids", result.get("gpu_id"))
    if ids is None or ids == "":
        return [None]
    if isinstance(ids, int):
        return [ids]
    return [_int(part) for part in str(ids).split(",") if part.strip()] or [None]


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


# -- nccl-tests all_reduce_perf -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NcclRow:
    size_b: int
    count: int
    dtype: str
    redop: str
    time_us: float
    algbw_gbps: float
    busbw_gbps: float
    """Out-of-place bus bandwidth, GB/s (the figure nccl-tests' docs say to compare)."""
    wrong: int | None
    """#wrong of the out-of-place run; None when validation was off ("N/A")."""
    inplace_busbw_gbps: float | None


@dataclass(frozen=True, slots=True)
class NcclReport:
    rows: tuple[NcclRow, ...]
    ranks: int
    """Ranks listed under "# Using devices" (GPUs in the run)."""
    avg_busbw_gbps: float | None
    """nccl-tests' own "# Avg bus bandwidth" line."""
    out_of_bounds: int | None

    @property
    def largest(self) -> NcclRow:
        return max(self.rows, key=lambda r: r.size_b)

    @property
    def busbw_gbps(self) -> float:
        """Bus bandwidth at the largest message: where the fabric, not latency, limits."""
        row = self.largest
        return max(row.busbw_gbps, row.inplace_busbw_gbps or 0.0)

    @property
    def wrong(self) -> int:
        return sum(r.wrong or 0 for r in self.rows) + (self.out_of_bounds or 0)


_RANK_LINE = re.compile(r"^#\s+Rank\s+\d+\s")
_AVG_LINE = re.compile(r"^#\s*Avg bus bandwidth\s*:\s*([0-9.eE+-]+)")
_OOB_LINE = re.compile(r"^#\s*Out of bounds values\s*:\s*(\d+)")


def parse_nccl_tests(text: str) -> NcclReport:
    """A `*_perf` table: size count type redop root time algbw busbw #wrong (twice)."""
    rows: list[NcclRow] = []
    ranks = 0
    avg = oob = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            if _RANK_LINE.match(stripped):
                ranks += 1
            elif match := _AVG_LINE.match(stripped):
                avg = float(match.group(1))
            elif match := _OOB_LINE.match(stripped):
                oob = int(match.group(1))
            continue
        row = _nccl_row(stripped.split())
        if row is not None:
            rows.append(row)
    if not rows:
        raise ParseError("no result rows in all_reduce_perf output")
    return NcclReport(tuple(rows), ranks, avg, oob)


def _nccl_row(cells: list[str]) -> NcclRow | None:
    # all_reduce has root -1; a row is 13 cells (out-of-place + in-place).
    if len(cells) < 9 or not cells[0].isdigit() or not cells[1].isdigit():
        return None
    try:
        inplace = float(cells[11]) if len(cells) >= 13 else None
        return NcclRow(
            size_b=int(cells[0]),
            count=int(cells[1]),
            dtype=cells[2],
            redop=cells[3],
            time_us=float(cells[5]),
            algbw_gbps=float(cells[6]),
            busbw_gbps=float(cells[7]),
            wrong=int(cells[8]) if cells[8].isdigit() else None,
            inplace_busbw_gbps=inplace,
        )
    except ValueError:
        return None


# -- perftest ib_write_bw -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IbBwRow:
    size_b: int
    iterations: int
    peak_gbps: float
    avg_gbps: float


@dataclass(frozen=True, slots=True)
class IbBwReport:
    device: str | None
    rows: tuple[IbBwRow, ...]

    @property
    def avg_gbps(self) -> float:
        """Average at the largest message size (the bandwidth plateau)."""
        return max(self.rows, key=lambda r: r.size_b).avg_gbps


_BW_HEADER = re.compile(
    r"#bytes\s+#iterations\s+BW peak\[(Gb|MB)/sec\]\s+BW average\[(Gb|MB)/sec\]"
)
_DEVICE = re.compile(r"Device\s*:\s*(\S+)")
MIB_PER_S_TO_GBPS = 1048576 * 8 / 1e9
"""perftest's "MB/sec" is MiB/s; `--report_gbits` is 10^9 bits/s."""


def parse_ib_write_bw(text: str) -> IbBwReport:
    """perftest's table after the `#bytes #iterations BW peak[...] BW average[...]` line;
    lines the tool interleaves (CPU frequency warnings) are skipped."""
    device = None
    factor = None
    rows: list[IbBwRow] = []
    for line in text.splitlines():
        if device is None and (match := _DEVICE.search(line)):
            device = match.group(1)
        if match := _BW_HEADER.search(line):
            factor = 1.0 if match.group(2) == "Gb" else MIB_PER_S_TO_GBPS
            continue
        if factor is None:
            continue
        cells = line.split()
        if len(cells) >= 4 and cells[0].isdigit() and cells[1].isdigit():
            try:
                rows.append(
                    IbBwRow(
                        int(cells[0]), int(cells[1]), float(cells[2]) * factor,
                        float(cells[3]) * factor,
                    )
                )  # fmt: skip
            except ValueError:
                continue
    if factor is None:
        raise ParseError("no bandwidth table in ib_write_bw output")
    if not rows:
        raise ParseError("ib_write_bw printed its header but no results")
    return IbBwReport(device, tuple(rows))


# -- nvidia-smi -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PcieLink:
    gpu: int
    bus_id: str
    gen_current: int | None
    gen_max: int | None
    width_current: int | None
    width_max: int | None


def parse_pcie_links(text: str) -> tuple[PcieLink, ...]:
    """`--query-gpu=index,pci.bus_id,pcie.link.gen.current,pcie.link.gen.max,
    pcie.link.width.current,pcie.link.width.max --format=csv,noheader,nounits`."""
    links = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 6 or not cells[0].isdigit():
            if line.strip():
                raise ParseError(f"unexpected nvidia-smi PCIe line: {line.strip()[:80]}")
            continue
        links.append(PcieLink(int(cells[0]), cells[1], *(_smi_int(c) for c in cells[2:])))
    if not links:
        raise ParseError("nvidia-smi listed no GPUs")
    return tuple(links)


def _smi_int(cell: str) -> int | None:
    """nvidia-smi prints "[N/A]" (or "[Unknown Error]") where it has no value."""
    return int(cell) if cell.isdigit() else None


_NVLINK_GPU = re.compile(r"^GPU (\d+):")
_NVLINK_LINK = re.compile(r"^\s*Link (\d+):\s*(?:([0-9.]+) GB/s|<inactive>)", re.IGNORECASE)


def parse_nvlink_status(text: str) -> dict[int, tuple[float | None, ...]]:
    """`nvidia-smi nvlink -s`: per GPU, each link's speed in GB/s (None: inactive)."""
    out: dict[int, list[float | None]] = {}
    gpu = None
    for line in text.splitlines():
        if match := _NVLINK_GPU.match(line):
            gpu = int(match.group(1))
            out[gpu] = []
        elif (match := _NVLINK_LINK.match(line)) and gpu is not None:
            link = int(match.group(1))
            links = out[gpu]
            links.extend([None] * (link + 1 - len(links)))
            links[link] = float(match.group(2)) if match.group(2) else None
    if not out:
        raise ParseError("no GPU lines in nvidia-smi nvlink output")
    return {gpu: tuple(links) for gpu, links in out.items()}


@dataclass(frozen=True, slots=True)
class ComputeApp:
    pid: int
    name: str
    bus_id: str
    mem_used_mib: int | None


def parse_compute_apps(text: str) -> tuple[ComputeApp, ...]:
    """`--query-compute-apps=pid,process_name,gpu_bus_id,used_memory
    --format=csv,noheader,nounits`; no processes prints nothing (or "No running ...")."""
    apps = []
    for line in text.splitlines():
        if not line.strip() or line.strip().lower().startswith("no running"):
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 4 or not cells[0].isdigit():
            raise ParseError(f"unexpected nvidia-smi process line: {line.strip()[:80]}")
        apps.append(ComputeApp(int(cells[0]), cells[1], cells[2], _smi_int(cells[3])))
    return tuple(apps)


@dataclass(frozen=True, slots=True)
class GpuResetResult:
    reset: tuple[str, ...]
    """Bus ids nvidia-smi says were reset."""
    failed: tuple[tuple[str, str], ...]
    """(bus id, why) of GPUs that could not be reset."""

    @property
    def ok(self) -> bool:
        return bool(self.reset) and not self.failed


_RESET_OK = re.compile(r"GPU ([0-9A-Fa-f:.]+) was successfully reset")
_RESET_FAIL = re.compile(r"^\s*GPU ([0-9A-Fa-f:.]+):\s*(.+)$")


def parse_gpu_reset(text: str) -> GpuResetResult:
    """`nvidia-smi --gpu-reset`: "GPU 00000000:19:00.0 was successfully reset." per GPU,
    or "The following GPUs could not be reset:" followed by "  GPU <bus>: <why>"."""
    reset = tuple(m.group(1) for m in _RESET_OK.finditer(text))
    failed = []
    in_failures = False
    for line in text.splitlines():
        if "could not be reset" in line:
            in_failures = True
            continue
        if in_failures and (match := _RESET_FAIL.match(line)):
            failed.append((match.group(1), match.group(2).strip()))
    if not reset and not failed:
        raise ParseError("nvidia-smi --gpu-reset printed neither a reset nor a refusal")
    return GpuResetResult(reset, tuple(failed))


@dataclass(frozen=True, slots=True)
class IbPortState:
    device: str
    port: int
    state: str | None
    """"ACTIVE", "DOWN", ... (the sysfs text after the number)."""
    rate_gbps: float | None


_SYSFS_IB = re.compile(r"^/sys/class/infiniband/([^/]+)/ports/(\d+)/(state|rate):(.*)$")


def parse_ib_sysfs(text: str) -> tuple[IbPortState, ...]:
    """`grep -rHs . .../ports/*/state .../ports/*/rate`: "4: ACTIVE", "400 Gb/sec (4X NDR)"."""
    ports: dict[tuple[str, int], dict[str, str]] = {}
    for line in text.splitlines():
        match = _SYSFS_IB.match(line.strip())
        if match:
            key = (match.group(1), int(match.group(2)))
            ports.setdefault(key, {})[match.group(3)] = match.group(4).strip()
    out = []
    for (device, port), values in sorted(ports.items()):
        state = values.get("state")
        rate = values.get("rate")
        rate_match = re.match(r"([0-9.]+)", rate or "")
        out.append(
            IbPortState(
                device,
                port,
                state.split(":", 1)[-1].strip() if state else None,
                float(rate_match.group(1)) if rate_match else None,
            )
        )
    return tuple(out)
