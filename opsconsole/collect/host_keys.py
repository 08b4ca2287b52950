"""Changed host keys: remembered until an operator decides, and the known_hosts edit that
records the decision.

Why a ledger file: a changed key is a security event whose alert must not clear because
the next attempt timed out, the man in the middle went quiet, or the console restarted.
The poller writes each refused key here (offered key, fingerprints, first and last seen);
the entry stays until `opsconsole hosts trust-key` (or the console's `K`) replaces the
host's line in known_hosts with the offered key, or `hosts reject-key` keeps the old one.
Both record who and why in the audit chain first. The file sits beside the known_hosts
it is about, as JSON, written whole through a rename under an advisory lock, so a poller
and an operator's command never interleave their edits.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import asyncssh

from opsconsole.errors import CollectError

LEDGER_VERSION = 1
LAST_SEEN_EVERY_S = 60.0
"""A key refused again is written back at most this often (its last-seen time)."""


def key_fingerprint(key: asyncssh.SSHKey) -> str:
    """SHA256 fingerprint as OpenSSH prints it (`SHA256:base64`)."""
    return key.get_fingerprint("sha256")


def known_hosts_pattern(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


@dataclass(frozen=True)
class KeyChange:
    """One host's refused key, waiting for an operator."""

    host: str
    address: str
    port: int
    old_fingerprints: tuple[str, ...]
    new_key: str  # OpenSSH public key line: "ssh-ed25519 AAAA..."
    new_fingerprint: str
    first_seen_ts: float
    last_seen_ts: float
    attempts: int = 1
    """Sightings written to the ledger (at most one a minute), not connection attempts."""

    def describe(self) -> str:
        old = ", ".join(self.old_fingerprints) or "none"
        return f"known {old}, offered {self.new_fingerprint}"

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["old_fingerprints"] = list(self.old_fingerprints)
        return out

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> KeyChange:
        return cls(
            host=str(raw["host"]),
            address=str(raw["address"]),
            port=int(raw["port"]),
            old_fingerprints=tuple(str(f) for f in raw.get("old_fingerprints", ())),
            new_key=str(raw["new_key"]),
            new_fingerprint=str(raw["new_fingerprint"]),
            first_seen_ts=float(raw["first_seen_ts"]),
            last_seen_ts=float(raw["last_seen_ts"]),
            attempts=int(raw.get("attempts", 1)),
        )


def ledger_path_for(known_hosts: Path) -> Path:
    return known_hosts.with_name(known_hosts.name + ".changed")


