"""Article outline vectors (:mod:`kb.search.outline`) on the hashing embedder (character n-grams, no model file)."""

from __future__ import annotations

import numpy as np

from kb.search.embedders.hashing import HashingEmbedder
from kb.search.outline import MAX_OUTLINE_CHARS, OutlineVectors, outline_text


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
