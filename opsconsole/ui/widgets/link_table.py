"""InfiniBand ports and Ethernet interfaces of the host view: state, speed, traffic and
error rates over the counter window. Rates of a host that is not fresh are not shown."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from opsconsole.ui.view.readings_text import DIM, same_row, same_text
from opsconsole.ui.view.snapshot import HostDetail, LinkView

COLUMNS = (
    ("link", "LINK", 10),
    ("state", "STATE", 7),
    ("phys", "PHYS", 7),
    ("speed", "SPEED", 5),
    ("rx", "RX Gb/s", 7),
    ("tx", "TX Gb/s", 7),
    ("errors", "ERR/s", 6),
    ("drops", "DROP/s", 6),
    ("window", "AVG OVER", 8),
)
"""Rates are averages over the counter window (AVG OVER, up to 30 s): a short burst of
errors shows as a smaller rate for longer, never as a one-poll spike."""
GOOD_STATES = {"ACTIVE", "up"}


def _rate(value: float | None, live: bool, alarm: bool = False) -> Text:
    if not live or value is None:
        return Text("—", DIM)
    if alarm and value > 0:
        return Text(f"{value:.2f}", "bold #ff5f5f")
    return Text(f"{value:.1f}")


def link_row(link: LinkView) -> tuple[Text, ...]:
    state_style = ("" if link.state in GOOD_STATES else "bold #ff5f5f") if link.live else DIM
    return (
        Text(link.name),
        Text(link.state, state_style),
        Text(link.phys_state[:7], DIM if not link.live else ""),
        Text("—" if link.speed_gbps is None else f"{link.speed_gbps:g}G", "" if link.live else DIM),
        _rate(link.rx_gbps, link.live),
        _rate(link.tx_gbps, link.live),
        _rate(link.errors_per_s, link.live, alarm=True),
        _rate(link.drops_per_s, link.live, alarm=True) if link.kind == "eth" else Text(""),
        Text(f"{link.window_s:.0f}s" if link.live else "—", DIM),
    )


class LinkTable(DataTable[Text | str]):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(cursor_type="none", zebra_stripes=True, id=id)
        self._shown: dict[str, tuple[Text, ...]] = {}

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)

    def show(self, detail: HostDetail | None) -> None:
        links = detail.links if detail is not None else ()
        rows = {f"{link.kind}:{link.name}": link_row(link) for link in links}
        with self.app.batch_update():
            for key in [k for k in self._shown if k not in rows]:
                self.remove_row(key)
                del self._shown[key]
            for key, cells in rows.items():
                old = self._shown.get(key)
                if old is None:
                    self.add_row(*cells, key=key)
                elif not same_row(old, cells):
                    for (column, _, _), new, was in zip(COLUMNS, cells, old, strict=True):
                        if not same_text(new, was):
                            self.update_cell(key, column, new)
                self._shown[key] = cells
