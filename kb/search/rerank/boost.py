"""The desk's resolved-ticket vote in the default hybrid ranking: a bounded boost added to the fused score.

"This article resolved a ticket like this query" (:mod:`kb.search.rerank.desk`: the nearest closed tickets vote
for the articles that resolved them, weighted by similarity and recency) is added to each of the fused top
:data:`DEPTH` articles' weighted-fusion score as ``weight x vote`` (vote in [0, 1], so the boost is at most
``weight``), and those articles are reordered by the sum (ties keep the fused order). Only in the hybrid mode with
weighted fusion (RRF scores live on another scale) and when the second stage is off (it adds the same vote to its
own score, :mod:`kb.search.rerank.reranker`).

- **No tickets, no change**: a query with no vote leaves the ranking, the scores and ``explain`` as they were.
- **Visibility**: only closed tickets the caller may see vote (:meth:`kb.desk.resolved_votes.ResolvedTicketVotes.votes`)
  and only the fused candidates (articles that passed the caller's filters and visibility) receive votes.
- **Who votes**: only resolutions recorded by the desk (an account holding ``ticket.work`` that is not the
  ticket's requester, :func:`kb.desk.resolved_votes.votes_by`): a requester, a service token or a channel cannot
  move a group's ranking by deflecting tickets of their own.
- **Confidence**: the ``low_confidence`` bar reads the top hit's fused score, never the boost
  (:meth:`Boosted.unboosted`), and a top hit the vote put first (it was not first by fusion) is never confident
  (:meth:`Boosted.bounded`): a vote never makes an answer confident. On desk-dev with the full history this
  flags 4 confident-but-wrong answers and 3 confident correct ones of the 55 queries whose top the vote changed
  (bench/results/desk-history-session8.md).
- Helpful votes are not part of it (unmeasured: the development sets hold no feedback).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from kb.articles.filters import ArticleSummary
from kb.config import TICKET_VOTE_WEIGHT
from kb.identity.scopes import Principal
from kb.search.rerank.desk import DeskVotes
from kb.search.results import ConfidenceSignals, DeskHitExplain, SearchHit

#: Fused candidates that may receive a vote (the engine's smallest candidate pool).
DEPTH = 100
#: Weight of the vote (in [0, 1]) added to the fused score (in [0, 1]): the default of the setting
#: ``KB_TICKET_VOTE_WEIGHT``, defined (with its calibration) in :mod:`kb.config`.
WEIGHT = TICKET_VOTE_WEIGHT


@dataclass(frozen=True)
class Boosted:
    """The articles after the boost (``(article, fused + boost)``, best first), per article that got a vote its
    :class:`~kb.search.results.DeskHitExplain`, and the id of the article first by fusion (``fused_top``)."""

    ranked: list[tuple[ArticleSummary, float]]
    detail: dict[int, DeskHitExplain]
    fused_top: int

    def bounded(self, hits: Sequence[SearchHit], signals: ConfidenceSignals) -> ConfidenceSignals:
        """``signals`` of the top hit, not confident when the vote put that hit first (``hits`` as returned)."""
        if hits and hits[0].article_id != self.fused_top and signals.confident:
            return dataclasses.replace(signals, confident=False)
        return signals

    def annotate(self, hits: Sequence[SearchHit]) -> None:
        """Add each boosted hit's :class:`~kb.search.results.DeskHitExplain` to its ``explain`` (in place)."""
        for hit in hits:
            detail = self.detail.get(hit.article_id)
            if hit.explain is not None and detail is not None:
                hit.explain["desk"] = detail

    def unboosted(self, hits: Sequence[SearchHit]) -> list[SearchHit]:
        """``hits`` with the fused score (without the boost) in place of each boosted hit's score: what the
        confidence bar reads."""
        return [
            dataclasses.replace(h, score=d["fused"]) if (d := self.detail.get(h.article_id)) is not None else h
            for h in hits
        ]


class DeskBoost:
    """Adds the desk's vote to the fused scores (see module docstring). Thread-safe (no state per query).

    Args:
        votes: the desk's votes (:class:`kb.desk.resolved_votes.ResolvedTicketVotes`).
        weight: the boost of a full vote, >= 0 (0 turns it off).
        depth: fused candidates that may receive a vote.
    """

    def __init__(self, votes: DeskVotes, weight: float = WEIGHT, depth: int = DEPTH) -> None:
        self.votes = votes
        self.weight = weight
        self.depth = depth

    def apply(
        self,
        ranked: list[tuple[ArticleSummary, float]],
        text: str,
        vector: npt.NDArray[np.float32] | None,
        viewer: Principal | None,
        applies: bool,
    ) -> Boosted | None:
        """Boost ``ranked`` (fused, best first) for the query's normalised ``text`` and ``vector`` as ``viewer``
        sees it; None (nothing changes) when it does not apply (``applies`` false: not hybrid weighted fusion, or
        the second stage ran), without a vector, with weight 0, or when no ticket voted."""
        if not applies or vector is None or self.weight <= 0 or not ranked:
            return None
        head = ranked[: self.depth]
        evidence = self.votes.votes(text, vector, [a.id for a, _ in head], viewer, helpful=False)
        if not evidence.votes:
            return None
        scored = [(a, s + self.weight * evidence.votes.get(a.id, 0.0)) for a, s in head]
        order = sorted(range(len(scored)), key=lambda i: (-scored[i][1], i))
        result = [(scored[i][0], round(scored[i][1], 6)) for i in order] + list(ranked[self.depth :])
        fused = {a.id: s for a, s in head}
        detail: dict[int, DeskHitExplain] = {
            aid: DeskHitExplain(
                fused=fused[aid],
                vote=round(vote, 4),
                boost=round(self.weight * vote, 4),
                tickets=evidence.tickets.get(aid, []),
                first_by_vote=aid == result[0][0].id != head[0][0].id,
                model=evidence.model,
            )
            for aid, vote in evidence.votes.items()
            if aid in fused
        }
        return Boosted(result, detail, head[0][0].id)
