"""Offline proof: the site key signs reports and audit exports, a copy on another machine
verifies against the pinned key, and any edit fails with one clear line: a lease row
edited in the store, the newest audit rows deleted together with the head, a byte
changed in an export or a report."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from opsconsole.cli import main

pytestmark = pytest.mark.usefixtures("history")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def pubkey(capsys, config_path: Path) -> str:
    code, out, _ = run(capsys, "keys", "init", "--config", str(config_path))
    assert code == 0
    return next(line.split()[-1] for line in out.splitlines() if line.startswith("public key"))


def flip_byte(path: Path, needle: bytes) -> None:
    """Change one bit of the byte before the needle's closing quote (a value, not syntax)."""
    data = path.read_bytes()
    at = data.index(needle) + len(needle) - 2
    path.write_bytes(data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :])


def test_keys_init_once_and_show(capsys, config_path, pubkey):
    code, out, _ = run(capsys, "keys", "show", "--config", str(config_path))
    assert code == 0 and pubkey in out and "SHA256:" in out
    code, _, err = run(capsys, "keys", "init", "--config", str(config_path))
    assert code == 1 and "already exists" in err


def test_audit_export_verifies_elsewhere_and_fails_on_a_changed_byte(
    capsys, config_path, pubkey, tmp_path
):
    export = tmp_path / "audit.json"
    code, out, _ = run(
        capsys,
        "audit",
        "export",
        "--config",
        str(config_path),
        "--from=-1d",
        "--to",
        "now",
        str(export),
    )
    assert code == 0 and "rows" in out
    elsewhere = tmp_path / "auditor"
    elsewhere.mkdir()
    copy = elsewhere / "audit.json"
    shutil.copy(export, copy)
    code, out, err = run(capsys, "audit", "verify", "--file", str(copy), "--pubkey", pubkey)
    assert code == 0 and "audit export ok" in out and "pinned key" in out, err

    flip_byte(copy, b'"operator": "bo"')
    code, _, err = run(capsys, "audit", "verify", "--file", str(copy), "--pubkey", pubkey)
    assert code == 1 and "signature does not match" in err and str(copy) in err

    shutil.copy(export, copy)
    copy.write_bytes(copy.read_bytes().replace(b'\n "head"', b'\n  "head"', 1))
    code, _, err = run(capsys, "audit", "verify", "--file", str(copy))
    assert code == 1 and "the file was edited" in err

    shutil.copy(export, copy)
    other = "A" * 43 + "="
    code, _, err = run(capsys, "audit", "verify", "--file", str(copy), "--pubkey", other)
    assert code == 1 and "not the pinned key" in err


def test_report_json_signed_and_checked(capsys, config_path, pubkey, tmp_path):
    target = tmp_path / "acme.json"
    code, _, _ = run(
        capsys,
        "report",
        "tenant",
        "acme",
        "--config",
        str(config_path),
        "--from=-13h",
        "--to",
        "now",
        "--json",
        "-o",
        str(target),
    )
    assert code == 0
    code, out, _ = run(capsys, "report", "verify", str(target), "--pubkey", pubkey)
    assert code == 0 and "report ok" in out
    flip_byte(target, b'"serial": "SN1"')
    code, _, err = run(capsys, "report", "verify", str(target), "--pubkey", pubkey)
    assert code == 1 and "signature does not match" in err


def test_store_verify_catches_an_edited_lease_row(capsys, config_path, db):
    code, out, _ = run(capsys, "audit", "verify", "--config", str(config_path))
    assert code == 0 and "tables agree" in out
    db.conn.execute("UPDATE leases SET end_ts = end_ts + 86400 WHERE id = 1")
    db.conn.commit()
    code, _, err = run(capsys, "audit", "verify", "--config", str(config_path))
    assert code == 1
    assert "lease 1: end_ts is" in err and "edited outside opsconsole" in err


def test_store_verify_catches_the_last_rows_deleted_with_the_head(capsys, config_path, db):
    code, _, _ = run(capsys, "audit", "verify", "--config", str(config_path))  # anchors
    assert code == 0
    (head_id,) = db.conn.execute("SELECT id FROM audit_head").fetchone()
    # someone with the file drops the triggers, removes the two newest rows and rewinds
    # the head to the row before them: the chain inside the file checks out again
    db.conn.execute("DROP TRIGGER audit_log_no_delete")
    db.conn.execute("DELETE FROM audit_log WHERE id > ?", (head_id - 2,))
    db.conn.execute(
        "UPDATE audit_head SET id = id - 2, hash = (SELECT hash FROM audit_log WHERE id = ?)",
        (head_id - 2,),
    )
    db.conn.commit()
    code, _, err = run(capsys, "audit", "verify", "--config", str(config_path))
    assert code == 1
    assert f"audit row {head_id} was removed together with the head" in err


@pytest.mark.slow
def test_report_pdf_renders_and_its_signature_checks(capsys, config_path, pubkey, tmp_path):
    if not (shutil.which("pdftoppm") and shutil.which("pdftotext")):
        pytest.skip("poppler-utils (pdftoppm, pdftotext) not installed")
    import subprocess

    pdf = tmp_path / "acme.pdf"
    code, out, _ = run(
        capsys,
        "report",
        "tenant",
        "acme",
        "--config",
        str(config_path),
        "--from=-13h",
        "--to",
        "now",
        "--pdf",
        str(pdf),
    )
    assert code == 0 and "acme.pdf.sig" in out
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", str(pdf), str(tmp_path / "page")], check=True, timeout=60
    )
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 2 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pages)
    first = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "Tenant report: acme" in first and "Every placement within allowed sites" in first
    assert "GPU-ACME" not in first  # the chips are in the detail tables, not the summary
    everything = subprocess.run(
        ["pdftotext", "-layout", str(pdf), "-"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "GPU-ACME-1" in everything and "RMA check" in everything
    assert "XID 79 on GPU 0" in everything
    code, out, _ = run(capsys, "report", "verify", str(pdf), "--pubkey", pubkey)
    assert code == 0 and "report ok" in out
    data = bytearray(pdf.read_bytes())
    data[len(data) // 2] ^= 0x01
    pdf.write_bytes(bytes(data))
    code, _, err = run(capsys, "report", "verify", str(pdf), "--pubkey", pubkey)
    assert code == 1 and "the PDF was edited" in err
