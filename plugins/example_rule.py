"""`example_rule`: the template for a site's own alert rule (walked through line by line
in plugins/README.md). It fires when a GPU's framebuffer is nearly full."""

from __future__ import annotations

from pydantic import Field

from opsconsole.plugin import (
    FleetView,
    PluginInfo,
    PluginKind,
    PluginRule,
    RuleHit,
    Severity,
)
from opsconsole.plugin.rules import PluginRuleConfig


class Config(PluginRuleConfig):
    threshold_pct: float = Field(95.0, gt=0, le=100)
    """Fire when a GPU's memory use is at or above this share of its memory."""


class GpuMemoryNearlyFull:
    rules = (
        PluginRule(
            name="gpu_memory_nearly_full",
            severity=Severity.WARNING,
            summary="GPU memory nearly full",
            for_s=60.0,
            keep_firing_for_s=30.0,
        ),
    )

    def __init__(self, config: Config, context: object):
        self.threshold_pct = config.threshold_pct

    def check(self, view: FleetView) -> list[RuleHit]:
        hits = []
        for host in view.hosts.values():
            if host["status"] != "fresh":
                continue  # cannot see it: the engine holds what was firing
            for gpu in host["gpus"]:
                used = gpu["readings"].get("mem_used_mib", {}).get("value")
                total = gpu["readings"].get("mem_total_mib", {}).get("value")
                if used is None or not total:
                    continue  # not read (or not supported): not a finding
                pct = 100.0 * used / total
                if pct >= self.threshold_pct:
                    hits.append(
                        RuleHit(
                            rule="gpu_memory_nearly_full",
                            labels={"host": host["name"], "gpu": str(gpu["index"])},
                            summary=f"memory {pct:.0f}% used (threshold {self.threshold_pct:g}%)",
                        )
                    )
        return hits


PLUGIN = PluginInfo(
    kind=PluginKind.RULE,
    name="example_rule",
    version="1.0",
    config_schema=Config,
    factory=GpuMemoryNearlyFull,
    description="template rule: a GPU's memory nearly full",
)
