"""Fusion: RRF and weighted score fusion (cases BL-16, BL-17, BL-18, BL-20)."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from kb.search.confidence import thresholds_for
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.fusion import order, rrf, tied_ranks, weighted
from tests.helpers import create


def test_rrf_formula_and_stable_ties() -> None:
    scores = rrf({"bm25": {"a": 2.0, "b": 1.0}, "vector": {"b": 0.9, "c": 0.8}})
    assert abs(scores["b"] - (1 / 62 + 1 / 61)) < 1e-12
    assert abs(scores["a"] - 1 / 61) < 1e-12 and abs(scores["c"] - 1 / 62) < 1e-12
    assert order({"x": 1.0, "a": 1.0, "m": 2.0}) == ["m", "a", "x"]


def test_tied_scores_share_a_rank_whatever_the_insertion_order() -> None:
    assert tied_ranks({"a": 3.0, "b": 2.0, "c": 2.0, "d": 1.0}) == {"a": 1, "b": 2, "c": 2, "d": 4}
    forward = rrf({"bm25": {"x": 1.5, "y": 1.5, "z": 1.0}, "vector": {"y": 0.7, "x": 0.6}})
    backward = rrf({"bm25": {"z": 1.0, "y": 1.5, "x": 1.5}, "vector": {"x": 0.6, "y": 0.7}})
    assert forward == backward
    assert forward["x"] == 1 / 61 + 1 / 62 and forward["y"] == 1 / 61 + 1 / 61  # x and y share BM25 rank 1


def test_missing_leg_contributes_exactly_zero() -> None:  # BL-17
    raw = {"bm25": {"A": 1.0, "B": 2.0}, "vector": {"A": 0.3, "B": 0.3, "C": 0.9}}
    for floors in (None, {"vector": 0.3}):
        fused, parts = weighted(raw, {"bm25": 0.5, "vector": 0.5}, floors)
        assert "bm25" not in parts["C"] and parts["C"]["vector"] == 1.0
        assert abs(fused["C"] - 0.5) < 1e-9
        assert all(v >= 0 for v in fused.values()) and all(p >= 0 for ps in parts.values() for p in ps.values())
        assert fused["A"] < fused["C"]
    # With the floor at A's and B's cosine they get no vector part and C ties B: "C ranks first" (BL-17 as
    # written) needs a vector weight above 0.5 here.
    fused, _ = weighted(raw, {"bm25": 0.4, "vector": 0.6}, {"vector": 0.3})
    assert order(fused)[0] == "C"


def test_vector_floor_spreads_crowded_cosines() -> None:
    raw = {"bm25": {"A": 3.0, "B": 2.5}, "vector": {"A": 0.80, "B": 0.86, "Z": 0.60}}
    plain, _ = weighted(raw, {"bm25": 0.5, "vector": 0.5})
    floored, parts = weighted(raw, {"bm25": 0.5, "vector": 0.5}, {"vector": 0.60})
    assert order(plain)[0] == "A"  # cosines 0.80 vs 0.86 barely move the fused score
    assert order(floored)[0] == "B"  # normalised over the leg's candidates they do
    assert parts["Z"]["vector"] == 0.0 and abs(parts["A"]["vector"] - 0.20 / 0.26) < 1e-9


def test_keyword_only_matches_are_weighted_like_the_rest() -> None:  # BL-18
    raw = {"bm25": {"K": 25.9}, "vector": {"K": 0.10, "S": 0.85}}
    fused, _ = weighted(raw, {"bm25": 0.3, "vector": 0.7})
    assert order(fused)[0] == "S"
    assert all(0.0 <= v <= 1.0 for v in fused.values())
    no_keywords, _ = weighted(raw, {"bm25": 0.0, "vector": 1.0})
    assert order(no_keywords)[0] == "S" and abs(no_keywords["K"] - 0.10 / 0.85) < 1e-9  # its vector part only


def test_negative_cosine_never_makes_a_negative_score() -> None:
    fused, _ = weighted({"vector": {"x": -0.4}, "bm25": {"y": 3.0}}, {"bm25": 0.5, "vector": 0.5})
    assert fused["x"] == 0.0 and fused["y"] == 0.5


def test_reported_vector_score_is_the_real_cosine(client: TestClient) -> None:  # BL-16
    a = create(client, "# 邮箱容量已满\n邮箱容量已满 如何清理 邮件归档")
    b = create(client, "# 邮件归档策略\n公司邮件归档的保存期限")
    c = create(client, "# 容量已满\n邮箱容量已满")  # nearest by vector, so A's vector part is below 1
    query = "邮箱容量已满"
    embedder = HashingEmbedder()
    q = embedder.encode_queries([query])[0]
    cosine = {  # each article's one chunk, embedded as title + newline + text, recomputed independently
        a["id"]: float(q @ embedder.encode_passages(["邮箱容量已满\n邮箱容量已满 如何清理 邮件归档"])[0]),
        b["id"]: float(q @ embedder.encode_passages(["邮件归档策略\n公司邮件归档的保存期限"])[0]),
        c["id"]: float(q @ embedder.encode_passages(["容量已满\n邮箱容量已满"])[0]),
    }
    body = client.get("/search", params={"q": query, "explain": "true"}).json()
    floor = body["explain"]["fusion"]["floors"]["vector"]
    assert floor == thresholds_for("hash").vector_floor  # the model's calibrated floor
    top = next(r for r in body["results"] if r["article_id"] == a["id"])
    assert abs(top["explain"]["vector"]["score"] - cosine[a["id"]]) < 1e-4
    vec_norm = (cosine[a["id"]] - floor) / (max(cosine.values()) - floor)
    assert abs(top["explain"]["vector"]["normalized"] - vec_norm) < 1e-4
    weights = body["explain"]["fusion"]["weights"]  # this query's (kb.search.weighting)
    expected = weights["bm25"] * top["explain"]["bm25"]["normalized"] + weights["vector"] * vec_norm
    assert abs(top["score"] - expected) < 1e-4
    shifted = client.get("/search", params={"q": query, "explain": "true", "bm25_weight": 0.2}).json()
    top2 = next(r for r in shifted["results"] if r["article_id"] == a["id"])
    assert abs(top2["score"] - (0.2 * top["explain"]["bm25"]["normalized"] + 0.8 * vec_norm)) < 1e-4
    assert top2["score"] != top["score"]


def test_exact_error_code_survives_every_fusion(client: TestClient) -> None:  # BL-20
    target = create(client, "# 错误 0x80070005\n错误 0x80070005 拒绝访问 的解决办法")
    for i in range(10):
        create(client, f"# 权限不足 {i}\n权限不足 拒绝访问 错误 解决办法 第{i}种情况 0x8007")
    for params in ({"fusion": "rrf"}, {"fusion": "weighted"}, {"fusion": "weighted", "bm25_weight": 0.2}):
        ids = [r["article_id"] for r in client.get("/search", params={"q": "0x80070005", **params}).json()["results"]]
        assert target["id"] in ids[:3], params


def test_hash_embedder_is_deterministic() -> None:
    e = HashingEmbedder()
    assert np.array_equal(e.encode_passages(["打印机卡纸"]), HashingEmbedder().encode_passages(["打印机卡纸"]))
