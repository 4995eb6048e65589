"""ORM tables (SQLAlchemy 2.0). The database is the source of truth; the search index is derived from it.

Tables: ``articles`` (the current state of each article), ``article_versions`` (every saved state),
``chunks`` (an article's current chunks with their stored embeddings, written by the index writer), and
``outbox`` (one row per change, applied to the index in ``seq`` order); the desk's tickets; and the identity
tables ``users``, ``password_history``, ``user_sessions``, ``login_throttle``, ``audit_events`` and
``audit_head`` (:mod:`kb.identity`).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware datetime: SQLite returns the naive UTC time that was stored."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    """Declarative base of all kb tables."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}


class Article(Base):
    """One knowledge article in its current version.

    ``collection`` + ``source_path`` identify an imported file (path relative to the import root), so a
    re-import finds the same article and keeps its ``id``.
    """

    __tablename__ = "articles"
    __table_args__ = (UniqueConstraint("collection", "source_path", name="uq_articles_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    title: Mapped[str] = mapped_column(String(500))
    summary: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(40), default="article", index=True)
    service: Mapped[str | None] = mapped_column(String(120), nullable=True, index=True)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    error_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default="published", index=True)
    visibility: Mapped[str] = mapped_column(String(20), default="internal")
    restricted_to: Mapped[list[str]] = mapped_column(JSON, default=list)  # roles or groups (migration 0008)
    source: Mapped[str] = mapped_column(String(40), default="api")
    collection: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source_path: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))
    updated_by: Mapped[str] = mapped_column(String(120))
    # Lifecycle (see kb.articles.lifecycle): who approved publication, when it is due for review, its successor.
    reviewer: Mapped[str | None] = mapped_column(String(120), nullable=True)
    review_by: Mapped[date | None] = mapped_column(Date, nullable=True, index=True)
    superseded_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class ArticleVersion(Base):
    """A saved state of an article; one row per version, never changed afterwards."""

    __tablename__ = "article_versions"
    __table_args__ = (UniqueConstraint("article_id", "version", name="uq_article_versions"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))


