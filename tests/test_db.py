"""The Alembic migrations build exactly the schema the ORM models describe (SQLite and PostgreSQL)."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import text

from kb.db import MIGRATIONS_DIR, Database
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


@pytest.mark.security
def test_an_upgrade_keeps_the_rows_of_the_tables_it_rebuilds(tmp_path: Path) -> None:
    """Found by session 9: on SQLite, Alembic's batch mode rebuilds a table by copy, ``DROP`` and rename, and the
    ``DROP`` of ``articles`` (revision 0008) or ``users`` (0009) ran their ``ON DELETE CASCADE`` with foreign keys
    enforced: an upgrade from 0007 deleted every article version, vote, usage row and password history.
    :meth:`Database.migrate` now migrates with enforcement off and checks the rows before it commits."""
    url = f"sqlite:///{tmp_path / 'kb.sqlite3'}"
    database = Database(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url)
    with database.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")
    now = "2026-01-01 00:00:00"
    with database.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO articles (id, title, summary, body, kind, tags, error_codes, status, visibility, source,"
                " meta, content_hash, version, created_at, updated_at, created_by, updated_by) VALUES (1, 't', '',"
                " 'b', 'howto', '[]', '[]', 'published', 'internal', 'api', '{}', 'h', 1, :now, :now, 'a', 'a')"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO article_versions (article_id, version, title, body, fields, created_at, created_by)"
                " VALUES (1, 1, 't', 'b', '{}', :now, 'a')"
            ),
            {"now": now},
        )
        conn.execute(
            text("INSERT INTO feedback (article_id, helpful, comment, actor, created_at) VALUES (1, 1, '', 'a', :now)"),
            {"now": now},
        )
        conn.execute(
            text("INSERT INTO article_usage (article_id, event, actor, created_at) VALUES (1, 'view', 'a', :now)"),
            {"now": now},
        )
    database.dispose()
    upgraded = Database(url)
    try:
        upgraded.migrate()
        with upgraded.engine.connect() as conn:
            counts = {
                table: conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("articles", "article_versions", "feedback", "article_usage")
            }
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1  # enforced again afterwards
        assert counts == {"articles": 1, "article_versions": 1, "feedback": 1, "article_usage": 1}
    finally:
        upgraded.dispose()
