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
4. **Draft**, per group, in the KCS template (:mod:`kb.articles.kcs`), every ticket text redacted first
   (:mod:`kb.ingest.redaction`,
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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import select

from kb.articles.content import ArticleContent
from kb.articles.filters import ArticleFilter
from kb.articles.kcs import KcsArticle
from kb.config import MAX_QUERY_CHARS
from kb.db import Database
from kb.desk.similar import TicketVectors, fit_tfidf, group_alike, ticket_text
from kb.desk.summarizer import Summarizer
from kb.ingest.intake_text import clean_text
from kb.ingest.redaction import Redactor
from kb.ingest.writer import ArticleWriter
from kb.models import Ticket
from kb.search.engine import SearchEngine
from kb.search.results import SearchRequest
from kb.search.text import TextAnalyzer

logger = logging.getLogger(__name__)

#: Ticket ids listed in a draft's scope section (all of them are in ``meta.distilled_from``).
LISTED_TICKETS = 20
#: Characteristic terms shown as the group's common symptoms.
SYMPTOM_TERMS = 8
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


class Distiller:
    """Turns groups of alike closed tickets into draft articles or update proposals (see module docstring).

    Args:
        database: the tickets (read, and marked ``distilled_into``).
        writer: stores each draft (searchable on return).
        engine: finds a published article that already covers a group's fix.
        analyzer: TF-IDF terms.
        vectors: stored ticket embeddings.
        redactor: removes personal data from every ticket text before it reaches a draft.
        summarizer: optional rewriter of the redacted draft (None: off).
        min_group: tickets alike needed for a draft (setting ``distill_min_group``).
        similarity: the "alike" bar, mean of embedding and TF-IDF cosine (setting ``distill_similarity``).
    """

    def __init__(
        self,
        database: Database,
        writer: ArticleWriter,
        engine: SearchEngine,
        analyzer: TextAnalyzer,
        vectors: TicketVectors,
        redactor: Redactor,
        *,
        summarizer: Summarizer | None = None,
        min_group: int = 5,
        similarity: float = 0.8,
    ) -> None:
        self.database = database
        self.writer = writer
        self.engine = engine
        self.analyzer = analyzer
        self.vectors = vectors
        self.redactor = redactor
        self.summarizer = summarizer
        self.min_group = min_group
        self.similarity = similarity

    def distill(
        self,
        actor: str,
        *,
        source: str | None = None,
        category: str | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> DistillReport:
        """Group alike closed tickets and write a draft (or an update proposal) per group."""
        say = progress or (lambda _phase, _done, _total: None)
        tickets = self._closed_tickets(source, category)
        report = DistillReport(tickets=len(tickets))
        if len(tickets) < self.min_group:
            return report
        report.encoded = self.vectors.ensure(tickets, say)
        vectors = self.vectors.matrix(tickets)
        try:
            vectorizer, tfidf = fit_tfidf(self.analyzer, [ticket_text(t) for t in tickets], min_df=2)
        except ValueError:  # no term shared by two tickets: nothing is alike
            report.singletons = len(tickets)
            return report
        vocabulary = vectorizer.get_feature_names_out()
        say("grouping", 0, len(tickets))
        groups = group_alike(vectors, tfidf, self.similarity, self.min_group)
        report.singletons = len(tickets) - sum(len(g) for g in groups)
        say("drafting", 0, len(groups))
        for done, members in enumerate(groups, start=1):
            group = self._draft(actor, [tickets[i] for i in members], vectors[members], tfidf[members], vocabulary)
            report.groups.append(group)
            say("drafting", done, len(groups))
        return report

    def _closed_tickets(self, source: str | None, category: str | None) -> list[Ticket]:
        query = select(Ticket).where(Ticket.status.in_(CLOSED), Ticket.distilled_into.is_(None))
        if source:
            query = query.where(Ticket.source == source)
        if category:
            query = query.where(Ticket.category == category)
        with self.database.session() as session:
            return list(session.scalars(query.order_by(Ticket.id)))

    def _draft(
        self,
        actor: str,
        tickets: list[Ticket],
        vectors: npt.NDArray[np.float32],
        tfidf: Any,
        vocabulary: npt.NDArray[np.str_],
    ) -> Group:
        names = {t.requester for t in tickets if t.requester}

        def clean(text: str) -> str:  # no control characters: a draft's text comes from ticket text
            return clean_text(self.redactor.redact(text, names)).strip()

        medoid = int(np.argmax(vectors @ vectors.mean(axis=0)))  # the ticket closest to the group's centroid
        lead = tickets[medoid]
        weights = np.asarray(tfidf.sum(axis=0)).ravel()
        # The common features come from the raw texts' vocabulary: keep only those the redacted texts still hold
        # (a phone number or a password the redactor removes must not come back as a "feature").
        redacted = clean("\n".join(ticket_text(t) for t in tickets)).casefold()
        ranked = [str(vocabulary[i]) for i in np.argsort(-weights) if weights[i] > 0]
        terms = [t for t in ranked if t.casefold() in redacted][:SYMPTOM_TERMS]
        resolution = self._clearest_resolution(tickets)
        environment = "\n".join(
            f"- {label}：{clean(value)}"
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
        target = self._near_duplicate(clean(ticket_text(lead)))
        meta: dict[str, Any] = {
            "distilled_from": {"source": lead.source, "tickets": ids, "group_size": len(ids)},
            "proposal": "update" if target else "create",
        }
        if target is not None:
            group.proposal, group.target_article = "update", target[0]
            group.title = title = f"更新建议：{target[1]}"
            meta["target_article"] = target[0]
        body = kcs.to_markdown()
        if self.summarizer is not None:
            rewritten = self.summarizer.rewrite(title, body, self.redactor)
            if rewritten is not None:
                body, meta["rewritten_by"] = rewritten, self.summarizer.model
        content = ArticleContent(
            title=title[:500] or "（无标题）",
            body=body,
            kind="troubleshooting",
            service=_commonest(t.service for t in tickets),
            tags=[v for v in {_commonest(t.category for t in tickets)} if v],
            status="draft",
            meta=meta,
        )
        outcome = self.writer.create(content, actor)
        assert outcome.article is not None
        group.article_id = outcome.article.id
        with self.database.session() as session:
            for ticket in session.scalars(select(Ticket).where(Ticket.id.in_(group.ids))):
                ticket.distilled_into = group.article_id
        return group

    def _clearest_resolution(self, tickets: list[Ticket]) -> str:
        with_fix = [t for t in tickets if t.resolution.strip()]
        if not with_fix:
            return ""
        if len(with_fix) == 1:
            return with_fix[0].resolution
        matrix = self.vectors.embedder.encode_passages([self.analyzer.normalize(t.resolution) for t in with_fix])
        centroid = matrix.mean(axis=0)
        scores = matrix @ centroid
        best = max(range(len(with_fix)), key=lambda i: (round(float(scores[i]), 3), len(with_fix[i].resolution)))
        return with_fix[best].resolution

    def _near_duplicate(self, text: str) -> tuple[int, str] | None:
        result = self.engine.search(SearchRequest(text[:MAX_QUERY_CHARS], limit=1, filters=ArticleFilter()))
        if result.low_confidence or not result.results:
            return None
        return result.results[0].article_id, result.results[0].title


def _commonest(values: Any) -> str | None:
    counted = Counter(v for v in values if v)
    return counted.most_common(1)[0][0] if counted else None
