"""A ticket model beside the KB's own (``KB_TICKET_EMBEDDING_MODEL``): the ticket vectors, the similar-ticket kNN
and the resolved-ticket vote use it, the chunks do not; tickets stored with another model are encoded again;
``explain`` names the model; with the default settings nothing changes.

The second model is a real one of another name and dimension (the ``hash`` encoder at 128 dimensions, named
``hash-tickets``), so a vector of the wrong model cannot be used by mistake: its shape does not fit."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

import kb.desk.similar as similar
from kb.config import TICKET_VOTE_MIN_SIMILARITY, TICKET_VOTE_WEIGHT, Settings
from kb.models import Chunk, Ticket
from kb.search.embedders.hashing import HashingEmbedder
from kb.search.rerank.boost import WEIGHT
from kb.search.rerank.desk import MIN_SIMILARITY
from kb.search.text import TextAnalyzer
from kb.service import KnowledgeBase
from tests.search.test_desk_boost import QUERY, resolve, search, two_articles

TICKET_MODEL = "hash-tickets"


@pytest.fixture
def ticket_embedder() -> HashingEmbedder:
    return HashingEmbedder(dimension=128, name=TICKET_MODEL)


@pytest.fixture
def ticket_kb(
    settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder, ticket_embedder: HashingEmbedder
) -> Iterator[KnowledgeBase]:
    service = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer, ticket_embedder=ticket_embedder)
    service.open()
    try:
        yield service
    finally:
        service.close()


def stored_models(kb: KnowledgeBase) -> list[tuple[str | None, int]]:
    """(embedding model, bytes) of every closed ticket, by id."""
    with kb.database.session() as session:
        rows = session.query(Ticket.embedding_model, Ticket.embedding).filter(Ticket.status == "closed")
        return [(model, len(vector or b"")) for model, vector in rows.order_by(Ticket.id)]


def test_defaults_leave_the_ticket_vectors_on_the_kbs_model(kb: KnowledgeBase) -> None:
    defaults = Settings()
    assert defaults.ticket_embedding_model == ""
    assert defaults.ticket_vote_min_similarity == TICKET_VOTE_MIN_SIMILARITY == MIN_SIMILARITY == 0.6
    assert defaults.ticket_vote_weight == TICKET_VOTE_WEIGHT == WEIGHT == 2.0
    assert kb.ticket_embedder is kb.embedder and kb.desk_votes.query_embedder is None
    assert kb.desk_votes.min_similarity == MIN_SIMILARITY
    assert kb.engine.desk_boost is not None and kb.engine.desk_boost.weight == WEIGHT
    _, second = two_articles(kb)
    resolve(kb, second)
    assert stored_models(kb) == [("hash", 256 * 4)] * 3
    desk = next(h for h in search(kb).results if h.article_id == second).explain
    assert desk is not None and desk["desk"]["model"] == "hash"


def test_the_same_name_as_the_kbs_model_is_the_kbs_embedder(
    settings: Settings, analyzer: TextAnalyzer, hash_embedder: HashingEmbedder
) -> None:
    named = settings.model_copy(update={"ticket_embedding_model": "hash", "ticket_vote_weight": 1.5})
    service = KnowledgeBase(named, embedder=hash_embedder, analyzer=analyzer)
    try:
        assert service.ticket_embedder is hash_embedder and service.desk_votes.query_embedder is None
        assert service.engine.desk_boost is not None and service.engine.desk_boost.weight == 1.5
    finally:
        service.close()


def test_tickets_and_the_vote_use_the_ticket_model_and_explain_names_it(
    ticket_kb: KnowledgeBase, ticket_embedder: HashingEmbedder
) -> None:
    kb = ticket_kb
    assert kb.desk_votes.query_embedder is ticket_embedder
    two_articles(kb)
    loser = search(kb).results[1].article_id
    resolve(kb, loser)
    assert stored_models(kb) == [(TICKET_MODEL, 128 * 4)] * 3  # not the chunk model's 256 dimensions
    after = search(kb)
    hit = after.results[0]
    assert hit.article_id == loser and hit.explain is not None
    desk = hit.explain["desk"]
    assert desk["model"] == TICKET_MODEL and desk["first_by_vote"]
    # the neighbours were found with the query encoded by the ticket model (the chunk model's vector has 256
    # dimensions and could not even be compared with the 128 of the stored tickets)
    text = kb.analyzer.analyze_query(QUERY).normalized
    expected = kb.closed_tickets.nearest(ticket_embedder.encode_queries([text])[0], text, 10)
    chunk_vector = kb.embedder.encode_queries([text])[0]
    evidence = kb.desk_votes.votes(text, chunk_vector, [loser], helpful=False)
    assert evidence.model == TICKET_MODEL
    weights = dict(evidence.tickets[loser])
    assert set(weights) == {t.external_id for t in expected}
    for ticket in expected:  # similarity x recency decay (3 days old), so at most the similarity
        assert 0 < weights[ticket.external_id] <= ticket.similarity
    # the chunks stay on the KB's own model
    with kb.database.session() as session:
        assert {m for (m,) in session.query(Chunk.model)} == {"hash"}


def test_tickets_stored_with_another_model_are_encoded_again_in_batches(
    settings: Settings,
    analyzer: TextAnalyzer,
    hash_embedder: HashingEmbedder,
    ticket_embedder: HashingEmbedder,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer).open()
    try:
        _, second = two_articles(first)
        resolve(first, second)
    finally:
        first.close()
    assert stored_models(first) == [("hash", 256 * 4)] * 3
    monkeypatch.setattr(similar, "ENCODE_BATCH", 2)
    service = KnowledgeBase(settings, embedder=hash_embedder, analyzer=analyzer, ticket_embedder=ticket_embedder)
    service.open()
    try:
        service.closed_tickets.nearest(ticket_embedder.encode_queries(["x"])[0], "x")
        assert [m for m, _ in stored_models(service)] == [TICKET_MODEL, TICKET_MODEL, "hash"]
        hit = next(h for h in search(service).results if h.article_id == second)
        assert [m for m, _ in stored_models(service)] == [TICKET_MODEL] * 3
        assert hit.explain is not None and hit.explain["desk"]["model"] == TICKET_MODEL
        assert len(hit.explain["desk"]["tickets"]) == 3  # every ticket votes again, with the ticket model's vector
        vectors = service.ticket_vectors.matrix(list(_closed(service)))
        assert vectors.shape == (3, 128) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    finally:
        service.close()


def _closed(kb: KnowledgeBase) -> list[Ticket]:
    with kb.database.session() as session:
        return list(session.query(Ticket).filter(Ticket.status == "closed").order_by(Ticket.id))
