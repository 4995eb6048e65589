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
from typing import IO

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
from kb.desk.resolved_votes import ResolvedTicketVotes
from kb.desk.similar import ClosedTicketIndex, TicketVectors
from kb.desk.sla import load_catalog
from kb.desk.suggest import Suggester
from kb.desk.summarizer import Summarizer
from kb.desk.workflow import Desk
from kb.identity.accounts import AccountStore
from kb.identity.audit import AuditTrail
from kb.identity.data_key import DataKey
from kb.identity.observer import observe
from kb.identity.passwords import PasswordPolicy
from kb.identity.ratelimit import LoginRateLimiter
from kb.identity.refusals import WINDOW as REFUSAL_WINDOW
from kb.identity.refusals import RefusedCredentials
from kb.identity.secadmin import SecurityAdmin
from kb.identity.service_tokens import ServiceTokens
from kb.identity.sessions import SessionPolicy, Sessions
from kb.ingest.redaction import Redactor
from kb.ingest.writer import ArticleWriter
from kb.search.embedders.base import Embedder
from kb.search.embedders.factory import configured_embedder
from kb.search.engine import SearchEngine
from kb.search.index import IndexManager
from kb.search.locks import try_hold_exclusive
from kb.search.rerank import DeskBoost, SecondStage, load_ranker
from kb.search.synonyms import SynonymStore
from kb.search.text import TextAnalyzer

logger = logging.getLogger(__name__)

#: File in the index folder held (flock) for its life by the one process that runs the background jobs.
APPLIER_LOCK = "applier.lock"
#: Outbox rows per index commit of the background applier: each batch is published to the waiting writes and checks
#: for shutdown when done, so it is kept to seconds (about 30 ms per real article with ``hash``; several times that
#: with m3e-small, bench/results/concurrent-writes.md) rather than the minutes 256 rows of m3e-small take.
APPLIER_BATCH = 64


