"""Import ticket exports (CSV or JSONL, plain or as the only file in a .zip) through a mapping.

Rows are mapped and validated one by one; a malformed row is reported with its line number (the file's line,
header = line 1 for CSV) and skipped while the rest imports. Tickets are written in batches of
:data:`BATCH_ROWS`, each batch in one transaction. A ticket already imported from the same ``source`` with the same
id is updated when its content changed and left alone otherwise, so re-importing an export changes nothing.

Two rules keep an import from undoing the desk's work or confusing two tickets (session 9's outside tester, M7 and
L8); a row they refuse is a **conflict**: skipped, listed in the report with its line, ticket number and reason
(``conflicts``, ``conflicting``), and audited (``ticket.import_conflict``, one audit row per conflict, in the
transaction of its batch, through the caller's :data:`ImportAudit`):

- **The desk's work wins.** Imported fields are updated only while the desk has not touched the ticket: once the
  ticket has a ``ticket_events`` row (a note, an assignment, a status change, an escalation, a closure, a mail or
  IM reply threaded onto it: the import itself writes none), a changed row for it is a conflict and the ticket
  stays as the desk left it. Re-export from the system that is now behind, or work the change in on the desk.
- **A ticket number names one ticket.** A new row whose number is already held by a ticket of another source (the
  desk's own, or another export's), or has the shape of the desk's own numbers
  (:data:`kb.ingest.ticket_numbers.DESK_NUMBER`, ``T`` + 8 digits, which the desk would give a later ticket), is a
  conflict: ``article_usage``, the tickets an article resolved and the desk's votes name tickets by number. A
  mapping may not use the desk's source name.

An updated ticket's stored embedding is dropped (:class:`kb.desk.similar.TicketVectors` encodes the new text on
next use), so similar tickets never compare, or show, the text the export no longer has. Updates of untouched
tickets are audited too (``ticket.reimport``, the count per batch), beside the
``ticket.import`` count of new rows (:mod:`kb.identity.observer`).
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
from typing import IO, Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from kb.db import Database
from kb.errors import InvalidInputError
from kb.ingest.mapping import TicketMapping, TicketRecord, load_mapping, map_row
from kb.ingest.ticket_numbers import DESK_NUMBER, DESK_SOURCE
from kb.models import Ticket, TicketEvent, utcnow

BATCH_ROWS = 1000
#: Largest CSV field, in characters (Python's default of 131,072 rejects long work-note columns).
MAX_FIELD_CHARS = 1_000_000
#: Most errors kept in a report (the count is always exact).
MAX_REPORTED_ERRORS = 1000
#: Adds an audit row ``(session, event, object, reason)`` to the batch's transaction (the API and the command line
#: pass :meth:`kb.identity.audit.AuditTrail.record` with their caller's context; this package knows no identity).
ImportAudit = Callable[[Session, str, str, str], None]


@dataclass(frozen=True)
class Conflict:
    """A row refused by the module docstring's rules: its ``line``, the ticket ``number`` and why (a sentence)."""

    line: int
    number: str
    reason: str


