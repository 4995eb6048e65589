"""kb.search.visible_terms: the per-version visibility arrays give exactly the answers of looking each holder up.

The reference is session 7's algorithm (every holder's summary checked with ``article_visible``), run beside the
array look-up on articles of every visibility, for viewers of every class, over every term the index holds; then
again after an article changes visibility and after one is deleted (a new index version).
"""

from __future__ import annotations

from kb.articles.content import ArticleContent
from kb.articles.store import ArticleFilter
from kb.identity.permissions import Permission
from kb.identity.scopes import Principal, article_visible
from kb.search.bm25 import FIELD_BOOSTS, BM25Index
from kb.search.results import SearchRequest
from kb.search.visible_terms import holder_check, sees_nothing, visibility_class, visible_idf
from kb.service import KnowledgeBase

ARTICLES = [
    ("打印机 脱机 处理", "打印机显示脱机，重启打印服务。", "public", []),
    ("内部 斑马密钥 轮换", "斑马密钥每季度轮换，打印机证书同步。", "internal", []),
    ("交换机 琥珀暗号", "核心交换机带外管理口 琥珀暗号 网络组专用。", "restricted", ["网络组"]),
    ("防火墙 策略 青铜口令", "防火墙策略变更需审批 青铜口令。", "restricted", ["agent"]),
]

VIEWERS = [
    None,
    Principal("req.one", ("requester",)),
    Principal("agent.net", ("agent",), ("网络组",)),
    Principal("agent.desk", ("agent",), ("桌面组",)),
    Principal("lead.one", ("desk_lead",)),
    Principal("editor.one", ("kb_editor",)),
    Principal("svc:search", (), scopes=frozenset({Permission.SEARCH})),
    Principal("svc:internal", (), scopes=frozenset({Permission.SEARCH, Permission.ARTICLE_INTERNAL})),
]


def _reference(kb: KnowledgeBase, bm25: BM25Index, viewer: Principal | None, term: str) -> bool:
    """Session 7's holder check: some holder exists and ``viewer`` may see it, one summary at a time."""
    if not bm25.holds(term):
        return False
    holders = set().union(*bm25.term_articles([term], FIELD_BOOSTS).values())
    found = kb.store.summaries(holders)
    return any(article_visible(viewer, a.visibility, a.restricted_to or ()) for a in found.values())


def _terms(kb: KnowledgeBase) -> list[str]:
    words = {t for title, body, _, _ in ARTICLES for t in kb.analyzer.analyze_query(f"{title} {body}").terms}
    return sorted(words | {"不存在的词"})


def _check_all(kb: KnowledgeBase) -> int:
    """Compare holder_check and visible_idf with the reference for every viewer and term; the number of
    (viewer, term) pairs that are hidden, so a test can tell the case it covers is not empty."""
    gen = kb.engine.index.generation
    version = gen.bm25.version
    cache = kb.engine._cache
    terms = _terms(kb)
    hidden = 0
    for viewer in VIEWERS:
        known = holder_check(gen.bm25, cache, version, viewer)
        expected = {t: _reference(kb, gen.bm25, viewer, t) for t in terms}
        assert {t: known(t) for t in terms} == expected, viewer
        idf = gen.bm25.idf(terms)
        assert visible_idf(gen.bm25, cache, version, viewer, terms) == {
            t: v if v > 0 and expected[t] else 0.0 for t, v in idf.items()
        }
        hidden += sum(gen.bm25.holds(t) and not seen for t, seen in expected.items())
    return hidden


def test_array_look_up_gives_the_reference_answers_across_versions(kb: KnowledgeBase) -> None:
    ids = []
    for title, body, visibility, restricted in ARTICLES:
        content = ArticleContent(title=title, body=body, visibility=visibility, restricted_to=restricted)
        result = kb.writer.create(content, "tester")
        assert result.article is not None and result.indexed
        ids.append(result.article.id)
    assert _check_all(kb) > 0
    gen = kb.engine.index.generation
    assert not holder_check(gen.bm25, kb.engine._cache, gen.bm25.version, VIEWERS[1])("斑马")
    internal = kb.store.get(ids[1])
    opened = ArticleContent(title=internal.title, body=internal.body, visibility="public")
    assert kb.writer.update(ids[1], opened, "tester").indexed  # a new version: 斑马 is now seen by all
    req = VIEWERS[1]
    gen = kb.engine.index.generation
    assert holder_check(gen.bm25, kb.engine._cache, gen.bm25.version, req)("斑马")
    assert _check_all(kb) > 0
    assert holder_check(gen.bm25, kb.engine._cache, gen.bm25.version, VIEWERS[2])("琥珀")  # 网络组 sees it
    kb.writer.delete(ids[2], "tester")
    gen = kb.engine.index.generation
    assert not holder_check(gen.bm25, kb.engine._cache, gen.bm25.version, VIEWERS[2])("琥珀")
    _check_all(kb)


def test_viewers_of_one_class_see_the_same_articles() -> None:
    one, two = Principal("a", ("agent",), ("网络组",)), Principal("b", ("agent",), ("网络组",))
    assert visibility_class(one) == visibility_class(two)
    assert visibility_class(one) != visibility_class(Principal("c", ("agent",), ("桌面组",)))
    every = [Principal("d", ("kb_editor",), ("网络组",)), Principal("e", ("kb_editor",))]
    assert visibility_class(every[0]) == visibility_class(every[1])  # groups do not matter to who sees them all


def test_a_caller_who_sees_no_article_gets_the_answer_the_legs_would_give(kb: KnowledgeBase) -> None:
    """Every article internal: a requester and a ``search``-only service account see none, and their answer (taken
    without the legs) is the one the full path gives (``explain`` runs the legs); once one article is public, they
    find it (the next index version)."""
    ids = []
    for title, body, _, _ in ARTICLES:
        result = kb.writer.create(ArticleContent(title=title, body=body, visibility="internal"), "tester")
        assert result.article is not None and result.indexed
        ids.append(result.article.id)
    gen = kb.engine.index.generation
    blind = [VIEWERS[1], VIEWERS[6]]
    for viewer in blind:
        assert sees_nothing(kb.engine._cache, gen.bm25.version, viewer)
    assert not any(sees_nothing(kb.engine._cache, gen.bm25.version, v) for v in VIEWERS if v not in blind)
    for query in ("打印机 脱机", "斑马密钥", "?? 0x80070005"):
        for mode in ("hybrid", "bm25", "vector"):
            for viewer in blind:
                flt = ArticleFilter(viewer=viewer)
                quick = kb.engine.search(SearchRequest(query, mode=mode, filters=flt))
                full = kb.engine.search(SearchRequest(query, mode=mode, filters=flt, explain=True))
                assert quick.results == full.results == []
                assert (quick.no_keyword_terms, quick.low_confidence) == (full.no_keyword_terms, full.low_confidence)
            lead = kb.engine.search(SearchRequest(query, mode=mode, filters=ArticleFilter(viewer=VIEWERS[4])))
            assert lead.results or (mode == "bm25" and query.startswith("??"))  # the desk lead sees them all
    printer = kb.store.get(ids[0])
    public = ArticleContent(title=printer.title, body=printer.body, visibility="public")
    assert kb.writer.update(ids[0], public, "tester").indexed
    for viewer in blind:
        found = kb.engine.search(SearchRequest("打印机 脱机", filters=ArticleFilter(viewer=viewer))).results
        assert [hit.article_id for hit in found] == [ids[0]]