class KnowledgeBase:
    """All kb services for one settings object. Call :meth:`open` before use and :meth:`close` after.

    Args:
        settings: configuration.
        embedder: an embedder to use instead of the one named by ``settings`` (tests share one).
        analyzer: an analyzer to use instead of building one (tests share one; building costs ~1 s).
        ticket_embedder: the ticket model to use instead of the one named by ``settings.ticket_embedding_model``
            (tests); by default the KB's own ``embedder`` when that setting is empty or names the same model.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        embedder: Embedder | None = None,
        analyzer: TextAnalyzer | None = None,
        ticket_embedder: Embedder | None = None,
    ) -> None:
        self.settings = settings
        self.database: Database = open_database(settings)
        self.audit = AuditTrail(self.database, settings.audit_key)
        observe(self.database, self.audit)  # audit rows for article, ticket and import changes, in their transactions
        self.accounts = AccountStore(
            self.database, PasswordPolicy.from_settings(settings), self.audit, DataKey.from_settings(settings)
        )
        self._reseal_totp()  # bare seeds from before sealing, and seeds of an older KB_DATA_KEY after a rotation
        # refused session and service tokens: one audit row per kind, source and minute (kb.identity.refusals)
        self.refusals = RefusedCredentials(self.audit)
        self.sessions = Sessions(
            self.database, self.accounts, SessionPolicy.from_settings(settings), self.audit, self.refusals
        )
        self.login_limiter = LoginRateLimiter(settings.login_rate_limit)
        # issue 11: service accounts and the security administrator's stored settings
        self.service_tokens = ServiceTokens(self.database, self.audit, self.refusals)
        self.security = SecurityAdmin(self.database, self.accounts, self.audit, settings.admin_cidrs)
        self.security.load()  # the stored password policy, if the security administrator changed it
        self.analyzer = analyzer or TextAnalyzer([settings.user_dict] if settings.user_dict else [])
        self.embedder = embedder or configured_embedder(settings, settings.embedding_model)
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
        # The ticket model encodes every ticket vector (similar tickets, the vote, suggestions, assignment,
        # distillation, frequent problems); one per process, its weights loaded on first use.
        self.ticket_embedder = ticket_embedder or self._ticket_embedder(settings)
        own_model = self.ticket_embedder.name == self.embedder.name
        self.ticket_vectors = TicketVectors(self.database, self.analyzer, self.ticket_embedder)
        self.closed_tickets = ClosedTicketIndex(self.database, self.analyzer, self.ticket_embedder, self.ticket_vectors)
        ranker = load_ranker(self.embedder.name) if settings.rerank else None
        self.desk_votes = votes = ResolvedTicketVotes(
            self.database,
            self.closed_tickets,
            min_similarity=settings.ticket_vote_min_similarity,
            query_embedder=None if own_model else self.ticket_embedder,
        )
        self.engine = SearchEngine(
            self.analyzer,
            self.embedder,
            self.index,
            self.store,
            chunks,
            self.synonyms,
            fusion=settings.fusion,
            bm25_weight=0.5 if settings.fusion_bm25_weight is None else settings.fusion_bm25_weight,
            query_weights=settings.fusion_bm25_weight is None,
            approximate_vectors=settings.vector_index == "hnsw",
            second_stage=SecondStage(ranker, votes) if ranker is not None else None,
            desk_boost=DeskBoost(votes, settings.ticket_vote_weight),
        )
        self.engine.expansion.desk_weight = settings.desk_synonym_weight
        self.writer = ArticleWriter(self.store, self.index)
        self.catalog = load_catalog(settings.service_catalog)
        self.desk = Desk(self.database, self.catalog)
        self.suggester = Suggester(self.engine, self.ticket_vectors, self.closed_tickets, self.catalog)
        self.tickets = TicketDesk(
            self.desk,
            self.suggester,
            max_text_chars=settings.intake_max_text_chars,
            reopen_within=dt.timedelta(days=settings.reopen_within_days),
            audit=self.audit,
        )
        self.sla_monitor = SlaMonitor(self.desk, self.catalog, self.tickets, settings.sla_at_risk_share)
        self.redactor = Redactor(ips=settings.redact_ip_addresses, hosts=settings.redact_host_names)
        self.distiller = Distiller(
            self.database,
            self.writer,
            self.engine,
            self.analyzer,
            self.ticket_vectors,
            self.redactor,
            summarizer=_summarizer(settings),
            min_group=settings.distill_min_group,
            similarity=settings.distill_similarity,
        )
        self.analysis = OperationsAnalysis(
            self.database,
            self.catalog,
            self.ticket_vectors,
            self.analyzer,
            redactor=self.redactor,
            similarity=settings.distill_similarity,
        )
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._applier: IO[str] | None = None  # applier.lock, while this process is the one that applies
        self._applier_check = threading.Lock()

    def _reseal_totp(self) -> None:
        """Seal stored TOTP seeds with the first key of ``KB_DATA_KEY``; name, in the log, users whose seed no
        key opens (their logins answer 503 ``data_key_mismatch`` until the key is restored or they enrol again)."""
        done = self.accounts.reseal_totp_secrets()
        if done.resealed:
            logger.info("sealed the TOTP seeds of %d users with the first key of KB_DATA_KEY", len(done.resealed))
        if done.unreadable:
            logger.error(
                "KB_DATA_KEY opens no TOTP seed of %s: restore the key they were sealed with (after the new one) "
                "or enrol them again with `kb users totp NAME`",
                ", ".join(done.unreadable),
            )

    def _ticket_embedder(self, settings: Settings) -> Embedder:
        """The model named by ``settings.ticket_embedding_model`` (loaded as ``KB_EMBEDDING_MODEL`` is), or the KB's
        own embedder when it is empty or the same name."""
        name = settings.ticket_embedding_model.strip()
        if not name or name == self.embedder.name:
            return self.embedder
        return configured_embedder(settings, name)

    def open(self) -> KnowledgeBase:
        """Load the model and open the index (replaying pending changes). Returns self.

        Raises:
            IndexMismatchError: the index was built with other settings.
            EmbeddingModelError: the model cannot be loaded.
        """
        if not self.index.is_open:
            self.index.open()
            self.embedder.encode_queries(["预热"])  # load the model now, not on the first user's query
            if self.ticket_embedder is not self.embedder:
                self.ticket_embedder.encode_queries(["预热"])
        return self

    def close(self) -> None:
        """Stop the background applier and close the index and database."""
        self._stop.set()
        self.index.handoff.stop()  # wakes the applier; later writes apply themselves
        for thread in self._threads:
            thread.join(timeout=10)
        if self._applier is not None:
            self._applier.close()
            self._applier = None
        try:
            self.refusals.flush(everything=True)  # the counts of the refusal windows still open
        except Exception:  # the database may be gone at shutdown; the windows' first rows are written
            logger.exception("could not write the counts of refused credentials at close")
        self.index.close()
        self.database.dispose()

    # -- background ------------------------------------------------------------------------------

    def start_background_applier(self) -> None:
        """Background jobs in daemon threads: the index applier, which applies the outbox when a write asks
        for it and every ``index_poll_seconds`` (catches up after failures and after rows written by other
        processes), while writes wait at most ``index_wait_seconds`` for it (:mod:`kb.search.handoff`); every
        ``sla_check_seconds`` check SLA clocks and disable accounts idle ``account_idle_days``; every minute write
        the counts of refused credentials (:mod:`kb.identity.refusals`, in every process).

        Of several processes serving one index folder (``kb serve --workers N``) only the one holding
        ``applier.lock`` (:data:`APPLIER_LOCK`) runs them; the others only follow the shared index each round
        (:meth:`kb.search.index.IndexManager.follow`) and try to take the lock, so when the holder dies
        (the kernel releases its lock) another worker takes over within a round."""
        if self._threads:
            return
        thread = threading.Thread(target=self._applier_loop, name="kb-index-applier", daemon=True)
        thread.start()
        self._threads.append(thread)
        self._every(self.settings.sla_check_seconds, self._if_applier(self.sla_monitor.check), "kb-sla-scheduler")
        self._every(
            self.settings.sla_check_seconds,
            self._if_applier(lambda: self.accounts.disable_idle(self.settings.account_idle_days)),
            "kb-idle-accounts",
        )
        # every process counts its own refusals: each writes the summary rows of its windows
        self._every(REFUSAL_WINDOW.total_seconds(), self.refusals.flush, "kb-refusal-rows")

    @property
    def is_applier(self) -> bool:
        """Whether this process runs the background jobs (holds ``applier.lock``; taken when free)."""
        if self.index.handoff.remote:  # the applier process (kb.search.applier) holds the lock
            return False
        with self._applier_check:
            if self._applier is None:
                self._applier = try_hold_exclusive(self.index.root / APPLIER_LOCK)
            return self._applier is not None

    def _applier_loop(self) -> None:
        """Apply (or, in a worker without ``applier.lock``, follow) each time a write asks or the poll passes.
        Only the process holding the lock takes the writes' index work (the others' writes apply themselves,
        under ``writer.lock``)."""
        handoff = self.index.handoff
        while not self._stop.is_set():
            try:
                if self.is_applier:
                    if handoff.wait_s is None:
                        handoff.start(self.settings.index_wait_seconds)
                    self.index.apply_pending(APPLIER_BATCH)
                else:
                    self.index.follow()
            except Exception:  # keep the loop alive; the next round retries
                logger.exception("kb-index-applier: round failed")
            handoff.wait_for_work(self.settings.index_poll_seconds)

    def _if_applier(self, job: Callable[[], object]) -> Callable[[], None]:
        def run() -> None:
            if self.is_applier:
                job()

        return run

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
