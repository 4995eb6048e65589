"""KnowledgeBase: the library's front door, shared by the API and the CLI.

It builds the parts once from :class:`kb.config.Settings` (database, analyzer, embedder, index manager,
store, search engine) and holds the rule that a write returns only once its change is searchable
(read-your-writes): each write is committed with its outbox row, then the outbox is applied before the
call returns. If applying fails, the write stays committed and :attr:`WriteOutcome.indexed` says so; the
server's background applier retries until the index catches up.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from kb.articles import reviews
from kb.articles.chunks import ChunkStore
from kb.articles.content import ArticleContent
from kb.articles.feedback import FeedbackStore
from kb.articles.outbox import Outbox
from kb.articles.reader import ArticleReader
from kb.articles.store import ArticleStore, content_of
from kb.config import Settings
from kb.db import Database, open_database
from kb.desk.distill import DistillReport, distill, ensure_embeddings
from kb.desk.escalation import check_sla
from kb.desk.sla import load_catalog
from kb.desk.suggest import ClosedTicketIndex, Suggestions, suggest
from kb.desk.workflow import Desk
from kb.errors import InvalidInputError, KBError
from kb.ingest.mapping import load_mapping
from kb.ingest.markdown import ImportReport, import_paths
from kb.ingest.tickets import TicketImportReport, import_tickets
from kb.models import Article, Ticket
from kb.search.embedders.base import Embedder
from kb.search.embedders.factory import load_embedder
from kb.search.engine import SearchEngine
from kb.search.index import IndexManager, IndexStatus
from kb.search.results import SearchRequest, SearchResult
from kb.search.synonyms import SynonymStore
from kb.search.text import TextAnalyzer

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteOutcome:
    """An article after a write; ``indexed`` is False when the index has not caught up yet with ``seq``."""

    article: Article | None
    seq: int | None
    indexed: bool


class KnowledgeBase:
    """All kb services for one settings object. Call :meth:`open` before use and :meth:`close` after.

    Args:
        settings: configuration.
        embedder: an embedder to use instead of the one named by ``settings`` (tests share one).
        analyzer: an analyzer to use instead of building one (tests share one; building costs ~1 s).
    """

    def __init__(
        self, settings: Settings, *, embedder: Embedder | None = None, analyzer: TextAnalyzer | None = None
    ) -> None:
        self.settings = settings
        self.database: Database = open_database(settings)
        self.analyzer = analyzer or TextAnalyzer([settings.user_dict] if settings.user_dict else [])
        self.embedder = embedder or load_embedder(
            settings.embedding_model,
            settings.query_instruction,
            settings.embedding_batch_size,
            settings.embedding_backend,
            settings.model_cache_dir,
        )
        chunks = ChunkStore(self.database)
        self.index = IndexManager(
            settings.resolved_index_dir,
            ArticleReader(self.database),
            chunks,
            Outbox(self.database),
            self.analyzer,
            self.embedder,
            chunk_tokens=settings.chunk_tokens,
            overlap_tokens=settings.chunk_overlap_tokens,
        )
        self.store = ArticleStore(self.database)
        self.feedback = FeedbackStore(self.database)
        self.catalog = load_catalog(settings.service_catalog)
        self.desk = Desk(self.database, self.catalog)
        self.closed_tickets = ClosedTicketIndex()
        self.synonyms = SynonymStore(self.database, self.analyzer)
        self.synonyms.seed()
        self.engine = SearchEngine(
            self.analyzer,
            self.embedder,
            self.index,
            self.store,
            chunks,
            self.synonyms,
            fusion=settings.fusion,
            bm25_weight=settings.fusion_bm25_weight,
        )
        self._applier: threading.Thread | None = None
        self._sla: threading.Thread | None = None
        self._stop = threading.Event()

    def open(self) -> KnowledgeBase:
        """Load the model and open the index (replaying pending changes). Returns self.

        Raises:
            IndexMismatchError: the index was built with other settings.
            EmbeddingModelError: the model cannot be loaded.
        """
        if not self.index.is_open:
            self.index.open()
            self.embedder.encode_queries(["预热"])  # load the model now, not on the first user's query
        return self

    def close(self) -> None:
        """Stop the background applier and close the index and database."""
        self._stop.set()
        for thread in (self._applier, self._sla):
            if thread is not None:
                thread.join(timeout=10)
        self.index.close()
        self.database.dispose()

    # -- background ------------------------------------------------------------------------------

    def start_background_applier(self) -> None:
        """Apply the outbox every ``index_poll_seconds`` in a daemon thread (catches up after failures
        and after rows written by other processes), and check SLA clocks every ``sla_check_seconds``."""
        if self._applier is not None:
            return

        def loop() -> None:
            while not self._stop.wait(self.settings.index_poll_seconds):
                try:
                    self.index.apply_pending()
                except Exception:  # keep the loop alive; the next round retries
                    logger.exception("background index apply failed")

        self._applier = threading.Thread(target=loop, name="kb-index-applier", daemon=True)
        self._applier.start()

        def sla_loop() -> None:
            while not self._stop.wait(self.settings.sla_check_seconds):
                try:
                    self.check_sla()
                except Exception:  # keep the loop alive; the next round retries
                    logger.exception("SLA check failed")

        self._sla = threading.Thread(target=sla_loop, name="kb-sla-scheduler", daemon=True)
        self._sla.start()

    # -- writes ----------------------------------------------------------------------------------

    def _sync(self, article: Article | None, seq: int | None) -> WriteOutcome:
        if seq is None:
            return WriteOutcome(article, None, True)
        try:
            applied = self.index.apply_pending()
        except KBError as exc:
            logger.error("change %s saved but not indexed yet: %s", seq, exc.message)
            return WriteOutcome(article, seq, False)
        return WriteOutcome(article, seq, applied >= seq)

    def create_article(self, content: ArticleContent, actor: str) -> WriteOutcome:
        """Store a new article and make it searchable."""
        result = self.store.create(content, actor)
        return self._sync(result.article, result.seq)

    def update_article(self, article_id: int, content: ArticleContent, actor: str) -> WriteOutcome:
        """Replace an article's content (new version if changed) and make the change searchable.

        Raises:
            NotFoundError: no such article.
        """
        result = self.store.update(article_id, content, actor)
        return self._sync(result.article, result.seq)

    def set_status(
        self,
        article_id: int,
        status: str,
        actor: str,
        *,
        superseded_by: int | None = None,
        review_by: dt.date | None = None,
    ) -> WriteOutcome:
        """Move an article through the lifecycle (see :mod:`kb.articles.lifecycle`); the change is searchable on return
        (a retired or draft article leaves default search, a published one enters it).

        Raises:
            NotFoundError: no such article.
            TransitionError: the move is not allowed (409, with the allowed statuses).
            InvalidInputError: bad ``superseded_by``.
        """
        result = self.store.set_status(article_id, status, actor, superseded_by=superseded_by, review_by=review_by)
        return self._sync(result.article, result.seq)

    def restore_version(self, article_id: int, version: int, actor: str) -> WriteOutcome:
        """Make an old version's content current again, as a new version (status unchanged).

        Raises:
            NotFoundError: no such article or version.
        """
        result = self.store.restore(article_id, version, actor)
        return self._sync(result.article, result.seq)

    def create_known_error(self, review_id: int, actor: str) -> WriteOutcome:
        """Create a draft known-error article from a post-incident review (see
        :func:`kb.articles.reviews.known_error_from_review`) and list it in the review's ``meta["review"]["known_errors"]``.

        Raises:
            NotFoundError: no such article.
            InvalidInputError: the article is not a post-incident review.
        """
        review = self.store.get(review_id)
        if review.kind != reviews.KIND:
            raise InvalidInputError(f"Article {review_id} is a {review.kind}, not a post-incident review.")
        content = content_of(review)
        outcome = self.create_article(reviews.known_error_from_review(review_id, content), actor)
        assert outcome.article is not None
        info = dict(content.meta.get("review", {}))
        info["known_errors"] = [*info.get("known_errors", []), outcome.article.id]
        self.update_article(review_id, content.model_copy(update={"meta": content.meta | {"review": info}}), actor)
        return outcome

    def delete_article(self, article_id: int, actor: str) -> WriteOutcome:
        """Delete an article and remove it from both index legs.

        Raises:
            NotFoundError: no such article.
        """
        seq = self.store.delete(article_id, actor)
        return self._sync(None, seq)

    def import_paths(
        self,
        paths: list[Path],
        actor: str,
        *,
        collection: str | None = None,
        delete_missing: bool = False,
        as_reviews: bool = False,
        progress: Callable[[int, int, Path], None] | None = None,
    ) -> ImportReport:
        """Import Markdown folders (see :func:`kb.ingest.markdown.import_paths`), then index the changes."""
        report = import_paths(
            self.store,
            paths,
            actor,
            collection=collection,
            delete_missing=delete_missing,
            as_reviews=as_reviews,
            progress=progress,
        )
        self.index.apply_pending()
        return report

    def import_tickets(
        self, path: Path, mapping: str | Path, *, progress: Callable[[int], None] | None = None
    ) -> TicketImportReport:
        """Import a ticket export (CSV / JSONL / zip) through a mapping name or file (see :mod:`kb.tickets`).

        Raises:
            InvalidInputError: unknown or invalid mapping, unreadable file.
        """
        return import_tickets(self.database, path, load_mapping(mapping), progress=progress)

    def distill_tickets(
        self,
        actor: str,
        *,
        source: str | None = None,
        category: str | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> DistillReport:
        """Group alike closed tickets into draft articles or update proposals (see :mod:`kb.desk.distill`)."""
        return distill(self, actor, source=source, category=category, progress=progress)

    # -- desk ------------------------------------------------------------------------------------

    def suggest(self, text: str, service: str) -> Suggestions:
        """Articles, similar closed tickets, SLA, group and a proposed resolver group for a ticket text
        (see :mod:`kb.desk.suggest`).

        Raises:
            InvalidInputError: unknown service type.
        """
        return suggest(self, self.closed_tickets, self.catalog, text, service)

    def embed_closed_tickets(self, progress: Callable[[str, int, int], None] | None = None) -> int:
        """Store embeddings for closed tickets that lack one (similar tickets and assignment use them); returns
        how many were encoded."""
        with self.database.session() as session:
            tickets = list(session.scalars(select(Ticket).where(Ticket.status == "closed")))
        return ensure_embeddings(self, tickets, progress or (lambda _p, _d, _t: None))

    def check_sla(self, actor: str = "sla-scheduler", now: dt.datetime | None = None) -> list[dict[str, object]]:
        """Flag open tickets at risk and escalate those past a target (see :mod:`kb.desk.escalation`)."""
        return check_sla(self, actor, now)

    # -- reads -----------------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchResult:
        """Run a search (see :class:`kb.search.engine.SearchEngine`)."""
        return self.engine.search(request)

    def index_status(self) -> IndexStatus:
        """Counts in the database and both index legs."""
        return self.index.status()
