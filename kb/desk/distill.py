"""Distillation without a language model: groups of alike closed tickets become draft KCS articles.

1. **Tickets**: closed or resolved, not yet distilled (``tickets.distilled_into`` is empty), optionally of one
   ``source`` / ``category``.
2. **Two similarities**: the embedding of title + description + resolution (the knowledge base's own model, stored
   on the ticket so a re-run does not encode again), and TF-IDF over kb's analyzer terms (scikit-learn,
   sublinear tf, l2). Each ticket's 10 nearest neighbours by embedding (faiss, exact inner product) are candidate
   pairs; a pair is *alike* when both tickets are among each other's neighbours and the mean of the two cosines is at
   least ``distill_similarity`` (setting, default 0.8).
3. **Groups**: connected components of alike pairs with at least ``distill_min_group`` tickets (setting, default 5).
   Mutual neighbours and the high bar keep components from chaining unrelated tickets together.
4. **Draft**, per group, in the KCS template (:mod:`kb.articles.kcs`), every ticket text redacted first (:mod:`kb.ingest.redaction`,
   the tickets' requesters included): title and symptoms from the group's medoid (the ticket most alike to the
   others) and the group's most characteristic terms (highest summed TF-IDF); environment from the commonest
   category, service, configuration item and resolver group; cause from the commonest root cause; resolution the
   *clearest* one: of the tickets with a resolution, the one closest to the group's resolution centroid (agreed on
   by the most tickets), ties to the longer; scope lists the source ticket ids.
5. **Near-duplicates first**: the medoid's text is searched among published articles; when the best hit is a
   confident match (``low_confidence`` false), the draft is a proposal to *update* that article with the new
   evidence (title ``更新建议：…``, ``meta.proposal = "update"``, ``meta.target_article``), not a second article.

Every draft is ``status = draft`` (kind ``troubleshooting``), so nothing reaches agents before a review. With a
summariser configured (:mod:`kb.desk.summarizer`, off by default) the redacted draft body is rewritten by a language
model before it is stored (``meta.rewritten_by``), and kept as written when the rewrite fails its checks.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

from kb.articles.content import ArticleContent
from kb.articles.kcs import KcsArticle
from kb.articles.store import ArticleFilter
from kb.desk.summarizer import Summarizer
from kb.ingest.redaction import Redactor
from kb.models import Ticket
from kb.search.results import SearchRequest

if TYPE_CHECKING:
    from kb.service import KnowledgeBase

logger = logging.getLogger(__name__)

NEIGHBOURS = 10
#: Ticket ids listed in a draft's scope section (all of them are in ``meta.distilled_from``).
LISTED_TICKETS = 20
#: Characteristic terms shown as the group's common symptoms.
SYMPTOM_TERMS = 8
ENCODE_BATCH = 256
CLOSED = ("closed", "resolved")


@dataclass
class Group:
    """Tickets found alike: their ids (database), the medoid's position in ``ids``, the proposal made."""

    ids: list[int]
    medoid: int
    article_id: int | None = None
    proposal: str = "create"
    target_article: int | None = None
    title: str = ""


