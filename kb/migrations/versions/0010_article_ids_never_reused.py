"""article ids are never reused on SQLite: ``articles`` rebuilt with ``AUTOINCREMENT``

Without it SQLite gives a new row the largest id + 1, so deleting the newest article and creating another gave
the new one the deleted one's id: a ticket's distilled draft, another article's ``superseded_by`` and the
audit trail's ``article N`` then named an unrelated article (found by session 8's outside tester). PostgreSQL's
sequence never reuses a value: nothing to do there. The rebuild is safe because :meth:`kb.db.Database.migrate`
runs SQLite migrations with foreign keys off (a ``DROP`` of ``articles`` would otherwise cascade to its
children); ids deleted before this revision cannot be known and are not reserved.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("articles", recreate="always", table_kwargs={"sqlite_autoincrement": True}):
        pass


def downgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("articles", recreate="always", table_kwargs={"sqlite_autoincrement": False}):
        pass
