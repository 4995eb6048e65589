"""The block tokens stored at index time (kb.search.block_store): the analyzer's own tokens of every block a search
may tokenise, written by the indexer, shared by processes, and a cache only: the same snippets, coverage and answers
with it, without it, and for a generation built before it existed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select

from kb.articles.content import parse_markdown
from kb.models import Article, Chunk
from kb.search.block_store import BLOCKS_FILE, BlockStore, chunk_blocks, decode_tokens, encode_tokens
from kb.search.results import SearchRequest
from kb.search.snippets import highlight
from kb.search.term_tokens import BlockTokens, held_terms, text_blocks
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase

QUERIES = [
    "kubectl 无法连接 apiserver",
    "远程桌面 没有可用的许可证",
    "Pod 一直 Pending 怎么办",
    "蓝屏 0x0000007b",
    "DNS 解析失败",
]


def _tokens(analyzer: TextAnalyzer, block: str) -> BlockTokens:
    return tuple((t.text, t.start, t.end) for t in analyzer.tokens(block, remember=False))


def _chunks(kb: KnowledgeBase) -> list[tuple[str, list[str], str]]:
    with kb.database.session() as session:
        titles = dict(session.execute(select(Article.id, Article.title)).all())
        rows = session.execute(select(Chunk.article_id, Chunk.heading_path, Chunk.text)).all()
    return [(titles[a], list(h or []), t) for a, h, t in rows]


def test_encoding_round_trips_tokens_with_any_text() -> None:
    tokens = (("数据库", 0, 3), ("a\tb", 4, 7), ('"x"', 8, 11), ("ora-01555", 12, 21))
    assert decode_tokens(encode_tokens(tokens)) == tokens
    assert decode_tokens(encode_tokens(())) == ()


def test_store_holds_the_analyzers_tokens_and_is_shared_by_connections(
    tmp_path: Path, analyzer: TextAnalyzer, bundled_kb: KnowledgeBase
) -> None:
    blocks = [
        b for title, headings, text in _chunks(bundled_kb)[:40] for b in chunk_blocks(title, headings, text, analyzer)
    ]
    assert len(blocks) > 200
    writer, reader = BlockStore(tmp_path / BLOCKS_FILE), BlockStore(tmp_path / BLOCKS_FILE)  # as two processes
    try:
        assert reader(blocks[:5]) == {}
        added = writer.add(blocks, analyzer)
        assert added == len(set(blocks)) == writer.count()
        assert writer.add(blocks, analyzer) == 0  # only what is missing is tokenised and written
        assert reader(blocks) == {block: _tokens(analyzer, block) for block in blocks}
        assert reader(["not a stored block", blocks[0]]) == {blocks[0]: _tokens(analyzer, blocks[0])}
    finally:
        writer.close()
        reader.close()
    again = BlockStore(tmp_path / BLOCKS_FILE)
    try:
        assert again.count() == added
    finally:
        again.close()


def test_indexing_stores_every_block_of_every_chunk(bundled_kb: KnowledgeBase, analyzer: TextAnalyzer) -> None:
    store = bundled_kb.index.generation.blocks
    chunks = _chunks(bundled_kb)
    assert chunks
    for title, headings, text in chunks:
        blocks = chunk_blocks(title, headings, text, analyzer)
        assert store(blocks) == {block: _tokens(analyzer, block) for block in blocks}


def test_snippets_and_coverage_from_stored_tokens_equal_tokenising(
    bundled_kb: KnowledgeBase, analyzer: TextAnalyzer
) -> None:
    """A fresh analyzer remembers no block: every block comes from the store, none is tokenised (each is found),
    and the snippet and held terms are those of tokenising."""
    fresh = TextAnalyzer()
    store = bundled_kb.index.generation.blocks
    read: list[str] = []
    missed: list[str] = []

    def counting(blocks: Sequence[str]) -> dict[str, BlockTokens]:
        found = store(blocks)
        read.extend(found)
        missed.extend(b for b in blocks if b not in found)
        return found

    compared = 0
    for query in QUERIES:
        terms = set(analyzer.analyze_query(query).terms)
        for title, headings, text in _chunks(bundled_kb):
            assert highlight(text, terms, fresh, stored=counting) == highlight(text, terms, analyzer)
            joined = " ".join([title, *headings, text])
            assert held_terms(joined, terms, fresh, counting) == held_terms(joined, terms, analyzer)
            compared += 1
    assert compared > 100 and read and not missed


def test_blocks_of_text_are_the_runs_between_separators(analyzer: TextAnalyzer) -> None:
    assert text_blocks("重启 kube-proxy，然后（再）检查 Pod。", analyzer) == [
        "重启",
        "kube-proxy",
        "然后",
        "再",
        "检查",
        "pod",
    ]
    assert text_blocks("… —— ！", analyzer) == []


def test_a_generation_without_stored_blocks_answers_the_same(kb: KnowledgeBase, tmp_path: Path) -> None:
    for markdown in [
        "# 远程桌面 没有可用的许可证\n\n远程桌面连接提示没有可用的许可证。检查 RD 授权服务器，重新激活许可证。",
        "# kubectl 无法连接 apiserver\n\n## 证书\n\n检查 kubeconfig 与证书，确认 kube-apiserver 在 6443 端口监听。",
    ]:
        kb.writer.create(parse_markdown(markdown), "tester")
    requests = [SearchRequest(q, mode=m) for q in QUERIES for m in ("hybrid", "bm25", "vector")]

    def answers() -> str:
        return json.dumps([kb.engine.search(r).results for r in requests], default=lambda o: o.__dict__)

    before = answers()
    gen = kb.index.generation
    assert gen.blocks.count() > 0
    path = gen.blocks.path
    gen.blocks.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    gen.blocks = BlockStore(path)  # what loading a generation built before the store finds: an empty one
    assert gen.blocks.count() == 0
    assert answers() == before
