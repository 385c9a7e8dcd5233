"""Sentence pairs: ``items.text_pair``, the second text of an item (NULL for a single text), and
``augmentations.text_pair``, the second text of an augmented pair.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

A nullable column, so every stored item stays a single text; the downgrade refuses while any
item holds a pair (dropping the column would lose the second texts without a word).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))
_items = sa.table("items", sa.column("text_pair", sa.Text))
_TABLES = ("items", "augmentations")


def _set_version(value: str) -> None:
    op.execute(_meta.update().where(_meta.c.key == "schema_version").values(value=value))


def upgrade() -> None:
    for table in _TABLES:  # a plain ALTER TABLE on SQLite and PostgreSQL alike
        op.add_column(table, sa.Column("text_pair", sa.Text, nullable=True))
    _set_version("3")


def downgrade() -> None:
    conn = op.get_bind()
    n = conn.execute(sa.select(sa.func.count()).select_from(_items)
                     .where(_items.c.text_pair.is_not(None))).scalar_one()
    if n:
        raise ValueError(f"{n:,} items are sentence pairs; schema 2 cannot hold their second "
                           "texts. Export the project first (curation export) if you need them, "
                           "and downgrade a copy.")
    for table in _TABLES:  # SQLite 3.35+ drops a column in place (a batch copy would trip the
        op.drop_column(table, "text_pair")  # foreign keys that point at items)
    _set_version("2")
