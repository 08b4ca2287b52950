"""The UI folder shows its parts: the app at the top, everything else in a folder, and a
`view/` (models, painters, text, filters) that runs without Textual."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import opsconsole.ui

UI = Path(opsconsole.ui.__file__).parent
REPO = UI.parents[1]
TOP_LEVEL_MODULES = {"__init__.py", "app.py"}


def test_ui_top_level_holds_only_the_app_its_styles_and_folders():
    stray = sorted(
        entry.name
        for entry in UI.iterdir()
        if (entry.is_file() and entry.name not in TOP_LEVEL_MODULES and entry.suffix != ".tcss")
        or (entry.is_dir() and entry.name != "__pycache__" and not (entry / "__init__.py").exists())
    )
    assert stray == []


def test_view_imports_no_textual():
    modules = sorted(f"opsconsole.ui.view.{p.stem}" for p in (UI / "view").glob("*.py"))
    assert len(modules) > 10  # the glob found the folder
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    leaked = [m for m in loaded if m.split(".")[0] in ("textual", "textual_plotext")]
    assert leaked == []


def test_only_the_gateway_opens_the_store():
    """Screens never open the store: every connection the UI opens is the gateway's."""
    opens = ("open_store(", "sqlite3.connect(", "Database(")
    found = sorted(
        f"{path.relative_to(UI)}: {needle}"
        for path in UI.rglob("*.py")
        if "gateway" not in path.relative_to(UI).parts
        for needle in opens
        if needle in path.read_text(encoding="utf-8")
    )
    assert found == []