@dataclass
class DistillReport:
    """What a run did: tickets considered, groups found (size >= minimum), drafts created per proposal."""

    tickets: int = 0
    encoded: int = 0
    groups: list[Group] = field(default_factory=list)
    singletons: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (groups: size, article, proposal, title)."""
        return {
            "tickets": self.tickets,
            "encoded": self.encoded,
            "groups": len(self.groups),
            "tickets_in_groups": sum(len(g.ids) for g in self.groups),
            "new_articles": sum(1 for g in self.groups if g.proposal == "create"),
            "update_proposals": sum(1 for g in self.groups if g.proposal == "update"),
            "drafts": [
                {
                    "size": len(g.ids),
                    "article_id": g.article_id,
                    "proposal": g.proposal,
                    "target_article": g.target_article,
                    "title": g.title,
                }
                for g in sorted(self.groups, key=lambda g: -len(g.ids))
            ],
        }


def ticket_text(ticket: Ticket) -> str:
    """What a ticket says about the problem and its fix: title, description and resolution."""
    parts = [ticket.title]
    if ticket.description and not ticket.description.startswith(ticket.title.rstrip("…")):
        parts.append(ticket.description)
    elif ticket.description:
        parts[0] = ticket.description
    if ticket.resolution:
        parts.append(ticket.resolution)
    return "\n".join(parts)


def distill(
    kb: KnowledgeBase,
    actor: str,
    *,
    source: str | None = None,
    category: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> DistillReport:
    """Group alike closed tickets and write a draft (or an update proposal) per group (see module docstring)."""
    settings = kb.settings
    say = progress or (lambda _phase, _done, _total: None)
    tickets = _closed_tickets(kb, source, category)
    report = DistillReport(tickets=len(tickets))
    if len(tickets) < settings.distill_min_group:
        return report
    report.encoded = ensure_embeddings(kb, tickets, say)
    vectors = np.vstack([np.frombuffer(t.embedding or b"", dtype=np.float32) for t in tickets])
    texts = [ticket_text(t) for t in tickets]
    tfidf, vocabulary = tfidf_matrix(kb, texts)
    say("grouping", 0, len(tickets))
    groups = group_alike(vectors, tfidf, settings.distill_similarity, settings.distill_min_group)
    report.singletons = len(tickets) - sum(len(g) for g in groups)
    redactor = Redactor(ips=settings.redact_ip_addresses, hosts=settings.redact_host_names)
    say("drafting", 0, len(groups))
    for done, members in enumerate(groups, start=1):
        group = _draft(kb, actor, [tickets[i] for i in members], vectors[members], tfidf[members], vocabulary, redactor)
        report.groups.append(group)
        say("drafting", done, len(groups))
    return report


def _closed_tickets(kb: KnowledgeBase, source: str | None, category: str | None) -> list[Ticket]:
    query = select(Ticket).where(Ticket.status.in_(CLOSED), Ticket.distilled_into.is_(None))
    if source:
        query = query.where(Ticket.source == source)
    if category:
        query = query.where(Ticket.category == category)
    with kb.database.session() as session:
        return list(session.scalars(query.order_by(Ticket.id)))


def ensure_embeddings(kb: KnowledgeBase, tickets: list[Ticket], say: Callable[[str, int, int], None]) -> int:
    """Encode and store the embedding of every ticket in ``tickets`` that has none for the current model;
    returns how many were encoded."""
    model = kb.embedder.name
    missing = [t for t in tickets if t.embedding is None or t.embedding_model != model]
    say("encoding", 0, len(missing))
    for start in range(0, len(missing), ENCODE_BATCH):
        batch = missing[start : start + ENCODE_BATCH]
        matrix = kb.embedder.encode_passages([kb.analyzer.normalize(ticket_text(t)) for t in batch])
        with kb.database.session() as session:
            for ticket, row in zip(batch, matrix, strict=True):
                ticket.embedding, ticket.embedding_model = row.astype(np.float32).tobytes(), model
                stored = session.get(Ticket, ticket.id)
                if stored is not None:
                    stored.embedding, stored.embedding_model = ticket.embedding, model
        say("encoding", min(start + ENCODE_BATCH, len(missing)), len(missing))
    return len(missing)


def tfidf_matrix(kb: KnowledgeBase, texts: Sequence[str]) -> tuple[Any, npt.NDArray[np.str_]]:
    """(n, vocabulary) CSR TF-IDF of ``texts`` over kb's analyzer terms (sublinear tf, l2, terms in >= 2 texts),
    and the vocabulary."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(analyzer=kb.analyzer.terms, sublinear_tf=True, min_df=2, dtype=np.float32)
    matrix = vectorizer.fit_transform(texts)
    return matrix.tocsr(), vectorizer.get_feature_names_out()


def group_alike(
    vectors: npt.NDArray[np.float32], tfidf: Any, threshold: float, min_size: int
) -> list[npt.NDArray[np.int64]]:
    """Groups (row positions, largest first) of at least ``min_size`` rows linked by alike pairs: mutual
    nearest neighbours by ``vectors`` ((n, d) L2-normalised) whose mean of embedding and ``tfidf`` cosine is at
    least ``threshold`` (see module docstring)."""
    import faiss

    n = len(vectors)
    k = min(NEIGHBOURS + 1, n)
    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(np.ascontiguousarray(vectors))
    _, neighbours = index.search(np.ascontiguousarray(vectors), k)
    src = np.repeat(np.arange(n, dtype=np.int64), k)
    dst = neighbours.reshape(-1).astype(np.int64)
    ok = (dst >= 0) & (dst != src)
    lo, hi = np.minimum(src[ok], dst[ok]), np.maximum(src[ok], dst[ok])
    pairs, seen = np.unique(lo * n + hi, return_counts=True)
    mutual = pairs[seen >= 2]  # each ticket is among the other's nearest neighbours
    if not len(mutual):
        return []
    left, right = mutual // n, mutual % n
    emb_cos = np.einsum("ij,ij->i", vectors[left], vectors[right])
    text_cos = np.asarray(tfidf[left].multiply(tfidf[right]).sum(axis=1)).ravel()
    alike = (emb_cos + text_cos) / 2 >= threshold
    parent = np.arange(n)

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return x

    for i, j in zip(left[alike].tolist(), right[alike].tolist(), strict=True):
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    roots = np.array([find(i) for i in range(n)])
    return [np.flatnonzero(roots == r) for r, size in Counter(roots.tolist()).most_common() if size >= min_size]


