"""The layers below the UI never reach up: no Textual, and the agent stands alone."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ABOVE_THE_LOWER_LAYERS = ("ui", "cli")


def lower_packages() -> list[str]:
    """Every package of opsconsole below the UI, found on disk so a new one is covered."""
    return sorted(
        path.parent.name
        for path in (REPO / "opsconsole").glob("*/__init__.py")
        if path.parent.name not in ABOVE_THE_LOWER_LAYERS
    )


def lower_modules() -> list[str]:
    """Every module of the lower layers, found on disk so a new file is covered too."""
    modules = ["opsconsole.counters", "opsconsole.errors"]
    for package in lower_packages():
        for path in sorted((REPO / "opsconsole" / package).rglob("*.py")):
            parts = path.relative_to(REPO).with_suffix("").parts
            modules.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules


def imported_after(modules: list[str]) -> set[str]:
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


@pytest.mark.slow
def test_lower_layers_import_no_textual_and_no_ui():
    loaded = imported_after(lower_modules())
    leaked = sorted(
        m
        for m in loaded
        if m.split(".")[0] in ("textual", "textual_plotext") or m.startswith("opsconsole.ui")
    )
    assert leaked == []


def test_agent_imports_nothing_else_of_the_project():
    agent_modules = [m for m in lower_modules() if m.startswith("opsconsole.agent")]
    loaded = imported_after(agent_modules)
    project = sorted(
        m for m in loaded if m.startswith("opsconsole.") and not m.startswith("opsconsole.agent")
    )
    assert project == []
    assert not any(
        m.split(".")[0] in ("msgspec", "pydantic", "asyncssh", "sqlite_utils") for m in loaded
    )


def test_import_linter_contracts_hold():
    lint_imports = Path(sys.executable).with_name("lint-imports")
    if not lint_imports.exists():
        pytest.fail("import-linter is part of the test extra; install '.[test]'")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert ", 0 broken." in result.stdout


def layers_contract() -> list[str]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    (contract,) = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    return list(contract["layers"])


def test_the_layers_contract_places_every_package():
    """A new package must take its place in the order (or the contract would not see it
    reach up); a layer that names no package on disk is a typo, unless optional."""
    named = {
        module.strip().strip("()").removeprefix("opsconsole.")
        for layer in layers_contract()
        for module in layer.split("|")
    }
    on_disk = {p.parent.name for p in (REPO / "opsconsole").glob("*/__init__.py")}
    on_disk |= {p.stem for p in (REPO / "opsconsole").glob("*.py") if not p.stem.startswith("_")}
    assert sorted(on_disk - named) == []
    optional = {
        m.strip().strip("()").removeprefix("opsconsole.")
        for layer in layers_contract()
        for m in layer.split("|")
        if m.strip().startswith("(")
    }
    assert sorted(named - on_disk - optional) == []


def test_the_order_is_the_documented_one():
    """agent < config < collect, sim < store < leases < alerts < the analyses < ui < cli."""
    order = [layer.replace("opsconsole.", "") for layer in reversed(layers_contract())]
    assert order[0].split(" | ")[0] == "agent"
    assert order.index("config") < order.index("collect | sim") < order.index("store")
    assert order.index("store") < order.index("leases") < order.index("alerts")
    analyses = next(layer for layer in order if layer.startswith("capacity"))
    assert order.index("alerts") < order.index(analyses) < order.index("ui") < order.index("cli")
