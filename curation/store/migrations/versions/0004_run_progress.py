"""Jobs run by workers on other hosts: ``runs.progress``, the running job's latest progress
(fraction done, message, seconds left, size notes, the worker that runs it) as JSON, so an app on
any host reads it from the database.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01

A nullable column (NULL for every run so far and for runs without progress); the downgrade
drops it: progress is a running job's passing state, and the runs' results stay.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))


def _set_version(value: str) -> None:
    op.execute(_meta.update().where(_meta.c.key == "schema_version").values(value=value))


def upgrade() -> None:
    op.add_column("runs", sa.Column("progress", sa.Text, nullable=True))
    _set_version("4")


def downgrade() -> None:
    op.drop_column("runs", "progress")
    _set_version("3")
