"""`[capacity]`: defaults, refusals with the key path, and the example config documenting
every key with its default."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from opsconsole.config import fleet_from_dict, load_fleet
from opsconsole.config.capacity import CapacityConfig
from opsconsole.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def load(capacity: dict):
    return fleet_from_dict({"capacity": capacity}, Path("c.toml")).config.capacity


def test_defaults_and_overrides():
    assert load({}) == CapacityConfig()
    settings = load({"idle_hours": 2, "ib_error_counters": ["symbol_error"]})
    assert (settings.idle_hours, settings.ib_error_counters) == (2.0, ["symbol_error"])
    assert CapacityConfig().ib_error_counters is not CapacityConfig().ib_error_counters


@pytest.mark.parametrize(
    ("capacity", "message"),
    [
        ({"idle_hour": 4}, "c.toml: capacity.idle_hour: unknown key"),
        ({"idle_hours": "4h"}, 'c.toml: capacity.idle_hours: expected a number, got "4h"'),
        ({"runway_days": 0}, "c.toml: capacity.runway_days: input should be greater than"),
        ({"idle_min_coverage": 1.5}, "c.toml: capacity.idle_min_coverage: input should be less"),
    ],
)
def test_bad_values_are_refused_with_the_key(capacity, message):
    with pytest.raises(ConfigError) as caught:
        load(capacity)
    assert str(caught.value).startswith(message)


def test_the_example_config_documents_every_key_at_its_default():
    text = (REPO / "config.example.toml").read_text(encoding="utf-8")
    # The section ends at the next table header, written or commented out.
    section = re.split(r"\n(?:# )?\[", text.split("\n[capacity]\n", 1)[1], maxsplit=1)[0]
    documented = set(re.findall(r"^#? ?([a-z_]+) =", section, flags=re.MULTILINE))
    assert documented == set(CapacityConfig.model_fields)
    assert load_fleet(REPO / "config.example.toml").config.capacity == CapacityConfig()
