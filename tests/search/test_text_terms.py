"""The per-text memory of term look-ups (kb.search.term_tokens.TextTerms) and the one-piece escaping of snippets
(kb.search.snippets.render): the same marks and coverage as tokenising the whole text, on first sight, on a
block's second use (its tokens grouped by term) and on any later use, for odd input too."""

from __future__ import annotations

import html
import random

import pytest

from kb.search import term_tokens
from kb.search.snippets import _merge, highlight, match_spans, readable, render
from kb.search.term_tokens import held_terms, text_terms
from kb.search.text import TextAnalyzer

MIXED = (
    "数据库服务器无法连接，Windows Server 2019 的 kube-proxy 报错 0x80070005；"
    "请检查 /etc/resolv.conf 和 ip地址 10.0.0.1:8080，再运行 ipconfig /flushdns。arp cache 也清一下。"
)


def _reference_spans(text: str, terms: set[str], analyzer: TextAnalyzer) -> list[tuple[int, int]]:
    """Marks by tokenising the whole text (what the substring search must give, phrase terms aside)."""
    return _merge([(t.start, t.end) for t in analyzer.tokens(text) if t.text in terms])


def _reference_snippet(text: str, spans: list[tuple[int, int]], width: int) -> str:
    """render's rule with each piece escaped on its own (the form before one-piece escaping)."""
    from kb.search.snippets import _window

    start, end = _window(text, spans, width)
    out = ["…" if start > 0 else ""]
    pos = start
    for s, e in spans:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        out += [html.escape(text[pos:s]), f"<mark>{html.escape(text[s:e])}</mark>"]
        pos = e
    out.append(html.escape(text[pos:end]))
    if end < len(text):
        out.append("…")
    return "".join(out).replace("\n", " ")


@pytest.mark.parametrize(
    ("text", "query"),
    [
        (MIXED, "数据库服务器连接不上 kube-proxy 0x80070005 ip"),
        (MIXED, "ipconfig flushdns resolv.conf 地址"),
        ("数据库服务器" * 300, "数据库 服务器 数据"),  # very long, one block, overlapping terms
        ("!!! ？？？ ... ——", "服务器"),  # only punctuation
        ("Win10 系统 ip地址 ipip pip ip", "ip win10 地址"),  # a Latin term inside longer Latin words is none
        ("服务器无法访问，他说重启后就好了", "说 器 服务器"),  # 器 inside 服务器 is no token
    ],
)
def test_marks_are_the_whole_texts_tokens_on_every_use(analyzer: TextAnalyzer, text: str, query: str) -> None:
    terms = set(analyzer.analyze_query(query).terms) | set(query.split())
    terms = {analyzer.normalize(t) for t in terms if t}
    plain, _ = readable(text)
    expected = _reference_spans(plain, terms, analyzer)
    for _ in range(3):  # first sight, the blocks' second use (grouped by term), a later use
        assert match_spans(plain, terms, analyzer) == expected
        assert held_terms(text, terms, analyzer) == terms & set(analyzer.terms(text))


def test_no_terms_empty_text_and_empty_terms_mark_nothing(analyzer: TextAnalyzer) -> None:
    assert match_spans("", {"数据"}, analyzer) == []
    assert match_spans("数据库", set(), analyzer) == []
    assert match_spans("数据库", {""}, analyzer) == []
    assert held_terms("", {"数据"}, analyzer) == set()
    assert held_terms("数据库", {""}, analyzer) == set()
    assert highlight("", {"数据"}, analyzer) == ""
    assert highlight("!!!", set(), analyzer) == "!!!"


def test_a_phrase_term_with_spaces_is_marked_whole(analyzer: TextAnalyzer) -> None:
    text = "清理 ARP Cache 后再试"
    for _ in range(2):
        spans = match_spans(text, {"arp_cache"}, analyzer)
        assert [text[s:e] for s, e in spans] == ["ARP Cache"]
        assert held_terms(text, {"arp_cache", "后"}, analyzer) >= {"arp_cache"}


