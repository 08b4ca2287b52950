"""Each table has one owner, and the store is the one way into the database.

The package that writes a table is the only one whose SQL names it; every other package
calls the owner's functions (see ARCHITECTURE.md, "Tables and their owners"). The scan
reads every string literal of `opsconsole/` and `plugins/` (f-string parts included) and
looks for a table name right after an upper-case SQL keyword (`FROM`, `JOIN`, `INTO`,
`UPDATE`, `TABLE`, `ON`), so prose such as "health from events" is not taken for SQL.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "opsconsole").rglob("*.py")) + sorted((REPO / "plugins").rglob("*.py"))

OWNERS: dict[str, tuple[str, ...]] = {
    "opsconsole/store": (
        "migrations", "sites", "racks", "hosts", "gpu_slots", "gpu_swaps", "gpu_minute",
        "events", "recorder_ring", "recorder_meta", "recorder_hellos", "recorder_capture",
        "gpu_energy_hour",
    ),
    "opsconsole/leases": (
        "tenants", "leases", "lease_slots", "drains", "audit_log", "audit_head",
        "node_handover", "node_passes", "handover_epoch",
    ),
    "opsconsole/alerts": ("alerts", "alert_history", "silences", "alert_engine"),
    "opsconsole/plugin": ("plugin_queue",),
    "opsconsole/validate": ("validation_runs", "validation_checks"),
}  # fmt: skip
OWNER = {table: owner for owner, tables in OWNERS.items() for table in tables}

SCHEMA = "opsconsole/store/migrations.py"
"""The schema's history: every table is created (and altered) there, by the store, and a
shipped migration is never edited. It names every table by design."""

KNOWN_CROSSINGS = {
    # The idle-GPU query joins the slots leased through the window to the store's rollups
    # on their primary key in one statement (bench/alerts.py: 0.1 s at 1,000 hosts, 12 s
    # when the planner is left to choose); split in two it would ship every leased slot
    # back and forth.
    ("opsconsole/leases/reader.py", "gpu_minute"),
}
"""Crossings kept on purpose, each named with its reason. The test fails when one is gone
(strike it here) and when a new one appears. None may name a lease table."""

_SQL_TABLE = re.compile(
    r"\b(?:FROM|JOIN|INTO|UPDATE|TABLE(?: IF (?:NOT )?EXISTS)?|ON)\s+([a-z_][a-z0-9_]*)\b"
)


def _relative(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


def _strings(tree: ast.AST) -> list[str]:
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]


def _table_keys(tree: ast.AST) -> list[str]:
    """Tables reached through sqlite-utils without SQL: `db["hosts"]`, `db.table("hosts")`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            base = node.value
            name = base.id if isinstance(base, ast.Name) else getattr(base, "attr", "")
            if name.endswith("db") and isinstance(node.slice.value, str):
                found.append(node.slice.value)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "table"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append(node.args[0].value)
    return found


def crossings() -> set[tuple[str, str]]:
    """(module, table) for every table named outside its owner."""
    found = set()
    for path in SOURCES:
        module = _relative(path)
        if module == SCHEMA:
            continue
        tree = ast.parse(path.read_text(), filename=module)
        named = [m.group(1) for text in _strings(tree) for m in _SQL_TABLE.finditer(text)]
        for table in [*named, *_table_keys(tree)]:
            owner = OWNER.get(table)
            if owner is not None and not module.startswith(owner + "/"):
                found.add((module, table))
    return found


def schema_tables() -> set[str]:
    text = (REPO / SCHEMA).read_text()
    return set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?([a-z_][a-z0-9_]*)", text))


def test_every_table_has_one_owner():
    assert schema_tables() - set(OWNER) == set(), "a new table needs an owner in OWNERS"
    assert set(OWNER) - schema_tables() == set(), "OWNERS names a table the schema lacks"


def test_no_sql_names_a_table_outside_its_owner():
    found = crossings()
    assert sorted(found - KNOWN_CROSSINGS) == [], "call the owning package's functions"
    assert sorted(KNOWN_CROSSINGS - found) == [], "gone: strike it from KNOWN_CROSSINGS"


def test_only_leases_names_the_lease_tables():
    lease_tables = set(OWNERS["opsconsole/leases"])
    assert sorted(c for c in crossings() if c[1] in lease_tables) == []
    assert not any(table in lease_tables for _module, table in KNOWN_CROSSINGS)


def test_the_scan_sees_sql_and_ignores_prose():
    tree = ast.parse(
        'a = "SELECT id FROM lease_slots s JOIN leases l ON l.id = s.lease_id"\n'
        'b = f"DELETE FROM {x} WHERE 1; INSERT INTO drains VALUES (?)"\n'
        'c = "health from events; the leases ending soon"\n'
        'db["tenants"].insert({})\n'
    )
    named = [m.group(1) for text in _strings(tree) for m in _SQL_TABLE.finditer(text)]
    assert [*named, *_table_keys(tree)] == ["lease_slots", "leases", "l", "drains", "tenants"]


# -- who opens a connection --------------------------------------------------------------

CONNECTS = re.compile(r"\bsqlite3\.connect\(|\bsqlite3\.Connection\(|\bDatabase\(")
STORE = "opsconsole/store/"
GATEWAY = "opsconsole/ui/gateway/"


def _code_calls(path: Path, pattern: re.Pattern[str]) -> bool:
    """Whether the module's code (not its comments or docstrings) calls `pattern`."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and pattern.search(ast.unparse(node.func) + "("):
            return True
    return False


def test_only_the_store_constructs_a_connection():
    """`opsconsole.store.open_store` is the one way in: it sets the busy timeout, WAL, the
    foreign keys and the migrations. Nothing else builds a sqlite3 or sqlite-utils
    connection of its own."""
    builders = [
        _relative(path)
        for path in SOURCES
        if not _relative(path).startswith(STORE) and _code_calls(path, CONNECTS)
    ]
    assert builders == []


def test_in_the_ui_only_the_gateway_opens_the_store():
    """Screens never open the store; they ask the one gateway, which runs on a worker."""
    assert (REPO / GATEWAY).is_dir(), "the UI's one way to the store is opsconsole/ui/gateway/"
    openers = [
        _relative(path)
        for path in SOURCES
        if _relative(path).startswith("opsconsole/ui/")
        and not _relative(path).startswith(GATEWAY)
        and _code_calls(path, re.compile(r"\bopen_store\("))
    ]
    assert openers == []


def test_the_connection_scan_sees_calls_not_prose(tmp_path: Path):
    code = tmp_path / "mod.py"
    code.write_text('"""Never call sqlite3.connect( here."""\n# sqlite_utils.Database(\nx = 1\n')
    assert not _code_calls(code, CONNECTS)
    code.write_text("import sqlite3\nconn = sqlite3.connect(':memory:')\n")
    assert _code_calls(code, CONNECTS)
    code.write_text("import sqlite_utils\ndb = sqlite_utils.Database(memory=True)\n")
    assert _code_calls(code, CONNECTS)
