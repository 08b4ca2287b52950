"""Times as operators type them."""

from __future__ import annotations

import pytest

from opsconsole.errors import LeaseError
from opsconsole.leases import format_ts, parse_duration, parse_time
from opsconsole.leases.slotspec import parse_slots, parse_target

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("+2h", NOW + 7200),
        ("+7d", NOW + 7 * 86_400),
        ("-30m", NOW - 1800),
        ("+1.5h", NOW + 5400),
        ("2026-12-01T00:00Z", 1_796_083_200.0),
        ("2026-12-01T08:00+08:00", 1_796_083_200.0),
        ("2026-12-01", 1_796_083_200.0),  # no offset: UTC, never the local zone
    ],
)
def test_parse_time(text, expected):
    assert parse_time(text, NOW) == expected


@pytest.mark.parametrize("text", ["tomorrow", "+2x", "2026-13-01", ""])
def test_bad_times_are_one_line(text):
    with pytest.raises(LeaseError, match="is not a time") as info:
        parse_time(text, NOW)
    assert "\n" not in str(info.value)


def test_durations_and_formatting():
    assert parse_duration("2d") == 172_800 and parse_duration("+90m") == 5400
    with pytest.raises(LeaseError, match="not a duration"):
        parse_duration("soon")
    assert format_ts(1_796_083_200.0) == "2026-12-01 00:00Z" and format_ts(None) == "-"


def test_slot_specs(fleet):
    slots = parse_slots(["sg1-r01-n01:0-2,5", "sg1-r04-n[01-02]"], fleet)
    shown = [str(s) for s in slots]
    assert shown[:4] == ["sg1-r01-n01:0", "sg1-r01-n01:1", "sg1-r01-n01:2", "sg1-r01-n01:5"]
    assert shown[4:] == [f"sg1-r04-n0{n}:{i}" for n in (1, 2) for i in range(4)]
    assert parse_target("sg1-r01-n01", fleet) == ("sg1-r01-n01", None)
    assert parse_target("sg1-r01-n01:7", fleet) == ("sg1-r01-n01", 7)
    for bad, match in [
        (["nope:0"], 'unknown host "nope"'),
        (["sg1-r04-n01:4"], "has 4 GPU"),
        (["sg1-r01-n01:3-1"], "backwards"),
        (["sg1-r01-n01:x"], "must look like"),
    ]:
        with pytest.raises(LeaseError, match=match):
            parse_slots(bad, fleet)
