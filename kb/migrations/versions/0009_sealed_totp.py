"""TOTP seeds sealed at rest: users.totp_secret widened from 64 to 255 characters to hold a Fernet token
(kb.identity.data_key; about 140 characters for a 32-character seed)

Existing bare seeds are sealed by the service at its next start (``AccountStore.reseal_totp_secrets``): the key
(``KB_DATA_KEY``) lives outside the database, so a migration cannot and should not know it.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", existing_type=sa.String(length=64), type_=sa.String(length=255))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.alter_column("totp_secret", existing_type=sa.String(length=255), type_=sa.String(length=64))
