"""The five failure classes of issue 13, each on a small fixture of its own: terms spread over an article's
chunks, identifier parts flooding the keyword leg, identical passages filling the page, RRF ties, padding."""

from __future__ import annotations

import dataclasses

from kb.articles.content import parse_markdown
from kb.config import Settings
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.results import SearchRequest, SearchResult, WeightedFusion
from kb.search.text import TextAnalyzer
from kb.search.weighting import FusionWeights, bm25_weight
from kb.service import KnowledgeBase


def add(kb: KnowledgeBase, title: str, body: str) -> int:
    outcome = kb.writer.create(parse_markdown(body, title=title), "tester")
    assert outcome.indexed and outcome.article is not None
    return outcome.article.id


def search(kb: KnowledgeBase, q: str, mode: str = "hybrid", **kw: object) -> SearchResult:
    return kb.engine.search(SearchRequest(q, mode=mode, **kw))  # type: ignore[arg-type]


def ids(kb: KnowledgeBase, q: str, mode: str = "hybrid", **kw: object) -> list[int]:
    return [h.article_id for h in search(kb, q, mode, **kw).results]


FILLER = "这一节记录现场排查时的常规步骤和注意事项，先确认影响范围，再收集日志，然后按顺序逐项核对配置。" * 12


def test_terms_spread_over_chunks_add_up_at_article_level(kb: KnowledgeBase) -> None:
    long_id = add(
        kb,
        "存储阵列运维手册",
        f"## 阵列降级\n\n阵列降级时控制器告警。{FILLER}\n\n## 热备盘重建\n\n热备盘重建需要数小时。{FILLER}",
    )
    chunks = kb.engine.chunks.of_article(long_id)
    with_first = {c.ord for c in chunks if "降级" in c.text}
    with_second = {c.ord for c in chunks if "热备盘" in c.text}
    assert with_first and with_second and not with_first & with_second  # the terms are in different chunks
    short_a = add(kb, "告警说明一", "阵列降级 告警。")
    short_b = add(kb, "告警说明二", "热备盘 告警。")
    best_only = {h.article_id: h.score for h in search(kb, "阵列降级 热备盘重建", "bm25").results}
    kb.engine.chunk_decay = 0.5
    found = ids(kb, "阵列降级 热备盘重建", "bm25")
    assert found[0] == long_id
    assert {short_a, short_b} <= set(found)
    scores = {h.article_id: h.score for h in search(kb, "阵列降级 热备盘重建", "bm25").results}
    assert scores[long_id] > max(scores[short_a], scores[short_b])
    assert scores[long_id] > best_only[long_id] * 1.2  # the second term's chunk adds to the article
    assert scores[short_a] == best_only[short_a]  # a one-chunk article scores its chunk


def test_whole_identifier_dominates_its_parts(kb: KnowledgeBase) -> None:
    release = add(kb, "3.6.3 版本说明", "版本 3.6.3 修复了连接池泄漏。")
    noise = [add(kb, f"笔记 {i}", f"第 {i} 步：重启 3 次，等待 6 秒。") for i in range(5)]
    found = ids(kb, "3.6.3", "bm25")
    assert found == [release]  # parts `3` and `6` are not searched when the index holds `3.6.3`
    result = search(kb, "3.6.3", "bm25", explain=True)
    assert result.explain is not None and result.explain.terms == ["3.6.3"]
    # An identifier the index does not hold falls back to its parts.
    fallback = ids(kb, "3.6.9", "bm25")
    assert release in fallback and set(noise) & set(fallback)


def test_identical_short_passages_collapse_into_one_result(kb: KnowledgeBase) -> None:
    same = "重启打印后台服务 Spooler。"
    copies = [add(kb, f"打印机脱机处理 {i}", same) for i in range(4)]
    other = add(kb, "打印队列卡住", "打印队列卡住时清空队列目录，再重启 Spooler 服务。")
    result = search(kb, "Spooler 打印后台服务", "bm25", limit=5)
    by_id = {h.article_id: h for h in result.results}
    kept = [aid for aid in copies if aid in by_id]
    assert len(kept) == 1  # one result for the passage ...
    listed = {d.article_id for d in by_id[kept[0]].duplicates}
    assert listed == set(copies) - set(kept)  # ... listing every other article that holds it
    assert other in by_id
    assert dataclasses.asdict(result)["results"][0]["duplicates"] is not None  # part of the JSON answer


