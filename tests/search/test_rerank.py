"""The second-stage ranker (kb.search.rerank): features from both legs, the committed model reorders the fused
candidates and explains itself, and the desk's resolved tickets vote for the articles that resolved them."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from kb.articles.content import parse_markdown
from kb.desk.workflow import NewTicket
from kb.search.rerank import SecondStage
from kb.search.rerank.desk import HALF_LIFE_DAYS, MIN_SIMILARITY, knn_votes
from kb.search.rerank.features import FEATURES, QueryEvidence, feature_matrix
from kb.search.rerank.model import load_ranker
from kb.search.rerank.reranker import DESK_WEIGHT
from kb.search.results import LegScore, SearchRequest
from kb.service import KnowledgeBase


def col(rows: np.ndarray, name: str) -> list[float]:
    return [round(float(v), 6) for v in rows[:, FEATURES.index(name)]]


def test_features_read_both_legs_and_the_query_terms_each_article_holds() -> None:
    evidence = QueryEvidence(
        terms=["磁盘", "已满"],
        identifiers=["0x80070070"],
        idf={"磁盘": 1.0, "已满": 3.0},
        holders={("磁盘", "title"): {1}, ("磁盘", "body"): {1, 2}, ("已满", "body"): {2}, ("0x80070070", "codes"): {2}},
        bm25_chunks=[((2, 0), 8.0), ((1, 0), 4.0), ((2, 1), 2.0)],
        vector_chunks=[((1, 3), 0.9), ((1, 0), 0.8), ((3, 0), 0.7)],
    )
    per_leg = {
        1: {"bm25": LegScore(2, 4.0), "vector": LegScore(1, 0.9)},
        2: {"bm25": LegScore(1, 8.0)},
        3: {"vector": LegScore(2, 0.7)},
    }
    rows = feature_matrix(evidence, [(2, 0.6), (1, 0.55), (3, 0.2)], per_leg)
    assert rows.shape == (3, len(FEATURES))
    assert col(rows, "bm25") == [1.0, 0.5, 0.0]
    assert col(rows, "bm25_chunks") == [round(math.log1p(2), 6), round(math.log1p(1), 6), 0.0]
    # article 2 has no vector hit: its cosine is the most it can be, the pool's last one
    assert col(rows, "cos1") == [0.7, 0.9, 0.7]
    assert col(rows, "cos2") == [0.7, 0.8, 0.7]
    assert col(rows, "cos_gap") == [0.2, 0.0, 0.2]
    assert col(rows, "cov_any") == [1.0, 0.25, 0.0]  # idf-weighted: 已满 weighs 3 of 4
    assert col(rows, "cov_title") == [0.0, 0.25, 0.0]
    assert col(rows, "ident") == [1.0, 0.0, 0.0]
    assert col(rows, "vec_rank") == [round(math.log(1000), 6), 0.0, round(math.log(2), 6)]
    assert col(rows, "rrf") == [1.0, round(61 / 62 + 1.0, 6), round(61 / 62, 6)]
    assert col(rows, "q_ident") == [1.0] * 3 and col(rows, "q_cov") == [1.0] * 3 and col(rows, "q_top_cos") == [0.9] * 3


def test_knn_votes_weigh_similarity_and_recency() -> None:
    fresh = knn_votes([(0.9, 0.0, [7])])
    old = knn_votes([(0.9, HALF_LIFE_DAYS, [7])])
    assert fresh[7] == pytest.approx(1 - math.exp(-0.9))
    assert old[7] == pytest.approx(1 - math.exp(-0.45))  # half the weight after one half-life
    assert knn_votes([(MIN_SIMILARITY - 0.01, 0.0, [7])]) == {}  # dissimilar tickets do not vote
    two = knn_votes([(0.8, 0.0, [7, 8]), (0.7, 0.0, [7])])
    assert two[7] > two[8] > 0
    helped = knn_votes([], {5: (4, 0), 6: (0, 3)})
    assert helped[5] == pytest.approx(0.2 * 4 / 5) and 6 not in helped  # unhelpful votes never go below 0


def add(kb: KnowledgeBase, title: str, body: str) -> int:
    outcome = kb.writer.create(parse_markdown(body, title=title), "tester")
    assert outcome.article is not None
    return outcome.article.id


@pytest.fixture
def ranked_kb(kb: KnowledgeBase) -> KnowledgeBase:
    """The test KB (hash encoder) with the committed m3e-small ranker as its second stage and the desk's votes."""
    model = load_ranker("m3e-small")
    assert model is not None
    from kb.desk.resolved_votes import ResolvedTicketVotes

    kb.engine.second_stage = SecondStage(model, ResolvedTicketVotes(kb.database, kb.closed_tickets))
    return kb


