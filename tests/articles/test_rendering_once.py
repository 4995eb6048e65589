"""One Markdown parse per write (kb.articles.rendering): the HTML that validation rendered is what the answer
shows, identical to a fresh render, for bodies with reference links, tables and front matter; the cache is bounded."""

from __future__ import annotations

from kb.articles import rendering
from kb.articles.content import parse_markdown
from kb.articles.rendering import RENDERED_CACHE_CHARS, RENDERED_CACHE_SIZE, check_renderable, render_html

BODY = """---
title: 打印机脱机
---
# 打印机脱机

见[手册][m]与<https://example.com>。

| 步骤 | 操作 |
|---|---|
| 1 | ~~重启~~ 检查电源 |

[m]: https://example.com/manual "手册"
"""


def fresh(markdown: str) -> str:
    html: str = rendering._renderer().render(markdown)
    return html


def test_the_answer_shows_the_html_validation_rendered_identical_to_a_fresh_render() -> None:
    content = parse_markdown(BODY)  # validation renders once and keeps the HTML
    assert content.body in rendering._rendered
    assert render_html(content.body) == fresh(content.body)
    assert 'href="https://example.com/manual"' in render_html(content.body)
    assert "<table>" in render_html(content.body) and "<s>重启</s>" in render_html(content.body)


def test_a_rewriter_still_renders_afresh() -> None:
    check_renderable("[说明](guide.md)\n")
    assert 'href="/x"' in render_html("[说明](guide.md)\n", lambda kind, url: "/x")


def test_the_cache_is_bounded_in_entries_and_body_size() -> None:
    for i in range(RENDERED_CACHE_SIZE + 10):
        check_renderable(f"# 第 {i} 篇\n")
    assert len(rendering._rendered) == RENDERED_CACHE_SIZE
    assert "# 第 0 篇\n" not in rendering._rendered  # the oldest went first
    long = "长" * (RENDERED_CACHE_CHARS + 1)
    check_renderable(long)
    assert long not in rendering._rendered
    assert render_html(long) == fresh(long)
