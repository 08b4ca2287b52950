"""`[capacity]`: the thresholds the capacity report ranks bottlenecks against."""

from __future__ import annotations

from opsconsole.config_sections.base import Section


class CapacityConfig(Section):
    pass
