from __future__ import annotations

import threading

import pytest

from opsconsole.agent.watchdog import DriverUnresponsive, Watchdog


def test_inline_watchdog_calls_directly_on_the_caller_thread():
    watchdog = Watchdog(None)
    assert watchdog.call(threading.current_thread) is threading.current_thread()
    assert not watchdog.busy


def test_results_and_exceptions_come_back_to_the_caller():
    watchdog = Watchdog(5.0)
    assert watchdog.call(pow, 2, 10) == 1024
    with pytest.raises(ZeroDivisionError):
        watchdog.call(lambda: 1 / 0)
    assert watchdog.call(str, 7) == "7"


def test_all_calls_share_one_worker_thread():
    watchdog = Watchdog(5.0)
    names = {watchdog.call(lambda: threading.current_thread().name) for _ in range(5)}
    assert len(names) == 1 and names != {threading.current_thread().name}


def test_a_hung_call_times_out_and_later_calls_fail_fast_until_it_returns():
    watchdog = Watchdog(0.05)
    release = threading.Event()
    with pytest.raises(DriverUnresponsive):
        watchdog.call(release.wait)
    assert watchdog.busy
    ran = []
    with pytest.raises(DriverUnresponsive, match="stuck"):
        watchdog.call(ran.append, 1)
    assert ran == []  # nothing queued behind the hung call
    release.set()
    assert watchdog.wait_idle(10)
    assert not watchdog.busy
    assert watchdog.call(ran.append, 2) is None
    assert ran == [2]


def test_a_guarded_call_nested_in_another_runs_inline_instead_of_deadlocking():
    watchdog = Watchdog(5.0)
    assert watchdog.call(lambda: watchdog.call(pow, 3, 2)) == 9


def test_the_timeout_can_be_armed_and_disarmed_at_runtime():
    watchdog = Watchdog(None)
    release = threading.Event()
    watchdog.timeout_s = 0.05  # as the simulator does when a driver hang is injected
    with pytest.raises(DriverUnresponsive):
        watchdog.call(release.wait)
    watchdog.timeout_s = None  # disarmed while the call is still stuck
    ran = []
    with pytest.raises(DriverUnresponsive, match="stuck"):
        watchdog.call(ran.append, 1)  # must not run inline into the hung driver
    assert ran == [] and watchdog.busy
    release.set()
    assert watchdog.wait_idle(10)
    assert watchdog.call(threading.current_thread) is threading.current_thread()  # inline
    assert not watchdog.busy


def test_changing_the_timeout_during_a_call_uses_the_value_the_call_started_with():
    watchdog = Watchdog(0.3)
    release = threading.Event()
    changed = threading.Timer(0.05, setattr, (watchdog, "timeout_s", None))
    changed.start()
    try:
        with pytest.raises(DriverUnresponsive, match=r"within 0\.3 s"):
            watchdog.call(release.wait)
    finally:
        changed.join()
        release.set()
    assert watchdog.wait_idle(10) and watchdog.timeout_s is None


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), float("inf"), "soon"])
def test_a_timeout_must_be_a_positive_number_or_none(bad):
    watchdog = Watchdog(5.0)
    with pytest.raises(ValueError):
        watchdog.timeout_s = bad
    assert watchdog.timeout_s == 5.0
    with pytest.raises(ValueError):
        Watchdog(bad)
