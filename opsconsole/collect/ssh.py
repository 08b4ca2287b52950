"""SSH connections to the fleet: one set of options built once, one shared bastion tunnel,
and connection failures classified into the few reasons an operator acts on.

Why options are built once: asyncssh re-reads a `known_hosts` path and identity files on
every connect when given paths, which at 1,000 hosts is 1,000 parses of the same files.
Parsed objects are passed instead. The OpenSSH client config is the exception: its `Host`
blocks match per host, so its path is handed to each connect (a small file, read at
connect time only).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from opsconsole.collect.host_keys import KeyLedger, key_fingerprint, ledger_path_for
from opsconsole.collect.reasons import (  # noqa: F401 - re-exported for callers
    AGENT_ERROR,
    AUTH_REFUSED,
    CONNECTION_LOST,
    HOST_KEY_CHANGED,
    HOST_KEY_UNKNOWN,
    PROTOCOL_ERROR,
    REFUSED,
    SECURITY_REASONS,
    TIMEOUT,
    UNREACHABLE,
)
from opsconsole.config import Host, SshSettings
from opsconsole.errors import CollectError

log = logging.getLogger("opsconsole.collect")

_UNREACHABLE_ERRNOS = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN, errno.ENONET}


@dataclass(frozen=True, slots=True)
class ConnectFailure(Exception):
    """Why a host could not be reached, as a short `reason` plus the library's `detail`."""

    reason: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}" if self.detail else self.reason

    @property
    def retry_slowly(self) -> bool:
        return self.reason in SECURITY_REASONS


def classify_failure(
    exc: BaseException, known_hosts: object = None, host: Host | None = None
) -> ConnectFailure:
    """Map an exception from connecting (or from a live connection) to a ConnectFailure."""
    if isinstance(exc, ConnectFailure):
        return exc
    detail = str(exc).strip() or type(exc).__name__
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        reason = HOST_KEY_CHANGED
        if isinstance(known_hosts, asyncssh.SSHKnownHosts) and host is not None:
            trusted = known_hosts.match(host.address, "", host.port)
            if not any(trusted[:2]):
                reason = HOST_KEY_UNKNOWN
        return ConnectFailure(reason, detail)
    if isinstance(exc, asyncssh.PermissionDenied):
        return ConnectFailure(AUTH_REFUSED, detail)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return ConnectFailure(TIMEOUT, detail if detail != "TimeoutError" else "")
    if isinstance(exc, ConnectionRefusedError):
        return ConnectFailure(REFUSED, detail)
    if isinstance(exc, asyncssh.ChannelOpenError):
        # Through a bastion the TCP connect is the bastion's, reported only as text.
        lowered = detail.lower()
        if "refused" in lowered:
            return ConnectFailure(REFUSED, detail)
        return ConnectFailure(UNREACHABLE, detail)
    if isinstance(exc, asyncssh.ConnectionLost | ConnectionResetError | BrokenPipeError):
        return ConnectFailure(CONNECTION_LOST, detail)
    if isinstance(exc, asyncssh.DisconnectError):
        return ConnectFailure(PROTOCOL_ERROR, detail)
    if isinstance(exc, socket.gaierror):
        return ConnectFailure(UNREACHABLE, f"name lookup failed: {detail}")
    if isinstance(exc, OSError) and exc.errno in _UNREACHABLE_ERRNOS:
        return ConnectFailure(UNREACHABLE, detail)
    if isinstance(exc, OSError):
        # A name with IPv4 and IPv6 addresses fails with one OSError listing every try.
        if exc.errno is None and f"[Errno {errno.ECONNREFUSED}]" in detail:
            return ConnectFailure(REFUSED, detail)
        if exc.errno is None and f"[Errno {errno.ETIMEDOUT}]" in detail:
            return ConnectFailure(TIMEOUT, detail)
        return ConnectFailure(UNREACHABLE, detail)
    if isinstance(exc, asyncssh.Error):
        return ConnectFailure(PROTOCOL_ERROR, detail)
    return ConnectFailure(PROTOCOL_ERROR, f"{type(exc).__name__}: {detail}")


def _expand(path: str, base_dir: Path) -> Path:
    expanded = Path(os.path.expanduser(path))
    return expanded if expanded.is_absolute() else base_dir / expanded


