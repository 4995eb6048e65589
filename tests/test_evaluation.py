"""``kb.evaluation`` on tiny sets: an article-level set over Markdown roots, and a BEIR folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from kb.cli.main import main
from kb.config import Settings
from kb.errors import InvalidInputError
from kb.evaluation import evaluate
from kb.search.rerank.boost import WEIGHT
from kb.search.rerank.desk import MIN_SIMILARITY

ARTICLES = {
    "net/vpn.md": "# VPN 无法连接\n\nVPN 客户端提示错误 809，检查防火墙 UDP 500 和 4500 端口。\n",
    "net/dns.md": "# DNS 解析失败\n\nnslookup 返回超时，检查 DNS 服务器地址。\n",
    "ops/disk.md": "# 磁盘空间不足\n\n用 du 和 df 找出占用磁盘的大文件。\n",
}
QUERIES = [
    {"_id": "q1", "text": "VPN 错误 809", "style": "keyword", "answerable": True, "fold": 0},
    {"_id": "q2", "text": "nslookup 超时", "style": "keyword", "answerable": True, "fold": 3},
    {"_id": "q3", "text": "磁盘满了 du", "style": "phrase", "answerable": True, "fold": 1},
    {"_id": "q4", "text": "报销流程怎么走", "style": "layman", "answerable": False, "fold": 4},
]
QRELS = [("q1", "net/vpn.md", 2), ("q2", "net/dns.md", 2), ("q3", "ops/disk.md", 2), ("q3", "net/dns.md", 1)]


def _write_set(folder: Path, corpus: bool) -> list[Path]:
    folder.mkdir(parents=True)
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps(q, ensure_ascii=False) + "\n" for q in QUERIES), encoding="utf-8"
    )
    (folder / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{g}\n" for q, d, g in QRELS), encoding="utf-8"
    )
    if corpus:
        lines = [{"_id": doc_id, "title": "", "text": text} for doc_id, text in ARTICLES.items()]
        (folder / "corpus.jsonl").write_text(
            "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8"
        )
        return []
    roots = set()
    for doc_id, text in ARTICLES.items():
        path = folder.parent / "articles" / doc_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        roots.add(path.parent)
    return sorted(roots)


@pytest.fixture
def eval_settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "unused", embedding_model="hash", database_url="")


def test_article_level_set_over_markdown_roots(tmp_path: Path, eval_settings: Settings) -> None:
    roots = _write_set(tmp_path / "set", corpus=False)
    data_dir = tmp_path / "kbdata"
    report = evaluate(tmp_path / "set", eval_settings, ("bm25", "hybrid"), articles=roots, data_dir=data_dir)
    assert report.documents == 3 and report.queries == 3 and report.unanswerable == 1
    rows = {r["query_id"]: r for r in report.per_query["bm25"]}
    assert rows["q1"]["top10"][0] == "net/vpn.md"  # corpus id = collection/source_path
    assert report.metrics["bm25"]["R@1"] == 1.0 and 0.9 < report.metrics["bm25"]["nDCG@10"] <= 1.0
    assert set(report.groups["bm25"]) == {"style:keyword", "style:phrase", "folds 0-2", "folds 3-4"}
    assert report.groups["bm25"]["style:keyword"]["queries"] == 2
    conf = report.confidence["bm25"]["all"]
    assert conf["answerable"] == 3 and conf["unanswerable"] == 1
    assert conf["confident_wrong"] == 0
    assert conf["flagged"] == (1 if rows["q4"]["low_confidence"] else 0)
    assert "style:keyword" in report.table() and "confident-but-wrong" in report.table()
    # The persistent data dir is reused: a second run finds the same articles and the same ranking.
    again = evaluate(tmp_path / "set", eval_settings, ("bm25",), articles=roots, data_dir=data_dir)
    assert again.documents == 3 and again.per_query["bm25"] == report.per_query["bm25"]


def test_confident_wrong_counts_a_confident_irrelevant_top1(tmp_path: Path, eval_settings: Settings) -> None:
    roots = _write_set(tmp_path / "set", corpus=False)
    qrels = tmp_path / "set" / "qrels.tsv"
    qrels.write_text(qrels.read_text(encoding="utf-8").replace("q1\tnet/vpn.md", "q1\tops/disk.md"), encoding="utf-8")
    report = evaluate(tmp_path / "set", eval_settings, ("bm25",), articles=roots)
    row = next(r for r in report.per_query["bm25"] if r["query_id"] == "q1")
    assert row["top10"][0] == "net/vpn.md" and row["top1_grade"] == 0
    expected = 0 if row["low_confidence"] else 1
    assert report.confidence["bm25"]["all"]["confident_wrong"] == expected
    assert report.metrics["bm25"]["R@1"] < 1.0


def test_beir_folder(tmp_path: Path, eval_settings: Settings) -> None:
    _write_set(tmp_path / "beir", corpus=True)
    report = evaluate(tmp_path / "beir", eval_settings, ("bm25",))
    assert report.documents == 3
    assert report.metrics["bm25"]["R@1"] == 1.0


def test_missing_root_and_unknown_mode(tmp_path: Path, eval_settings: Settings) -> None:
    _write_set(tmp_path / "set", corpus=False)
    with pytest.raises(InvalidInputError):
        evaluate(tmp_path / "set", eval_settings, ("bm25",), articles=[tmp_path / "nope"])
    with pytest.raises(InvalidInputError):
        evaluate(tmp_path / "set", eval_settings, ("nope",))


def test_cli_eval_over_markdown_roots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KB_EMBEDDING_MODEL", "hash")
    roots = _write_set(tmp_path / "set", corpus=False)
    out = tmp_path / "out.json"
    args = ["eval", str(tmp_path / "set"), "--mode", "bm25", "--out", str(out), "--data-dir", str(tmp_path / "kb")]
    assert main([*args, *[f"--articles={r}" for r in roots]]) == 0
    printed = capsys.readouterr().out
    assert "3 queries (+1 unanswerable)" in printed and "| style:phrase | bm25 | 1 |" in printed
    saved = json.loads(out.read_text(encoding="utf-8"))
    assert saved["confidence"]["bm25"]["all"]["unanswerable"] == 1


def _write_history(path: Path, lines: list[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines), encoding="utf-8")
    return path


HISTORY = [
    {
        "id": f"H{i}",
        "title": "报销单填好了提交不上去",
        "description": "财务那边的单子一直转圈，提交不了",
        "article": "ops/disk.md",
        "channel": "phone",
        "opened_at": f"2026-03-0{i}T09:00:00+08:00",
        "closed_at": f"2026-03-0{i}T11:30:00+08:00",
    }
    for i in range(1, 4)
] + [
    {
        "id": "H9",
        "title": "x",
        "description": "y",
        "article": "gone/away.md",
        "channel": "web",
        "opened_at": "2026-03-01T09:00:00+08:00",
        "closed_at": "2026-03-01T10:00:00+08:00",
    }
]


def test_desk_history_is_replayed_into_a_copy_and_votes(tmp_path: Path, eval_settings: Settings) -> None:
    roots = _write_set(tmp_path / "set", corpus=False)
    data_dir = tmp_path / "kbdata"
    plain = evaluate(tmp_path / "set", eval_settings, ("hybrid",), articles=roots, data_dir=data_dir)
    assert plain.desk_history is None
    history = _write_history(tmp_path / "tickets.jsonl", HISTORY)
    queries = tmp_path / "set" / "queries.jsonl"
    queries.write_text(
        queries.read_text(encoding="utf-8").replace("报销流程怎么走", "报销单提交不上去 一直转圈"), encoding="utf-8"
    )
    voted = evaluate(
        tmp_path / "set", eval_settings, ("hybrid",), articles=roots, data_dir=data_dir, desk_history=history
    )
    assert voted.desk_history is not None
    assert {k: voted.desk_history[k] for k in ("tickets", "closed", "skipped", "unmapped", "encoded")} == {
        "tickets": 4,
        "closed": 3,
        "skipped": 0,
        "unmapped": 1,
        "encoded": 3,
    }
    assert voted.desk_history["as_of"] == "2026-03-03T11:30:00+08:00"
    assert (voted.desk_history["ticket_model"], voted.desk_history["min_similarity"]) == ("hash", MIN_SIMILARITY)
    assert voted.desk_history["weight"] == WEIGHT
    row = next(r for r in voted.per_query["hybrid"] if r["query_id"] == "q4")
    assert row["top10"][0] == "ops/disk.md" and row["desk_boosted"] == 1  # the tickets' article, by their vote
    assert row["low_confidence"]  # the vote never makes an unanswerable query confident
    # the persistent KB never holds the tickets: a plain run again measures what it did before
    again = evaluate(tmp_path / "set", eval_settings, ("hybrid",), articles=roots, data_dir=data_dir)
    assert all(r["desk_boosted"] == 0 for r in again.per_query["hybrid"])


def test_a_malformed_desk_history_is_refused(tmp_path: Path, eval_settings: Settings) -> None:
    roots = _write_set(tmp_path / "set", corpus=False)
    for bad in (
        {**HISTORY[0], "closed_at": "2026-02-01T00:00:00+08:00"},
        {"id": "H1"},
        {**HISTORY[0], "opened_at": "x"},
    ):
        history = _write_history(tmp_path / "bad.jsonl", [bad])
        with pytest.raises(InvalidInputError):
            evaluate(tmp_path / "set", eval_settings, ("bm25",), articles=roots, desk_history=history)
