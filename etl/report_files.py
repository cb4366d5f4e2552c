"""A report (:class:`maps.reports.Report`) as an XLSX workbook (openpyxl) or a printable HTML page (A4).

Both show the same cells, each through :func:`cell_text` and so through
:func:`geodata.text.safe_cell` (no cell can be a formula); a hidden count is
the text of :data:`maps.reports.HIDDEN`, never a number. The coverage map is a
PNG (:mod:`etl.report_map`), embedded in the page and inserted in the workbook.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from etl.report_map import NO_DATA, class_colours, coverage_png
from geodata.text import nfc, safe_cell
from maps.reports import Hidden, Report, Section

FORMATS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "html": "text/html; charset=utf-8"}
ROLE_NAMES = {"officer": "cán bộ (officer)", "leader": "lãnh đạo (leader)", "planner": "quy hoạch (planner)",
              "police_analyst": "công an (police analyst)"}


def cell_text(value: Any) -> Any:
    """A report cell as written: numbers stay numbers, text is NFC and cannot be a formula, hidden counts are words.

    >>> cell_text(12), cell_text(None), cell_text("=1+2"), cell_text(Hidden()), cell_text(0.8456)
    (12, '', "'=1+2", 'ẩn (hidden)', 0.8456)
    """
    if value is None:
        return ""
    if isinstance(value, Hidden):
        return str(value)
    if isinstance(value, str):
        return safe_cell(nfc(value))
    return safe_cell(value)


def hex_colour(rgb: tuple[int, int, int]) -> str:
    """``(215, 48, 39)`` as ``D73027``.

    >>> hex_colour((215, 48, 39))
    'D73027'
    """
    return "".join(f"{c:02X}" for c in rgb)


def header_lines(report: Report) -> list[tuple[str, str]]:
    k = {"officer": "không (none: live counts of your area)",
         "police_analyst": "không (none: live incident counts of your area, as on your incident layers; no survey counts)"}.get(
        report.role, f"{report.k}: counts below it, and the counts protecting them, are hidden; numbers come from frozen "
                     "releases only")
    return [
        ("Đơn vị (unit)", f"{report.unit_name} ({report.unit_code}, {report.unit_level}, structure {report.structure})"),
        ("Kỳ báo cáo (period)", report.period),
        ("Người xem (role)", ROLE_NAMES.get(report.role, report.role)),
        ("Ngưỡng ẩn số nhỏ (k)", k),
        ("Lập lúc (generated)", f"{report.generated_at:%Y-%m-%d %H:%M} UTC"),
        ("Dữ liệu cá nhân (personal data)", ("không có (none): every row is a unit, a category, or a recruiter of the public "
                                            "register")),
    ]


def section_lines(section: Section) -> list[tuple[str, str]]:
    lines = [("Phương pháp (method)", section.method), ("Kỳ (period)", section.period), ("Nguồn (source)", section.source)]
    lines += [("Lưu ý (caveat)", c) for c in section.caveats]
    if not section.available:
        lines.append(("Không có (not available)", section.note or ""))
    return lines


def title(report: Report) -> str:
    return f"Báo cáo tiến độ {report.period} — {report.unit_name} (progress report)"


# -- XLSX ---------------------------------------------------------------------------------------
def report_xlsx(report: Report) -> bytes:
    """The report as an XLSX workbook: a summary sheet with the map, and one sheet per section."""
    from openpyxl import Workbook
    from openpyxl.drawing.image import Image as XlImage
    from openpyxl.styles import Alignment, Font, PatternFill

    bold = Font(bold=True)
    book = Workbook()
    summary = book.active
    summary.title = "Tổng quan"
    summary.append([cell_text(title(report))])
    summary["A1"].font = Font(bold=True, size=14)
    for name, value in header_lines(report):
        summary.append([cell_text(name), cell_text(value)])
    summary.column_dimensions["A"].width = 28
    summary.column_dimensions["B"].width = 100
    if report.map is not None:
        summary.append([])
        summary.append([cell_text(report.map.title)])
        summary.cell(summary.max_row, 1).font = bold
        for c in report.map.caveats:
            summary.append([cell_text("Lưu ý (caveat)"), cell_text(c)])
        colours = class_colours(report.map.classes)
        for klass in [*report.map.classes, NO_DATA]:
            summary.append([cell_text(klass)])
            summary.cell(summary.max_row, 1).fill = PatternFill("solid", fgColor=hex_colour(colours[klass]))
        png = coverage_png(report.map)
        if png is not None:
            image = XlImage(io.BytesIO(png))
            image.width, image.height = image.width * 0.6, image.height * 0.6
            summary.add_image(image, f"A{summary.max_row + 2}")
    for i, section in enumerate(report.sections, start=1):
        sheet = book.create_sheet(f"{i} {section.key}"[:31])
        sheet.append([cell_text(section.title)])
        sheet["A1"].font = Font(bold=True, size=12)
        for name, value in section_lines(section):
            sheet.append([cell_text(name), cell_text(value)])
            sheet.cell(sheet.max_row, 2).alignment = Alignment(wrap_text=True, vertical="top")
        if section.available:
            sheet.append([])
            sheet.append([cell_text(c) for c in section.columns])
            for cell in sheet[sheet.max_row]:
                cell.font = bold
            for row in section.rows:
                sheet.append([cell_text(v) for v in row])
        sheet.column_dimensions["A"].width = 26
        sheet.column_dimensions["B"].width = 60
        for col in "CDEFGH":
            sheet.column_dimensions[col].width = 18
        sheet.page_setup.paperSize = sheet.PAPERSIZE_A4
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# -- HTML ---------------------------------------------------------------------------------------
CSS = """
@page { size: A4; margin: 15mm 12mm; }
body { font-family: "DejaVu Sans", "Noto Sans", Arial, sans-serif; font-size: 10pt; color: #111; max-width: 190mm; margin: auto; }
h1 { font-size: 15pt; } h2 { font-size: 12pt; margin-top: 1.4em; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; margin: .4em 0; page-break-inside: auto; }
tr { page-break-inside: avoid; } thead { display: table-header-group; }
th, td { border: 1px solid #bbb; padding: 2px 4px; text-align: left; vertical-align: top; }
td.n { text-align: right; } td.hidden { color: #666; font-style: italic; }
dl.about { display: grid; grid-template-columns: 9em 1fr; gap: 1px 8px; margin: .3em 0; color: #333; font-size: 9pt; }
dl.about dt { font-weight: bold; } dl.about dd { margin: 0; }
section { page-break-inside: auto; } .map img { max-width: 100%; border: 1px solid #ccc; }
.legend span { display: inline-block; padding: 1px 6px; margin: 1px; border: 1px solid #999; }
@media print { a { color: inherit; text-decoration: none; } }
"""


def _about(lines: list[tuple[str, str]]) -> str:
    return '<dl class="about">' + "".join(f"<dt>{html.escape(n)}</dt><dd>{html.escape(str(cell_text(v)))}</dd>"
                                          for n, v in lines) + "</dl>"


def _td(value: Any) -> str:
    shown = cell_text(value)
    klass = ' class="hidden"' if isinstance(value, Hidden) else ' class="n"' if isinstance(value, (int, float)) else ""
    return f"<td{klass}>{html.escape(str(shown))}</td>"


def report_html(report: Report) -> str:
    """The report as one self-contained HTML page (map inline as PNG), laid out for A4 printing."""
    parts = [f'<!doctype html><html lang="vi"><head><meta charset="utf-8"><title>{html.escape(title(report))}</title>',
             f"<style>{CSS}</style></head><body>", f"<h1>{html.escape(title(report))}</h1>", _about(header_lines(report))]
    if report.map is not None:
        colours = class_colours(report.map.classes)
        png = coverage_png(report.map)
        parts.append(f'<section class="map"><h2>{html.escape(report.map.title)}</h2>')
        if png is not None:
            parts.append(f'<img alt="{html.escape(report.map.title)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
        parts.append('<p class="legend">' + "".join(
            f'<span style="background:#{hex_colour(colours[k])}">{html.escape(k)}</span>'
            for k in [*report.map.classes, NO_DATA]) + "</p>")
        parts.append(_about([("Lưu ý (caveat)", c) for c in report.map.caveats]) + "</section>")
    for section in report.sections:
        parts.append(f'<section id="{section.key}"><h2>{html.escape(section.title)}</h2>{_about(section_lines(section))}')
        if section.available:
            parts.append("<table><thead><tr>" + "".join(f"<th>{html.escape(str(cell_text(c)))}</th>" for c in section.columns)
                         + "</tr></thead><tbody>")
            parts += ["<tr>" + "".join(_td(v) for v in row) + "</tr>" for row in section.rows]
            if not section.rows:
                parts.append(f'<tr><td colspan="{len(section.columns)}">không có (none)</td></tr>')
            parts.append("</tbody></table>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "".join(parts)


def render_report(report: Report, fmt: str) -> bytes:
    """The report's file in ``fmt`` (``xlsx`` or ``html``)."""
    if fmt == "xlsx":
        return report_xlsx(report)
    return report_html(report).encode("utf-8")


def report_filename(report: Report, fmt: str) -> str:
    """A plain-ASCII file name for the report.

    >>> import datetime as dt
    >>> report_filename(Report("42", "Hà Tĩnh", "province", "2025", "2025-H1", "leader", 5, dt.datetime(2026, 1, 1), [], None), "xlsx")
    'bao-cao-42-2025-H1.xlsx'
    """
    return f"bao-cao-{report.unit_code}-{report.period}.{fmt}"
