"""Reconnect delays: jittered, growing, capped, and reset by success."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from opsconsole.collect.backoff import Backoff


@given(
    min_s=st.floats(min_value=0.1, max_value=5),
    max_s=st.floats(min_value=0.1, max_value=120),
    seed=st.integers(),
)
def test_delays_stay_between_half_the_cap_and_the_cap(min_s, max_s, seed):
    backoff = Backoff(min_s, max_s, random.Random(seed))
    for attempt in range(40):
        cap_s = min(backoff.max_s, min_s * 2**attempt)
        delay_s = backoff.next_s()
        assert cap_s / 2 <= delay_s <= cap_s
    assert backoff.next_s() >= backoff.max_s / 2


def test_security_failures_wait_the_longest_and_success_resets():
    backoff = Backoff(1, 60, random.Random(1))
    assert backoff.slow_s() == 60
    assert backoff.next_s() >= 30
    backoff.reset()
    assert backoff.next_s() <= 1