def _read_known_hosts(
    ssh: SshSettings, base_dir: Path
) -> asyncssh.SSHKnownHosts | tuple[()] | None:
    """Parsed known_hosts; None only for the explicit insecure opt-out; () leaves the choice
    to the OpenSSH client config (UserKnownHostsFile), checked per host at connect."""
    if ssh.accept_unknown_host_keys_insecure:
        log.warning("host keys are NOT checked (accept_unknown_host_keys_insecure)")
        return None
    if ssh.known_hosts is None:
        return ()
    path = _expand(ssh.known_hosts, base_dir)
    try:
        return asyncssh.read_known_hosts(str(path))
    except FileNotFoundError:
        raise CollectError(f"known_hosts file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise CollectError(f"known_hosts file {path} cannot be read: {exc}") from None


def key_ledger_for(ssh: SshSettings, base_dir: Path) -> KeyLedger | None:
    """Where refused host keys wait for an operator: beside the known_hosts file (or the
    config when known_hosts is left to the OpenSSH config); none when keys are not checked."""
    if ssh.accept_unknown_host_keys_insecure:
        return None
    if ssh.known_hosts is None:
        return KeyLedger(base_dir / "known_hosts.changed", None)
    known_hosts = _expand(ssh.known_hosts, base_dir)
    return KeyLedger(ledger_path_for(known_hosts), known_hosts)


class _Witness(asyncssh.SSHClient):
    """Sees what a connect attempt got before it failed: whether TCP connected, and the
    host key asyncssh refused (it raises without saying which key it was offered)."""

    def __init__(self) -> None:
        self.conn: asyncssh.SSHClientConnection | None = None
        self.refused_key: asyncssh.SSHKey | None = None

    def connection_made(self, conn: asyncssh.SSHClientConnection) -> None:
        self.conn = conn

    def validate_host_public_key(
        self, host: str, addr: str, port: int, key: asyncssh.SSHKey
    ) -> bool:
        self.refused_key = key  # called only for a key known_hosts does not trust
        return False

    def banner_missing(self) -> bool:
        return self.conn is not None and self.conn.get_extra_info("server_version") is None


def _ssh_config_paths(ssh: SshSettings, base_dir: Path) -> list[str]:
    if not ssh.use_ssh_config:
        return []
    if ssh.ssh_config_path is not None:
        path = _expand(ssh.ssh_config_path, base_dir)
        if not os.access(path, os.R_OK):
            raise CollectError(f"ssh config file {path} cannot be read")
        return [str(path)]
    default = Path("~/.ssh/config").expanduser()
    return [str(default)] if os.access(default, os.R_OK) else []


class SshConnector:
    """Opens SSH connections to hosts with options prepared once, through one shared bastion
    connection when `proxy_jump` is set. (A ProxyJump in the OpenSSH config is honoured
    too, but asyncssh then opens one bastion connection per host: set ssh.proxy_jump.)"""

    def __init__(self, ssh: SshSettings, base_dir: Path):
        self.settings = ssh
        self._base_dir = base_dir
        self.known_hosts = _read_known_hosts(ssh, base_dir)
        self.config_paths = _ssh_config_paths(ssh, base_dir)
        options: dict[str, object] = {
            "agent_forwarding": False,
            "x11_forwarding": False,
            "connect_timeout": ssh.connect_timeout_s,
            "keepalive_interval": ssh.keepalive_interval_s,
            "keepalive_count_max": ssh.keepalive_count_max,
            "config": [],  # evaluated per host at connect, see the module docstring
        }
        if self.known_hosts != ():
            options["known_hosts"] = self.known_hosts
        if ssh.identity_files:
            paths = [str(_expand(p, base_dir)) for p in ssh.identity_files]
            try:
                options["client_keys"] = asyncssh.load_keypairs(paths)
            except (OSError, asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
                raise CollectError(f"identity file cannot be loaded: {exc}") from None
        try:
            self.options = asyncssh.SSHClientConnectionOptions(**options)
        except (OSError, ValueError, asyncssh.Error) as exc:
            raise CollectError(f"SSH options are invalid: {exc}") from None
        self._bastion = _BastionTunnel(self, ssh.proxy_jump) if ssh.proxy_jump else None
        self._checked: set[tuple[str, int]] = set()
        self.key_ledger = key_ledger_for(ssh, base_dir)
        self._known_hosts_mtime_ns = self._known_hosts_mtime()
        self.refresh_trust()

    def _known_hosts_mtime(self) -> int | None:
        if not isinstance(self.known_hosts, asyncssh.SSHKnownHosts):
            return None
        assert self.settings.known_hosts is not None
        try:
            return _expand(self.settings.known_hosts, self._base_dir).stat().st_mtime_ns
        except OSError:
            return None

    def refresh_trust(self) -> bool:
        """Pick up decisions taken by another process (`opsconsole hosts trust-key`): the
        ledger and known_hosts are re-read when their files changed. Returns whether the
        ledger changed. A damaged ledger keeps the copy read before (and says so)."""
        mtime = self._known_hosts_mtime()
        if mtime != self._known_hosts_mtime_ns:
            self._known_hosts_mtime_ns = mtime
            self.reload_known_hosts()
        if self.key_ledger is None:
            return False
        try:
            return self.key_ledger.refresh()
        except CollectError as exc:
            log.error("%s; keeping the copy read earlier", exc)
            return False

    def reload_known_hosts(self) -> None:
        """Re-read known_hosts (an operator fixed an entry and asked to reconnect); on a
        read error the previous copy stays in use."""
        if not isinstance(self.known_hosts, asyncssh.SSHKnownHosts):
            return
        try:
            self.known_hosts = _read_known_hosts(self.settings, self._base_dir)
        except CollectError as exc:
            log.warning("%s; keeping the known_hosts read earlier", exc)
            return
        self.options = asyncssh.SSHClientConnectionOptions(
            self.options, known_hosts=self.known_hosts
        )

    async def connect(self, host: Host) -> asyncssh.SSHClientConnection:
        """Connect and authenticate, or raise ConnectFailure with a classified reason."""
        tunnel: object = ()
        if self._bastion is not None:
            tunnel = await self._bastion.connection()
        self.refresh_trust()
        witness = _Witness()
        try:
            conn = await self._open(host.address, host.port, host.user, tunnel, witness)
        except ConnectFailure:
            raise
        except Exception as exc:
            failure = classify_failure(exc, self.known_hosts, host)
            if self._bastion is not None and isinstance(exc, asyncssh.ChannelOpenError):
                failure = ConnectFailure(failure.reason, f"via bastion: {failure.detail}")
            raise self._explain(failure, host, witness) from None
        self._refuse_pending_key(host, conn)
        return conn

    def _explain(self, failure: ConnectFailure, host: Host, witness: _Witness) -> ConnectFailure:
        """Say what the attempt saw: a silent peer after TCP connected, or the key refused
        (remembered in the ledger until an operator decides)."""
        if failure.reason == TIMEOUT and witness.conn is not None:
            timeout_s = self.settings.connect_timeout_s
            if witness.banner_missing():
                return ConnectFailure(TIMEOUT, f"TCP connected, no SSH banner in {timeout_s:g} s")
            return ConnectFailure(
                TIMEOUT, f"SSH banner received, handshake not finished in {timeout_s:g} s"
            )
        if failure.reason != HOST_KEY_CHANGED or witness.refused_key is None:
            return failure
        if self.key_ledger is None:
            return failure
        trusted = (
            self.known_hosts.match(host.address, "", host.port)[0]
            if isinstance(self.known_hosts, asyncssh.SSHKnownHosts)
            else []
        )
        try:
            change = self.key_ledger.note(
                host.name,
                host.address,
                host.port,
                witness.refused_key,
                [key_fingerprint(k) for k in trusted],
                time.time(),
            )
        except (CollectError, OSError) as exc:
            log.error("%s: changed host key not remembered: %s", host.name, exc)
            offered = key_fingerprint(witness.refused_key)
            return ConnectFailure(HOST_KEY_CHANGED, f"offered {offered}; {failure.detail}")
        if change is None:  # trusted meanwhile: the next attempt uses the new known_hosts
            self.refresh_trust()
            return ConnectFailure(HOST_KEY_CHANGED, "key trusted meanwhile; reconnecting")
        return ConnectFailure(HOST_KEY_CHANGED, change.describe())

    def _refuse_pending_key(self, host: Host, conn: asyncssh.SSHClientConnection) -> None:
        """A key still waiting for an operator is never used, even if someone added it to
        known_hosts by hand: only trust-key (audited) lets the poller use it."""
        change = self.key_ledger.get(host.name) if self.key_ledger is not None else None
        if change is None:
            return
        key = conn.get_server_host_key()
        if key is not None and key_fingerprint(key) == change.new_fingerprint:
            conn.close()
            raise ConnectFailure(
                HOST_KEY_CHANGED, f"{change.describe()}; not trusted by an operator yet"
            )

    async def _open(
        self,
        address: str,
        port: int,
        user: str | None,
        tunnel: object,
        witness: _Witness | None = None,
    ) -> asyncssh.SSHClientConnection:
        kwargs: dict[str, Any] = {"config": self.config_paths}
        if witness is not None:
            kwargs["client_factory"] = lambda: witness
        if user:
            kwargs["username"] = user
        if self.known_hosts == () and (address, port) not in self._checked:
            await self._refuse_unchecked_host_keys(address, port, kwargs)
        return await asyncssh.connect(address, port, options=self.options, tunnel=tunnel, **kwargs)

    async def _refuse_unchecked_host_keys(
        self, address: str, port: int, kwargs: dict[str, Any]
    ) -> None:
        """With known_hosts left to the OpenSSH config, `UserKnownHostsFile none` there
        would silently turn host-key checking off; only the explicit opt-out may do that."""
        options = await asyncio.to_thread(
            asyncssh.SSHClientConnectionOptions, self.options, host=address, port=port, **kwargs
        )
        if options.known_hosts is None:
            raise ConnectFailure(
                HOST_KEY_UNKNOWN,
                "the ssh config disables host-key checking for this host; set ssh.known_hosts",
            )
        self._checked.add((address, port))

    async def close(self) -> None:
        if self._bastion is not None:
            await self._bastion.close()


class _BastionTunnel:
    """One connection to the bastion that carries every host's channel: opening 1,000
    connections to one jump host is exactly the storm MaxStartups exists to drop."""

    def __init__(self, connector: SshConnector, spec: str):
        self._connector = connector
        user, _, rest = spec.rpartition("@")
        host, _, port = rest.partition(":")
        self.user = user or None
        self.address = host
        self.port = int(port) if port else 22
        self._conn: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()
        self._failure: ConnectFailure | None = None
        self._failed_at = 0.0

    async def connection(self) -> asyncssh.SSHClientConnection:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return self._conn
            retry_after_s = self._connector.settings.connect_timeout_s
            if self._failure is not None and time.monotonic() - self._failed_at < retry_after_s:
                raise self._failure  # one bastion attempt per period, not one per host
            try:
                self._conn = await self._connector._open(self.address, self.port, self.user, ())
            except Exception as exc:
                failure = classify_failure(exc)
                self._failure = ConnectFailure(failure.reason, f"bastion {self.address}: {failure}")
                self._failed_at = time.monotonic()
                self._conn = None
                raise self._failure from None
            self._failure = None
            log.info("bastion %s connected", self.address)
            return self._conn

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            await self._conn.wait_closed()
            self._conn = None


def measure_rtt_ms_supported(conn: asyncssh.SSHClientConnection) -> bool:
    return hasattr(conn, "_make_global_request")


async def measure_rtt_ms(conn: asyncssh.SSHClientConnection, timeout_s: float) -> float | None:
    """Round trip of an OpenSSH keepalive request on the live connection.

    asyncssh has no public call for this; its own keepalive uses `_make_global_request`.
    Any reply (success or failure) is a round trip. None if unsupported or timed out."""
    if not measure_rtt_ms_supported(conn):
        return None
    start = time.perf_counter()
    try:
        async with asyncio.timeout(timeout_s):
            await conn._make_global_request(b"keepalive@openssh.com")
    except (TimeoutError, asyncssh.Error, OSError):
        return None
    return (time.perf_counter() - start) * 1000.0
