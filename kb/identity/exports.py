"""Spreadsheet-safe CSV exports (CSV injection, CWE-1236): a cell a spreadsheet would read as a formula (text
starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return) is prefixed with an apostrophe, as the OWASP
"CSV Injection" guidance advises, so a ticket title such as ``=HYPERLINK(...)`` stays text when a desk lead opens
the analysis or audit export. Numbers are written as they are.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import IO, Any

#: First characters that make a spreadsheet evaluate a cell (OWASP CSV Injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """``value`` as a CSV cell that no spreadsheet evaluates: text starting with one of :data:`FORMULA_STARTS`
    gets a leading apostrophe; anything else (numbers, other text, None) is returned unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeCsvWriter:
    """``csv.writer`` whose rows pass through :func:`safe_cell`."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out)

    def writerow(self, row: Iterable[Any]) -> None:
        """Write one row, each cell made safe."""
        self._writer.writerow([safe_cell(v) for v in row])
