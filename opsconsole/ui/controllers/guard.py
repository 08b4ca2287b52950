"""The read-only guard: every action that changes something outside the screen (asks the
poller to reconnect, later: acknowledges alerts, places leases) is wrapped by
`changes_state`, so keys, command mode, the command palette and dialogs all pass the
same check, and a NOC wall console says why it refused instead of silently ignoring.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

F = TypeVar("F", bound=Callable[..., Any])

STATE_CHANGING_ACTIONS: dict[str, str] = {}
"""Action method name -> what it does, for help and the palette."""


def changes_state(what: str) -> Callable[[F], F]:
    """Mark a method of a Screen, Widget, App or controller as changing state; refused in
    read-only (a controller is asked through its `app`)."""

    def decorate(method: F) -> F:
        STATE_CHANGING_ACTIONS[method.__name__] = what
        if inspect.iscoroutinefunction(method):

            @functools.wraps(method)
            async def guarded_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                if _refused(self, what):
                    return None
                return await method(self, *args, **kwargs)

            guarded_async.changes_state = what  # type: ignore[attr-defined]
            return cast(F, guarded_async)

        @functools.wraps(method)
        def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
            if _refused(self, what):
                return None
            return method(self, *args, **kwargs)

        guarded.changes_state = what  # type: ignore[attr-defined]
        return cast(F, guarded)

    return decorate


def _refused(node: Any, what: str) -> bool:
    app = node if hasattr(node, "read_only") else node.app
    if app.read_only:
        app.refuse_read_only(what)
        return True
    return False


def is_state_changing(method: Callable[..., object]) -> bool:
    return hasattr(method, "changes_state")
