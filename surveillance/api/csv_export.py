"""CSV answers a spreadsheet may open: a header row, and no cell that runs as a formula.

Spreadsheets (Excel, LibreOffice, Google Sheets) run a cell that starts with ``=``, ``+``,
``-`` or ``@`` as a formula (OWASP, "CSV Injection"); a platform named ``=HYPERLINK(...)``
would. Such text cells are written with a leading ``'``, which spreadsheets show as text.
Numbers are written by this module, never taken from text, so a negative number stays one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # tab and CR: OWASP's list too


def text_cell(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def csv_text(header: Sequence[str], rows: Iterable[Sequence[str | int | float | None]]) -> str:
    """The CSV document: ``header`` then ``rows``; text cells guarded, None empty."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")  # RFC 4180's line ends
    writer.writerow([text_cell(h) for h in header])
    for row in rows:
        writer.writerow(
            ["" if v is None else text_cell(v) if isinstance(v, str) else v for v in row]
        )
    return out.getvalue()
