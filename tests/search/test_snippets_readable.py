"""Snippets that read as text (issue 12 item 8): Markdown tables become one clean row, HTML fragments and Markdown
marks are gone, the match stays highlighted and everything stays escaped. Sources are real articles."""

from __future__ import annotations

import re

import pytest

from kb.search.snippets import CELL_SEPARATOR, highlight, readable
from kb.search.text import TextAnalyzer
from tests.helpers import NO_LICENSES, SHARED_ARTICLES

DOCS = SHARED_ARTICLES / "windows-troubleshooting" / "WindowsServerDocs"
STORAGE = DOCS / "storage" / "storage-spaces" / "troubleshooting-storage-spaces.md"
DC_DEPLOY = DOCS / "identity" / "ad-ds" / "deploy" / "Troubleshooting-Domain-Controller-Deployment.md"

pytestmark = pytest.mark.skipif(not STORAGE.exists(), reason="needs /work/shared/data/articles")


def _around(path, marker: str, before: int = 200, after: int = 900) -> str:  # type: ignore[no-untyped-def]
    text = path.read_text(encoding="utf-8")
    at = text.index(marker)
    return text[max(0, at - before) : at + after]


def _plain(snippet: str) -> str:
    return snippet.replace("<mark>", "").replace("</mark>", "")


def test_a_markdown_table_snippet_is_one_clean_row(analyzer: TextAnalyzer) -> None:
    chunk = _around(STORAGE, "|编号|")
    snippet = highlight(chunk, {"脱机"}, analyzer)
    assert "<mark>脱机</mark>" in snippet
    assert "|" not in snippet and "-|-" not in snippet
    row = _plain(snippet).strip("…")
    assert row == CELL_SEPARATOR.join(["Msft Virtu", "正常", "脱机", "100 GB", "原材料"])


def test_html_fragments_in_table_cells_are_dropped(analyzer: TextAnalyzer) -> None:
    chunk = _around(DC_DEPLOY, "|服务器管理器或 ADDSDeployment", before=0, after=400)
    assert "<br />" in chunk
    snippet = highlight(chunk, {"dcpromoui"}, analyzer)
    plain = _plain(snippet)
    assert "<br" not in snippet and "&lt;br" not in snippet and "<b" not in plain
    assert plain.strip("…").startswith("服务器管理器或 ADDSDeployment Windows PowerShell 操作 · %systemroot%")
    assert "\n" not in snippet and "林或域升级" not in plain  # one row only


def test_markdown_marks_links_and_anchors_read_as_text(analyzer: TextAnalyzer) -> None:
    body = NO_LICENSES.split("---", 2)[2]  # a chunk holds the body, not the front matter
    text, rows = readable(body)
    assert rows == []
    assert '<a name="' not in text and "](" not in text and "![" not in text
    assert "对于这种情况，请配置 RD 许可服务。" in text
    assert "打开服务器管理器并导航到“远程桌面服务”。" in text.splitlines()  # list marker "1. " gone
    assert "许可证服务器 <计算机名> 不可用。" in text  # backslash escapes decoded, shown as text
    snippet = highlight(body, {"计算机"}, analyzer)
    assert "&lt;<mark>计算机</mark>名&gt;" in snippet  # and escaped in the HTML


def test_only_mark_is_markup_even_for_hostile_html(analyzer: TextAnalyzer) -> None:
    hostile = '说明 <script>alert(1)</script> 与 <img src=x onerror="x()"> 以及 &lt;b&gt;粗体&lt;/b&gt; 许可证'
    snippet = highlight(hostile, {"许可证"}, analyzer)
    assert re.sub(r"</?mark>", "", snippet).count("<") == 0
    assert "&lt;b&gt;粗体&lt;/b&gt;" in snippet  # an entity in the source is text, shown as such
    assert "<mark>许可证</mark>" in snippet


def test_underscores_inside_identifiers_are_not_emphasis() -> None:
    text, _ = readable("路径 adprep @ no__t-0 @ no__t-1\\adprep.log 与 **重要** 和 *注意*")
    assert "no__t-0 @ no__t-1" in text and "重要" in text and "**" not in text and "*注意*" not in text
