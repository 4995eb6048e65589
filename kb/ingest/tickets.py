"""Import ticket exports (CSV or JSONL, plain or as the only file in a .zip) through a mapping.

Rows are mapped and validated one by one; a malformed row is reported with its line number (the file's line,
header = line 1 for CSV) and skipped while the rest imports. Tickets are written in batches of
:data:`BATCH_ROWS`, each batch in one transaction. A ticket already imported from the same ``source`` with the same
id is updated when its content changed and left alone otherwise, so re-importing an export changes nothing.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select

from kb.db import Database
from kb.errors import InvalidInputError
from kb.ingest.mapping import TicketMapping, TicketRecord, load_mapping, map_row
from kb.models import Ticket, utcnow

BATCH_ROWS = 1000
#: Largest CSV field, in characters (Python's default of 131,072 rejects long work-note columns).
MAX_FIELD_CHARS = 1_000_000
#: Most errors kept in a report (the count is always exact).
MAX_REPORTED_ERRORS = 1000


@dataclass
class TicketImportReport:
    """Counts of an import and the rows skipped: ``errors`` as (line, message)."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "errors": [{"line": line, "error": msg} for line, msg in self.errors],
            "seconds": round(self.seconds, 2),
        }


@contextmanager
def open_export(path: Path) -> Iterator[tuple[IO[str], str]]:
    """The export's text stream and its format (``csv`` or ``jsonl`` by suffix); a .zip must hold one such file.

    Raises:
        InvalidInputError: missing file, or a zip without exactly one .csv / .jsonl file.
    """
    if not path.is_file():
        raise InvalidInputError(f"No ticket export at {path}.")
    try:
        if path.suffix.lower() == ".zip":
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if n.lower().endswith((".csv", ".jsonl", ".json"))]
                if len(members) != 1:
                    found = members[:5] or "none"
                    raise InvalidInputError(f"The zip must hold exactly one .csv or .jsonl file, found {found}.")
                with archive.open(members[0]) as raw:
                    _check_utf8(raw)
                with archive.open(members[0]) as raw:
                    yield io.TextIOWrapper(raw, encoding="utf-8-sig", newline=""), _format_of(members[0])
            return
        with path.open("rb") as raw:
            _check_utf8(raw)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            yield handle, _format_of(path.name)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(
            f"The export is not UTF-8 (byte {exc.start} cannot be decoded); save it as UTF-8 (GBK exports: "
            "iconv -f GB18030 -t UTF-8) and import it again."
        ) from exc
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
        raise InvalidInputError("The zip export cannot be read (damaged, encrypted or not a zip).") from exc
    except zlib.error as exc:
        raise InvalidInputError("The zip export cannot be read (a member is damaged).") from exc


def _check_utf8(raw: IO[bytes]) -> None:
    """Decode the whole stream once (1 MiB at a time) so that a non-UTF-8 export fails before anything is stored.

    Raises:
        UnicodeDecodeError: at the first byte that is not UTF-8.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    while piece := raw.read(1 << 20):
        decoder.decode(piece)
    decoder.decode(b"", final=True)


def _format_of(name: str) -> str:
    return "csv" if name.lower().endswith(".csv") else "jsonl"


def iter_rows(stream: IO[str], fmt: str) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line, row, error) for each data row; ``row`` is None and ``error`` says why when a line cannot be read."""
    if fmt == "csv":
        csv.field_size_limit(MAX_FIELD_CHARS)
        reader = csv.DictReader(stream)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield reader.line_num, None, f"unreadable CSV: {exc}"
                continue
            if None in row:  # more cells than header columns
                header = len(reader.fieldnames or [])
                extra = row[None]
                yield reader.line_num, None, f"{header + len(extra)} cells for a header of {header}"
                continue
            yield reader.line_num, row, None
        return
    for number, line in enumerate(stream, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, f"invalid JSON: {exc.msg}"
            continue
        if not isinstance(row, dict):
            yield number, None, "a JSON object per line is expected"
            continue
        yield number, row, None


def import_tickets(
    database: Database,
    path: Path,
    mapping: TicketMapping | str | Path,
    *,
    progress: Callable[[int], None] | None = None,
) -> TicketImportReport:
    """Import the export at ``path`` with ``mapping`` (see module docstring).

    Args:
        database: where tickets are written.
        path: a .csv, .jsonl or .zip export.
        mapping: column mapping, or the name or file of one (:func:`kb.ingest.mapping.load_mapping`); its
            ``format`` (when set) overrides the one guessed from the file name.
        progress: called with the number of rows read so far after each batch.

    Raises:
        InvalidInputError: the file cannot be opened or read; unknown or invalid mapping.
    """
    if not isinstance(mapping, TicketMapping):
        mapping = load_mapping(mapping)
    started = time.perf_counter()
    report = TicketImportReport()
    batch: list[TicketRecord] = []
    with open_export(path) as (stream, guessed):
        data_line = 0
        for line, row, error in iter_rows(stream, mapping.format or guessed):
            report.rows += 1
            data_line += 1
            if row is None:
                _fail(report, line, error or "unreadable row")
                continue
            try:
                batch.append(map_row(mapping, row, data_line))
            except ValueError as exc:
                _fail(report, line, _short(exc))
                continue
            if len(batch) >= BATCH_ROWS:
                _write(database, mapping.source, batch, report)
                batch = []
                if progress:
                    progress(report.rows)
        if batch:
            _write(database, mapping.source, batch, report)
        if progress:
            progress(report.rows)
    report.seconds = time.perf_counter() - started
    return report


def _fail(report: TicketImportReport, line: int, message: str) -> None:
    report.failed += 1
    if len(report.errors) < MAX_REPORTED_ERRORS:
        report.errors.append((line, message))


def _short(exc: ValueError) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'row'}: {e['msg']}" for e in errors())
    return str(exc)


def content_hash(record: TicketRecord) -> str:
    """SHA-256 of a ticket's mapped content (detects changed rows on re-import)."""
    return hashlib.sha256(record.model_dump_json().encode("utf-8")).hexdigest()


def _write(database: Database, source: str, batch: list[TicketRecord], report: TicketImportReport) -> None:
    records = {r.external_id: r for r in batch}  # a repeated id within a batch: the later row wins
    with database.session() as session:
        existing = {
            t.external_id: t
            for t in session.scalars(
                select(Ticket).where(Ticket.source == source, Ticket.external_id.in_(list(records)))
            )
        }
        now = utcnow()
        for external_id, record in records.items():
            digest = content_hash(record)
            ticket = existing.get(external_id)
            if ticket is None:
                session.add(
                    Ticket(source=source, **record.model_dump(), content_hash=digest, created_at=now, updated_at=now)
                )
                report.created += 1
            elif ticket.content_hash != digest:
                for key, value in record.model_dump().items():
                    setattr(ticket, key, value)
                ticket.content_hash, ticket.updated_at = digest, now
                report.updated += 1
            else:
                report.unchanged += 1
