"""Active validation of nodes: the tools' own output parsed (`parsers`), judged against
thresholds per host class (`judge`, `settings`), run over SSH (`runner`), stored with raw
output (`store`), and handed to the leases layer, which owns node handover states
(`service`); cleaning after leases and scheduled checks (`schedule`). No Textual.

Sits above `opsconsole.leases` (holds, passes, drains, audit go through its functions);
the leases layer never imports this package (import-linter contract).
"""
