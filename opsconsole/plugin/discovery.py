"""Where plugins come from: the shipped top-level `plugins` package, folders named in the
config (`plugin_dirs`), and the `opsconsole.plugins` entry-point group.

Finding lists names without importing anything (harlequin's adapters work the same way):
`opsconsole plugins` must answer even when a plugin's import would fail or hang. A name
found twice is taken from the first place in that order, and the other is reported.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from importlib import metadata
from pathlib import Path

ENTRY_POINT_GROUP = "opsconsole.plugins"
SHIPPED_MARKER = "OPSCONSOLE_SHIPPED_PLUGINS"


class Origin(StrEnum):
    SHIPPED = "shipped"
    FOLDER = "folder"
    ENTRY_POINT = "entry-point"


@dataclass(frozen=True)
class FoundPlugin:
    name: str
    origin: Origin
    location: str
    """A file or folder path, or the entry point's `module:attr`."""
    module: str
    """The module to import (entry points: the value before `:`)."""
    path: Path | None = None
    """For folder plugins: the file or package directory loaded by path."""
    attr: str = "PLUGIN"


def shipped_plugins_dir() -> Path | None:
    """The installed `plugins` package's folder (found without importing it)."""
    spec = importlib.util.find_spec("plugins")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    try:  # another distribution's `plugins` package is not ours to load
        ours = SHIPPED_MARKER in (folder / "__init__.py").read_text(encoding="utf-8")
    except OSError:
        return None
    return folder if ours else None


def _in_folder(folder: Path) -> Iterable[tuple[str, Path]]:
    """Plugin modules in a folder: `name.py` files and `name/__init__.py` packages."""
    if not folder.is_dir():
        return
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith(("_", ".")):
            continue
        if entry.is_dir() and (entry / "__init__.py").is_file():
            yield entry.name, entry
        elif entry.suffix == ".py" and entry.is_file():
            yield entry.stem, entry


def discover(folders: Iterable[Path] = ()) -> tuple[list[FoundPlugin], list[str]]:
    """Every plugin found, in precedence order, and one line per name found twice."""
    found: dict[str, FoundPlugin] = {}
    shadowed: list[str] = []

    def add(plugin: FoundPlugin) -> None:
        first = found.get(plugin.name)
        if first is None:
            found[plugin.name] = plugin
        else:
            shadowed.append(
                f"plugin {plugin.name} at {plugin.location} is ignored:"
                f" the {first.origin} one at {first.location} comes first"
            )

    shipped = shipped_plugins_dir()
    if shipped is not None:
        for name, path in _in_folder(shipped):
            add(FoundPlugin(name, Origin.SHIPPED, str(path), f"plugins.{name}"))
    for folder in folders:
        for name, path in _in_folder(folder):
            add(
                FoundPlugin(name, Origin.FOLDER, str(path), f"opsconsole_site_plugins.{name}", path)
            )
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        module, _, attr = entry.value.partition(":")
        add(FoundPlugin(entry.name, Origin.ENTRY_POINT, entry.value, module.strip(), None,
                        attr.strip() or "PLUGIN"))  # fmt: skip
    return list(found.values()), shadowed
