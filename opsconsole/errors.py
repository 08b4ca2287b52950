"""One error type per layer, each with a message fit to show an operator as one line."""


class OpsconsoleError(Exception):
    """Base of every error the CLI prints as a single line instead of a traceback.

    `code` says what kind of failure it is, for scripts (`--json` prints it, and it picks
    the exit status): `failed` (1), `usage` (2), `not_found` (3), `refused` (4). A raise
    site may pass `code=` to say more than its class does."""

    code = "failed"

    def __init__(self, *args: object, code: str | None = None):
        super().__init__(*args)
        if code is not None:
            self.code = code


class ConfigError(OpsconsoleError):
    """The configuration file is unreadable or invalid; names the file and key path."""

    code = "config"


class StoreError(OpsconsoleError):
    """The SQLite store cannot be opened, migrated or written."""


class CollectError(OpsconsoleError):
    """Collection could not start (not a per-host fault: those are host states)."""


class SimError(OpsconsoleError):
    """The simulated fleet could not be started."""


class LeaseError(OpsconsoleError):
    """A tenant, lease, drain or audit request cannot be honoured; nothing was written."""

    code = "refused"


class AlertError(OpsconsoleError):
    """An alert, acknowledgement or silence request cannot be honoured; nothing was written."""

    code = "refused"


class CapacityError(OpsconsoleError):
    """A capacity request that cannot be answered (unknown site, bad window); one line."""


class ReportError(OpsconsoleError):
    """A report, export, key or signature that cannot be made or does not verify; one line."""


class ValidateError(OpsconsoleError):
    """A validation run that cannot start (leased GPUs, unknown host, bad level); one line."""
