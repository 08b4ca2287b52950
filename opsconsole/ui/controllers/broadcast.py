"""Tell every screen on the stack that a board changed (leases, alerts), so screens
under a dialog are current when it closes."""

from __future__ import annotations

from textual.app import App
from textual.css.query import NoMatches


def tell_screens(app: App, method: str, changed_hosts: set[str]) -> None:
    """Call `method(changed_hosts)` on every screen that has it."""
    for screen in app.screen_stack:
        redraw = getattr(screen, method, None)
        if redraw is None:
            continue
        try:
            redraw(changed_hosts)
        except NoMatches:
            pass  # the screen is being taken down as the board arrived
