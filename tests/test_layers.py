"""The layers below the UI never reach up: no Textual, and the agent stands alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LOWER_LAYERS = [
    "opsconsole.config",
    "opsconsole.collect",
    "opsconsole.store",
    "opsconsole.sim",
    "opsconsole.agent",
    "opsconsole.leases",
    "opsconsole.alerts",
    "opsconsole.capacity",
    "opsconsole.report",
    "opsconsole.replay",
    "opsconsole.validate",
]


def lower_modules() -> list[str]:
    """Every module of the lower layers, found on disk so a new file is covered too."""
    modules = ["opsconsole.config"]
    for package in (
        "collect",
        "store",
        "sim",
        "agent",
        "leases",
        "alerts",
        "capacity",
        "report",
        "replay",
        "validate",
    ):
        for path in sorted((REPO / "opsconsole" / package).glob("*.py")):
            name = path.stem
            modules.append(f"opsconsole.{package}" + ("" if name == "__init__" else f".{name}"))
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
