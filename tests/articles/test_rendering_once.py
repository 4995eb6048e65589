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


LINKED = """# 打印机脱机

先看[驱动说明](drivers.md)与[手册][m]，再看![拓扑](img/net.png)。

- [旧文](old.md) 已废弃
- [外部](https://example.com/x.md)

[m]: manual.md "手册"
"""


def _rewriter(prefix: str) -> rendering.UrlRewriter:
    def rewrite(kind: str, url: str) -> str | None:
        if url == "old.md":
            return None  # dropped: the link keeps its text
        return f"/{prefix}/{kind}/{url}"

    return rewrite


def _fresh_rewritten(markdown: str, rewrite: rendering.UrlRewriter) -> str:
    md = rendering._renderer()
    tokens = md.parse(markdown)
    for token in tokens:
        if token.type == "inline" and token.children:
            token.children = rendering._rewritten(token.children, rewrite)
    html: str = md.renderer.render(tokens, md.options, {})
    return html


def test_a_linked_body_is_rendered_with_rewritten_links_from_validations_tokens_which_stay_unchanged() -> None:
    check_renderable(LINKED)  # validation parsed it once and kept the tokens (it links to .md files)
    assert LINKED in rendering._parsed
    first = render_html(LINKED, _rewriter("a"))
    assert first == _fresh_rewritten(LINKED, _rewriter("a"))
    assert 'href="/a/link/drivers.md"' in first and 'src="/a/image/img/net.png"' in first
    assert "old.md" not in first and "旧文" in first
    second = render_html(LINKED, _rewriter("b"))  # the cached tokens were not changed by the first rewrite
    assert second == _fresh_rewritten(LINKED, _rewriter("b")) and "/a/" not in second
    assert render_html(LINKED) == fresh(LINKED)  # and the plain HTML is the original


def test_the_parsed_cache_is_bounded_and_holds_linked_bodies_only() -> None:
    check_renderable("# 没有链接\n")
    assert "# 没有链接\n" not in rendering._parsed
    for i in range(rendering.PARSED_CACHE_SIZE + 3):
        check_renderable(f"[第 {i} 篇](p{i}.md)\n")
    assert len(rendering._parsed) == rendering.PARSED_CACHE_SIZE
    assert "[第 0 篇](p0.md)\n" not in rendering._parsed


def test_the_cache_is_bounded_in_entries_and_body_size() -> None:
    for i in range(RENDERED_CACHE_SIZE + 10):
        check_renderable(f"# 第 {i} 篇\n")
    assert len(rendering._rendered) == RENDERED_CACHE_SIZE
    assert "# 第 0 篇\n" not in rendering._rendered  # the oldest went first
    long = "长" * (RENDERED_CACHE_CHARS + 1)
    check_renderable(long)
    assert long not in rendering._rendered
    assert render_html(long) == fresh(long)
