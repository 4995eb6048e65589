"""Article outline vectors (:mod:`kb.search.outline`) on the hashing embedder (character n-grams, no model file)."""

from __future__ import annotations

import numpy as np

from kb.articles.content import parse_markdown
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.outline import MAX_OUTLINE_CHARS, OutlineVectors, outline_text
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase


def test_outline_is_the_title_then_each_heading_once() -> None:
    paths = [(), ("症状",), ("原因", "证书过期"), ("原因",), ("解决方法",)]
    assert outline_text("VPN 无法连接", paths) == "VPN 无法连接 / 症状 / 原因 / 证书过期 / 解决方法"
    assert outline_text("ls", [("ls",), ("选项",)]) == "ls / 选项"  # a heading equal to the title is not repeated
    assert outline_text("TiUP FAQ", [(), ()]) == outline_text("ls", [("ls",)]) == ""  # title alone: no outline
    assert len(outline_text("长" * 10, [(str(i) * 50,) for i in range(20)])) == MAX_OUTLINE_CHARS


def test_blend_lifts_the_article_whose_outline_matches_and_keeps_each_articles_chunk_order() -> None:
    embedder = HashingEmbedder()
    outlines = {1: "打印机脱机 / 清空打印队列 / 重启打印后台服务", 2: "邮箱已满 / 归档旧邮件", 3: ""}
    table = OutlineVectors(outlines, embedder)
    assert table.article_ids == [1, 2]
    query = embedder.encode_queries(["打印机脱机 打印队列"])[0]
    cos = table.cosines(query, [1, 2, 3])
    assert set(cos) == {1, 2} and cos[1] > cos[2]  # article 3 has no outline
    candidates = [((2, 0), 0.80), ((1, 3), 0.78), ((2, 1), 0.50), ((1, 0), 0.40), ((3, 0), 0.70)]
    blended = table.blend(candidates, query, weight=1.0)
    assert blended[0][0] == (1, 3)  # article 1 overtakes article 2 thanks to its outline
    scores = dict(blended)
    assert np.isclose(scores[(1, 3)], (0.78 + cos[1]) / 2) and np.isclose(scores[(2, 1)], (0.50 + cos[2]) / 2)
    assert scores[(3, 0)] == 0.70  # no outline: its chunk cosine stays
    order = [key for key, _ in blended]
    assert order.index((1, 3)) < order.index((1, 0)) and order.index((2, 0)) < order.index((2, 1))
    assert [s for _, s in blended] == sorted((s for _, s in blended), reverse=True)
    assert table.blend(candidates, query, weight=0.0) == candidates


def test_the_vector_leg_blends_each_article_with_its_outline(kb: KnowledgeBase) -> None:
    body = "## 症状\n\n远程桌面连接被断开。\n\n## 解决方法\n\n配置许可证服务器并重启会话主机。"
    made = kb.writer.create(parse_markdown(body, title="没有可用的许可证"), "tester").article
    plain = kb.writer.create(parse_markdown("配置许可证服务器的步骤与截图。", title="许可证服务器"), "tester").article
    assert made is not None and plain is not None
    request = SearchRequest("远程桌面 许可证服务器", mode="vector", limit=10, explain=True)
    kb.engine.outlines.weight = 0.0
    before = {h.article_id: h.explain["vector"].score for h in kb.engine.search(request).results if h.explain}
    kb.engine.outlines.weight = 0.25
    kb.engine.outlines.prepare(kb.index.generation.bm25.version)
    after = {h.article_id: h.explain["vector"].score for h in kb.engine.search(request).results if h.explain}
    query = kb.embedder.encode_queries([kb.analyzer.analyze_query(request.query).normalized])[0]
    outline = kb.embedder.encode_passages(["没有可用的许可证 / 症状 / 解决方法"])[0]
    expected = (before[made.id] + 0.25 * float(outline @ query)) / 1.25
    assert np.isclose(after[made.id], expected, atol=1e-5)
    assert after[plain.id] == before[plain.id]  # no heading: no outline vector, the chunk cosine stays