def _draft(
    kb: KnowledgeBase,
    actor: str,
    tickets: list[Ticket],
    vectors: npt.NDArray[np.float32],
    tfidf: Any,
    vocabulary: npt.NDArray[np.str_],
    redactor: Redactor,
) -> Group:
    names = {t.requester for t in tickets if t.requester}

    def clean(text: str) -> str:
        return redactor.redact(text, names).strip()

    medoid = int(np.argmax(vectors @ vectors.mean(axis=0)))  # the ticket closest to the group's centroid
    lead = tickets[medoid]
    weights = np.asarray(tfidf.sum(axis=0)).ravel()
    terms = [str(vocabulary[i]) for i in np.argsort(-weights)[:SYMPTOM_TERMS] if weights[i] > 0]
    resolution = _clearest_resolution(kb, tickets)
    environment = "\n".join(
        f"- {label}：{value}"
        for label, value in (
            ("类别", _commonest(t.category for t in tickets)),
            ("服务", _commonest(t.service for t in tickets)),
            ("配置项", _commonest(t.configuration_item for t in tickets)),
            ("处理组", _commonest(t.resolver_group for t in tickets)),
        )
        if value
    )
    ids = [t.external_id for t in tickets]
    listed = "、".join(ids[:LISTED_TICKETS]) + (f" 等 {len(ids)} 张" if len(ids) > LISTED_TICKETS else "")
    symptom = clean(lead.description or lead.title)
    if terms:
        symptom += "\n\n**共同特征**：" + "、".join(terms)
    kcs = KcsArticle(
        symptom=symptom,
        environment=environment,
        cause=clean(_commonest(t.root_cause for t in tickets) or ""),
        resolution=clean(resolution),
        scope=f"归纳自 {len(tickets)} 张已关闭工单（来源 {lead.source}）：{listed}。",
    )
    title = clean(lead.title)
    group = Group(ids=[t.id for t in tickets], medoid=medoid, title=title)
    target = _near_duplicate(kb, clean(ticket_text(lead)))
    meta: dict[str, Any] = {
        "distilled_from": {"source": lead.source, "tickets": ids, "group_size": len(ids)},
        "proposal": "update" if target else "create",
    }
    if target is not None:
        group.proposal, group.target_article = "update", target[0]
        group.title = title = f"更新建议：{target[1]}"
        meta["target_article"] = target[0]
    body = kcs.to_markdown()
    settings = kb.settings
    if settings.summarizer_url and settings.summarizer_model:
        summarizer = Summarizer(
            settings.summarizer_url, settings.summarizer_model, settings.summarizer_api_key or None,
            settings.summarizer_timeout_s,
        )  # fmt: skip
        rewritten = summarizer.rewrite(title, body, redactor)
        if rewritten is not None:
            body, meta["rewritten_by"] = rewritten, settings.summarizer_model
    content = ArticleContent(
        title=title[:500] or "（无标题）",
        body=body,
        kind="troubleshooting",
        service=_commonest(t.service for t in tickets),
        tags=[v for v in {_commonest(t.category for t in tickets)} if v],
        status="draft",
        meta=meta,
    )
    outcome = kb.create_article(content, actor)
    assert outcome.article is not None
    group.article_id = outcome.article.id
    with kb.database.session() as session:
        for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(group.ids))):
            ticket.distilled_into = group.article_id
    return group


def _clearest_resolution(kb: KnowledgeBase, tickets: list[Ticket]) -> str:
    with_fix = [t for t in tickets if t.resolution.strip()]
    if not with_fix:
        return ""
    if len(with_fix) == 1:
        return with_fix[0].resolution
    matrix = kb.embedder.encode_passages([kb.analyzer.normalize(t.resolution) for t in with_fix])
    centroid = matrix.mean(axis=0)
    scores = matrix @ centroid
    best = max(range(len(with_fix)), key=lambda i: (round(float(scores[i]), 3), len(with_fix[i].resolution)))
    return with_fix[best].resolution


def _commonest(values: Any) -> str | None:
    counted = Counter(v for v in values if v)
    return counted.most_common(1)[0][0] if counted else None


def _near_duplicate(kb: KnowledgeBase, text: str) -> tuple[int, str] | None:
    result = kb.search(SearchRequest(text[:1000], limit=1, filters=ArticleFilter()))
    if result.low_confidence or not result.results:
        return None
    return result.results[0].article_id, result.results[0].title
