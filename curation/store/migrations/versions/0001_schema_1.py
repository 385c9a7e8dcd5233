"""Schema version 1, as released (every project made before Alembic managed the schema).

Revision ID: 0001
Revises:
Create Date: 2026-12-01

A frozen copy of the tables of schema version 1: never import the live table definitions in a
revision, they change. Creates only the tables a database lacks, so it brings every version-1
project file to the full schema 1 (the oldest lack ``audit``, which was added to version 1 later)
and builds an empty database from nothing.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TIME = sa.DateTime(timezone=True)


def _created() -> sa.Column:
    return sa.Column("created_at", _TIME, nullable=False)


def _tables() -> list[tuple[str, list, list[tuple[str, list[str]]]]]:
    """(table, columns and constraints, indexes) in an order that respects foreign keys."""
    return [
        ("meta", [sa.Column("key", sa.String(64), primary_key=True),
                  sa.Column("value", sa.Text, nullable=False)], []),
        ("items", [sa.Column("item_id", sa.String, primary_key=True),
                   sa.Column("text", sa.Text, nullable=False),
                   sa.Column("text_sha1", sa.String(40), nullable=False),
                   sa.Column("gold", sa.String, nullable=True), _created()], []),
        ("imports", [sa.Column("import_id", sa.Integer, primary_key=True, autoincrement=True),
                     sa.Column("source", sa.Text, nullable=False),
                     sa.Column("sha256", sa.String(64), nullable=False),
                     sa.Column("n_rows", sa.Integer, nullable=False),
                     sa.Column("n_new_annotations", sa.Integer, nullable=False), _created()],
         [("ix_imports_sha256", ["sha256"])]),
        ("annotations", [sa.Column("item_id", sa.String, sa.ForeignKey("items.item_id"),
                                   primary_key=True),
                         sa.Column("annotator_id", sa.String, primary_key=True),
                         sa.Column("label", sa.String, nullable=False),
                         sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.import_id"),
                                   nullable=True), _created()], []),
        ("labels", [sa.Column("label", sa.String, primary_key=True),
                    sa.Column("position", sa.Integer, nullable=False)], []),
        ("decisions", [sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=True),
                       sa.Column("item_id", sa.String, sa.ForeignKey("items.item_id"),
                                 nullable=False),
                       sa.Column("reviewer", sa.String, nullable=False),
                       sa.Column("action", sa.String(32), nullable=False),
                       sa.Column("old_label", sa.String, nullable=True),
                       sa.Column("new_label", sa.String, nullable=True),
                       sa.Column("note", sa.Text, nullable=False), _created()],
         [("ix_decisions_item_id", ["item_id"])]),
        ("runs", [sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
                  sa.Column("kind", sa.String, nullable=False),
                  sa.Column("status", sa.String(16), nullable=False),
                  sa.Column("params", sa.Text, nullable=False),
                  sa.Column("result", sa.Text, nullable=True), _created(),
                  sa.Column("finished_at", _TIME, nullable=True)], []),
        ("embeddings", [sa.Column("model", sa.String, primary_key=True),
                        sa.Column("text_sha1", sa.String(40), primary_key=True),
                        sa.Column("dim", sa.Integer, nullable=False),
                        sa.Column("vector", sa.LargeBinary, nullable=False), _created()], []),
        ("flags", [sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), primary_key=True),
                   sa.Column("item_id", sa.String, sa.ForeignKey("items.item_id"),
                             primary_key=True),
                   sa.Column("kind", sa.String, primary_key=True),
                   sa.Column("score", sa.Float, nullable=False),
                   sa.Column("reason", sa.Text, nullable=False),
                   sa.Column("suggested_label", sa.String, nullable=True),
                   sa.Column("rule_id", sa.String, nullable=True),
                   sa.Column("position", sa.Integer, nullable=False)], []),
        ("members", [sa.Column("name", sa.String, primary_key=True),
                     sa.Column("role", sa.String(16), nullable=False),
                     sa.Column("added_by", sa.String, nullable=False), _created()], []),
        ("augmentations", [sa.Column("aug_id", sa.String(40), primary_key=True),
                           sa.Column("item_id", sa.String, sa.ForeignKey("items.item_id"),
                                     nullable=False),
                           sa.Column("text", sa.Text, nullable=False),
                           sa.Column("label", sa.String, nullable=False),
                           sa.Column("method", sa.String, nullable=False),
                           sa.Column("params", sa.Text, nullable=False),
                           sa.Column("similarity", sa.Float, nullable=True),
                           sa.Column("label_prob", sa.Float, nullable=True),
                           sa.Column("status", sa.String(16), nullable=False),
                           sa.Column("reviewer", sa.String, nullable=False),
                           sa.Column("removed_by", sa.String, nullable=True),
                           sa.Column("removed_at", _TIME, nullable=True), _created()],
         [("ix_augmentations_item_id", ["item_id"])]),
        ("audit", [sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
                   sa.Column("actor", sa.String, nullable=True),
                   sa.Column("action", sa.String(32), nullable=False),
                   sa.Column("detail", sa.Text, nullable=False), _created()], []),
    ]


def upgrade() -> None:
    conn = op.get_bind()
    present = set(sa.inspect(conn).get_table_names())
    for name, columns, indexes in _tables():
        if name in present:
            continue
        op.create_table(name, *columns)
        for index, cols in indexes:
            op.create_index(index, name, cols)
    meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))
    if conn.execute(sa.select(meta.c.value).where(meta.c.key == "schema_version")).first() is None:
        op.bulk_insert(meta, [{"key": "schema_version", "value": "1"}])


def downgrade() -> None:
    for name, _columns, _indexes in reversed(_tables()):
        op.drop_table(name)
