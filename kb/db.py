"""Engine and session factory; schema creation and upgrades through Alembic migrations.

With a read URL (``KB_DATABASE_READ_URL``, a PostgreSQL hot standby), :meth:`Database.read_session` serves reads
that may be a little behind (search's article summaries and passages) from the standby, keeping read-your-writes
for this process: after this process commits a write to the tables it serves (:data:`READ_TABLES`), reads go
to the primary until the standby has replayed the
primary's WAL up to the position read after that commit (``pg_current_wal_lsn()`` on the primary against
``pg_last_wal_replay_lsn()`` on the standby; PostgreSQL manual, "System Administration Functions"). A standby
that cannot be reached is skipped (the primary answers). Everything else uses :meth:`Database.session`.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import ORMExecuteState, Session, sessionmaker

from kb.config import Settings
from kb.errors import KBError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: Longest wait of :meth:`Database.dispose` for connections other threads still use, in seconds.
DISPOSE_WAIT_S = 5.0
#: Key of ``Session.info`` under which a write names auditable actions its rows alone do not reveal, as a list of
#: (actor, event, object, reason); kb.identity.observer adds their audit rows to the same flush.
AUDIT_ACTIONS = "kb.audit_actions"


class Database:
    """Owns the engine and the session factory for one database URL.

    Args:
        url: SQLAlchemy URL. SQLite files get WAL journaling, foreign keys on and a 30 s busy timeout.
        read_url: optional URL of a PostgreSQL hot standby of ``url`` for :meth:`read_session`; empty: none.
    """

    def __init__(self, url: str, read_url: str = "") -> None:
        self.url = url
        connect_args: dict[str, Any] = {}
        if url.startswith("sqlite"):
            connect_args = {"check_same_thread": False, "timeout": 30}
        # pre-ping (a round trip per checkout) finds server connections dropped while pooled; a SQLite file
        # connection cannot be dropped, so it would only cost every checkout a statement
        sqlite = url.startswith("sqlite")
        self.engine: Engine = create_engine(url, connect_args=connect_args, pool_pre_ping=not sqlite)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._in_use = {self.engine: InUse(self.engine)}
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        self.read_engine: Engine | None = None
        self._read_sessions: sessionmaker[Session] | None = None
        self._wrote = False  # a write committed since the primary's WAL position was last read
        #: Commits of this process that wrote an outbox row (:func:`mark_outbox_write`), counted from 0.
        self.outbox_commits = 0
        self._awaited_lsn: str | None = None  # primary position the standby must replay before it serves reads
        if read_url:
            self.read_engine = create_engine(read_url, pool_pre_ping=True)
            self._in_use[self.read_engine] = InUse(self.read_engine)
            self._read_sessions = sessionmaker(self.read_engine, expire_on_commit=False)
            event.listen(self.sessions, "after_flush", _mark_write)
            event.listen(self.sessions, "do_orm_execute", _mark_orm_write)
        event.listen(self.sessions, "after_commit", self._after_commit)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A session in a transaction: committed on success, rolled back on any exception."""
        with self.sessions() as session, session.begin():
            yield session

    @contextmanager
    def read_session(self) -> Iterator[Session]:
        """A read-only session on the standby when there is one, it can be reached and it has replayed this
        process's last write (see module docstring); otherwise :meth:`session` on the primary. Never write in it."""
        if self._read_sessions is None or not self._standby_caught_up():
            with self.session() as session:
                yield session
            return
        with self._read_sessions() as session, session.begin():
            yield session

    def expect_changes(self) -> None:
        """Another process has committed changes this process is about to read (e.g. outbox rows it has just seen on
        the primary, :mod:`kb.search.pending`): :meth:`read_session` reads the primary until the standby has
        replayed the primary's position of now, as after a write of this process. Nothing without a standby."""
        if self.read_engine is not None:
            self._wrote = True

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(_OUTBOX, False):
            self.outbox_commits += 1  # under the GIL; read without a lock (a stale read only delays a re-check)
        if session.info.pop(_WROTE, False):
            self._wrote = True

    def _standby_caught_up(self) -> bool:
        """Whether the standby may serve this process's reads now (it has replayed past its last write)."""
        assert self.read_engine is not None
        try:
            if self._wrote:
                self._wrote = False
                with self.engine.connect() as conn:
                    self._awaited_lsn = str(conn.scalar(text("SELECT pg_current_wal_lsn()")))
            with self.read_engine.connect() as conn:
                if self._awaited_lsn is None:
                    return True  # reachable: pool_pre_ping checked the connection at checkout
                caught_up = conn.scalar(
                    text("SELECT coalesce(pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn), true)"),
                    {"lsn": self._awaited_lsn},
                )
            if caught_up:
                self._awaited_lsn = None
            return bool(caught_up)
        except SQLAlchemyError as exc:
            logger.warning("read replica unavailable, reading from the primary: %s", exc)
            return False

    def migrate(self) -> None:
        """Create or upgrade the schema to the newest Alembic revision.

        Raises:
            KBError: the database cannot be reached or a migration failed.
        """
        from alembic import command
        from alembic.config import Config
        from alembic.migration import MigrationContext

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
        cfg.set_main_option("sqlalchemy.url", self.url.replace("%", "%%"))
        try:
            with self.engine.connect() as connection:
                # At head already (every start but the first): one SELECT instead of running env.py and every
                # migration script's module (~0.1-0.7 s per open).
                if set(MigrationContext.configure(connection).get_current_heads()) == _script_heads(cfg):
                    return
                sqlite = connection.dialect.name == "sqlite"
                if sqlite:
                    _foreign_keys(connection, on=False)
                try:
                    cfg.attributes["connection"] = connection
                    command.upgrade(cfg, "head")
                    if sqlite:
                        broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                        if broken:
                            connection.rollback()
                            raise KBError(f"A migration would leave rows without their parent: {broken[:5]}")
                    connection.commit()
                finally:
                    if sqlite:
                        _foreign_keys(connection, on=True)
        except SQLAlchemyError as exc:
            raise KBError(f"Cannot migrate the database at {self.engine.url!r}: {exc}") from exc

    def dispose(self, wait_s: float = DISPOSE_WAIT_S) -> None:
        """Close all pooled connections, including those still checked out by another thread (a request or a
        background job finishing), once they come back: waits for them up to ``wait_s`` seconds.

        SQLAlchemy's ``Engine.dispose`` closes only the connections in the pool; one checked out at that moment is
        checked in later to the old pool, which nothing closes until the garbage collector finds it (psycopg then
        warns "connection ... was deleted while still open")."""
        for engine in (self.engine, self.read_engine):
            if engine is None:
                continue
            pool = engine.pool
            engine.dispose()
            deadline = time.monotonic() + wait_s
            while self._in_use[engine].count > 0 and time.monotonic() < deadline:
                time.sleep(0.02)
            pool.dispose()  # the connections checked in since