@dataclass
class TicketImportReport:
    """Counts of an import and the rows skipped: ``errors`` as (line, message), ``conflicting`` the rows refused
    (module docstring), at most :data:`MAX_REPORTED_ERRORS` of each listed (the counts are exact)."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    conflicts: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    conflicting: list[Conflict] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "conflicts": self.conflicts,
            "errors": [{"line": line, "error": msg} for line, msg in self.errors],
            "conflicting": [{"line": c.line, "ticket": c.number, "reason": c.reason} for c in self.conflicting],
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
    audit: ImportAudit | None = None,
    rows_format: Literal["csv", "jsonl"] | None = None,
) -> TicketImportReport:
    """Import the export at ``path`` with ``mapping`` (see module docstring).

    Args:
        database: where tickets are written.
        path: a .csv, .jsonl or .zip export.
        mapping: column mapping, or the name or file of one (:func:`kb.ingest.mapping.load_mapping`); its
            ``format`` (when set) overrides the one guessed from the file name.
        rows_format: the format the caller states (``POST /ingest/tickets?format=``); wins over both.
        progress: called with the number of rows read so far after each batch.
        audit: records the audit rows of conflicts and updates (module docstring); None: none (library use).

    Raises:
        InvalidInputError: the file cannot be opened or read; unknown or invalid mapping; a mapping whose
            ``source`` is the desk's (:data:`kb.ingest.ticket_numbers.DESK_SOURCE`).
    """
    if not isinstance(mapping, TicketMapping):
        mapping = load_mapping(mapping)
    if mapping.source == DESK_SOURCE:
        raise InvalidInputError(f"A mapping's source may not be {DESK_SOURCE!r}: that names the desk's own tickets.")
    started = time.perf_counter()
    report = TicketImportReport()
    batch: list[tuple[int, TicketRecord]] = []
    with open_export(path) as (stream, guessed):
        data_line = 0
        for line, row, error in iter_rows(stream, rows_format or mapping.format or guessed):
            report.rows += 1
            data_line += 1
            if row is None:
                _fail(report, line, error or "unreadable row")
                continue
            try:
                batch.append((line, map_row(mapping, row, data_line)))
            except ValueError as exc:
                _fail(report, line, _short(exc))
                continue
            if len(batch) >= BATCH_ROWS:
                _write(database, mapping.source, batch, report, audit)
                batch = []
                if progress:
                    progress(report.rows)
        if batch:
            _write(database, mapping.source, batch, report, audit)
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


def _write(
    database: Database,
    source: str,
    batch: list[tuple[int, TicketRecord]],
    report: TicketImportReport,
    audit: ImportAudit | None,
) -> None:
    """Create, update or refuse (module docstring) each ticket of ``batch`` ((line, record)), in one transaction."""
    records = {r.external_id: (line, r) for line, r in batch}  # a repeated id within a batch: the later row wins
    numbers = list(records)
    with database.session() as session:
        existing = {
            t.external_id: t
            for t in session.scalars(select(Ticket).where(Ticket.source == source, Ticket.external_id.in_(numbers)))
        }
        digests = {number: content_hash(record) for number, (_, record) in records.items()}
        fresh = [n for n in numbers if n not in existing]  # only a new row can take another ticket's number
        elsewhere: dict[str, str] = {}
        if fresh:
            query = select(Ticket.external_id, Ticket.source).where(
                Ticket.source != source, Ticket.external_id.in_(fresh)
            )
            elsewhere = {number: other for number, other in session.execute(query)}
        changed = [t.id for n, t in existing.items() if t.content_hash != digests[n]]
        worked = (
            set(session.scalars(select(TicketEvent.ticket_id).where(TicketEvent.ticket_id.in_(changed))))
            if changed
            else set()
        )
        now = utcnow()
        updated = 0
        for external_id, (line, record) in records.items():
            digest = digests[external_id]
            ticket = existing.get(external_id)
            if ticket is None:
                reason = _taken(external_id, elsewhere.get(external_id))
                if reason is not None:
                    _conflict(session, report, audit, Conflict(line, external_id, reason), source)
                    continue
                session.add(
                    Ticket(source=source, **record.model_dump(), content_hash=digest, created_at=now, updated_at=now)
                )
                report.created += 1
            elif ticket.content_hash == digest:
                report.unchanged += 1
            elif ticket.id in worked:
                reason = "the desk has worked this ticket since it was imported; it is kept as the desk left it"
                _conflict(session, report, audit, Conflict(line, external_id, reason), source, ticket.id)
            else:
                for key, value in record.model_dump().items():
                    setattr(ticket, key, value)
                ticket.content_hash, ticket.updated_at = digest, now
                ticket.embedding = ticket.embedding_model = None  # encoded again from the new text on next use
                updated += 1
        if updated:
            report.updated += updated
            if audit is not None:
                audit(session, "ticket.reimport", source, f"{updated} rows updated")


def _taken(number: str, other_source: str | None) -> str | None:
    """Why a new row may not take ``number`` (held by a ticket of ``other_source``, None: by none), or None."""
    if other_source is not None:
        return f"ticket number already taken by a ticket of source {other_source!r}"
    if DESK_NUMBER.fullmatch(number):
        return "ticket number has the shape of the desk's own numbers (T + 8 digits), reserved for the desk"
    return None


def _conflict(
    session: Session,
    report: TicketImportReport,
    audit: ImportAudit | None,
    conflict: Conflict,
    source: str,
    ticket_id: int | None = None,
) -> None:
    """Count and list ``conflict`` and add its audit row to the batch's transaction."""
    report.conflicts += 1
    if len(report.conflicting) < MAX_REPORTED_ERRORS:
        report.conflicting.append(conflict)
    if audit is not None:
        target = f"ticket {ticket_id} " if ticket_id is not None else ""
        audit(session, "ticket.import_conflict", f"{target}{source}:{conflict.number}"[:200], conflict.reason)
