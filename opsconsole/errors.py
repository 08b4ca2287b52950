"""One error type per layer, each with a message fit to show an operator as one line."""


class OpsconsoleError(Exception):
    """Base of every error the CLI prints as a single line instead of a traceback."""


class ConfigError(OpsconsoleError):
    """The configuration file is unreadable or invalid; names the file and key path."""


class StoreError(OpsconsoleError):
    """The SQLite store cannot be opened, migrated or written."""


class CollectError(OpsconsoleError):
    """Collection could not start (not a per-host fault: those are host states)."""


class SimError(OpsconsoleError):
    """The simulated fleet could not be started."""


class LeaseError(OpsconsoleError):
    """A tenant, lease, drain or audit request cannot be honoured; nothing was written."""


class AlertError(OpsconsoleError):
    """An alert, acknowledgement or silence request cannot be honoured; nothing was written."""


class CapacityError(OpsconsoleError):
    """A capacity request that cannot be answered (unknown site, bad window); one line."""


class ValidateError(OpsconsoleError):
    """A validation run that cannot start (leased GPUs, unknown host, bad level); one line."""