class Chunk(Base):
    """A chunk of an article as indexed: plain text, heading path, token count and its embedding.

    ``embedding`` is ``(dimension,)`` float32, L2-normalised, stored as raw bytes for ``model``; it is
    reused by rebuilds and new replicas instead of re-encoding.
    """

    __tablename__ = "chunks"

    article_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ord: Mapped[int] = mapped_column(Integer, primary_key=True)
    article_version: Mapped[int] = mapped_column(Integer)
    heading_path: Mapped[list[str]] = mapped_column(JSON, default=list)
    text: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(Integer)
    model: Mapped[str] = mapped_column(String(300))
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class OutboxEntry(Base):
    """A change to apply to the search index: ``op`` is ``upsert`` or ``delete`` of ``article_id``.

    Written in the same transaction as the change itself; ``seq`` orders application.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_article", "article_id"),)

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(Integer)
    op: Mapped[str] = mapped_column(String(10))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Feedback(Base):
    """A helpful / not helpful vote on an article, optionally on it as a result of ``query``."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str] = mapped_column(Text, default="")
    query: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ArticleUsage(Base):
    """A use of an article: ``event`` is ``view`` (opened) or ``resolved`` (used to resolve ``ticket``)."""

    __tablename__ = "article_usage"
    __table_args__ = (Index("ix_article_usage_article_event", "article_id", "event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    article_id: Mapped[int] = mapped_column(ForeignKey("articles.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(20))
    ticket: Mapped[str | None] = mapped_column(String(120), nullable=True)
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Ticket(Base):
    """A service-desk ticket (工单): imported from another system's export or taken in by the desk.

    ``source`` + ``external_id`` identify a ticket from an export, so a re-import finds it again. Text fields are
    stored as received (the desk needs the requester's contact details); they are redacted only when ticket text
    is about to reach an article (see :mod:`kb.ingest.redaction`).
    """

    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("source", "external_id", name="uq_tickets_source"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(120))
    external_id: Mapped[str] = mapped_column(String(120))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")
    category: Mapped[str | None] = mapped_column(String(120), nullable=True, index=True)
    service: Mapped[str | None] = mapped_column(String(120), nullable=True, index=True)
    configuration_item: Mapped[str | None] = mapped_column(String(200), nullable=True)
    priority: Mapped[str | None] = mapped_column(String(20), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(40), nullable=True)
    requester: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="new", index=True)
    resolver_group: Mapped[str | None] = mapped_column(String(120), nullable=True, index=True)
    opened_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolution: Mapped[str] = mapped_column(Text, default="")
    root_cause: Mapped[str] = mapped_column(Text, default="")
    work_notes: Mapped[str] = mapped_column(Text, default="")
    satisfaction: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_hash: Mapped[str] = mapped_column(String(64))
    # ``(dimension,)`` float32 L2-normalised embedding of title + description + resolution, for ``embedding_model``
    # (grouping for distillation, similar past tickets); None until computed.
    embedding: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    embedding_model: Mapped[str | None] = mapped_column(String(300), nullable=True)
    # The draft article this ticket was distilled into (kb.desk.distill), None before.
    distilled_into: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Desk workflow (kb.desk): support line, assignee, SLA clock targets and state, deflection, feedback.
    tier: Mapped[str] = mapped_column(String(4), default="L1")
    assignee: Mapped[str | None] = mapped_column(String(120), nullable=True)
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    response_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    resolution_due: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sla_state: Mapped[str] = mapped_column(String(12), default="ok")
    deflected: Mapped[bool] = mapped_column(Boolean, default=False)
    satisfaction_comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TicketEvent(Base):
    """Something that happened to a ticket (the audit trail): ``kind`` is created, assigned, escalated, note,
    status, suggested, deflected, closed or email; ``data`` holds the details (groups, tiers, text, article ids)."""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class TicketMessage(Base):
    """An e-mail that belongs to a ticket, by its ``Message-ID``: replies (``In-Reply-To`` / ``References``) are
    threaded onto the ticket of the message they answer."""

    __tablename__ = "ticket_messages"

    message_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class SynonymGroup(Base):
    """A group of equivalent terms used to expand queries (see :mod:`kb.search.synonyms`)."""

    __tablename__ = "synonym_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    terms: Mapped[list[str]] = mapped_column(JSON)
    updated_by: Mapped[str] = mapped_column(String(120))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class User(Base):
    """A person or service account (see :mod:`kb.identity`). ``username`` is stored case-folded and unique.

    ``roles`` and ``groups`` (resolver-group membership) are lists of names; ``password_hash`` is an argon2 PHC
    string from ``pwdlib`` (never the password). ``must_change_password`` is set for one-time passwords.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(120), unique=True)
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    groups: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    # The RFC 6238 seed once enrolled (``kb users totp``), sealed with KB_DATA_KEY (a Fernet token,
    # kb.identity.data_key; never the base32 seed itself); None before.
    totp_secret: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # The RFC 6238 time step of the last accepted code: a code of this step or earlier is refused (replay).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    password_changed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))


class ServiceToken(Base):
    """A service account of an integration (ticket system, IM bot, e-mail intake): its name, the scopes (roles)
    it acts with, and the SHA-256 of its API token (the token itself is shown once). Revoked tokens stay listed."""

    __tablename__ = "service_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    scopes: Mapped[list[str]] = mapped_column(JSON, default=list)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_by: Mapped[str] = mapped_column(String(120))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class SecuritySetting(Base):
    """A security setting the security administrator changes at run time (password policy, administrator
    CIDR allow-list), as JSON; it overrides the ``KB_`` setting of the same meaning."""

    __tablename__ = "security_settings"

    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[Any] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(120))


class PasswordHistory(Base):
    """An earlier password hash of a user, kept to refuse reuse of the last ``password_history`` passwords."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    password_hash: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class UserSession(Base):
    """A server-side login session. The client holds an opaque random token; only its SHA-256 is stored."""

    __tablename__ = "user_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LoginThrottle(Base):
    """Failed logins of one (case-folded) user name, existing or not, so a lockout looks the same for both:
    ``failures`` counts failures since ``window_start``; ``locked_until`` is set when the count reaches the limit."""

    __tablename__ = "login_throttle"

    username: Mapped[str] = mapped_column(String(120), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditEvent(Base):
    """One row of the append-only audit trail (see :mod:`kb.identity.audit`): ``seq`` orders the HMAC chain;
    ``roles`` is comma-joined; ``result`` is success, failure or denied. Triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_at", "at"), Index("ix_audit_events_actor", "actor"))

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    actor: Mapped[str] = mapped_column(String(120))
    roles: Mapped[str] = mapped_column(String(200), default="")
    source_ip: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(20))
    event: Mapped[str] = mapped_column(String(40), index=True)
    object: Mapped[str] = mapped_column(String(300), default="")
    result: Mapped[str] = mapped_column(String(10))
    reason: Mapped[str] = mapped_column(String(500), default="")
    prev_mac: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row (``id`` 1) holding the newest audit ``seq`` and ``mac``; updating it first serialises
    audit writers and lets verification notice removed newest rows."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    mac: Mapped[str] = mapped_column(String(64), default="")
    # The newest row archived and purged by ``kb audit archive`` (0 and "" before any): the anchor of the chain.
    archived_seq: Mapped[int] = mapped_column(Integer, default=0)
    archived_mac: Mapped[str] = mapped_column(String(64), default="")


class IdempotencyKey(Base):
    """A POST answered under an ``Idempotency-Key`` header (:mod:`kb.api.idempotency`): ``caller`` (a hash of the
    credential) + ``key`` identify it; ``request_hash`` is the SHA-256 of method, path, query and body; ``status``
    is None while the first request runs, then the answer's status, content type and body, replayed to a retry."""

    __tablename__ = "idempotency_keys"

    caller: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content_type: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[bytes] = mapped_column(LargeBinary, default=b"")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
