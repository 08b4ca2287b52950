"""The bottom line of every screen: the keys of the screen in view and what each does
there, `q Quit` among them.

Why not Textual's Footer: it recomposes a widget per key each time the bindings change
(every screen switch and focus move: six recomposes per host view opened, about a third
of the 0.4 s that took on a loaded machine). This is one Static whose text is rebuilt
from the same `active_bindings` and redrawn only when it changed.
"""

from __future__ import annotations

from rich.text import Text
from textual.screen import Screen
from textual.widgets import Static

KEY_STYLE = "bold #ffd75f"
WORD_STYLE = "#d0d0d0"


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar { dock: bottom; height: 1; width: 1fr; background: $footer-background; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._shown: str | None = None

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self.bindings_changed)
        self.call_after_refresh(self.bindings_changed, self.screen)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def on_resize(self) -> None:
        self._shown = None  # the palette hint sits at the right edge
        self.bindings_changed(self.screen)

    def bindings_changed(self, screen: Screen[object]) -> None:
        if not self.is_attached or screen is not self.screen:
            return
        text = self.keys_text()
        if text.plain != self._shown:
            self._shown = text.plain
            self.update(text)

    def keys_text(self) -> Text:
        """ "⏎ Open or fold / Filter … q Quit …" in the order the bindings resolve:
        focused widget, screen, then the app's."""
        app = self.app
        text = Text(no_wrap=True, overflow="ellipsis")
        seen: set[str] = set()
        palette = None
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if key == app.COMMAND_PALETTE_BINDING:
                palette = binding
                continue
            if not binding.show or binding.action in seen:
                continue
            seen.add(binding.action)
            style = KEY_STYLE if active.enabled else "#6c6c6c"
            text.append(" ")
            text.append(app.get_key_display(binding), style)
            text.append(f" {binding.description}", WORD_STYLE if active.enabled else "#6c6c6c")
        if palette is not None and app.ENABLE_COMMAND_PALETTE:
            hint = Text.assemble(
                (app.get_key_display(palette), KEY_STYLE), (f" {palette.description} ", WORD_STYLE)
            )
            room = (self.size.width or 120) - text.cell_len - hint.cell_len
            if room >= 2:  # the screen's own keys come first; the palette hint if it fits
                text.append(" " * room)
                text.append_text(hint)
        return text
