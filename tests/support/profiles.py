"""Hypothesis profiles: a light one for the edit-test loop, the full one in CI.

`CI` set in the environment (any value but empty, "0" or "false"; `.ci/run` sets it, as
most CI services do) selects "ci"; otherwise "dev". HYPOTHESIS_PROFILE names one outright.
Tests that ask for more examples than the default say how many CI should run through
`examples(n)`, which the dev profile scales down."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

IN_CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false")

DEV_SHARE = 0.2
"""Of the examples CI runs, the share the dev loop runs."""

settings.register_profile(
    "ci",
    max_examples=100,  # Hypothesis's own default: what every run used before profiles
    deadline=None,  # a shared CI machine stalls; a slow example is not a failure
    print_blob=True,  # a failure in CI prints the line that replays it
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=20, deadline=None)


def load_profile() -> str:
    name = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "dev")
    settings.load_profile(name)
    return name


def examples(in_ci: int) -> int:
    """`in_ci` examples under the ci profile, a fifth of them (at least 10) otherwise."""
    current = settings.default
    if current is None or current.max_examples >= 100:
        return in_ci
    return max(10, int(in_ci * DEV_SHARE))