def test_the_ranker_reorders_and_explains_with_contributions_that_add_up(ranked_kb: KnowledgeBase) -> None:
    kb = ranked_kb
    for i in range(6):
        add(kb, f"打印机说明 {i}", f"打印机第 {i} 节的日常保养说明，清洁滚轮。")
    target = add(kb, "打印机脱机无法打印", "打印机显示脱机，无法打印：检查打印机 IP 与端口，重新添加打印机。")
    result = kb.engine.search(SearchRequest("打印机脱机 无法打印", explain=True))
    assert result.explain is not None and result.explain.ranker is not None
    assert result.explain.ranker.reranked == len(result.results)
    assert set(result.explain.ranker.query_features) == {f for f in FEATURES if f.startswith("q_")}
    assert result.results[0].article_id == target
    scores = [h.score for h in result.results]
    assert scores == sorted(scores, reverse=True)
    for hit in result.results:
        assert hit.explain is not None
        detail = hit.explain["ranker"]
        assert set(detail["features"]) == set(FEATURES)
        assert sum(detail["contributions"].values()) + detail["desk_vote"] == pytest.approx(hit.score, abs=1e-3)
    signals = result.explain.confidence
    assert signals.score == result.results[0].score
    # bm25 and vector modes are never reranked
    plain = kb.engine.search(SearchRequest("打印机脱机 无法打印", mode="bm25", explain=True))
    assert plain.explain is not None and plain.explain.ranker is None


def test_resolved_tickets_vote_for_the_article_that_resolved_them(ranked_kb: KnowledgeBase) -> None:
    kb = ranked_kb
    # two articles about equally good for the query: the desk's experience decides
    first = add(kb, "VPN 已连接 OA 打不开（一）", "VPN 已连接但 OA 打不开时，清除浏览器缓存后重试。")
    second = add(kb, "VPN 已连接 OA 打不开（二）", "VPN 已连接但 OA 打不开时，检查代理设置是否绕过内网。")
    query = "VPN 已连接 但是 OA 打不开"
    before = kb.engine.search(SearchRequest(query, explain=True))
    assert {h.article_id for h in before.results} == {first, second}
    loser = before.results[1].article_id
    gap = before.results[0].score - before.results[1].score
    now = dt.datetime.now(dt.UTC)
    kb.accounts.create("agent", ["agent"], "tester", groups=["服务台"])  # only the desk's resolutions vote
    for i in range(3):  # three past tickets like the query, each resolved by the article ranked second
        handled = kb.tickets.take_in(
            NewTicket(
                f"VPN 已连接 OA 打不开 {i}",
                "VPN 显示已连接，但是 OA 打不开",
                "日常服务",
                opened_at=now - dt.timedelta(days=3),
            ),
            "agent",
        )
        kb.desk.deflect(handled.ticket.id, loser, "agent")
    # the first two were encoded when the next ticket's similar-ticket query ran (kb.desk.similar), the last one now
    assert kb.ticket_vectors.embed_closed() == 1
    after = kb.engine.search(SearchRequest(query, explain=True))
    detail = next(h.explain["ranker"] for h in after.results if h.article_id == loser and h.explain)
    assert detail["desk_vote"] > 0.5
    lifted = next(h.score for h in after.results if h.article_id == loser)
    assert lifted == pytest.approx(before.results[1].score + DESK_WEIGHT * detail["desk_vote"], abs=1e-3)
    assert DESK_WEIGHT * detail["desk_vote"] > gap  # so it now ranks first
    assert after.results[0].article_id == loser
    other = next(h for h in after.results if h.article_id != loser)
    assert other.explain is not None and other.explain["ranker"]["desk_vote"] == 0.0


def test_no_second_stage_for_a_model_without_ranker(kb: KnowledgeBase) -> None:
    assert load_ranker("hash") is None
    assert kb.engine.second_stage is None  # the test KB runs the hash encoder
