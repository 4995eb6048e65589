"""The Alembic migrations build exactly the schema the ORM models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from kb.db import Database
from kb.models import Base


def test_migrations_match_the_models(empty_database_url: str) -> None:
    database = Database(empty_database_url)
    database.migrate()
    try:
        with database.engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        database.dispose()


def test_dispose_closes_a_connection_another_thread_returns_late(database_url: str) -> None:
    """``Engine.dispose`` leaves a checked-out connection to the old pool, which nothing closes until the garbage
    collector does (psycopg's ResourceWarning in a later, unrelated test); :meth:`Database.dispose` waits for it
    and closes it."""
    import threading
    import time

    from sqlalchemy import text

    database = Database(database_url)
    opened = threading.Event()
    raw: list[object] = []

    def slow_job() -> None:
        with database.session() as session:
            session.execute(text("SELECT 1"))
            raw.append(session.connection().connection.dbapi_connection)
            opened.set()
            time.sleep(0.3)  # still using it when the main thread disposes

    job = threading.Thread(target=slow_job)
    job.start()
    assert opened.wait(10)
    database.dispose()
    job.join(10)
    connection = raw[0]
    closed = getattr(connection, "closed", None)
    if closed is None:  # sqlite3: a closed connection refuses to execute
        import sqlite3

        try:
            connection.execute("SELECT 1")  # type: ignore[attr-defined]
        except sqlite3.ProgrammingError:
            closed = True
        else:
            closed = False
    assert closed
