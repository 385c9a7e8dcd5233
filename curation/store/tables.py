"""The project database's tables (SQLAlchemy Core), as of the newest schema revision.

Every module of :mod:`curation.store` writes through these; the schema's history is the
Alembic revisions in ``curation/store/migrations/versions`` (:mod:`curation.store.migrate`),
and ``tests/test_migrations.py`` checks that those revisions build exactly these tables.
Changing a table here means adding a revision there.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from curation.schema import ANNOTATOR, GOLD, ITEM, LABEL, TEXT, TEXT_PAIR


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class _UTCDateTime(sa.types.TypeDecorator):
    """``DateTime(timezone=True)`` that always hands back aware UTC datetimes (SQLite included)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


def _created() -> sa.Column:
    return sa.Column("created_at", _UTCDateTime(), nullable=False, default=_utcnow)


metadata = sa.MetaData()


_meta = sa.Table(
    "meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)


_items = sa.Table(
    "items", metadata,
    sa.Column(ITEM, sa.String, primary_key=True),
    sa.Column(TEXT, sa.Text, nullable=False),
    sa.Column("text_sha1", sa.String(40), nullable=False),
    sa.Column(GOLD, sa.String, nullable=True),
    _created(),
    sa.Column(TEXT_PAIR, sa.Text, nullable=True),  # revision 0003: a pair's second text
)


_imports = sa.Table(
    "imports", metadata,
    sa.Column("import_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.Text, nullable=False, default=""),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("n_new_annotations", sa.Integer, nullable=False),
    _created(),
)


_annotations = sa.Table(
    "annotations", metadata,
    sa.Column(ITEM, sa.String, sa.ForeignKey("items.item_id"), primary_key=True),
    sa.Column(ANNOTATOR, sa.String, primary_key=True),
    sa.Column(LABEL, sa.String, nullable=False),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.import_id"), nullable=True),
    _created(),
)


_labels = sa.Table(
    "labels", metadata,
    sa.Column(LABEL, sa.String, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)


_decisions = sa.Table(
    "decisions", metadata,
    sa.Column("decision_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column(ITEM, sa.String, sa.ForeignKey("items.item_id"), nullable=False, index=True),
    sa.Column("reviewer", sa.String, nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("old_label", sa.String, nullable=True),
    sa.Column("new_label", sa.String, nullable=True),
    sa.Column("note", sa.Text, nullable=False, default=""),
    _created(),
)


_runs = sa.Table(
    "runs", metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    _created(),
    sa.Column("finished_at", _UTCDateTime(), nullable=True),
    # a running job's latest progress (JSON), written by its worker on any host (revision 0004)
    sa.Column("progress", sa.Text, nullable=True),
)


_embeddings = sa.Table(
    "embeddings", metadata,
    sa.Column("model", sa.String, primary_key=True),
    sa.Column("text_sha1", sa.String(40), primary_key=True),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),  # float32, little-endian
    _created(),
)


_flags = sa.Table(
    "flags", metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column(ITEM, sa.String, sa.ForeignKey("items.item_id"), primary_key=True),
    sa.Column("kind", sa.String, primary_key=True),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("suggested_label", sa.String, nullable=True),
    sa.Column("rule_id", sa.String, nullable=True),
    sa.Column("position", sa.Integer, nullable=False),  # row order in the saved frame
)


_members = sa.Table(
    "members", metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("added_by", sa.String, nullable=False),
    _created(),
)


_augmentations = sa.Table(
    "augmentations", metadata,
    sa.Column("aug_id", sa.String(40), primary_key=True),
    sa.Column(ITEM, sa.String, sa.ForeignKey("items.item_id"), nullable=False, index=True),
    sa.Column(TEXT, sa.Text, nullable=False),
    sa.Column(LABEL, sa.String, nullable=False),
    sa.Column("method", sa.String, nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("similarity", sa.Float, nullable=True),
    sa.Column("label_prob", sa.Float, nullable=True),
    sa.Column("status", sa.String(16), nullable=False),  # accepted | removed
    sa.Column("reviewer", sa.String, nullable=False),
    sa.Column("removed_by", sa.String, nullable=True),
    sa.Column("removed_at", _UTCDateTime(), nullable=True),
    _created(),
    sa.Column(TEXT_PAIR, sa.Text, nullable=True),  # revision 0003: an augmented pair's second text
)


#: Each flags run's review order: one row per item a reviewer can reach, with its priority (the
#: flagged items, ``flagged`` true, and the items no flagger raised that still have some doubt).
#: Schema revision 0002; before it, two JSON dicts in the run's ``params``.
_priorities = sa.Table(
    "priorities", metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column(ITEM, sa.String, sa.ForeignKey("items.item_id"), primary_key=True),
    sa.Column("priority", sa.Float, nullable=False),
    sa.Column("flagged", sa.Boolean, nullable=False),
)

#: Who did what to the project, one row per write: the audit log (:meth:`Project.audit`). Added
#: after schema version 1 was released; revision 0001 adds it to project files that lack it.
_audit = sa.Table(
    "audit", metadata,
    sa.Column("audit_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("actor", sa.String, nullable=True),  # None: no one signed in (local mode)
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),  # JSON
    _created(),
)


#: Columns of :meth:`Project.augmentations`.
AUGMENTATION_COLUMNS = ("aug_id", ITEM, TEXT, LABEL, "method", "params", "similarity", "label_prob",
                        "status", "reviewer", "created_at", "removed_by", "removed_at")


_DECISION_COLUMNS = ("decision_id", ITEM, "reviewer", "action", "old_label", "new_label", "note",
                     "created_at")


_RUN_COLUMNS = ("run_id", "kind", "status", "params", "result", "created_at", "finished_at")


#: The flag columns (same as :data:`curation.flags.FLAG_COLUMNS`).
FLAG_COLUMNS = (ITEM, "kind", "score", "reason", "suggested_label", "rule_id")


