"""The tenant report as a PDF: one summary page (with the audit head and the signer's key),
then the detail tables one after another (headings repeat on every page a table spills
onto), then the method.

Drawn with fpdf2 (pure Python, actively maintained, real tables with wrapping cells and
repeated headings); see ARCHITECTURE.md, "Libraries and why". The built-in Helvetica
covers Latin-1 only, so text is folded to it (arrows and ellipses become ASCII) rather
than shipping a font file.
"""

from __future__ import annotations

from typing import Any

from fpdf import FPDF
from fpdf.fonts import FontFace

from opsconsole.report.tables import detail_tables, summary_lines

_FOLD = {"→": "->", "…": "...", "—": "-", "–": "-", "×": "x"}


def _latin1(text: object) -> str:
    value = str(text)
    for wide, narrow in _FOLD.items():
        value = value.replace(wide, narrow)
    return value.encode("latin-1", "replace").decode("latin-1")


class _ReportPdf(FPDF):
    def __init__(self, title: str) -> None:
        super().__init__(orientation="landscape", unit="mm", format="A4")
        self.report_title = title
        self.set_auto_page_break(auto=True, margin=12)
        self.set_margins(10, 10, 10)

    def footer(self) -> None:
        self.set_y(-9)
        self.set_font("Helvetica", size=7)
        self.cell(0, 5, _latin1(f"{self.report_title} - page {self.page_no()}/{{nb}}"), align="C")


def render_pdf(report: dict[str, Any]) -> bytes:
    """The PDF's bytes for a (signed or unsigned) report dict."""
    title = f"Tenant report: {report['tenant']['name']}"
    pdf = _ReportPdf(_latin1(title))
    pdf.alias_nb_pages()
    pdf.set_title(_latin1(title))
    pdf.set_creator("opsconsole")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    period = report["period"]
    pdf.cell(
        0,
        6,
        _latin1(f"Period {period['from']} to {period['to']} (UTC)"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(2)
    with pdf.table(
        col_widths=(70, 207), first_row_as_headings=False, line_height=5.5, text_align="LEFT"
    ) as table:
        for key, value in summary_lines(report):
            row = table.row()
            row.cell(_latin1(key), style=FontFace(emphasis="BOLD"))
            row.cell(_latin1(value))
    pdf.add_page()
    for table_data in detail_tables(report):
        if pdf.get_y() > pdf.eph - 20:  # a heading alone at the foot of a page
            pdf.add_page()
        pdf.ln(3)
        pdf.set_font("Helvetica", "B", 12)
        pdf.cell(0, 8, _latin1(table_data.title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=7)
        if not table_data.rows:
            pdf.cell(0, 6, "(none)", new_x="LMARGIN", new_y="NEXT")
            continue
        with pdf.table(
            col_widths=table_data.widths, line_height=4, text_align="LEFT", repeat_headings=1
        ) as table:
            table.row([_latin1(h) for h in table_data.headers])
            for values in table_data.rows:
                table.row([_latin1(v) for v in values])
    pdf.set_font("Helvetica", size=8)
    pdf.ln(4)
    pdf.multi_cell(0, 4, _latin1("Method: " + report["method"]))
    return bytes(pdf.output())
