"""The one rule for text that comes in through an intake channel (web form, HTTP API, e-mail, IM): NUL and
control characters are removed, never refused.

Removed: NUL, the C0 controls except tab, line feed and carriage return (U+0001-U+0008, U+000B, U+000C,
U+000E-U+001F), DEL and the C1 controls (U+007F-U+009F), and lone UTF-16 surrogates (U+D800-U+DFFF, which no
database or UTF-8 encoder stores). Line breaks are kept, written as LF (CR LF and a lone CR become LF). Such
characters come from pasted terminal output, mail gateways and chat clients; no person typed them, PostgreSQL
cannot store NUL, and a requester should not see their ticket refused for them.

Everything else at the HTTP edge (article bodies, search queries, names) keeps the stricter rule of
:mod:`kb.api.guard`: a NUL or lone surrogate is refused with 422, because an editor's document must be stored as
written or not at all, and a query's caller sees the refusal at once.
"""

from __future__ import annotations

import re
from dataclasses import fields, replace
from typing import Any, TypeVar

T = TypeVar("T")

#: NUL, C0 and C1 control characters except tab, LF and CR, DEL, and lone surrogates (module docstring).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean_text(text: str) -> str:
    """``text`` without NUL and control characters (module docstring); tab and line breaks kept, as LF."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def clean_strings(value: Any) -> Any:
    """``value`` (parsed JSON: dicts, lists, strings, numbers) with :func:`clean_text` applied to every string,
    keys included; other values unchanged. Iterative, so any nesting the JSON parser accepted is handled."""
    if isinstance(value, str):
        return clean_text(value)
    if not isinstance(value, dict | list):
        return value
    out: Any = None
    # Each entry: (a value to copy, the container its copy goes into (None: the result), key or index there).
    pending: list[tuple[Any, Any, Any]] = [(value, None, None)]
    while pending:
        source, parent, slot = pending.pop()
        if isinstance(source, dict):
            copy: Any = {}
            for key, item in source.items():
                name = clean_text(key) if isinstance(key, str) else key
                copy[name] = None  # keeps the keys' order
                pending.append((item, copy, name))
        elif isinstance(source, list):
            copy = [None] * len(source)
            for index, item in enumerate(source):
                pending.append((item, copy, index))
        else:
            copy = clean_text(source) if isinstance(source, str) else source
        if parent is None:
            out = copy
        else:
            parent[slot] = copy
    return out


def clean_fields(item: T) -> T:
    """A copy of the dataclass instance ``item`` with :func:`clean_text` applied to each of its string fields."""
    texts = {f.name: getattr(item, f.name) for f in fields(item)}  # type: ignore[arg-type]
    cleaned = {name: clean_text(value) for name, value in texts.items() if isinstance(value, str)}
    return replace(item, **cleaned)  # type: ignore[type-var]
