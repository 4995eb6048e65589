"""Colloquial queries (issue 13 item 4): desk synonyms 口语 => 术语 and pseudo-relevance feedback on the BM25 leg."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.articles.content import parse_markdown
from kb.search.desk_terms import DeskSynonyms, DeskSynonymSource, Rule, mine_rules, read_rules
from kb.search.relevance_feedback import FeedbackSettings, feedback_terms
from kb.search.results import SearchRequest
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase


def add(kb: KnowledgeBase, title: str, body: str) -> int:
    outcome = kb.writer.create(parse_markdown(body, title=title), "tester")
    assert outcome.indexed and outcome.article is not None
    return outcome.article.id


def bm25_ids(kb: KnowledgeBase, q: str) -> list[int]:
    return [h.article_id for h in kb.engine.search(SearchRequest(q, mode="bm25")).results]


def test_bundled_rules_parse_and_bad_lines_are_named(tmp_path: Path) -> None:
    rules = read_rules(Path(__file__).parents[2] / "kb" / "data" / "desk_synonyms.txt")
    assert Rule(("蓝屏",), ("停止错误", "崩溃", "bugcheck")) in rules
    bad = tmp_path / "bad.txt"
    bad.write_text("# comment\n连不上 无法连接\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.txt:2"):
        read_rules(bad)


def test_mined_rules_turn_cannot_v_headings_into_colloquial_forms(analyzer: TextAnalyzer) -> None:
    rules = mine_rules(["Pod 无法删除", "命名空间不能删除", "磁盘空间"], analyzer)
    assert [r.formal for r in rules] == [("无法删除", "删除")]
    desk = DeskSynonyms(rules, analyzer)
    extra = desk.expand(analyzer.normalize("命名空间一直删不掉"), {"命名空间": 1.0}, 0.3)
    assert "删除" in extra and extra["删除"] == 0.3
    assert desk.expand(analyzer.normalize("磁盘满"), {}, 0.3) == {}
    # the user's own terms keep their weight
    assert "删除" not in desk.expand(analyzer.normalize("删除 删不掉"), {"删除": 1.0}, 0.3)


def test_desk_synonyms_let_a_colloquial_query_find_the_formal_article(kb: KnowledgeBase) -> None:
    formal = add(kb, "VPN 客户端无法连接", "## 无法连接\n\n检查 UDP 500 和 4500 端口是否被防火墙拦截。")
    add(kb, "公司内网说明", "内网地址段与打印服务器。")
    kb.engine.expansion.desk_weight = 0.0
    assert formal not in bm25_ids(kb, "家里连不上")  # no shared keyword without the rule
    kb.engine.expansion.desk_weight = 0.3
    assert bm25_ids(kb, "家里连不上")[:1] == [formal]
    explain = kb.engine.search(SearchRequest("家里连不上", mode="bm25", explain=True)).explain
    assert explain is not None and explain.expansions.get("连接") == 0.3


def test_feedback_terms_come_from_the_top_chunks_weighted_by_score(analyzer: TextAnalyzer) -> None:
    texts = {(1, 0): "蓝屏 停止错误 内存转储 分析", (2, 0): "蓝屏 驱动程序 更新", (3, 0): "打印机 脱机"}
    top = [((1, 0), 3.0), ((2, 0), 1.0), ((3, 0), 0.0)]
    settings = FeedbackSettings(docs=3, terms=3, weight=0.2, min_idf=0.0)
    extra = feedback_terms(top, texts, {"蓝屏": 1.0}, analyzer, lambda ts: dict.fromkeys(ts, 2.0), settings)
    assert "蓝屏" not in extra  # own terms are not fed back
    assert "打印机" not in extra and "脱机" not in extra  # a zero-score chunk says nothing
    assert max(extra.values()) == 0.2 and len(extra) == 3
    assert set(extra) <= {"停止", "错误", "停止错误", "内存", "转储", "分析", "驱动", "驱动程序", "程序", "更新"}
    # common terms (idf below the bar) are left out
    strict = FeedbackSettings(docs=3, terms=3, weight=0.2, min_idf=1.5)
    rare_only = feedback_terms(top, texts, {"蓝屏": 1.0}, analyzer, lambda ts: dict.fromkeys(ts, 0.1), strict)
    assert rare_only == {}


def test_feedback_adds_the_articles_vocabulary_to_the_query(kb: KnowledgeBase) -> None:
    target = add(kb, "系统反复重启", "电脑 开机 后 自动 重启，检查 电源 管理 与 内核 电源 事件 41。")
    other = add(kb, "内核电源事件 41", "内核 电源 事件 41 表示 意外 关机，检查 电源 与 主板。")
    add(kb, "打印机脱机", "打印机 脱机 时 重启 打印 后台 服务。")
    kb.engine.expansion.desk_weight = 0.0
    before = bm25_ids(kb, "电脑 自动 重启")
    assert other not in before
    kb.engine.expansion.feedback = FeedbackSettings(docs=2, terms=5, weight=0.3, min_idf=0.0)
    after = bm25_ids(kb, "电脑 自动 重启")
    assert after[0] == target and other in after  # found through the first hit's words 内核 电源 事件
    explain = kb.engine.search(SearchRequest("电脑 自动 重启", mode="bm25", explain=True)).explain
    assert explain is not None and 0 < max(explain.expansions.values()) <= 0.3


def test_mined_rules_arrive_in_the_background_and_follow_the_index_version(analyzer: TextAnalyzer) -> None:
    headings = ["数据盘无法挂载"]
    source = DeskSynonymSource(analyzer, lambda: list(headings))
    query = analyzer.normalize("数据盘一直挂不上")
    source.at(1)  # starts mining; the query goes on with the curated rules
    source.wait(30)
    assert "挂载" in source.at(1).expand(query, {})
    headings[:] = ["磁盘空间不足"]
    source.at(2)
    source.wait(30)
    assert "挂载" not in source.at(2).expand(query, {})
    assert "删除" in DeskSynonymSource(analyzer, None).at(3).expand(analyzer.normalize("删不掉"), {})  # curated
