"""The project store: annotations, label set, review decisions and runs in one database.

A :class:`Project` wraps a SQLAlchemy engine (SQLite file by default, any
SQLAlchemy URL otherwise, e.g. PostgreSQL) and keeps, one module per concern:

``imports`` (:mod:`curation.store.imports`)
    ``items`` / ``annotations``: the long annotation frame, one row per item and per
    (item, annotator); ``labels``: the declared label set, in order; ``imports``: one row per
    import that changed something (source, SHA-256 of the frame).
``decisions`` (:mod:`curation.store.decisions`)
    an append-only log of review decisions (and of labels replaced by a re-import); nothing
    ever updates or deletes its rows.
``team`` (:mod:`curation.store.team`)
    ``members`` with their roles, and the ``audit`` log of every other write.
``runs`` (:mod:`curation.store.runs`)
    background jobs (kind, status, JSON params and result).
``flags`` (:mod:`curation.store.flags`)
    the flags written by each ``"flags"`` run (one row per item and kind, in the order they
    were saved) and that run's review order, ``priorities`` (one row per reachable item).
``embedding_cache`` (:mod:`curation.store.embedding_cache`)
    ``embeddings``: one float32 vector per (model key, SHA-1 of the text), so a text is
    embedded once per model whatever item it is in.
``augmentations`` (:mod:`curation.store.augmentations`)
    accepted augmented rows with their provenance.

The tables are in :mod:`curation.store.tables`, their history in Alembic revisions
(:mod:`curation.store.migrate`); opening an older project upgrades it. Only SQLAlchemy Core
and portable constructs are used. On SQLite every connection enables WAL, foreign keys and a
busy timeout, and write transactions start with ``BEGIN IMMEDIATE`` so that several processes
(or several :class:`Project` objects) can write to one file at the same time; on PostgreSQL a
transaction-level advisory lock serialises writers the same way. All timestamps are
timezone-aware UTC datetimes.
"""

from curation.store.augmentations import Augmentations
from curation.store.database import (
    BATCH_SIZE,
    MAX_KEY_BYTES,
    AccessError,
    NoProjectError,
    redact_url,
)
from curation.store.decisions import ACTIONS, Decisions
from curation.store.embedding_cache import EmbeddingCache
from curation.store.flags import Flags
from curation.store.imports import ON_CONFLICT, Annotations, ImportResult, import_action, text_sha1
from curation.store.migrate import SCHEMA_VERSION, SchemaState
from curation.store.project import Project
from curation.store.runs import RUN_STATUSES, Runs
from curation.store.tables import AUGMENTATION_COLUMNS
from curation.store.team import AUDIT_ACTIONS, NEEDS, ROLES, Team

__all__ = [
    "AUGMENTATION_COLUMNS",
    "ACTIONS",
    "AUDIT_ACTIONS",
    "BATCH_SIZE",
    "MAX_KEY_BYTES",
    "NEEDS",
    "ON_CONFLICT",
    "ROLES",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "AccessError",
    "Annotations",
    "Augmentations",
    "Decisions",
    "EmbeddingCache",
    "Flags",
    "ImportResult",
    "NoProjectError",
    "Project",
    "Runs",
    "SchemaState",
    "Team",
    "import_action",
    "redact_url",
    "text_sha1",
]
