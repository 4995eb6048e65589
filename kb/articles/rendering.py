"""Markdown to safe HTML for the agent's browser (markdown-it-py).

Raw HTML is off (``html=False``: ``<script>`` is shown as text, markdown-it-py's commonmark preset turns it
*on*, see executablebooks/markdown-it-py#295), link validation stays on (``javascript:``, ``vbscript:``,
``file:`` and non-image ``data:`` links are not turned into links, after entity decoding and in any case),
tables are on, and front matter is parsed away, never rendered.

Nesting is bounded: markdown-it's ``maxNesting`` (block and inline) is :data:`MAX_NESTING`, and a body whose
blocks nest deeper (300 ``>`` or list levels) is refused by :func:`check_renderable` before it is stored, so that
every stored article renders.

A page can rewrite the targets of links and images as it renders (:data:`UrlRewriter`): relative image paths to a
media route, relative ``.md`` links to the page of the article from that file; a target it answers None for is
dropped (a link keeps its text, an image becomes its alt text).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin

from kb.errors import ArticleFormatError

#: ``rewrite(kind, url)`` with kind ``"link"`` or ``"image"`` and the URL as markdown-it normalised it (percent-
#: encoded; only links that passed link validation): the URL to use instead, or None to drop the link or image.
UrlRewriter = Callable[[str, str], str | None]

#: Deepest nesting of blocks (quotes, lists) and inline markup an article may have.
MAX_NESTING = 40


@lru_cache(maxsize=1)
def _renderer() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark", {"html": False, "linkify": False, "typographer": False, "maxNesting": MAX_NESTING + 20}
    )
    md.enable("table").enable("strikethrough")
    md.use(front_matter_plugin)
    return md


def check_renderable(markdown: str) -> None:
    """Refuse Markdown that nests blocks deeper than :data:`MAX_NESTING` or that markdown-it cannot render.

    Raises:
        ArticleFormatError: too deep (the message names the line), or the renderer failed.
    """
    try:
        tokens = _renderer().parse(markdown)
        _renderer().renderer.render(tokens, _renderer().options, {})
    except (RecursionError, ValueError, IndexError) as exc:
        raise ArticleFormatError("the article body cannot be rendered as Markdown") from exc
    for token in tokens:
        if token.level > MAX_NESTING:
            line = token.map[0] + 1 if token.map else "?"
            raise ArticleFormatError(f"the article body nests deeper than {MAX_NESTING} levels (line {line})")


def render_html(markdown: str, rewrite: UrlRewriter | None = None) -> str:
    """Render Markdown (front matter allowed) to HTML that is safe to insert into a page, the targets of links and
    images passed through ``rewrite`` when given (module docstring)."""
    md = _renderer()
    if rewrite is None:
        html: str = md.render(markdown)
        return html
    tokens = md.parse(markdown)
    for token in tokens:
        if token.type == "inline" and token.children:
            token.children = _rewritten(token.children, rewrite)
    html = md.renderer.render(tokens, md.options, {})
    return html


def _rewritten(children: list[Token], rewrite: UrlRewriter) -> list[Token]:
    out: list[Token] = []
    dropped: list[bool] = []  # per open link: was it dropped (so its close goes too)
    for child in children:
        if child.type == "link_open":
            target = rewrite("link", str(child.attrGet("href") or ""))
            dropped.append(target is None)
            if target is None:
                continue
            child.attrSet("href", target)
        elif child.type == "link_close":
            if dropped and dropped.pop():
                continue
        elif child.type == "image":
            target = rewrite("image", str(child.attrGet("src") or ""))
            if target is None:
                out.append(Token("text", "", 0, content=child.content))
                continue
            child.attrSet("src", target)
        out.append(child)
    return out
