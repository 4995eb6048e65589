"""Markdown to safe HTML for the agent's browser (markdown-it-py).

Raw HTML is off (``html=False``: ``<script>`` is shown as text, markdown-it-py's commonmark preset turns it
*on*, see executablebooks/markdown-it-py#295), link validation stays on (``javascript:``, ``vbscript:``,
``file:`` and non-image ``data:`` links are not turned into links, after entity decoding and in any case),
tables are on, and front matter is parsed away, never rendered.

Nesting is bounded: markdown-it's ``maxNesting`` (block and inline) is :data:`MAX_NESTING`, and a body whose
blocks nest deeper (300 ``>`` or list levels) is refused by :func:`check_renderable` before it is stored, so that
every stored article renders.

One parse per write: :func:`check_renderable` (validation, before a write is stored) keeps the HTML it rendered in a
small cache keyed by the Markdown text (:data:`RENDERED_CACHE_SIZE` bodies of at most :data:`RENDERED_CACHE_CHARS`
characters), and :func:`render_html` without a rewriter answers from it, so the write's answer (the article with its
HTML) does not parse the body again (two markdown-it parses and renders per write were a tenth of the serving
interpreter's time with 40 writers, bench/results/concurrent-writes.md).

A page can rewrite the targets of links and images as it renders (:data:`UrlRewriter`): relative image paths to a
media route, relative ``.md`` links to the page of the article from that file; a target it answers None for is
dropped (a link keeps its text, an image becomes its alt text).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
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
#: Bodies whose HTML :func:`check_renderable` keeps for :func:`render_html`, and the longest body kept, characters
#: (at most about 64 x 3 x 50,000 characters of memory: a body, its HTML and the key share the text).
RENDERED_CACHE_SIZE = 64
RENDERED_CACHE_CHARS = 50_000

_rendered: OrderedDict[str, str] = OrderedDict()
_rendered_lock = threading.Lock()


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
    md = _renderer()
    try:
        env: dict[str, object] = {}  # one env for both, as MarkdownIt.render does
        tokens = md.parse(markdown, env)
        html: str = md.renderer.render(tokens, md.options, env)
    except (RecursionError, ValueError, IndexError) as exc:
        raise ArticleFormatError("the article body cannot be rendered as Markdown") from exc
    for token in tokens:
        if token.level > MAX_NESTING:
            line = token.map[0] + 1 if token.map else "?"
            raise ArticleFormatError(f"the article body nests deeper than {MAX_NESTING} levels (line {line})")
    if len(markdown) <= RENDERED_CACHE_CHARS:
        with _rendered_lock:
            _rendered[markdown] = html
            _rendered.move_to_end(markdown)
            while len(_rendered) > RENDERED_CACHE_SIZE:
                _rendered.popitem(last=False)


def render_html(markdown: str, rewrite: UrlRewriter | None = None) -> str:
    """Render Markdown (front matter allowed) to HTML that is safe to insert into a page, the targets of links and
    images passed through ``rewrite`` when given (module docstring); without ``rewrite``, the HTML
    :func:`check_renderable` rendered of the same text when it is still cached."""
    md = _renderer()
    if rewrite is None:
        with _rendered_lock:
            cached = _rendered.get(markdown)
        if cached is not None:
            return cached
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
