from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.agent.pci import normalize_bus_id


@pytest.mark.parametrize(
    "text",
    [
        "00000000:3B:00.0",
        "0000:3b:00.0",
        "0000:3b:00",
        "PCI:0000:3b:00",
        "3b:00.0",
        " 0000:3B:00.0 ",
    ],
)
def test_every_spelling_of_one_address_normalizes_alike(text):
    assert normalize_bus_id(text) == "0000:3b:00.0"


@pytest.mark.parametrize("text", ["", "GPU-123", "0000:3g:00.0", None, 42, "0000:3b:00.9"])
def test_non_addresses_are_none(text):
    assert normalize_bus_id(text) is None


@given(st.text())
def test_never_raises(text):
    normalize_bus_id(text)
