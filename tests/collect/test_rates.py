"""Windowed counter rates: never negative, exact for steady counters, resets survived."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from opsconsole.collect.rates import CounterWindow

counters = st.integers(min_value=0, max_value=2**64 - 1)


@given(values=st.lists(counters, min_size=2, max_size=60), window_s=st.sampled_from([5.0, 30.0]))
def test_rates_are_never_negative_whatever_the_counter_does(values, window_s):
    window = CounterWindow(window_s)
    for i, value in enumerate(values):
        window.update(1000.0 + 2 * i, {"c": value})
        rate = window.rates_per_s().get("c")
        assert rate is None or (rate >= 0 and math.isfinite(rate))


@given(
    start=st.integers(min_value=0, max_value=2**40),
    steps=st.lists(st.integers(min_value=0, max_value=10_000), min_size=1, max_size=40),
)
def test_monotonic_counter_rate_is_increase_over_elapsed(start, steps):
    window = CounterWindow(window_s=10_000.0)  # longer than the run: one window
    value = start
    window.update(0.0, {"c": value})
    for i, step in enumerate(steps, start=1):
        value += step
        window.update(2.0 * i, {"c": value})
    assert window.span_s == 2.0 * len(steps)
    assert math.isclose(window.rates_per_s()["c"], (value - start) / window.span_s, rel_tol=1e-9)


@given(
    before=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=10),
    after=st.lists(st.integers(min_value=0, max_value=100), min_size=1, max_size=10),
    peak=st.integers(min_value=10_000, max_value=10**12),
)
def test_reset_counts_the_new_value_as_increase(before, after, peak):
    """A counter cleared to zero (driver reload, perfquery -R) restarts from 0: the
    increase across the reset is the new value, never a huge negative jump."""
    window = CounterWindow(window_s=10_000.0)
    ts = 0.0
    value = peak
    window.update(ts, {"c": value})
    increase = 0
    for step in before:
        ts += 1
        value += step
        increase += step
        window.update(ts, {"c": value})
    value = 0  # reset
    for step in after:
        ts += 1
        value += step
        increase += step
        window.update(ts, {"c": value})
    assert math.isclose(window.rates_per_s()["c"], increase / ts, rel_tol=1e-9)


def test_window_slides_and_old_bursts_age_out():
    window = CounterWindow(window_s=30.0)
    total = 0
    for second in range(0, 200, 2):
        if second == 10:
            total += 600  # a burst early on
        window.update(float(second), {"c": total})
    assert window.rates_per_s()["c"] == 0.0
    assert 30.0 <= window.span_s <= 35.0


def test_new_counter_and_clock_step_back():
    window = CounterWindow(window_s=30.0)
    window.update(100.0, {"a": 5})
    assert window.rates_per_s() == {}
    window.update(102.0, {"a": 9, "b": 1})
    assert window.rates_per_s() == {"a": 2.0, "b": 0.0}
    window.update(50.0, {"a": 10, "b": 2})  # host clock stepped back: start over
    assert window.rates_per_s() == {}
    window.update(52.0, {"a": 14, "b": 2})
    assert window.rates_per_s() == {"a": 2.0, "b": 0.0}


@given(
    values=st.lists(st.tuples(counters, counters), min_size=2, max_size=30),
)
def test_rates_of_some_counters_agree_with_all_rates(values):
    window = CounterWindow(window_s=20.0)
    for i, (a, b) in enumerate(values):
        window.update(100.0 + 2 * i, {"a": a, "b": b, "traffic": i * 1000})
    every = window.rates_per_s()
    assert window.rates_of(("a", "b", "never_seen")) == {
        k: every[k] for k in ("a", "b") if k in every
    }