@dataclass
class KeyLedger:
    """The refused keys of one known_hosts file, cached in memory and re-read when the
    file changes (another process trusted a key)."""

    path: Path
    known_hosts: Path | None
    """The file trust-key edits; None when known_hosts is left to the OpenSSH config."""
    changes: dict[str, KeyChange] = field(default_factory=dict)
    _mtime_ns: int | None = None

    # --- reading ---------------------------------------------------------------------
    def refresh(self) -> bool:
        """Re-read the file if it changed since last read; returns whether it did."""
        changed, mtime = changed_since(self.path, self._mtime_ns)
        if not changed:
            return False
        self.changes = self._read()
        self._mtime_ns = mtime
        return True

    def get(self, host: str) -> KeyChange | None:
        return self.changes.get(host)

    def _read(self) -> dict[str, KeyChange]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise CollectError(f"host key ledger {self.path} cannot be read: {exc}") from None
        try:
            return {name: KeyChange.from_dict(c) for name, c in raw.get("changes", {}).items()}
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CollectError(f"host key ledger {self.path} is damaged: {exc!r}") from None

    # --- writing ---------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, KeyChange]]:
        """Read-modify-write under an advisory lock; the dict yielded is written back."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                changes = self._read()
                yield changes
                _write_atomic(
                    self.path,
                    json.dumps(
                        {
                            "version": LEDGER_VERSION,
                            "changes": {n: c.as_dict() for n, c in sorted(changes.items())},
                        },
                        indent=2,
                    )
                    + "\n",
                )
                self.changes = changes
                self._mtime_ns = self.path.stat().st_mtime_ns
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def note(
        self,
        host: str,
        address: str,
        port: int,
        offered: asyncssh.SSHKey,
        old_fingerprints: list[str],
        now_ts: float,
    ) -> KeyChange | None:
        """Remember a refused key. Written only when new or changed (a key refused every
        minute must not rewrite the file every minute); None if the key became trusted
        meanwhile (an operator trusted it while this attempt was under way)."""
        new_fp = key_fingerprint(offered)
        current = self.changes.get(host)
        if current is not None and current.new_fingerprint == new_fp:
            if now_ts - current.last_seen_ts < LAST_SEEN_EVERY_S:
                return current
            with self._locked() as changes:  # still offered: say when it was last seen
                before = changes.get(host)
                if before is None or before.new_fingerprint != new_fp:
                    return before
                changes[host] = replace(before, last_seen_ts=now_ts, attempts=before.attempts + 1)
                return changes[host]
        if self.known_hosts is not None and new_fp in trusted_fingerprints(
            self.known_hosts, address, port
        ):
            return None
        line = offered.export_public_key("openssh").decode().split()
        with self._locked() as changes:
            before = changes.get(host)
            if before is not None and before.new_fingerprint == new_fp:
                return before
            first_ts = before.first_seen_ts if before is not None else now_ts
            # Old fingerprints stay those of the key last trusted, not a second intruder's.
            old = before.old_fingerprints if before is not None else tuple(old_fingerprints)
            change = KeyChange(
                host, address, port, old, " ".join(line[:2]), new_fp, first_ts, now_ts
            )
            changes[host] = change
        return change

    def settle(self, host: str, *, trust: bool) -> KeyChange:
        """The operator decided: with `trust` the host's known_hosts lines are replaced by
        the offered key; either way the entry goes, so the alert clears and the poller
        connects with whatever known_hosts now says."""
        with self._locked() as changes:
            change = changes.get(host)
            if change is None:
                raise CollectError(f"host {host}: no changed host key is waiting for a decision")
            if trust:
                if self.known_hosts is None:
                    raise CollectError(
                        "ssh.known_hosts is not set: trust-key edits the file the poller "
                        "reads; set ssh.known_hosts in the config"
                    )
                replace_host_key(self.known_hosts, change.address, change.port, change.new_key)
            del changes[host]
        return change


def changed_since(path: Path, mtime_ns: int | None) -> tuple[bool, int | None]:
    """Whether a ledger file changed since it was read at `mtime_ns` (None: missing), and
    its mtime now; a file that cannot be stat'ed counts as unchanged (read it next time)."""
    try:
        now_ns: int | None = path.stat().st_mtime_ns
    except FileNotFoundError:
        now_ns = None
    except OSError:
        return False, mtime_ns
    return now_ns != mtime_ns, now_ns


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _line_matches(line: str, address: str, port: int) -> bool:
    try:
        entries = asyncssh.import_known_hosts(line)
    except (ValueError, asyncssh.KeyImportError):
        return False
    return bool(entries.match(address, "", port)[0])


def trusted_fingerprints(known_hosts: Path, address: str, port: int) -> list[str]:
    """Fingerprints known_hosts trusts for this address and port, read from disk now."""
    try:
        entries = asyncssh.read_known_hosts(str(known_hosts))
    except (OSError, ValueError):
        return []
    return [key_fingerprint(k) for k in entries.match(address, "", port)[0]]


def replace_host_key(known_hosts: Path, address: str, port: int, key_line: str) -> None:
    """Drop the plain host-key lines that match this host (a pattern list loses only the
    matching patterns; @revoked and @cert-authority lines stay) and add the new key."""
    try:
        lines = known_hosts.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    except OSError as exc:
        raise CollectError(f"known_hosts file {known_hosts} cannot be read: {exc}") from None
    kept: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "@")):
            kept.append(line)
            continue
        patterns, _, rest = stripped.partition(" ")
        if not _line_matches(stripped, address, port):
            kept.append(line)
            continue
        others = [p for p in patterns.split(",") if not _line_matches(f"{p} {rest}", address, port)]
        if others:
            kept.append(f"{','.join(others)} {rest}")
    kept.append(f"{known_hosts_pattern(address, port)} {key_line}")
    try:
        _write_atomic(known_hosts, "\n".join(kept) + "\n")
    except OSError as exc:
        raise CollectError(f"known_hosts file {known_hosts} cannot be written: {exc}") from None
