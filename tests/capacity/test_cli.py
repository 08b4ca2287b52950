"""`opsconsole capacity` on the simulator's own config for the capacity scenario (the file
`opsconsole demo --scenario capacity` runs on) with the demo's leases: --json field by
field, the text form, and bad input as one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from opsconsole.cli import capacity as capacity_cli
from opsconsole.cli import main
from opsconsole.cli.demo import seed_capacity_leases
from opsconsole.config import load_fleet
from opsconsole.sim.files import config_toml
from opsconsole.sim.world import SimFleet
from tests.support.capacity import T0

NOW = T0 + 60


@pytest.fixture
def config(tmp_path: Path, monkeypatch) -> Path:
    sim = SimFleet(64, seed=0, scenario="capacity", start_ts=T0)
    endpoints = {name: ("127.0.0.1", 20_000 + i) for i, name in enumerate(sim.hosts)}
    path = tmp_path / "config.toml"
    path.write_text(config_toml(sim, endpoints, 2.0), encoding="utf-8")
    fleet = load_fleet(path)
    seed_capacity_leases(fleet.store_path, fleet, T0)
    monkeypatch.setattr(capacity_cli, "clock", lambda: NOW)
    return path


def run_json(capsys, *args: str) -> dict:
    assert main(["capacity", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_json_field_by_field(config, capsys):
    data = run_json(capsys, "--config", str(config))
    assert sorted(data) == sorted(
        [
            "now_ts", "site", "days", "sources", "occupancy", "power", "fabric", "idle",
            "free_healthy", "runway", "bottlenecks", "thresholds", "notes", "handover",
        ]
    )  # fmt: skip
    assert data["handover"]["SG1"] == {"validating": 0, "cleaning": 0, "failed-validation": 0}
    assert (data["now_ts"], data["site"], data["days"]) == (NOW, None, 28)
    assert data["sources"]["health"] == "stored events (host_down, gpu_lost)"
    assert data["sources"]["power"] == "minute rollups, last 5 min"
    assert data["sources"]["ib_ports"] == "stored link events"
    # the scenario's own [capacity] key reached the report
    assert data["thresholds"]["idle_hours"] == 0.05
    assert data["thresholds"]["target_lease_gpus"] == 64

    site = data["occupancy"][0]
    assert (site["level"], site["name"], site["site"], site["hosts"]) == ("site", "SG1", "SG1", 64)
    assert site["total_gpus"] == 512 and site["healthy_gpus"] == 512
    assert (site["leased_gpus"], site["reserved_gpus"], site["drained_gpus"]) == (428, 0, 0)
    assert (site["free_gpus"], site["free_whole_nodes"], site["scattered_free_gpus"]) == (84, 0, 84)
    assert site["fragmentation_pct"] == 100.0
    assert site["bar"] == {"leased": 428, "unhealthy": 0, "drained": 0, "reserved": 0, "free": 84}
    assert [(lv["level"], lv["gpus"], lv["where"]) for lv in site["largest"]] == [
        ("node", 3, "sg1-r02-n13"),
        ("rack", 48, "sg1-r04"),
        ("leaf", 84, "sg1-leaf-01"),
        ("site", 84, "SG1"),
    ]
    assert site["consolidation"] == {
        "rack": "sg1-r04", "part_used_nodes": 16, "gpus_in_use": 80, "whole_nodes_freed": 6,
    }  # fmt: skip
    assert [o["name"] for o in data["occupancy"]] == [
        "SG1", "sg1-leaf-01", "sg1-r01", "sg1-r02", "sg1-r03", "sg1-r04",
    ]  # fmt: skip

    r04 = data["power"][3]
    assert (r04["rack"], r04["budget_kw"], r04["use_pct"], r04["measured_kw"]) == (
        "sg1-r04", None, None, None,
    )  # fmt: skip
    assert r04["note"] == (
        "no budget set, no data (minute rollups, last 5 min), clock events: no data"
    )
    assert [p["budget_kw"] for p in data["power"]] == [96.0, 108.9, 108.9, None]

    leaf = data["fabric"][0]
    assert (leaf["leaf"], leaf["hosts"], leaf["ports_down"], leaf["issues"]) == (
        "sg1-leaf-01", 64, 0, [],
    )  # fmt: skip

    assert [t["tenant"] for t in data["idle"]] == [
        "aurora-labs", "kestrel-ai", "tern-research", "wren-inference",
    ]  # fmt: skip
    assert data["idle"][2] == {
        "tenant": "tern-research",
        "leased_gpus": 32,
        "idle_gpus": 0,
        "busy_gpus": 0,
        "no_data_gpus": 0,
        "too_new_gpus": 32,
        "idle_hosts": [],
        "leases": [],
    }  # fmt: skip  (leased 60 s ago: younger than the scenario's 3-minute idle window)
    assert data["free_healthy"] == {"SG1": 84}

    site_runway, model_runway = data["runway"]
    assert (site_runway["kind"], site_runway["name"], site_runway["total_gpus"]) == (
        "site", "SG1", 512,
    )  # fmt: skip
    assert site_runway["first_over_committed"] == "2025-06-25"
    assert len(site_runway["days"]) == 28
    day10 = site_runway["days"][10]
    assert day10 == {
        "date": "2025-06-25", "start_ts": day10["start_ts"], "committed_gpus": 416,
        "capacity_gpus": 384, "over_by": 32,
    }  # fmt: skip
    assert [w["whole_nodes"] for w in site_runway["weeks"]] == [0, 12, 12, 28]
    assert (model_runway["kind"], model_runway["name"]) == ("model", "H200")

    ranked = data["bottlenecks"]
    assert [(b["rank"], b["kind"], b["severity"]) for b in ranked] == [
        (1, "fragmentation", "critical"),
        (2, "runway", "warning"),
    ]
    top = ranked[0]
    assert top["subject"] == "SG1 sg1-leaf-01"
    assert top["target"] == {"kind": "rack", "name": "sg1-r04"}
    assert top["measured_value"] == 84.0 and top["threshold_value"] == 16.0
    assert top["gpus_affected"] == 84
    for key in ("title", "measured", "threshold", "why", "action"):
        assert isinstance(top[key], str) and top[key]
    assert ranked[1]["target"] == {"kind": "lease", "name": "8"}
    assert "no budget set for 1 rack(s): sg1-r04" in data["notes"]


def test_site_and_days(config, capsys):
    data = run_json(capsys, "--config", str(config), "--site", "sg1", "--days", "3")
    assert (data["site"], data["days"]) == ("SG1", 3)
    assert [len(s["days"]) for s in data["runway"]] == [3, 3]
    assert [w["start_date"] for w in data["runway"][0]["weeks"]] == ["2025-06-15"]


def test_text_names_sources_ranks_and_missing_figures(config, capsys):
    assert main(["capacity", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    assert "  1. CRITICAL SG1 sg1-leaf-01: 0 whole nodes free, 84 scattered GPUs" in out
    assert "  2. WARNING  SG1: over-committed on 2025-06-25" in out
    assert "no budget set" in out
    assert "first over-committed day: 2025-06-25" in out
    assert "power: minute rollups, last 5 min" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--site", "XX9"], 'unknown site "XX9" (sites: SG1)'),
        (["--days", "0"], "--days must be at least 1"),
    ],
)
def test_bad_input_is_one_line(config, capsys, args, message):
    assert main(["capacity", "--config", str(config), *args]) == 1
    err = capsys.readouterr().err
    assert err == f"opsconsole: {message}\n"
