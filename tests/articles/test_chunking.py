"""Chunking: heading paths, token limits, nothing lost (BL-23)."""

from __future__ import annotations

import re

from kb.articles.chunking import chunk_article, embedding_input
from kb.ingest.markdown import iter_markdown_files, read_article_file
from tests.helpers import BUNDLED


def count(text: str) -> int:
    return len(text) + 2


def test_heading_paths() -> None:
    body = "# 标题\n\n引言。\n\n## 第一节\n\n内容一。\n\n### 小节\n\n内容二。\n\n## 第二节\n\n内容三。\n"
    chunks = chunk_article("标题", body, count, 200)
    assert [c.heading_path for c in chunks] == [(), ("第一节",), ("第一节", "小节"), ("第二节",)]
    assert [c.text for c in chunks] == ["引言。", "内容一。", "内容二。", "内容三。"]


def test_long_section_is_split_with_overlap_and_nothing_is_lost() -> None:
    sentences = [f"第{i}句说明了一个步骤并且包含一些细节。" for i in range(300)]
    body = "## 长节\n\n" + "".join(sentences) + "\n\n最后一段：备用DNS 223.5.5.5。\n"
    chunks = chunk_article("长文", body, count, 128, overlap_tokens=40)
    assert len(chunks) > 10
    for c in chunks:
        assert c.token_count <= 128
        assert c.token_count == count(embedding_input("长文", c.heading_path, c.text))
    joined = "".join(c.text for c in chunks)
    for sentence in sentences:
        assert sentence in joined
    assert "223.5.5.5" in chunks[-1].text
    assert any(chunks[i].text[:10] in chunks[i - 1].text for i in range(1, len(chunks)))  # overlap


def test_unbroken_text_is_cut_by_characters() -> None:
    body = "x" * 5000
    chunks = chunk_article("t", body, count, 100)
    assert all(c.token_count <= 100 for c in chunks)
    assert sum(len(c.text) for c in chunks) == 5000


def test_empty_body_gives_one_chunk() -> None:
    chunks = chunk_article("只有标题", "", count, 100)
    assert len(chunks) == 1 and chunks[0].text == ""


def test_real_articles_fit_the_limit_and_keep_code() -> None:
    total = 0
    for path in iter_markdown_files(BUNDLED):
        content = read_article_file(path)
        if content is None:
            continue
        chunks = chunk_article(content.title, content.body, count, 300, 40)
        assert all(c.token_count <= 300 for c in chunks), path
        text = content.title + "\n".join(" ".join([*c.heading_path, c.text]) for c in chunks)
        plain_lines = [
            line
            for line in content.body.splitlines()
            if "](" not in line
            and "http" not in line
            and "<" not in line
            and not line.lstrip().startswith(("```", "~~~"))
        ]
        for word in re.findall(r"[A-Za-z]{6,}", "\n".join(plain_lines))[:80]:
            assert word in text, (path, word)
        total += len(chunks)
    assert total > 1000


def test_summary_is_its_own_first_chunk() -> None:
    chunks = chunk_article("标题", "正文第一段。", count, 200, summary="这篇文章讲什么。")
    assert [c.text for c in chunks] == ["这篇文章讲什么。", "正文第一段。"]


def test_headings_too_long_for_the_limit_are_cut_not_refused() -> None:
    """A manual page with a heading of several hundred characters must chunk (a refused document used to stop the
    whole apply batch), keeping its text and the limit."""
    long_heading = "OPTIONS " + "very-long-option-name " * 40
    body = f"## {long_heading}\n\n这一节说明了参数的用法。\n\n### {long_heading}二\n\n第二节的内容。\n"
    chunks = chunk_article("man page", body, count, 120)
    assert [c.text for c in chunks] == ["这一节说明了参数的用法。", "第二节的内容。"]
    for c in chunks:
        assert c.token_count <= 120
        assert c.token_count == count(embedding_input("man page", c.heading_path, c.text))