class InUse:
    """How many connections of an engine are checked out now, counted through its pool's checkout and checkin
    events (which follow the engine to every pool it recreates)."""

    def __init__(self, engine: Engine) -> None:
        self.count = 0
        self._guard = threading.Lock()
        event.listen(engine, "checkout", self._out)
        event.listen(engine, "checkin", self._in)

    def _out(self, *_: Any) -> None:
        with self._guard:
            self.count += 1

    def _in(self, *_: Any) -> None:
        with self._guard:
            self.count -= 1


#: ``Session.info`` key: the session wrote something (flushed ORM changes or ran an ORM insert/update/delete).
_WROTE = "kb.wrote"
_OUTBOX = "kb.outbox"


def mark_outbox_write(session: Session) -> None:
    """Record that ``session``'s transaction writes an outbox row: its commit counts in
    :attr:`Database.outbox_commits` (the change search must filter with before the index applies it,
    :mod:`kb.search.pending`)."""
    session.info[_OUTBOX] = True


#: Tables :meth:`Database.read_session` serves (search's article summaries and chunk passages): only a write to
#: one of them makes this process read from the primary until the standby has it (a session's last-use time,
#: written on every authenticated request, does not).
READ_TABLES = frozenset({"articles", "chunks"})


def _mark_write(session: Session, _flush_context: Any) -> None:
    changed = {getattr(type(o), "__tablename__", None) for o in (*session.new, *session.dirty, *session.deleted)}
    if changed & READ_TABLES:
        session.info[_WROTE] = True


def _mark_orm_write(state: ORMExecuteState) -> None:
    if state.is_insert or state.is_update or state.is_delete:
        table = getattr(getattr(state.statement, "table", None), "name", None)
        if table is None or table in READ_TABLES:
            state.session.info[_WROTE] = True


@functools.cache
def _heads_of(script_location: str) -> frozenset[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    cfg = Config()
    cfg.set_main_option("script_location", script_location)
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())


def _script_heads(cfg: Any) -> frozenset[str]:
    """The head revisions of the migration scripts at ``cfg``'s ``script_location`` (read once per process)."""
    return _heads_of(str(cfg.get_main_option("script_location")))


def _foreign_keys(connection: Connection, on: bool) -> None:
    """Turn SQLite's foreign-key enforcement on or off for ``connection``, outside any transaction (inside one
    SQLite ignores the pragma).

    Off while migrating: Alembic's batch mode rebuilds a table (copy, ``DROP``, rename), and with enforcement on
    the ``DROP`` of a parent such as ``articles`` runs its ``ON DELETE CASCADE``, deleting every child row
    (versions, feedback, usage: found by session 9 on an upgrade from revision 0007). SQLite's own procedure for
    schema changes says the same (https://www.sqlite.org/lang_altertable.html#otheralter, step 1); the rows are
    checked with ``PRAGMA foreign_key_check`` before the commit instead."""
    connection.commit()
    connection.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    connection.commit()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def open_database(settings: Settings) -> Database:
    """Open (creating the data folder for SQLite) and migrate the database named by ``settings``."""
    url = settings.resolved_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    database = Database(url, settings.database_read_url)
    database.migrate()
    return database


def missing_database(url: str) -> str | None:
    """Where kb's database is missing, for the commands that must not make a new one: the SQLite file of ``url``
    when it does not exist or is empty, a server database (PostgreSQL) that has no ``alembic_version`` table (kb
    never migrated it), with the password hidden; None when the database is there.

    Raises:
        sqlalchemy.exc.OperationalError: the database server cannot be reached.
    """
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        return None if path.is_file() and path.stat().st_size > 0 else str(path.resolve())
    engine = create_engine(url)
    try:
        if inspect(engine).has_table("alembic_version"):
            return None
    finally:
        engine.dispose()
    return make_url(url).render_as_string(hide_password=True)
