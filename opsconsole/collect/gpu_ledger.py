"""GPUs a host reports beyond its configured count: noted by the poller, accepted by an
operator, and the acceptance kept across restarts.

Why a file: the decision must reach a running poller (in the console or in `poll`) from
another process (`opsconsole hosts accept-gpus`) within a second and survive a restart,
whatever the store is doing. Like the host-key ledger, the poller writes what it saw
(reported count, the extra UUIDs) and the operator's command writes the acceptance, both
whole through a rename under an advisory lock; the audit row is written first, in the
same store transaction (`opsconsole.leases.host_gpus`). The file sits beside the store's
database (`opsconsole.db.gpus.json`): host keys may be left to ~/.ssh, GPUs are ours.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from opsconsole.collect.host_keys import _write_atomic, changed_since
from opsconsole.config import Fleet
from opsconsole.errors import CollectError

LEDGER_VERSION = 1
UUIDS_KEPT = 64
"""Extra UUIDs written per host: a host claiming 10,000 GPUs does not grow the file."""
NOTE_EVERY_S = 10.0
"""A host whose report keeps changing is written back at most this often."""


@dataclass(frozen=True)
class ExtraGpus:
    """What a host reported beyond its accepted count, waiting for an operator."""

    host: str
    configured: int
    accepted: int
    reported: int
    extra_uuids: tuple[str, ...]
    seen_ts: float

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["extra_uuids"] = list(self.extra_uuids)
        return out


@dataclass(frozen=True)
class GpuAcceptance:
    """An operator's decision: this host really has `accepted` GPUs."""

    host: str
    accepted: int
    uuids: tuple[str, ...]
    operator: str
    comment: str
    ts: float

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["uuids"] = list(self.uuids)
        return out


def gpu_ledger_path(fleet: Fleet) -> Path:
    db = fleet.store_path
    return db.with_name(db.name + ".gpus.json")


@dataclass
class GpuLedger:
    """The pending and accepted extra GPUs of every host, re-read when the file changes."""

    path: Path
    pending: dict[str, ExtraGpus] = field(default_factory=dict)
    accepted: dict[str, GpuAcceptance] = field(default_factory=dict)
    _mtime_ns: int | None = None
    _noted_ts: dict[str, float] = field(default_factory=dict)

    @classmethod
    def for_fleet(cls, fleet: Fleet) -> GpuLedger:
        return cls(gpu_ledger_path(fleet))

    def refresh(self) -> bool:
        """Re-read the file if it changed since last read; returns whether it did."""
        changed, mtime = changed_since(self.path, self._mtime_ns)
        if not changed:
            return False
        self.pending, self.accepted = self._read()
        self._mtime_ns = mtime
        return True

    def accepted_count(self, host: str) -> int | None:
        decision = self.accepted.get(host)
        return decision.accepted if decision is not None else None

    def _read(self) -> tuple[dict[str, ExtraGpus], dict[str, GpuAcceptance]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, {}
        except (OSError, ValueError) as exc:
            raise CollectError(f"GPU ledger {self.path} cannot be read: {exc}") from None
        try:
            pending = {
                n: ExtraGpus(**{**p, "extra_uuids": tuple(p["extra_uuids"])})
                for n, p in raw.get("pending", {}).items()
            }
            accepted = {
                n: GpuAcceptance(**{**a, "uuids": tuple(a["uuids"])})
                for n, a in raw.get("accepted", {}).items()
            }
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CollectError(f"GPU ledger {self.path} is damaged: {exc!r}") from None
        return pending, accepted

    @contextlib.contextmanager
    def _locked(self) -> Iterator[tuple[dict[str, ExtraGpus], dict[str, GpuAcceptance]]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                pending, accepted = self._read()
                yield pending, accepted
                body = {
                    "version": LEDGER_VERSION,
                    "pending": {n: p.as_dict() for n, p in sorted(pending.items())},
                    "accepted": {n: a.as_dict() for n, a in sorted(accepted.items())},
                }
                try:
                    _write_atomic(self.path, json.dumps(body, indent=2) + "\n")
                except OSError as exc:
                    raise CollectError(f"GPU ledger {self.path} cannot be written: {exc}") from None
                self.pending, self.accepted = pending, accepted
                self._mtime_ns = self.path.stat().st_mtime_ns
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def note(self, extra: ExtraGpus | None, host: str, now_ts: float) -> None:
        """The poller's report for `host` (None: nothing beyond the accepted count).
        Written only when it differs from the file, and at most every NOTE_EVERY_S."""
        current = self.pending.get(host)
        if extra is not None:
            extra = ExtraGpus(
                extra.host,
                extra.configured,
                extra.accepted,
                extra.reported,
                extra.extra_uuids[:UUIDS_KEPT],
                extra.seen_ts,
            )
        same = (current is None and extra is None) or (
            current is not None
            and extra is not None
            and (current.reported, current.accepted, current.extra_uuids)
            == (extra.reported, extra.accepted, extra.extra_uuids)
        )
        if same or now_ts - self._noted_ts.get(host, -NOTE_EVERY_S) < NOTE_EVERY_S:
            return
        self._noted_ts[host] = now_ts
        with self._locked() as (pending, _):
            if extra is None:
                pending.pop(host, None)
            else:
                pending[host] = extra

    def accept(
        self,
        host: str,
        *,
        operator: str,
        comment: str,
        now_ts: float,
        reported: int | None = None,
    ) -> GpuAcceptance:
        """Accept what `host` reported last: its pending entry becomes the accepted count.
        With `reported`, refused if the host's report changed since the operator saw it."""
        with self._locked() as (pending, accepted):
            extra = pending.pop(host, None)
            if extra is None:
                raise CollectError(f"host {host}: reports no GPUs beyond those accepted")
            if reported is not None and extra.reported != reported:
                raise CollectError(
                    f"host {host}: now reports {extra.reported} GPUs, not {reported}; look again"
                )
            earlier = accepted.get(host)
            uuids = (earlier.uuids if earlier is not None else ()) + extra.extra_uuids
            decision = GpuAcceptance(
                host, extra.reported, uuids[:UUIDS_KEPT], operator, comment, now_ts
            )
            accepted[host] = decision
        return decision
