"""An update proposal is seen by exactly who may see the article it would overwrite (kb.articles.proposal_scope).

Found by session 14's outside tester: a proposal about an article restricted to one group was stored with its own
(default internal) visibility, published, and every internal user found its proposed body by search. On SQLite and
PostgreSQL."""

from __future__ import annotations

from sqlalchemy import func, select

from kb.articles.content import parse_markdown
from kb.articles.filters import ArticleFilter
from kb.identity.scopes import Principal
from kb.models import Article, OutboxEntry
from kb.search.results import SearchRequest
from kb.service import KnowledgeBase

DESK = Principal("desk.one", ("agent",), ("桌面组",))
NETWORK = Principal("net.one", ("agent",), ("网络组",))
SECURITY = Principal("sec.one", ("agent",), ("安全组",))
TARGET = "---\nvisibility: restricted\nrestricted_to: [网络组]\n---\n# 核心交换机带外管理\n\n带外口令的更换。\n"


def sees(kb: KnowledgeBase, proposal: Article, viewer: Principal) -> bool:
    """Whether ``viewer`` finds ``proposal`` by the code only its body holds."""
    request = SearchRequest(f"code{proposal.id}x", filters=ArticleFilter(viewer=viewer, statuses=("published",)))
    return proposal.id in {hit.article_id for hit in kb.engine.search(request).results}


def proposal_about(kb: KnowledgeBase, target: int, status: str = "published") -> Article:
    meta = {"proposal": "update", "target_article": target}
    text = "# 更新建议：带外管理\n\n新的带外口令 oob7731 改由值班长保管。\n"
    written = kb.writer.create(parse_markdown(text, status=status, visibility="internal", meta=meta), "t")
    assert written.article is not None
    body = f"{text}\n编号 code{written.article.id}x。\n"  # a code of its own, to be found by
    written = kb.writer.update(written.article.id, parse_markdown(body, status=status, meta=meta), "t")
    assert written.article is not None and written.indexed
    return written.article


def test_a_proposal_is_stored_and_searched_with_its_targets_visibility(kb: KnowledgeBase) -> None:
    target = kb.writer.create(parse_markdown(TARGET), "t").article
    assert target is not None
    proposal = proposal_about(kb, target.id)
    stored = kb.store.get(proposal.id)
    assert (stored.visibility, stored.restricted_to) == ("restricted", ["网络组"])  # not the internal it was given
    assert not sees(kb, proposal, DESK) and sees(kb, proposal, NETWORK)
    edited = kb.writer.update(proposal.id, parse_markdown("# 更新建议\n\n改写。\n", meta=stored.meta), "t")
    assert edited.article is not None and edited.article.visibility == "restricted"  # and on every later write
    unrelated = kb.writer.create(parse_markdown("# 无关\n\n正文。\n", meta={"proposal": "update"}), "t").article
    assert unrelated is not None and unrelated.visibility == "internal"  # no target: its own


def test_a_change_of_the_targets_visibility_reaches_its_open_proposals_in_the_same_write(kb: KnowledgeBase) -> None:
    target = kb.writer.create(parse_markdown(TARGET), "t").article
    assert target is not None
    open_one, draft = proposal_about(kb, target.id), proposal_about(kb, target.id, status="draft")
    decided = proposal_about(kb, target.id, status="draft")
    kb.writer.reject_proposal(decided.id, "t")  # retired: it stays as it was
    other = proposal_about(kb, kb.writer.create(parse_markdown("# 别的\n\n正文。\n"), "t").article.id)  # type: ignore[union-attr]
    with kb.database.session() as session:
        before = session.scalar(select(func.max(OutboxEntry.seq)))
    moved = "---\nvisibility: restricted\nrestricted_to: [安全组]\n---\n# 核心交换机带外管理\n\n带外口令的更换。\n"
    changed = kb.writer.update(target.id, parse_markdown(moved), "t")
    assert changed.indexed
    for proposal in (open_one, draft):
        stored = kb.store.get(proposal.id)
        assert (stored.restricted_to, stored.version) == (["安全组"], proposal.version + 1), proposal.id
    assert kb.store.get(decided.id).restricted_to == ["网络组"]
    assert kb.store.get(other.id).visibility == "internal"
    with kb.database.session() as session:
        queued = set(session.scalars(select(OutboxEntry.article_id).where(OutboxEntry.seq > before)))
    assert queued == {target.id, open_one.id, draft.id}  # one transaction, each re-indexed
    kb.index.apply_pending()
    assert not sees(kb, open_one, NETWORK) and sees(kb, open_one, SECURITY)
    assert sees(kb, other, NETWORK) and sees(kb, other, SECURITY)
    kb.writer.update(target.id, parse_markdown("# 核心交换机带外管理\n\n公开了。\n"), "t")  # internal again
    assert {kb.store.get(p.id).visibility for p in (open_one, draft)} == {"internal"}
    assert sees(kb, open_one, DESK)


def test_accepting_a_proposal_keeps_the_targets_visibility(kb: KnowledgeBase) -> None:
    target = kb.writer.create(parse_markdown(TARGET), "t").article
    assert target is not None
    proposal = proposal_about(kb, target.id, status="draft")
    accepted = kb.writer.accept_proposal(proposal.id, "t")
    assert accepted.article is not None and accepted.article.id == target.id
    assert (accepted.article.visibility, accepted.article.restricted_to) == ("restricted", ["网络组"])
    assert f"code{proposal.id}x" in accepted.article.body and kb.store.get(proposal.id).status == "retired"
