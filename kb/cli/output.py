"""Output helpers of the command line: JSON as the API prints it, snippets as plain text."""

from __future__ import annotations

import html
import json
import re
from typing import Any


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON (Chinese kept as is; dates and other objects as strings)."""
    print(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def plain(snippet: str) -> str:
    """A highlighted snippet for a terminal: ``<mark>`` becomes 【】 and HTML entities are decoded."""
    return html.unescape(re.sub(r"</?mark>", lambda m: "】" if m.group(0)[1] == "/" else "【", snippet))