def test_long_near_duplicates_are_folded_too(kb: KnowledgeBase) -> None:
    body = "先在服务管理器里停止 Print Spooler，删除 C:\\Windows\\System32\\spool\\PRINTERS 下的文件，再启动服务。"
    first = add(kb, "清空打印队列", body)
    second = add(kb, "打印队列清理", body + " ")
    hits = search(kb, "Print Spooler PRINTERS", "bm25").results
    assert len([h for h in hits if h.article_id in (first, second)]) == 1
    assert {d.article_id for h in hits for d in h.duplicates} == {first, second} - {hits[0].article_id}


def test_tied_bm25_scores_share_a_rank(kb: KnowledgeBase) -> None:
    a = add(kb, "文件服务器配额", "配额 告警")
    b = add(kb, "文件服务器配额", "配额 提醒")
    for mode in ("bm25", "hybrid"):
        result = search(kb, "配额", mode, explain=True, fusion="rrf")
        ranks = {h.article_id: h.explain["bm25"].rank for h in result.results if h.explain and "bm25" in h.explain}
        assert ranks[a] == ranks[b] == 1


def test_vector_only_hits_below_the_unrelated_level_are_not_returned(kb: KnowledgeBase) -> None:
    add(kb, "VPN 无法连接", "VPN 客户端报错 809，检查防火墙端口。")
    add(kb, "邮箱满了", "清理邮箱，归档旧邮件。")
    assert ids(kb, "今天天气怎么样", "vector")  # without a bar the vector leg pads the page
    kb.engine.thresholds = dataclasses.replace(kb.engine.thresholds, unrelated_cosine=0.99)
    assert ids(kb, "今天天气怎么样", "vector") == []
    assert ids(kb, "今天天气怎么样") == []
    # A keyword match is never padding, whatever its cosine.
    assert ids(kb, "VPN 809")


def test_query_dependent_weights() -> None:
    weights = FusionWeights(short=0.6, long=0.4, short_terms=8, identifier=0.7)
    assert bm25_weight(False, 3, weights) == 0.6  # a few keywords typed from an article: trust BM25 more
    assert bm25_weight(False, 8, weights) == 0.6
    assert bm25_weight(False, 9, weights) == 0.4  # a ticket or a layman's description: trust the vectors more
    assert bm25_weight(True, 20, weights) == 0.7  # an identifier: at least the identifier weight
    assert bm25_weight(True, 2, FusionWeights(short=0.8, long=0.4, short_terms=8, identifier=0.7)) == 0.8


def test_explain_shows_the_query_weights(kb: KnowledgeBase) -> None:
    add(kb, "VPN 错误 809", "VPN 客户端报错 809，检查防火墙 UDP 500 端口。")
    kb.engine.fusion_weights = FusionWeights(short=0.8, long=0.3, short_terms=4, identifier=0.0)
    fusion = search(kb, "VPN 809", explain=True).explain.fusion  # type: ignore[union-attr]
    assert isinstance(fusion, WeightedFusion) and fusion.query_terms == 2 and fusion.weights.bm25 == 0.8
    long_query = "早上开始 公司 内网 一直 连不上 同事 也 一样 怎么办"
    fusion = search(kb, long_query, explain=True).explain.fusion  # type: ignore[union-attr]
    assert isinstance(fusion, WeightedFusion) and fusion.query_terms is not None and fusion.query_terms > 4
    assert fusion.weights.bm25 == 0.3 and fusion.weights.vector == 0.7
    fusion = search(kb, "VPN 809", explain=True, bm25_weight=0.3).explain.fusion  # type: ignore[union-attr]
    assert isinstance(fusion, WeightedFusion) and fusion.weights.bm25 == 0.3 and fusion.query_terms is None


def test_a_configured_bm25_weight_holds_for_every_query(
    settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    """Session 8's outside tester: ``KB_FUSION_BM25_WEIGHT`` was read nowhere in the hybrid mode (the calibrated
    query weights won); set, it is the weight of every query, unset the calibrated ones apply."""
    assert settings.fusion_bm25_weight is None
    static = settings.model_copy(update={"fusion_bm25_weight": 0.9})
    kb = KnowledgeBase(static, embedder=hash_embedder, analyzer=analyzer).open()
    try:
        add(kb, "VPN 错误 809", "VPN 客户端报错 809，检查防火墙 UDP 500 端口。")
        for query in ("VPN 809", "早上开始 公司 内网 一直 连不上 同事 也 一样 怎么办"):
            fusion = search(kb, query, explain=True).explain.fusion  # type: ignore[union-attr]
            assert isinstance(fusion, WeightedFusion) and fusion.weights.bm25 == 0.9 and fusion.query_terms is None
    finally:
        kb.close()
