"""NVML numbers in an operator's words: clock-event reason bits and common XID codes.

Why here and not in collect: these are display texts; the wire keeps the raw numbers so
the store and the alerts engine can reason on them without parsing prose.
"""

from __future__ import annotations

CLOCK_EVENT_REASONS: tuple[tuple[int, str], ...] = (
    (0x1, "GPU idle"),
    (0x2, "applications clocks setting"),
    (0x4, "SW power cap"),
    (0x8, "HW slowdown"),
    (0x10, "sync boost"),
    (0x20, "SW thermal slowdown"),
    (0x40, "HW thermal slowdown"),
    (0x80, "HW power brake"),
    (0x100, "display clock setting"),
)
"""NVML `nvmlClocksEventReason*` bits, lowest first."""

THROTTLE_BITS = 0x8 | 0x20 | 0x40 | 0x80
"""Reasons that mean the GPU is being held back by heat or power, not by choice."""

XID_MEANINGS: dict[int, str] = {
    13: "graphics engine exception (usually the application)",
    31: "GPU memory page fault (usually the application)",
    43: "GPU stopped processing (application hang)",
    45: "preemptive cleanup after an earlier fault",
    48: "double-bit ECC error",
    61: "internal micro-controller breakpoint",
    62: "internal micro-controller halt",
    63: "ECC page retirement or row remap recorded",
    64: "ECC page retirement or row remap failed",
    74: "NVLink error",
    79: "GPU has fallen off the bus",
    92: "high single-bit ECC error rate",
    94: "contained ECC error (application killed)",
    95: "uncontained ECC error (GPU reset needed)",
    119: "GSP RPC timeout",
    120: "GSP error",
}

FAULT_XIDS = frozenset({48, 62, 64, 79, 95, 119, 120})
"""XIDs after which the GPU cannot be trusted with work until reset or repaired."""


def clock_event_words(mask: int | None) -> str:
    """ "SW power cap, HW thermal slowdown"; "none" for 0; unknown bits in hex."""
    if mask is None:
        return "—"
    if mask == 0:
        return "none"
    words = [text for bit, text in CLOCK_EVENT_REASONS if mask & bit]
    known = 0
    for bit, _ in CLOCK_EVENT_REASONS:
        known |= bit
    if mask & ~known:
        words.append(f"0x{mask & ~known:x}")
    return ", ".join(words)


def xid_words(code: int) -> str:
    return XID_MEANINGS.get(code, "see NVIDIA's XID catalogue")
