"""The site's Ed25519 key: signs tenant reports and audit exports so a tenant or auditor
can check them on another machine against a public key they pinned once.

Why Ed25519 through `cryptography`: small keys and signatures that fit on a report page,
deterministic signing (the same document always gives the same signature), and the
library is already installed as asyncssh's own dependency. The document signed is its
canonical JSON (sorted keys, fixed layout), and a file is accepted only if its bytes are
exactly that layout, so any edit, even of white space, fails verification.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from opsconsole.errors import ReportError

ALGORITHM = "ed25519"


def init_key(path: Path) -> Ed25519PrivateKey:
    """Make the site key at `path` (mode 0600); refuse to replace one: reports signed with
    it could no longer be checked against the key tenants pinned."""
    if path.exists():
        raise ReportError(f"site key {path} already exists; it is not replaced")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
    except OSError as exc:
        raise ReportError(f"site key {path}: cannot write: {exc.strerror}") from exc
    return key


def load_key(path: Path) -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ReportError(
            f"site key {path} not found; make it once with: opsconsole keys init"
        ) from None
    except OSError as exc:
        raise ReportError(f"site key {path}: cannot read: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ReportError(f"site key {path}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ReportError(f"site key {path}: not an Ed25519 key")
    return key


def public_text(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The public key as tenants pin it: base64 of the raw 32 bytes."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def fingerprint(public_b64: str) -> str:
    """SHA256:<hex16> of the raw public key, short enough to read over the phone."""
    try:
        raw = base64.b64decode(public_b64, validate=True)
    except ValueError:
        return "SHA256:(not base64)"
    return "SHA256:" + hashlib.sha256(raw).hexdigest()[:16]


def canonical_bytes(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _public(public_b64: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(public_b64, validate=True))
    except (ValueError, TypeError):
        raise ReportError(
            f'"{public_b64}" is not an Ed25519 public key (base64 of 32 bytes)'
        ) from None


def signature_block(data: bytes, key: Ed25519PrivateKey) -> dict[str, Any]:
    public = public_text(key)
    return {
        "algorithm": ALGORITHM,
        "public_key": public,
        "key_fingerprint": fingerprint(public),
        "value": base64.b64encode(key.sign(data)).decode(),
    }


def check_signature(data: bytes, block: object, pinned: str | None, what: str) -> str:
    """Raise ReportError unless `block` signs `data` (with `pinned` when given); returns
    the signer's fingerprint."""
    if pinned is not None:
        _public(pinned.strip())  # a mistyped pinned key is said to be one, first
    if not isinstance(block, dict) or block.get("algorithm") != ALGORITHM:
        raise ReportError(f"{what}: no Ed25519 signature")
    public = str(block.get("public_key", ""))
    if pinned is not None and public != pinned.strip():
        raise ReportError(
            f"{what}: signed by key {fingerprint(public) if public else '?'}, not the pinned"
            f" key {fingerprint(pinned.strip())}"
        )
    try:
        value = base64.b64decode(str(block.get("value", "")), validate=True)
        _public(public).verify(value, data)
    except (InvalidSignature, ValueError):
        raise ReportError(
            f"{what}: signature does not match: the content was changed after signing"
        ) from None
    return fingerprint(public)


def sign_document(document: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """The document with a `signature` over the canonical JSON of everything else."""
    body = {k: v for k, v in document.items() if k != "signature"}
    return {**body, "signature": signature_block(canonical_bytes(body), key)}


def dump_document(document: dict[str, Any]) -> str:
    """The one layout a signed document is written in (sorted keys, one-space indent)."""
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def load_document(text: str, what: str) -> dict[str, Any]:
    """Parse a signed document, refusing any text that is not exactly `dump_document`'s."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ReportError(
            f"{what}: not valid JSON ({exc}): not a signed document, or it was edited"
        ) from None
    if not isinstance(document, dict):
        raise ReportError(f"{what}: not a signed document")
    if dump_document(document) != text:
        raise ReportError(f"{what}: its layout differs from what was signed: the file was edited")
    return document


def verify_document(document: dict[str, Any], pinned: str | None, what: str) -> str:
    body = {k: v for k, v in document.items() if k != "signature"}
    return check_signature(canonical_bytes(body), document.get("signature"), pinned, what)
