"""Signed documents that leave the site and the checks run on them elsewhere: the audit
export (rows of a period with the chain to the head) and the tenant report (JSON, or a
PDF with its detached signature). Checking needs the file and the site's public key,
never the store.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from opsconsole.errors import ReportError
from opsconsole.leases.audit_proof import audit_rows, check_chain, current_head, proof_for
from opsconsole.report import signing
from opsconsole.report.tenant import FORMAT as REPORT_FORMAT
from opsconsole.report.tenant import iso

EXPORT_FORMAT = "opsconsole/audit-export/1"
PDF_SIGNATURE_FORMAT = "opsconsole/pdf-signature/1"


def build_export(
    db: sqlite_utils.Database,
    since_ts: float,
    until_ts: float,
    *,
    now_ts: float,
    operator: str,
    key: Ed25519PrivateKey,
) -> dict[str, Any]:
    """Rows written in [since, until), whole, and the links from them to today's head."""
    if until_ts <= since_ts:
        raise ReportError(f"the period ends ({iso(until_ts)}) before it starts")
    head_id, head_hash = current_head(db)
    rows = audit_rows(db, since_ts=since_ts, until_ts=until_ts)
    document = {
        "format": EXPORT_FORMAT,
        "exported_ts": now_ts,
        "exported": iso(now_ts),
        "exported_by": operator,
        "period": {
            "from_ts": since_ts,
            "to_ts": until_ts,
            "from": iso(since_ts),
            "to": iso(until_ts),
        },
        "rows": rows,
        "links": proof_for(db, rows, (head_id, head_hash)),
        "head": {"id": head_id, "hash": head_hash},
    }
    return signing.sign_document(document, key)


def read_signed(path: Path) -> tuple[dict[str, Any], str]:
    """The document in `path` (JSON, exactly as written) and how to name it in errors."""
    what = f"{path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{what}: cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    return signing.load_document(text, what), what


def verify_export(path: Path, pinned: str | None) -> dict[str, Any]:
    """Check an audit export offline; ReportError naming the first problem."""
    document, what = read_signed(path)
    if document.get("format") != EXPORT_FORMAT:
        raise ReportError(f"{what}: not an opsconsole audit export")
    signer = signing.verify_document(document, pinned, what)
    problem = check_chain(
        document.get("rows", []), document.get("links", []), document.get("head", {})
    )
    if problem:
        raise ReportError(f"{what}: {problem}")
    head = document["head"]
    return {
        "ok": True,
        "file": str(path),
        "rows": len(document["rows"]),
        "head": f"{head['id']}:{head['hash']}",
        "signed_by": signer,
        "pinned": pinned is not None,
    }


def verify_report(path: Path, pinned: str | None) -> dict[str, Any]:
    """Check a signed report: JSON (signature, cited rows, chain to the stated head) or a
    PDF beside its `.sig` (signature over the PDF's bytes, and over the report's JSON)."""
    if path.suffix.lower() == ".pdf":
        return _verify_pdf(path, pinned)
    document, what = read_signed(path)
    if document.get("format") != REPORT_FORMAT:
        raise ReportError(f"{what}: not an opsconsole tenant report")
    signer = signing.verify_document(document, pinned, what)
    audit = document.get("audit", {})
    problem = check_chain(
        audit.get("rows", []), audit.get("links", []), audit.get("head_at_period_end", {})
    )
    if problem:
        raise ReportError(f"{what}: {problem}")
    head = audit["head_at_period_end"]
    return {
        "ok": True,
        "file": str(path),
        "tenant": document["tenant"]["name"],
        "period": f"{document['period']['from']} to {document['period']['to']}",
        "audit_rows": len(audit["rows"]),
        "head_at_period_end": f"{head['id']}:{head['hash']}",
        "signed_by": signer,
        "pinned": pinned is not None,
    }


def pdf_signature(
    pdf: bytes, report: dict[str, Any], key: Ed25519PrivateKey, name: str
) -> dict[str, Any]:
    """The detached signature written beside a PDF: its sha256 and the signed report's
    own signature value, so the PDF is tied to the JSON the tenant can also be given."""
    document = {
        "format": PDF_SIGNATURE_FORMAT,
        "file": name,
        "sha256": hashlib.sha256(pdf).hexdigest(),
        "report_signature": report.get("signature", {}).get("value"),
        "head_at_period_end": report["audit"]["head_at_period_end"],
    }
    return signing.sign_document(document, key)


def _verify_pdf(path: Path, pinned: str | None) -> dict[str, Any]:
    sig_path = path.with_name(path.name + ".sig")
    if not sig_path.exists():
        raise ReportError(f"{path}: no detached signature {sig_path.name} beside it")
    document, what = read_signed(sig_path)
    if document.get("format") != PDF_SIGNATURE_FORMAT:
        raise ReportError(f"{what}: not an opsconsole PDF signature")
    signer = signing.verify_document(document, pinned, what)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise ReportError(f"{path}: cannot read: {exc.strerror}") from None
    if digest != document.get("sha256"):
        raise ReportError(f"{path}: its bytes differ from what was signed: the PDF was edited")
    head = document["head_at_period_end"]
    return {
        "ok": True,
        "file": str(path),
        "head_at_period_end": f"{head['id']}:{head['hash']}",
        "signed_by": signer,
        "pinned": pinned is not None,
    }
