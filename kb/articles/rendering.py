"""Markdown to safe HTML for the agent's browser (markdown-it-py).

Raw HTML is off (``html=False``: ``<script>`` is shown as text, markdown-it-py's commonmark preset turns it
*on*, see executablebooks/markdown-it-py#295), link validation stays on (``javascript:``, ``vbscript:``,
``file:`` and non-image ``data:`` links are not turned into links, after entity decoding and in any case),
tables are on, and front matter is parsed away, never rendered.
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from mdit_py_plugins.front_matter import front_matter_plugin


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable("table").enable("strikethrough")
    md.use(front_matter_plugin)
    return md


def render_html(markdown: str) -> str:
    """Render Markdown (front matter allowed) to HTML that is safe to insert into a page."""
    html: str = _renderer().render(markdown)
    return html
