"""The one sanitiser for host text, over a table of nasty strings and as a property."""

from __future__ import annotations

import json
import unicodedata

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.wire import Hello, decode_line
from opsconsole.wire.text import clean_text
from tests.support.collect import hello_line

NASTY = [
    ("\x1b[31mred\x1b[0m", "red"),
    ("\x9b31mred\x9b0m", "red"),  # 8-bit CSI: no "31m" left behind
    ("\x1b]0;pwned\x07title", "title"),  # OSC set-title, BEL-terminated
    ("\x9d0;pwned\x9ctitle", "title"),  # 8-bit OSC, 8-bit ST
    ("\x1b]8;;http://evil\x1b\\link\x1b]8;;\x1b\\", "link"),  # hyperlink
    ("\x1bP1$r\x1b\\x", "x"),  # DCS
    ("\x90q#0;2\x9cx", "x"),  # 8-bit DCS (sixel)
    ("a\x1b(Bb", "ab"),  # charset selection
    ("a\x1bcb", "ab"),  # full reset
    ("gpu\u202e10-\u202c", "gpu10-"),  # bidi override and pop
    ("\u2066left\u2069\u2067right\u2069", "leftright"),  # isolates
    ("\u200eLRM\u200fRLM\u061c", "LRMRLM"),
    ("h\u200bo\u200cs\u200dt\u2060\ufeff", "host"),  # zero-width, word joiner, BOM
    ("tag\U000e0041\U000e007f", "tag"),  # tag characters
    ("a\x00b\x07c\x08d\x7fe\x85f", "abcdef"),  # C0, DEL, C1 (NEL)
    ("line1\nline2\r\tend", "line1line2end"),
    ("a\u2028b\u2029c", "abc"),  # line and paragraph separators
    ("a\u00a0b\u3000c", "a b c"),  # other spaces become plain spaces
    ("priv\ue000ate", "private"),  # private use
    ("x" * 1000, "x" * 256),
    ("\x1b[" + "9" * 5000, ""),  # a CSI never terminated
    ("ok-host_01.example", "ok-host_01.example"),
    ("日本語 GPU ✓", "日本語 GPU ✓"),
]


@pytest.mark.parametrize(("raw", "clean"), NASTY)
def test_nasty_strings(raw, clean):
    assert clean_text(raw) == clean


@given(st.text(), st.integers(min_value=1, max_value=300))
def test_nothing_unprintable_survives_and_length_is_capped(raw, cap):
    out = clean_text(raw, cap)
    assert len(out) <= cap
    assert out.isprintable()
    assert not any(unicodedata.category(ch) in ("Cc", "Cf", "Co", "Cs", "Zl", "Zp") for ch in out)
    assert clean_text(out, cap) == out  # idempotent


@given(st.text(alphabet=st.characters(categories=["L", "N", "P", "S"]), max_size=200))
def test_honest_text_is_unchanged(raw):
    assert clean_text(raw, 256) == raw


def test_every_string_of_a_hello_is_cleaned_before_anyone_reads_it():
    hello = json.loads(hello_line())
    hello["host"]["hostname"] = "h\u202e1\u200b\x9b31m"
    hello["host"]["os"] = "\x1b]0;x\x07Ubuntu"
    hello["gpus"][0]["name"] = "H100\u2066"
    hello["capabilities"] = ["nvml\x1b[2J"]
    message = decode_line(msgspec.json.encode(hello))
    assert isinstance(message, Hello)
    assert message.host.hostname == "h1" and message.host.os == "Ubuntu"
    assert message.gpus[0].name == "H100" and message.capabilities == ["nvml"]
