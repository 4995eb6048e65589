"""KnowledgeBase: the composition root, shared by the API and the CLI.

It builds every part once from :class:`kb.config.Settings`, gives each the few collaborators it needs, and owns
the background threads (index applier, SLA clock). It holds no use-case logic: callers use the parts —

- ``store``, ``feedback`` (:mod:`kb.articles`), ``writer`` (writes searchable on return, imports: :mod:`kb.ingest`);
- ``engine`` (hybrid search), ``index`` (the one index writer), ``synonyms``, ``analyzer``, ``embedder``
  (:mod:`kb.search`);
- ``desk`` (workflow), ``tickets`` (the use cases every channel calls), ``suggester``, ``sla_monitor``,
  ``distiller``, ``analysis``, ``ticket_vectors``, ``catalog`` (:mod:`kb.desk`);
- ``accounts``, ``sessions``, ``login_limiter``, ``audit`` (:mod:`kb.identity`).

Nothing below this module imports it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from kb.articles.chunks import ChunkStore
from kb.articles.feedback import FeedbackStore
from kb.articles.outbox import Outbox
from kb.articles.reader import ArticleReader
from kb.articles.store import ArticleStore
from kb.config import Settings
from kb.db import Database, open_database
from kb.desk.analysis import OperationsAnalysis
from kb.desk.distill import Distiller
from kb.desk.escalation import SlaMonitor
from kb.desk.intake import TicketDesk
from kb.desk.similar import ClosedTicketIndex, TicketVectors
from kb.desk.sla import load_catalog
from kb.desk.suggest import Suggester
from kb.desk.summarizer import Summarizer
from kb.desk.workflow import Desk
from kb.identity.accounts import AccountStore
from kb.identity.audit import AuditTrail
from kb.identity.observer import observe
from kb.identity.passwords import PasswordPolicy
from kb.identity.ratelimit import LoginRateLimiter
from kb.identity.secadmin import SecurityAdmin
from kb.identity.service_tokens import ServiceTokens
from kb.identity.sessions import SessionPolicy, Sessions
from kb.ingest.redaction import Redactor
from kb.ingest.writer import ArticleWriter
from kb.search.embedders.base import Embedder
from kb.search.embedders.factory import load_embedder
from kb.search.engine import SearchEngine
from kb.search.index import IndexManager
from kb.search.synonyms import SynonymStore
from kb.search.text import TextAnalyzer

logger = logging.getLogger(__name__)


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
        self.audit = AuditTrail(self.database, settings.audit_key)
        observe(self.database, self.audit)  # audit rows for article, ticket and import changes, in their transactions
        self.accounts = AccountStore(self.database, PasswordPolicy.from_settings(settings), self.audit)
        self.sessions = Sessions(self.database, self.accounts, SessionPolicy.from_settings(settings), self.audit)
        self.login_limiter = LoginRateLimiter(settings.login_rate_limit)
        # issue 11: service accounts and the security administrator's stored settings
        self.service_tokens = ServiceTokens(self.database, self.audit)
        self.security = SecurityAdmin(self.database, self.accounts, self.audit, settings.admin_cidrs)
        self.security.load()  # the stored password policy, if the security administrator changed it
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
            approximate_vectors=settings.vector_index == "hnsw",
        )
        self.engine.expansion.desk_weight = settings.desk_synonym_weight
        self.writer = ArticleWriter(self.store, self.index)
        self.catalog = load_catalog(settings.service_catalog)
        self.desk = Desk(self.database, self.catalog)
        self.ticket_vectors = TicketVectors(self.database, self.analyzer, self.embedder)
        self.closed_tickets = ClosedTicketIndex(self.database, self.analyzer, self.embedder)
        self.suggester = Suggester(self.engine, self.ticket_vectors, self.closed_tickets, self.catalog)
        self.tickets = TicketDesk(
            self.desk,
            self.suggester,
            max_text_chars=settings.intake_max_text_chars,
            reopen_within=dt.timedelta(days=settings.reopen_within_days),
        )
        self.sla_monitor = SlaMonitor(self.desk, self.catalog, self.tickets, settings.sla_at_risk_share)
        self.distiller = Distiller(
            self.database,
            self.writer,
            self.engine,
            self.analyzer,
            self.ticket_vectors,
            Redactor(ips=settings.redact_ip_addresses, hosts=settings.redact_host_names),
            summarizer=_summarizer(settings),
            min_group=settings.distill_min_group,
            similarity=settings.distill_similarity,
        )
        self.analysis = OperationsAnalysis(
            self.database, self.catalog, self.ticket_vectors, self.analyzer, similarity=settings.distill_similarity
        )
        self._threads: list[threading.Thread] = []
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
        for thread in self._threads:
            thread.join(timeout=10)
        self.index.close()
        self.database.dispose()

    # -- background ------------------------------------------------------------------------------

    def start_background_applier(self) -> None:
        """Apply the outbox every ``index_poll_seconds`` in a daemon thread (catches up after failures
        and after rows written by other processes), check SLA clocks every ``sla_check_seconds``, and disable
        accounts idle ``account_idle_days`` as often."""
        if self._threads:
            return
        self._every(self.settings.index_poll_seconds, self.index.apply_pending, "kb-index-applier")
        self._every(self.settings.sla_check_seconds, self.sla_monitor.check, "kb-sla-scheduler")
        self._every(
            self.settings.sla_check_seconds,
            lambda: self.accounts.disable_idle(self.settings.account_idle_days),
            "kb-idle-accounts",
        )

    def _every(self, seconds: float, job: Callable[[], object], name: str) -> None:
        """Run ``job`` every ``seconds`` in a daemon thread until :meth:`close`; a failing round is logged and the
        next one retries."""

        def loop() -> None:
            while not self._stop.wait(seconds):
                try:
                    job()
                except Exception:  # keep the loop alive; the next round retries
                    logger.exception("%s: round failed", name)

        thread = threading.Thread(target=loop, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)


def _summarizer(settings: Settings) -> Summarizer | None:
    if not (settings.summarizer_url and settings.summarizer_model):
        return None
    return Summarizer(
        settings.summarizer_url,
        settings.summarizer_model,
        settings.summarizer_api_key or None,
        settings.summarizer_timeout_s,
    )
