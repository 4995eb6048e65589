"""article lifecycle (reviewer, review-by date, superseded-by), feedback and usage events

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("articles") as batch:
        batch.add_column(sa.Column("reviewer", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("review_by", sa.Date(), nullable=True))
        batch.add_column(sa.Column("superseded_by", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("published_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_articles_review_by", ["review_by"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("helpful", sa.Boolean(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("query", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_feedback_article_id", "feedback", ["article_id"])
    op.create_table(
        "article_usage",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("event", sa.String(length=20), nullable=False),
        sa.Column("ticket", sa.String(length=120), nullable=True),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_article_usage_article_event", "article_usage", ["article_id", "event"])


def downgrade() -> None:
    op.drop_index("ix_article_usage_article_event", table_name="article_usage")
    op.drop_table("article_usage")
    op.drop_index("ix_feedback_article_id", table_name="feedback")
    op.drop_table("feedback")
    with op.batch_alter_table("articles") as batch:
        batch.drop_index("ix_articles_review_by")
        batch.drop_column("published_at")
        batch.drop_column("superseded_by")
        batch.drop_column("review_by")
        batch.drop_column("reviewer")
