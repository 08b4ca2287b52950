"""`[validation]` checked against the fleet (host classes exist, levels are known) and
turned into per-host thresholds. The config layer cannot do this: it checks shapes, and
`classes` keys are only meaningful next to `host_classes`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from opsconsole.config import Fleet, Host
from opsconsole.config.validation import ClassThresholds, ValidationConfig
from opsconsole.errors import ConfigError
from opsconsole.validate.model import LEVELS


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What a host of one class must measure; None: not judged (figure still stored)."""

    nccl_busbw_gbps: tuple[tuple[int, float], ...] = ()
    """(GPUs in the run, least bus bandwidth), ascending by GPUs."""
    ib_write_bw_gbps: float | None = None
    nvlink_link_gbps: float | None = None
    pcie_gen_min: int | None = None
    pcie_width_min: int | None = None

    def busbw_for(self, gpus: int) -> float | None:
        """The entry for the largest GPU count <= gpus (bigger runs cross more links)."""
        best = None
        for count, value in self.nccl_busbw_gbps:
            if count <= gpus:
                best = value
        return best


@dataclass(frozen=True, slots=True)
class ValidationSettings:
    config: ValidationConfig
    by_class: dict[str, Thresholds]

    def thresholds(self, host: Host) -> Thresholds:
        return self.by_class.get(host.host_class, Thresholds())

    def dcgm_level(self, level: str) -> int:
        return self.config.dcgm_levels.get(level, 1)

    def run_window_s(self, level: str) -> float:
        return self.config.run_window_min.get(level, 60.0) * 60.0

    @property
    def max_age_s(self) -> float:
        return self.config.max_age_h * 3600.0


def validation_settings(fleet: Fleet) -> ValidationSettings:
    """ConfigError (file, key path) for an unknown host class, level or GPU count."""
    config = fleet.config.validation
    where = str(fleet.path)
    known = set(fleet.config.host_classes)
    by_class = {}
    for name, cls in config.classes.items():
        key = f"validation.classes.{name}"
        if name not in known:
            close = difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f'{where}: {key}: unknown host class "{name}"{hint}')
        by_class[name] = _thresholds(cls, f"{where}: {key}")
    for level in config.run_window_min:
        if level not in {*(str(x) for x in LEVELS), "clean"}:
            raise ConfigError(f"{where}: validation.run_window_min.{level}: unknown level")
    for level in config.dcgm_levels:
        if level not in {str(x) for x in LEVELS}:
            raise ConfigError(
                f"{where}: validation.dcgm_levels.{level}: unknown level"
                f" (known: {', '.join(str(x) for x in LEVELS)})"
            )
    for level, value in config.dcgm_levels.items():
        if not 1 <= value <= 4:
            raise ConfigError(
                f"{where}: validation.dcgm_levels.{level}: dcgmi diag levels are 1 to 4,"
                f" got {value}"
            )
    return ValidationSettings(config, by_class)


def _thresholds(cls: ClassThresholds, where: str) -> Thresholds:
    pairs = []
    for gpus, busbw in cls.nccl_busbw_gbps.items():
        if not gpus.isdigit() or int(gpus) < 1:
            raise ConfigError(f'{where}.nccl_busbw_gbps."{gpus}": expected a GPU count such as "8"')
        if busbw <= 0:
            raise ConfigError(f'{where}.nccl_busbw_gbps."{gpus}": must be above 0, got {busbw}')
        pairs.append((int(gpus), float(busbw)))
    return Thresholds(
        nccl_busbw_gbps=tuple(sorted(pairs)),
        ib_write_bw_gbps=cls.ib_write_bw_gbps,
        nvlink_link_gbps=cls.nvlink_link_gbps,
        pcie_gen_min=cls.pcie_gen_min,
        pcie_width_min=cls.pcie_width_min,
    )