def test_terms_of_one_text_asked_by_different_queries_are_each_the_whole_texts(analyzer: TextAnalyzer) -> None:
    """A text remembers every term asked for it; a later query with other terms (some shared) gets its own marks."""
    plain, _ = readable(MIXED)
    queries = [{"数据库", "连接"}, {"连接", "kube-proxy", "0x80070005"}, {"ip", "地址", "数据库"}, {"服务器", "无法"}]
    for _ in range(2):
        for terms in queries:
            assert match_spans(plain, terms, analyzer) == _reference_spans(plain, terms, analyzer)


def test_a_text_keeps_at_most_terms_per_text_terms(analyzer: TextAnalyzer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(term_tokens, "TERMS_PER_TEXT", 4)
    text = "服务器 数据库 网络 打印机 驱动 账号 密码 邮箱"
    index = text_terms(text, analyzer)
    words = text.split()
    for word in words:
        index.term(word)
        assert len(index._by_term) <= 4
    assert match_spans(text, set(words), analyzer) == _reference_spans(text, set(words), analyzer)


def test_one_piece_escaping_is_escaping_each_piece() -> None:
    rng = random.Random(11)
    alphabet = "ab<>&\"' 数据\n·"
    for _ in range(3000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        raw = sorted(rng.sample(range(len(text) + 1), min(len(text) + 1, rng.randint(0, 20))))
        spans = _merge([(s, min(len(text), s + rng.randint(1, 6))) for s in raw if s < len(text)])
        width = rng.choice([10, 40, 160])
        assert render(text, [], spans, width) == _reference_snippet(text, spans, width)


def test_text_holding_the_placeholders_is_escaped_piece_by_piece(analyzer: TextAnalyzer) -> None:
    """NUL and SOH stand for the marks while a snippet is escaped in one piece: text holding them is never taken
    for a mark (it is escaped as it is), and its terms are still marked."""
    text = "数据库\x00<b>服务器</b>\x01连接"
    snippet = render(text, [], [(0, 3)], 160)
    assert snippet == "<mark>数据库</mark>\x00&lt;b&gt;服务器&lt;/b&gt;\x01连接"
    assert highlight("a\x00b 服务器", {"服务器"}, analyzer) == "a\x00b <mark>服务器</mark>"


def test_near_duplicates_by_counting_missing_grams_are_those_by_jaccard() -> None:
    """kb.search.duplicates._same stops counting once a pair cannot reach the bar: the same verdict as the Jaccard
    similarity of the whole 4-gram sets, on pairs near the bar, far from it and in between."""
    from kb.search.duplicates import DUPLICATE_JACCARD, _same, compact, shingles

    rng = random.Random(5)
    base = "".join(rng.choice("数据库服务器连接网络打印机驱动abcdef") for _ in range(400))
    verdicts = set()
    for _ in range(1500):
        chars = list(base[: rng.randint(40, 400)])
        for _ in range(rng.choice([0, 1, 2, 5, 20, 200])):
            chars[rng.randrange(len(chars))] = rng.choice("xyz数")
        a, b = compact(base[: rng.randint(40, 400)]), compact("".join(chars))
        ga, gb = frozenset(shingles(a)), frozenset(shingles(b))
        common = len(ga & gb)
        expected = a == b or common >= DUPLICATE_JACCARD * (len(ga) + len(gb) - common)
        assert _same(a, ga, b, gb) is expected
        verdicts.add(expected)
    assert verdicts == {True, False}


def test_lines_without_markup_skip_the_inline_patterns_to_the_same_readable_form(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """readable() skips the inline patterns for a line holding none of the characters they need: the same text as
    running every pattern on every line, on the real articles' chunks and on lines made of markup."""
    from kb.articles.chunking import chunk_article
    from kb.search import snippets
    from tests.helpers import SHARED_ARTICLES

    texts = ["a | b", "a \\| b | c", "<br>x", "&amp; x &lt;", "| only |", "**x** _y_ `z` \\* ![i](u) [l](u)", ""]
    for path in sorted(SHARED_ARTICLES.rglob("*.md"))[:120]:
        source = path.read_text(encoding="utf-8", errors="replace")
        body = source.split("---", 2)[2] if source.startswith("---") else source
        texts += [chunk.text for chunk in chunk_article("t", body, lambda t: len(t) // 2, 320)]
    fast = [readable(text) for text in texts]
    monkeypatch.setattr(snippets, "_INLINE_MARKUP", __import__("re").compile(""))  # matches every line
    assert [readable(text) for text in texts] == fast
    assert len(texts) > 500
