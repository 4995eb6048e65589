"""Mappings from a ticket export's columns to kb's ticket fields (YAML files; bundled ones in kb/data/mappings).

A mapping says which column holds each field (``fields``), which column is the ticket id (``id``; none: the data
line number), how to make a title when there is no title column (``title``: first characters of a field), how to
translate values (``values``, e.g. 已关闭 -> closed) and what constant to use for fields the export lacks
(``defaults``). Text values are cleaned as every intake channel's are (:func:`kb.ingest.intake_text.clean_text`:
NUL and control characters removed, never refused). See the bundled ``it-tickets-en.yaml`` and ``kb-zh.yaml`` for
documented examples.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from kb.config import DATA_DIR
from kb.errors import InvalidInputError
from kb.ingest.intake_text import clean_text

MAPPINGS_DIR = DATA_DIR / "mappings"

TICKET_STATUSES = ("new", "assigned", "in_progress", "pending", "resolved", "closed")
TICKET_CHANNELS = ("web", "email", "im", "phone", "api")

#: Fields a mapping can fill, with their types.
TEXT_FIELDS = (
    "title",
    "description",
    "category",
    "service",
    "configuration_item",
    "priority",
    "channel",
    "requester",
    "status",
    "resolver_group",
    "resolution",
    "root_cause",
    "work_notes",
)
TIME_FIELDS = ("opened_at", "closed_at")
FIELDS = (*TEXT_FIELDS, *TIME_FIELDS, "satisfaction")


class TitleRule(BaseModel):
    """Make the title from the first ``max_chars`` characters of field ``source`` (cut at a word boundary)."""

    source: str = Field(default="description", alias="from")
    max_chars: int = Field(default=80, ge=10, le=500)


class TicketMapping(BaseModel):
    """An export's layout: ``source`` names the export (the ticket ids are unique within it)."""

    source: str = Field(min_length=1, max_length=120)
    format: Literal["csv", "jsonl"] | None = None
    id: str | None = None
    fields: dict[str, str]
    title: TitleRule = Field(default_factory=lambda: TitleRule.model_validate({}))
    values: dict[str, dict[str, str]] = Field(default_factory=dict)
    defaults: dict[str, Any] = Field(default_factory=dict)

    @field_validator("fields", "values", "defaults")
    @classmethod
    def _known_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - set(FIELDS))
        if unknown:
            raise ValueError(f"unknown ticket fields {', '.join(unknown)}; known: {', '.join(FIELDS)}")
        return value


