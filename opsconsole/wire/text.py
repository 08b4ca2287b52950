"""The one sanitiser for text a host sends: whatever reaches the screen or the store went
through `clean_text`.

Why more than control characters: every host is leased to a tenant with root, who writes
its hostname, process names, kernel log and the agent's error text. A terminal escape
(7-bit `ESC [` or its 8-bit C1 form `U+009B`) can recolour or move the operator's screen;
a bidi override (U+202E) or isolate shows "gpu-01" for what is "10-upg"; a zero-width
character makes two different names look the same. All of them are removed, whole
sequences first so an 8-bit CSI leaves no "31m" behind, and the length is capped per field.
"""

from __future__ import annotations

import re

MAX_TEXT = 256
"""Default cap in characters for one field; callers pass tighter caps where they know."""

_ESCAPES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]?"  # CSI, 7- and 8-bit; a cut-off one goes too
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC, BEL- or ST-terminated
    r"|(?:\x1b[PX^_]|[\x90\x98\x9e\x9f])[^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, SOS, PM, APC
    r"|\x1b[ -/]*[0-~]?"  # other escapes (charset selection ESC ( B, ESC 7, ...)
)

_SPACES = re.compile(r"[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
"""Unicode spaces other than the plain one: shown as a plain space, not dropped."""


def clean_text(value: str, max_len: int = MAX_TEXT) -> str:
    """`value` without terminal escapes, control (C0, C1, DEL), format (bidi overrides and
    isolates, zero-width, BOM, tag), private-use, unassigned or separator characters,
    cut to `max_len` characters."""
    if value.isprintable():  # every character we remove is non-printable: the honest case
        return value[:max_len]
    value = value[: max_len * 8]  # bounded work; escapes removed cannot shrink it further
    value = _ESCAPES.sub("", value)
    value = _SPACES.sub(" ", value)
    if not value.isprintable():
        value = "".join(ch for ch in value if ch.isprintable())
    return value[:max_len]
