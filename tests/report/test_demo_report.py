"""The incident demo's store: a tenant a signed report prints for, as JSON, Markdown and
PDF, straight after seeding (the site key is made with it)."""

from __future__ import annotations

import time

import pytest

from opsconsole.cli import main
from opsconsole.cli.demo import after_demo_hints, seed_incident_leases
from opsconsole.config import load_fleet
from opsconsole.sim.server import SimServer


@pytest.mark.slow
async def test_incident_demo_reports_aurora_labs(tmp_path, capsys):
    async with SimServer(20, seed=0) as server:
        config = server.write_files(tmp_path)
    fleet = load_fleet(config)
    seed_incident_leases(fleet.store_path, fleet, time.time() - 120)
    common = ["--config", str(config), "--from=-1h", "--to", "now"]
    assert main(["report", "tenant", "aurora-labs", *common, "--md"]) == 0
    text = capsys.readouterr().out
    assert (
        "| Allowed sites | SG1 |" in text
        and "| Every placement within allowed sites | yes |" in text
    )
    assert "sg1-r01-n01" in text and "(SG)" in text
    report = tmp_path / "aurora.json"
    assert main(["report", "tenant", "aurora-labs", *common, "--json", "-o", str(report)]) == 0
    assert main(["report", "verify", str(report)]) == 0
    assert "report ok" in capsys.readouterr().out
    assert main(["report", "tenant", "aurora-labs", *common, "--pdf", str(tmp_path / "a.pdf")]) == 0
    assert (tmp_path / "a.pdf").read_bytes()[:5] == b"%PDF-"
    hints = after_demo_hints(config, "incident", time.time())
    assert "opsconsole replay --config" in hints and "report tenant aurora-labs" in hints
