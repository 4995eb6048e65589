"""Output helpers of the command line: JSON as the API prints it, snippets as plain text."""

from __future__ import annotations

import html
import json
import re
from typing import Any


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON (Chinese kept as is; dates and other objects as strings)."""
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


#: What a terminal would act on rather than show (escape sequences, bells, backspaces): C0 but tab and LF, DEL, C1.
_TERMINAL_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def for_terminal(text: str) -> str:
    """``text`` without the control characters a terminal would act on (an article may hold pasted terminal
    output such as ``\x1b[31m``; printed raw it would recolour or rewrite the user's screen)."""
    return _TERMINAL_CONTROL.sub("", text)


def plain(snippet: str) -> str:
    """A highlighted snippet for a terminal: ``<mark>`` becomes 【】, HTML entities are decoded and control
    characters dropped (:func:`for_terminal`)."""
    return for_terminal(html.unescape(re.sub(r"</?mark>", lambda m: "】" if m.group(0)[1] == "/" else "【", snippet)))
