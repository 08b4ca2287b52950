"""Adaptive connect concurrency: grows on fast connects, halves on congestion, is never
exceeded, and stays fixed behind a bastion."""

from __future__ import annotations

import asyncio

from opsconsole.collect.connect_slots import AdaptiveConnectSlots
from opsconsole.collect.ssh import ConnectFailure


def test_fast_connects_grow_the_window_to_its_ceiling():
    slots = AdaptiveConnectSlots(20, connect_timeout_s=10.0)
    for _ in range(500):
        slots.record(0.05, None)
    assert slots.window == slots.maximum == 160


def test_slow_connects_do_not_grow_it_and_congestion_halves_it():
    slots = AdaptiveConnectSlots(20, connect_timeout_s=10.0)
    slots.record(5.0, None)  # succeeded, but slowly: no growth
    assert slots.window == 20
    slots.record(10.0, ConnectFailure("timeout", "no banner"))
    assert slots.window == 10
    slots.record(0.1, ConnectFailure("connection lost", "reset during handshake"))
    assert slots.window == 5
    slots.record(0.1, ConnectFailure("refused", "nothing listens"))  # the host's own fault
    assert slots.window == 5
    for _ in range(10):
        slots.record(10.0, TimeoutError())
    assert slots.window == 1


def test_behind_a_bastion_the_window_stays_as_configured():
    slots = AdaptiveConnectSlots(10, connect_timeout_s=10.0, grow=False)
    for _ in range(50):
        slots.record(0.01, None)
    assert slots.window == 10


async def test_no_more_connects_run_at_once_than_the_window():
    slots = AdaptiveConnectSlots(3, connect_timeout_s=10.0, grow=False)
    release = asyncio.Event()

    async def connect():
        async with slots:
            await release.wait()

    tasks = [asyncio.create_task(connect()) for _ in range(10)]
    async with asyncio.timeout(5):
        while slots.running < 3:
            await asyncio.sleep(0.01)
    assert slots.running == 3
    release.set()
    await asyncio.gather(*tasks)
    assert slots.peak == 3 and slots.running == 0
