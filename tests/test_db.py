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
