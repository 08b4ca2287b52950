"""Live readings for the report, from decoded samples: power of fresh hosts only, IB error
rates between two looks (a counter reset starts again), and live health in the leases
layer's words."""

from __future__ import annotations

import msgspec

from opsconsole.capacity.live import (
    PortErrorRates,
    health_from_samples,
    live_readings,
)
from tests.ui.synthetic import synthetic_sample

COUNTERS = ("symbol_error", "port_rcv_errors")


def test_error_rates_need_two_looks_and_restart_after_a_reset():
    rates = PortErrorRates(COUNTERS)
    assert rates.rate("h", "mlx5_0/1", 100.0, {"symbol_error": 10, "port_rcv_errors": 0}) is None
    assert rates.rate("h", "mlx5_0/1", 110.0, {"symbol_error": 40, "port_rcv_errors": 10}) == 4.0
    # the same sample seen again keeps the rate; an older one or a reset starts over
    assert rates.rate("h", "mlx5_0/1", 110.0, {"symbol_error": 40, "port_rcv_errors": 10}) == 4.0
    assert rates.rate("h", "mlx5_0/1", 120.0, {"symbol_error": 1, "port_rcv_errors": 0}) is None
    assert rates.rate("h", "mlx5_0/1", 130.0, {"symbol_error": 1, "port_rcv_errors": 0}) == 0.0


def test_power_and_ports_of_fresh_hosts_only():
    fresh = synthetic_sample(0, seq=1, ts=100.0)
    rates = PortErrorRates(COUNTERS)
    readings = live_readings(
        [("a", "fresh", fresh), ("b", "stale", fresh), ("c", "down", None)], rates
    )
    a, b, c = readings.hosts["a"], readings.hosts["b"], readings.hosts["c"]
    assert a.gpu_power_w == sum(g.power_w for g in fresh.gpus)
    assert (a.gpus_reporting_power, [p.port for p in a.ports]) == (8, ["mlx5_0/1", "mlx5_1/1"])
    assert [p.errors_per_s for p in a.ports] == [None, None]  # one look so far
    assert (b.gpu_power_w, b.ports, c.gpu_power_w) == (None, None, None)
    assert not readings.rates_known
    later = synthetic_sample(0, seq=2, ts=110.0)
    again = live_readings([("a", "fresh", later)], rates)
    assert [p.errors_per_s for p in again.hosts["a"].ports] == [0.0, 0.0]
    assert again.rates_known and again.power_source == "live"


def test_live_health():
    sample = synthetic_sample(0, seq=1, ts=100.0)
    gpus = list(sample.gpus)
    gpus[3] = msgspec.structs.replace(gpus[3], state="lost")
    del gpus[5]
    sample = msgspec.structs.replace(sample, gpus=gpus, gpu_count=7)
    health = health_from_samples(
        [("a", "fresh", sample), ("b", "down", None), ("c", "stale", sample)],
        {"a": 8, "b": 8, "c": 8},
    )
    assert health == {("a", 3): "critical", ("a", 5): "critical", "b": "down"}
