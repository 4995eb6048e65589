"""Articles as Markdown with YAML front matter: parse any dialect we import, validate, serialise back.

Front matter dialects seen in the real collections (``../shared/data/articles``):

- Hugo: ``title:`` (and ``weight``), with ``{{% children %}}`` and ``{{< copyable "sql" >}}`` shortcodes;
- MS Docs: ``title``, ``description``, ``ms.*`` keys, ``> [!NOTE]`` alert blocks and ``<a name="..."></a>``
  anchors in headings;
- TiDB docs: ``title``, ``summary``, ``aliases``;
- none: the title is the first ``# `` (ATX) or ``===`` (setext) heading.

Unknown front-matter keys are kept in ``meta`` so that :func:`to_markdown` round-trips:
``parse_markdown(to_markdown(a)) == a``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from kb.articles.rendering import check_renderable
from kb.errors import ArticleFormatError, PayloadTooLargeError

#: Largest accepted article body, in characters (documented in the README; bigger bodies answer 413).
MAX_BODY_CHARS = 300_000
MAX_TITLE_CHARS = 500
MAX_SUMMARY_CHARS = 5_000
MAX_SERVICE_CHARS = 120
#: Largest accepted YAML front matter, in characters, and its deepest nesting of mappings and lists.
MAX_FRONT_MATTER_CHARS = 64_000
MAX_FRONT_MATTER_DEPTH = 20

KINDS = ("article", "troubleshooting", "how_to", "faq", "reference", "known_error", "post_incident_review")
STATUSES = ("draft", "in_review", "published", "retired")
VISIBILITIES = ("public", "internal", "restricted")

_FRONT_MATTER = re.compile(r"\A\ufeff?---[ \t]*\r?\n(.*?)(?:\r?\n)?^---[ \t]*(?:\r?\n|\Z)", re.S | re.M)
_SHORTCODE_PAIRED_TAG = re.compile(r"\{\{[<%]\s*/?\s*[\w\-]+[^}]*?[%>]\}\}")
_TEMPLATE_VARIABLE = re.compile(r"\{\{\{\s*\.[\w.]+\s*\}\}\}")
_EMPTY_ANCHOR = re.compile(r"<a\s+(?:name|id)\s*=\s*\"[^\"]*\"\s*>\s*</a>", re.I)
_ALERT = re.compile(r"^(\s*>\s*)\[!(note|tip|important|warning|caution)\][ \t]*$", re.I | re.M)
_ALERT_LABELS = {"note": "注意", "tip": "提示", "important": "重要", "warning": "警告", "caution": "小心"}
_ATX_H1 = re.compile(r"^#[ \t]+(.+?)[ \t#]*$", re.M)
_SETEXT_H1 = re.compile(r"^(?!\s*$)([^\n]+)\n=+[ \t]*$", re.M)

_KNOWN_KEYS = (
    "title",
    "summary",
    "description",
    "kind",
    "service",
    "tags",
    "keywords",
    "error_codes",
    "status",
    "visibility",
    "restricted_to",
)


class ArticleContent(BaseModel):
    """The authored content of an article, validated. Everything else (id, version, times) is storage.

    Raises:
        pydantic.ValidationError: on construction with invalid values (see field constraints).
    """

    model_config = ConfigDict(str_strip_whitespace=False)

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    body: str = Field(default="", max_length=MAX_BODY_CHARS)
    summary: str = Field(default="", max_length=MAX_SUMMARY_CHARS)
    kind: str = "article"
    service: str | None = Field(default=None, max_length=MAX_SERVICE_CHARS)
    tags: list[str] = Field(default_factory=list)
    error_codes: list[str] = Field(default_factory=list)
    status: str = "published"
    visibility: str = "internal"
    #: Roles or resolver groups that may see a ``restricted`` article (kb.identity.scopes.article_visible).
    restricted_to: list[str] = Field(default_factory=list, max_length=50)
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("title must not be blank")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        return value

    @field_validator("status")
    @classmethod
    def _status(cls, value: str) -> str:
        if value not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}")
        return value

    @field_validator("visibility")
    @classmethod
    def _visibility(cls, value: str) -> str:
        if value not in VISIBILITIES:
            raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}")
        return value

    @field_validator("tags", "error_codes", "restricted_to")
    @classmethod
    def _clean_list(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(v.strip() for v in value if v and v.strip()))

    @field_validator("service")
    @classmethod
    def _service(cls, value: str | None) -> str | None:
        return value.strip() or None if value else None

    def content_hash(self) -> str:
        """SHA-256 (hex) of the canonical JSON of all fields; equal content gives equal hashes."""
        fields = self.model_dump()
        if not fields["restricted_to"]:
            del fields["restricted_to"]  # articles stored before restricted_to existed keep their hash
        payload = json.dumps(fields, sort_keys=True, ensure_ascii=False, default=str)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def clean_body(body: str) -> str:
    """Remove what belongs to a site generator, not to the article. Idempotent.

    Hugo shortcodes (``{{% children %}}``, ``{{< copyable "sql" >}}``, paired ``{{< tab >}}..{{< /tab >}}``
    tags; their inner text stays), template variables (``{{{ .company }}}``), empty HTML anchors
    (``<a name="x"></a>``), and MS Docs alert markers (``> [!NOTE]`` becomes ``> **注意**``).
    """
    body = body.replace("\r\n", "\n")
    body = _SHORTCODE_PAIRED_TAG.sub("", body)
    body = _TEMPLATE_VARIABLE.sub("", body)
    body = _EMPTY_ANCHOR.sub("", body)
    body = _ALERT.sub(lambda m: f"{m.group(1)}**{_ALERT_LABELS[m.group(2).lower()]}**", body)
    body = re.sub(r"\n{3,}", "\n\n", body)
    return body.strip("\n") + "\n" if body.strip() else ""


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Split YAML front matter from the Markdown body.

    Returns:
        ``(front_matter, body)``; ``front_matter`` is ``{}`` when the text has none.

    Raises:
        ArticleFormatError: the front matter is not valid YAML or not a mapping.
    """
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text.lstrip("\ufeff")
    if len(match.group(1)) > MAX_FRONT_MATTER_CHARS:
        raise ArticleFormatError(f"front matter is longer than {MAX_FRONT_MATTER_CHARS} characters")
    loader = _FrontMatterLoader(match.group(1))
    try:
        data = loader.get_single_data() or {}
    except yaml.MarkedYAMLError as exc:
        where = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise ArticleFormatError(f"front matter is not valid YAML{where}: {exc.problem or exc.context}") from exc
    except yaml.YAMLError as exc:
        raise ArticleFormatError("front matter is not valid YAML") from exc
    except (ValueError, OverflowError) as exc:  # a timestamp such as 2024-13-45 that is not a date
        raise ArticleFormatError(f"front matter has a value that is not valid: {exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ArticleFormatError("front matter must be a YAML mapping of keys to values")
    return data, text[match.end() :]


class _FrontMatterLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses aliases (``*name``: a 383-byte alias bomb expands to megabytes) and
    nesting deeper than :data:`MAX_FRONT_MATTER_DEPTH` (deep nesting ends in RecursionError)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise ArticleFormatError(f"front matter uses a YAML alias at line {mark.line + 1}; aliases are refused")
        self._depth += 1
        try:
            if self._depth > MAX_FRONT_MATTER_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise ArticleFormatError(
                    f"front matter nests deeper than {MAX_FRONT_MATTER_DEPTH} levels at line {mark.line + 1}"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def first_heading(body: str) -> str | None:
    """The text of the first level-1 heading (ATX ``# x`` or setext ``x\\n===``), or None."""
    candidates = [m for m in (_ATX_H1.search(body), _SETEXT_H1.search(body)) if m]
    if not candidates:
        return None
    text = min(candidates, key=lambda m: m.start()).group(1)
    text = re.sub(r"<[^>]+>", "", text).strip()
    return text or None


def parse_markdown(
    text: str, *, fallback_title: str | None = None, defaults: Mapping[str, Any] | None = None, **overrides: Any
) -> ArticleContent:
    """Parse a Markdown document with optional front matter into validated content.

    Args:
        text: the whole file or request body.
        fallback_title: title to use when neither front matter nor a level-1 heading gives one
            (for imports, the file name).
        defaults: field values for the fields the front matter does not set (:func:`_named_fields`),
            e.g. the stored values of an article whose body is replaced; they win over a heading and
            ``fallback_title``.
        overrides: field values that win over the front matter and ``defaults`` (for example ``status``).

    Raises:
        ArticleFormatError: bad front matter, no title, or invalid field values.
        PayloadTooLargeError: the body is longer than :data:`MAX_BODY_CHARS` characters.
    """
    front, body = split_front_matter(text)
    body = clean_body(body)
    if len(body) > MAX_BODY_CHARS:
        raise PayloadTooLargeError(f"article body has {len(body)} characters; the maximum is {MAX_BODY_CHARS}")
    fields: dict[str, Any] = {
        "title": _as_text(front.get("title"), "title") or first_heading(body) or fallback_title or "",
        "body": body,
        "summary": _as_text(front.get("summary") or front.get("description"), "summary"),
        "tags": _as_list(front["tags"] if front.get("tags") is not None else front.get("keywords")),
        "error_codes": _as_list(front.get("error_codes")),
        "restricted_to": _as_list(front.get("restricted_to")),
        "meta": {k: _jsonable(v) for k, v in front.items() if k not in _KNOWN_KEYS},
    }
    for key in ("kind", "service", "status", "visibility"):
        if front.get(key) is not None:
            fields[key] = _as_text(front[key], key)
    if defaults:
        named = _named_fields(front)
        fields.update({k: v for k, v in defaults.items() if k != "body" and k not in named and v is not None})
    fields.update({k: v for k, v in overrides.items() if v is not None})
    return validate_content(fields)


#: The content field each known front matter key sets (``description`` and ``keywords`` are other dialects' names).
_FIELD_OF_KEY = {"description": "summary", "keywords": "tags"}


def _named_fields(front: Mapping[str, Any]) -> set[str]:
    """The :class:`ArticleContent` fields parsed front matter ``front`` sets (``meta`` when it holds a key kb does
    not know): those ``parse_markdown(defaults=...)`` takes from the front matter, not from the defaults."""
    named = {_FIELD_OF_KEY.get(k, k) for k, v in front.items() if k in _KNOWN_KEYS and v is not None}
    return named | ({"meta"} if any(k not in _KNOWN_KEYS for k in front) else set())


#: In a field other than the body: NUL, the C0 controls but tab / LF / CR, and DEL. No editor types them; a YAML
#: escape (``"\\0"``, ``"\\x1b"``) makes them, and PostgreSQL cannot store NUL.
_FIELD_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _refuse_control_characters(fields: dict[str, Any]) -> None:
    """Refuse NUL anywhere and control characters in any field but the body (which keeps pasted terminal output
    as written, e.g. an escape sequence in a shell example; rendering escapes it).

    Raises:
        ArticleFormatError: naming the field.
    """
    stack: list[tuple[str, Any]] = list(fields.items())
    while stack:
        name, value = stack.pop()
        if isinstance(value, str):
            bad = "\x00" in value if name == "body" else _FIELD_CONTROL.search(value) is not None
            if bad:
                raise ArticleFormatError(f"invalid article: {name}: holds a NUL or control character; remove it")
        elif isinstance(value, dict):
            stack.extend((f"{name}.{k}", k) for k in value if isinstance(k, str))
            stack.extend((f"{name}.{k}", v) for k, v in value.items())
        elif isinstance(value, list | tuple):
            stack.extend((name, v) for v in value)


def validate_content(fields: dict[str, Any]) -> ArticleContent:
    """Build :class:`ArticleContent`, turning validation errors into one readable ArticleFormatError.

    Raises:
        ArticleFormatError: no title, an invalid field, or a body that cannot be rendered
            (:func:`kb.articles.rendering.check_renderable`), so that it is refused before it is stored.
    """
    if not fields.get("title"):
        raise ArticleFormatError("the article has no title: give front matter 'title:' or a '# ' heading")
    _refuse_control_characters(fields)
    try:
        content = ArticleContent(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ArticleFormatError(f"invalid article: {problems}") from exc
    check_renderable(content.body)
    return content


def to_markdown(content: ArticleContent) -> str:
    """Serialise content as Markdown with YAML front matter (the import format)."""
    front: dict[str, Any] = {"title": content.title}
    if content.summary:
        front["summary"] = content.summary
    front["kind"] = content.kind
    if content.service:
        front["service"] = content.service
    if content.tags:
        front["tags"] = content.tags
    if content.error_codes:
        front["error_codes"] = content.error_codes
    front["status"] = content.status
    front["visibility"] = content.visibility
    if content.restricted_to:
        front["restricted_to"] = content.restricted_to
    front.update(content.meta)
    header = yaml.safe_dump(front, allow_unicode=True, sort_keys=False).strip()
    return f"---\n{header}\n---\n{content.body}"


def _as_text(value: Any, key: str) -> str:
    """A scalar front matter value as text (a number or a date as written); a list or a mapping is refused, not
    turned into its Python spelling (``title: [1, 2]`` was stored as the title "[1, 2]").

    Raises:
        ArticleFormatError: ``value`` is a list or a mapping.
    """
    if value is None:
        return ""
    if isinstance(value, list | tuple | dict):
        kind = "a mapping" if isinstance(value, dict) else "a list"
        raise ArticleFormatError(f"front matter '{key}' must be text, not {kind}")
    return str(value).strip()


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in re.split(r"[,，;；]", value) if v.strip()]
    if isinstance(value, list | tuple):
        return [str(v).strip() for v in value if v is not None and str(v).strip()]
    return [str(value)]


def _jsonable(value: Any) -> Any:
    """A YAML value as JSON: dates as ISO text; binary, sets, and floats JSON cannot hold (nan, inf) as text."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
