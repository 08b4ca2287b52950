"""The XID catalogue: known codes, application codes ranked lower, unknown codes safe."""

from __future__ import annotations

import pytest

from opsconsole.alerts.xid_catalogue import RESTART_JOB, XID_CATALOGUE, xid_info

REQUIRED = [13, 31, 32, 38, 43, 45, 48, 61, 62, 63, 64, 68, 69, 74, 79, 92, 94, 95, 119, 120]
REQUIRED += [121, 140]


@pytest.mark.parametrize("code", REQUIRED)
def test_required_codes_are_catalogued(code: int):
    info = xid_info(code)
    assert info.code == code and info.cause != "unknown" and info.meaning and info.action


@pytest.mark.parametrize("code", [13, 31, 43, 45])
def test_application_xids_rank_below_hardware(code: int):
    info = xid_info(code)
    assert (info.cause, info.severity, info.action) == ("application", "info", RESTART_JOB)


def test_fallen_off_the_bus_needs_a_reboot_and_is_critical():
    info = xid_info(79)
    assert (info.cause, info.severity, info.code_class) == ("hardware", "critical", "xid_hardware")
    assert "reboot" in info.action


def test_unknown_code_is_a_generic_entry_not_a_key_error():
    assert 9999 not in XID_CATALOGUE
    info = xid_info(9999)
    assert (info.code, info.cause, info.severity) == (9999, "unknown", "warning")
    assert "9999" in info.meaning
