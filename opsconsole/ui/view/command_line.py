"""Command mode (`:`), k9s style: a verb and an optional argument.

Parsing is pure so it can be tested without a terminal; the app decides what each verb
does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

VERBS: dict[str, str] = {
    "fleet": "show the fleet view",
    "host": "open a host: host NAME",
    "metric": "colour GPU cells by: util temp power memory health",
    "sort": "sort the fleet by a column: sort COLUMN [asc|desc]",
    "filter": "filter the fleet: filter EXPRESSION (empty clears)",
    "reconnect": "drop and reopen a host's SSH connection: reconnect [NAME]",
    "leases": "leases and the calendar: leases [TENANT|all]",
    "allocate": "allocate GPUs to a tenant: allocate [TENANT]",
    "alerts": "alerts by severity: ack, silence, resolve",
    "capacity": "capacity bottlenecks, power, fabric and the lease runway",
    "replay": "the fleet as it was, read-only: replay TIME (2026-12-01T03:10Z, -2h)",
    "help": "list every key and command",
    "quit": "leave the console",
}
ALIASES = {
    "f": "fleet",
    "h": "host",
    "q": "quit",
    "q!": "quit",
    "?": "help",
    "hosts": "fleet",
    "lease": "leases",
    "l": "leases",
    "a": "alerts",
    "alert": "alerts",
    "c": "capacity",
}


@dataclass(frozen=True, slots=True)
class Command:
    verb: str
    argument: str = ""


class CommandError(ValueError):
    pass


def parse_command(text: str) -> Command:
    text = text.strip().lstrip(":").strip()
    if not text:
        raise CommandError("empty command")
    verb, _, argument = text.partition(" ")
    verb = ALIASES.get(verb.lower(), verb.lower())
    if verb not in VERBS:
        raise CommandError(f"unknown command :{verb} (try :help)")
    argument = argument.strip()
    if verb == "host" and not argument:
        raise CommandError(":host needs a host name")
    return Command(verb, argument)


def command_suggestions(host_names: list[str], tenant_names: Sequence[str] = ()) -> list[str]:
    """Completions offered while typing in command mode."""
    return [
        *VERBS,
        *(f"host {name}" for name in host_names),
        *(f"metric {m}" for m in ("util", "temp", "power", "memory", "health")),
        *(f"leases {name}" for name in tenant_names),
        *(f"allocate {name}" for name in tenant_names),
    ]
