"""Build and steer fake_libnvml.c, a libnvidia-ml.so.1 for machines without a GPU.

The agent loads it through the real pynvml (ctypes) when the process starts with
LD_LIBRARY_PATH naming the build directory. Field ids come from pynvml's own constants,
so the library and the binding agree by construction.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pynvml

SOURCE = Path(__file__).with_name("fake_libnvml.c")
LIBRARY = "libnvidia-ml.so.1"
_COUNTERS = ("REPLAY", "RECOVERY", "CRC_FLIT", "CRC_DATA")  # NVML_NVLINK_ERROR_DL_* order


def _fields_header() -> str:
    rows = []
    for counter, name in enumerate(_COUNTERS):
        for link in range(18):
            field_id = getattr(pynvml, f"NVML_FI_DEV_NVLINK_{name}_ERROR_COUNT_L{link}", None)
            if field_id is not None:
                rows.append(f"{{{field_id}u, {link}u, {counter}u}}")
    return (
        f"#define FI_LINK_COUNT {pynvml.NVML_FI_DEV_NVLINK_LINK_COUNT}u\n"
        f"#define FI_LINK_STATE {pynvml.NVML_FI_DEV_NVLINK_GET_STATE}u\n"
        f"#define FI_RECOVERY_ACTION {pynvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION}u\n"
        "static const unsigned NVLINK_FIELDS[][3] = {\n    " + ",\n    ".join(rows) + "\n};\n"
    )


def gcc() -> str | None:
    return shutil.which("gcc") or shutil.which("cc")


def build(directory: Path) -> Path:
    """Compile the library into `directory`; returns the directory (for LD_LIBRARY_PATH)."""
    compiler = gcc()
    if compiler is None:
        raise RuntimeError("no C compiler (gcc) to build the fake libnvidia-ml.so.1")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "fake_nvml_fields.h").write_text(_fields_header())
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-I", str(directory),
         "-o", str(directory / LIBRARY), str(SOURCE), "-lpthread"],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    return directory


class Control:
    """The library's control file: `set(...)` replaces it atomically (a new inode, so the
    library sees the change on its next call)."""

    def __init__(self, path: Path):
        self.path = path
        self._xid_seq = 0
        self.lines: list[str] = []
        self.write()

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text("".join(line + "\n" for line in self.lines))
        os.replace(tmp, self.path)

    def set(self, *lines: str) -> None:
        """The standing knobs ("lost 3", "hang nvmlDeviceGetPowerUsage", ...); queued XIDs
        already delivered are not queued again."""
        xids = [line for line in self.lines if line.startswith("xid ")]
        self.lines = xids + list(lines)
        self.write()

    def xid(self, gpu: int, code: int) -> None:
        self._xid_seq += 1
        self.lines.append(f"xid {self._xid_seq} {gpu} {code}")
        self.write()

    def env(self, library_dir: Path, reload_ms: int = 0) -> dict[str, str]:
        return {
            "LD_LIBRARY_PATH": str(library_dir),
            "FAKE_NVML_CONTROL": str(self.path),
            "FAKE_NVML_RELOAD_MS": str(reload_ms),
        }
