"""`audit verify` compares the tenant, lease and drain tables with what the chain says:
each edit made outside opsconsole is named in one line."""

from __future__ import annotations

import pytest

from opsconsole.leases.chain_check import tables_match_chain

pytestmark = pytest.mark.usefixtures("history")


def edit(db, sql: str, *params) -> list[str]:
    db.conn.execute(sql, params)
    db.conn.commit()
    return tables_match_chain(db)


def test_untouched_tables_agree(db):
    assert tables_match_chain(db) == []


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "UPDATE tenants SET gpu_quota = 9999 WHERE name = 'acme'",
            "tenant acme: gpu_quota is 9999",
        ),
        ("UPDATE leases SET tenant = 'globex' WHERE id = 1", "lease 1: tenant is 'globex'"),
        ("UPDATE drains SET reason = 'nothing' WHERE id = 1", "drain 1: reason is 'nothing'"),
        (
            "UPDATE lease_slots SET end_ts = end_ts + 3600 WHERE lease_id = 1 AND gpu_index = 1",
            "lease 1: booking sg1-r01-n01:1 holds",
        ),
        ("DELETE FROM lease_slots WHERE lease_id = 1 AND gpu_index = 1", "lease 1: slots is"),
        (
            "INSERT INTO tenants (name, contact, colour, gpu_quota, created_ts)"
            " VALUES ('ghost', '', 'red', 8, 0)",
            "tenant ghost: no audit row",
        ),
    ],
)
def test_an_edit_outside_opsconsole_is_named(db, sql, expected):
    problems = edit(db, sql)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_deleted_lease_is_named(db):
    db.conn.execute("PRAGMA foreign_keys = OFF")
    problems = edit(db, "DELETE FROM leases WHERE id = 2")
    assert "lease 2: in audit row" in " ".join(problems) and "deleted" in " ".join(problems)
