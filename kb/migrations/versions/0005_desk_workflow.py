"""desk workflow: ticket tier, assignee, SLA clock fields, deflection; ticket events (audit trail); e-mail threads

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("tier", sa.String(length=4), nullable=False, server_default="L1"))
        batch.add_column(sa.Column("assignee", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("response_due", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("resolution_due", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("sla_state", sa.String(length=12), nullable=False, server_default="ok"))
        batch.add_column(sa.Column("deflected", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("satisfaction_comment", sa.Text(), nullable=False, server_default=""))
    op.create_table(
        "ticket_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("actor", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_ticket_events_ticket_id", "ticket_events", ["ticket_id"])
    op.create_table(
        "ticket_messages",
        sa.Column("message_id", sa.String(length=500), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("message_id"),
    )
    op.create_index("ix_ticket_messages_ticket_id", "ticket_messages", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_ticket_messages_ticket_id", table_name="ticket_messages")
    op.drop_table("ticket_messages")
    op.drop_index("ix_ticket_events_ticket_id", table_name="ticket_events")
    op.drop_table("ticket_events")
    with op.batch_alter_table("tickets") as batch:
        for column in ("satisfaction_comment", "deflected", "sla_state", "resolution_due", "response_due",
                       "responded_at", "assignee", "tier"):  # fmt: skip
            batch.drop_column(column)