class TicketRecord(BaseModel):
    """One ticket as mapped from a row, validated."""

    external_id: str = Field(min_length=1, max_length=120)
    title: str = Field(min_length=1, max_length=500)
    description: str = ""
    category: str | None = Field(default=None, max_length=120)
    service: str | None = Field(default=None, max_length=120)
    configuration_item: str | None = Field(default=None, max_length=200)
    priority: str | None = Field(default=None, max_length=20)
    channel: str | None = Field(default=None, max_length=40)
    requester: str | None = Field(default=None, max_length=200)
    status: str = "closed"
    resolver_group: str | None = Field(default=None, max_length=120)
    opened_at: dt.datetime | None = None
    closed_at: dt.datetime | None = None
    resolution: str = ""
    root_cause: str = ""
    work_notes: str = ""
    satisfaction: int | None = Field(default=None, ge=1, le=5)

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        if value not in TICKET_STATUSES:
            raise ValueError(f"status must be one of {', '.join(TICKET_STATUSES)}, not {value!r}")
        return value

    @field_validator("opened_at", "closed_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)  # exports without an offset are taken as UTC
        return value


#: What a mapping name may be: it names a file in a mappings folder, so no separators, dots or other paths.
MAPPING_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")


def mapping_by_name(name: str, folder: Path | None = None) -> TicketMapping:
    """The mapping called ``name``: ``folder/NAME.yaml`` (the site's setting ``mappings_dir``) or a bundled one
    (``it-tickets-en``, ``kb-zh``). What a request may choose: a name, never a path.

    Raises:
        InvalidInputError: not a mapping name, no such mapping, or it is not valid (the message never quotes the
            file).
    """
    if not MAPPING_NAME.fullmatch(name):
        raise InvalidInputError("A ticket mapping is chosen by its name: letters, digits, '-' and '_'.")
    for where in (folder, MAPPINGS_DIR):
        if where is not None and (where / f"{name}.yaml").is_file():
            return load_mapping_file(where / f"{name}.yaml", name)
    bundled = ", ".join(sorted(p.stem for p in MAPPINGS_DIR.glob("*.yaml")))
    site = ", ".join(sorted(p.stem for p in folder.glob("*.yaml"))) if folder is not None and folder.is_dir() else ""
    raise InvalidInputError(f"No ticket mapping {name!r} (bundled: {bundled}" + (f"; site: {site})." if site else ")."))


def load_mapping_file(path: Path, label: str | None = None) -> TicketMapping:
    """A mapping from a YAML file the operator names (the CLI); ``label`` names it in messages.

    Raises:
        InvalidInputError: unreadable or invalid; the message gives the line or the fields, never file contents.
    """
    label = label or str(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidInputError(f"Cannot read the ticket mapping {label}: {exc.strerror}.") from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise InvalidInputError(f"The ticket mapping {label} is not valid YAML{where}.") from exc
    try:
        return TicketMapping.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'mapping'}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise InvalidInputError(f"Invalid ticket mapping {label}: {problems}.") from exc


def load_mapping(name_or_path: str | Path, folder: Path | None = None) -> TicketMapping:
    """For the command line: a mapping by name (:func:`mapping_by_name`, ``folder`` first), or a YAML file the
    operator names.

    Raises:
        InvalidInputError: as :func:`mapping_by_name` and :func:`load_mapping_file`.
    """
    if isinstance(name_or_path, str) and MAPPING_NAME.fullmatch(name_or_path):
        return mapping_by_name(name_or_path, folder)
    return load_mapping_file(Path(name_or_path))


def map_row(mapping: TicketMapping, row: dict[str, Any], line: int) -> TicketRecord:
    """Map one export row (column -> value) to a validated ticket; ``line`` is its data line number.

    Raises:
        ValueError: a value is missing or invalid (pydantic's ValidationError is a ValueError).
    """
    data: dict[str, Any] = dict(mapping.defaults)
    for field_name, column in mapping.fields.items():
        value = row.get(column)
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        value = clean_text(value).strip() if isinstance(value, str) else value  # an intake channel's rule
        translated = mapping.values.get(field_name, {})
        data[field_name] = translated.get(str(value), value)
    if mapping.id is None:
        data["external_id"] = str(line)
    else:
        raw_id = row.get(mapping.id)
        if raw_id is None or not str(raw_id).strip():
            raise ValueError(f"no ticket id in column {mapping.id!r}")
        data["external_id"] = clean_text(str(raw_id)).strip()
    if not data.get("title"):
        data["title"] = _title_from(str(data.get(mapping.title.source) or ""), mapping.title.max_chars)
    if data.get("satisfaction") is not None:
        try:
            data["satisfaction"] = int(data["satisfaction"])
        except (TypeError, OverflowError) as exc:  # a list, a mapping, 1e400 in a JSONL cell: the row's error
            raise ValueError(f"satisfaction must be a whole number, not {data['satisfaction']!r}"[:200]) from exc
    return TicketRecord.model_validate(data)


def _title_from(text: str, max_chars: int) -> str:
    text = " ".join(text.split())
    if len(text) <= max_chars:
        return text
    cut = text[:max_chars]
    space = cut.rfind(" ")
    return (cut[:space] if space > max_chars // 2 else cut).rstrip(" ,.;，。；") + "…"
