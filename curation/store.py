"""The project store: annotations, label set, review decisions and runs in one database.

A :class:`Project` wraps a SQLAlchemy engine (SQLite file by default, any
SQLAlchemy URL otherwise, e.g. PostgreSQL) and keeps:

``meta``
    ``schema_version`` and the project ``name``.
``items`` / ``annotations``
    the long annotation frame, one row per item and per (item, annotator).
``labels``
    the declared label set, in order.
``imports``
    one row per import that changed something (source, SHA-256 of the frame).
``decisions``
    an append-only audit log of review decisions (and of labels replaced by a
    re-import); nothing ever updates or deletes its rows.
``runs``
    background jobs (kind, status, JSON params and result).
``embeddings``
    a cache of text embeddings: one float32 vector per (model key, SHA-1 of
    the text), so a text is embedded once per model whatever item it is in.
``flags``
    the flags written by each ``"flags"`` run (one row per item and kind, in
    the order they were saved).

Only SQLAlchemy Core and portable constructs are used. On SQLite every
connection enables WAL, foreign keys and a busy timeout, and write
transactions start with ``BEGIN IMMEDIATE`` so that several processes (or
several :class:`Project` objects) can write to one file at the same time; on
PostgreSQL a transaction-level advisory lock serialises writers the same way.
All timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import numbers
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from curation.messages import format_list
from curation.progress import Progress
from curation.schema import ANNOTATOR, GOLD, ITEM, LABEL, TEXT

__all__ = [
    "AUGMENTATION_COLUMNS",
    "ACTIONS",
    "BATCH_SIZE",
    "ON_CONFLICT",
    "ROLES",
    "RUN_STATUSES",
    "AUDIT_ACTIONS",
    "AccessError",
    "SCHEMA_VERSION",
    "ImportResult",
    "NoProjectError",
    "Project",
    "redact_url",
    "text_sha1",
]

logger = logging.getLogger(__name__)

SCHEMA_VERSION = "1"
#: Review actions accepted by :meth:`Project.record_decision`.
ACTIONS = ("set_label", "keep", "drop", "ambiguous", "note", "undo")
#: What :meth:`Project.import_annotations` does with a stored label that differs.
ON_CONFLICT = ("error", "replace", "keep")
#: Roles of team mode: an annotator records decisions under their own name; a lead also
#: exports, retrains and manages members.
ROLES = ("annotator", "lead")
#: Final states accepted by :meth:`Project.finish_run`.
RUN_STATUSES = ("done", "failed", "cancelled")
#: What the audit log records (:meth:`Project.audit`); decisions and augmentations are signed in
#: their own tables.
AUDIT_ACTIONS = ("create", "import", "label_set", "member", "member_removed", "run", "export",
                 "cancel")
#: Rows written per bulk statement (and per progress call) during an import.
BATCH_SIZE = 5000

_REVIEW_ACTIONS = tuple(a for a in ACTIONS if a != "undo")
_REIMPORT = "reimport"
_BUSY_TIMEOUT_S = 30
_IN_CHUNK = 500
#: Most UTF-8 bytes of an id, label or name the store keeps. They are primary keys, and a
#: PostgreSQL B-tree entry holds at most ~2,700 bytes (``index row size exceeds maximum``);
#: :func:`curation.io.load_annotations` refuses more than 512 characters by default.
MAX_KEY_BYTES = 2_000
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: Ids per ``IN (...)`` of an embedding lookup (SQLite allows 999 variables in old builds).
_EMBED_CHUNK = 900
_FLAGS_RUN = "flags"
#: The flag columns (same as :data:`curation.flags.FLAG_COLUMNS`).
_FLAG_COLUMNS = (ITEM, "kind", "score", "reason", "suggested_label", "rule_id")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")
_WRITE = "curation_write"
#: The advisory lock key that serialises writers on PostgreSQL (advisory locks are per database).
_PG_WRITE_LOCK = 0x637572617469  # "curati"
_UNDO_NOTE = re.compile(r"^undo of #(\d+)")


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


# --------------------------------------------------------------------------- schema

_metadata = sa.MetaData()


def _created() -> sa.Column:
    return sa.Column("created_at", _UTCDateTime(), nullable=False, default=_utcnow)


_meta = sa.Table(
    "meta", _metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
_items = sa.Table(
    "items", _metadata,
    sa.Column(ITEM, sa.String, primary_key=True),
    sa.Column(TEXT, sa.Text, nullable=False),
    sa.Column("text_sha1", sa.String(40), nullable=False),
    sa.Column(GOLD, sa.String, nullable=True),
    _created(),
)
_imports = sa.Table(
    "imports", _metadata,
    sa.Column("import_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.Text, nullable=False, default=""),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("n_new_annotations", sa.Integer, nullable=False),
    _created(),
)
_annotations = sa.Table(
    "annotations", _metadata,
    sa.Column(ITEM, sa.String, sa.ForeignKey("items.item_id"), primary_key=True),
    sa.Column(ANNOTATOR, sa.String, primary_key=True),
    sa.Column(LABEL, sa.String, nullable=False),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.import_id"), nullable=True),
    _created(),
)
_labels = sa.Table(
    "labels", _metadata,
    sa.Column(LABEL, sa.String, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
)
_decisions = sa.Table(
    "decisions", _metadata,
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
    "runs", _metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", sa.Text, nullable=False),
    sa.Column("result", sa.Text, nullable=True),
    _created(),
    sa.Column("finished_at", _UTCDateTime(), nullable=True),
)
_embeddings = sa.Table(
    "embeddings", _metadata,
    sa.Column("model", sa.String, primary_key=True),
    sa.Column("text_sha1", sa.String(40), primary_key=True),
    sa.Column("dim", sa.Integer, nullable=False),
    sa.Column("vector", sa.LargeBinary, nullable=False),  # float32, little-endian
    _created(),
)
_flags = sa.Table(
    "flags", _metadata,
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
    "members", _metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("added_by", sa.String, nullable=False),
    _created(),
)

_augmentations = sa.Table(
    "augmentations", _metadata,
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
)

#: Who did what to the project, one row per write: the audit log (:meth:`Project.audit`). Added
#: after schema version 1 was released; ``create_all`` adds it to older project files on open.
_audit = sa.Table(
    "audit", _metadata,
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


# --------------------------------------------------------------------------- engine


def _sqlite_url(path: str | os.PathLike) -> sa.URL:
    text = os.fspath(path)
    if not str(text).strip():
        raise ValueError("an empty project path was given; pass a file path such as "
                         "'projects/demo.sqlite' or a SQLAlchemy URL.")
    if text == ":memory:":
        return sa.make_url("sqlite://")
    target = Path(text).expanduser().resolve()
    if target.is_dir():
        raise ValueError(f"{target} is a folder; pass a file path inside it such as "
                         f"'{target / 'project.sqlite'}'.")
    target.parent.mkdir(parents=True, exist_ok=True)
    return sa.URL.create("sqlite", database=str(target))


def _parse_url(url_or_path: str | os.PathLike) -> sa.URL:
    if isinstance(url_or_path, os.PathLike) or "://" not in str(url_or_path):
        return _sqlite_url(url_or_path)
    try:
        return sa.make_url(str(url_or_path))
    except sa.exc.ArgumentError as err:
        # the parser's own message repeats the URL, password and all: not shown
        raise ValueError(f"{redact_url(url_or_path)!r} is not a valid SQLAlchemy URL "
                         f"({type(err).__name__}); use e.g. 'sqlite:///path/project.sqlite' or a "
                         "plain file path.") from None


def redact_url(url_or_path: str | os.PathLike) -> str:
    """The URL with its password replaced by ``***`` (a path or unparsable text as it was).

    Use it wherever a project URL is shown, logged or stored: ``CURATION_URL`` may carry a
    database password.

    >>> redact_url("postgresql+psycopg://bob:s3cret@db:5432/bank")
    'postgresql+psycopg://bob:***@db:5432/bank'
    """
    text = os.fspath(url_or_path)
    if "://" not in text:
        return text
    try:
        return sa.make_url(text).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", text)


def _install_sqlite_events(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (see _on_begin)
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA foreign_keys = ON")
        if wal:
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _make_engine(url: sa.URL) -> Engine:
    try:
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url)
        memory = url.database in (None, "", ":memory:")
        kwargs: dict[str, Any] = {"connect_args": {"timeout": _BUSY_TIMEOUT_S}}
        if memory:
            kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        engine = sa.create_engine(url, **kwargs)
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError, ImportError) as err:
        shown = url.render_as_string(hide_password=True)
        raise ValueError(f"cannot open {shown!r}: {err}. Check the URL's dialect and install "
                         "its database driver.") from None
    _install_sqlite_events(engine, wal=not memory)
    return engine


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ImportResult:
    """What :meth:`Project.import_annotations` did.

    Attributes
    ----------
    import_id : int
        The ``imports`` row recording this import, or the earlier identical
        import when nothing was new.
    n_rows : int
        Rows in the imported frame.
    n_new_items, n_new_annotations : int
        Items and (item, annotator) annotations that were not stored before.
    n_unchanged : int
        Rows whose annotation was already stored with the same label.
    n_replaced : int
        Stored labels overwritten (``on_conflict="replace"``; each is logged in
        ``decisions``).
    n_kept : int
        Rows whose differing stored label was kept (``on_conflict="keep"``).
    """

    import_id: int
    n_rows: int
    n_new_items: int
    n_new_annotations: int
    n_unchanged: int
    n_replaced: int
    n_kept: int = 0


@dataclass
class _ImportPlan:
    """Everything an import will write, computed before writing anything."""

    new_items: list[dict] = field(default_factory=list)
    text_updates: list[dict] = field(default_factory=list)
    gold_updates: list[dict] = field(default_factory=list)
    new_annotations: list[dict] = field(default_factory=list)
    replaced: list[dict] = field(default_factory=list)
    new_labels: list[str] = field(default_factory=list)
    n_unchanged: int = 0
    n_kept: int = 0

    @property
    def n_writes(self) -> int:
        return (len(self.new_items) + len(self.text_updates) + len(self.gold_updates)
                + len(self.new_annotations) + len(self.replaced))

    @property
    def changes_anything(self) -> bool:
        return bool(self.n_writes or self.new_labels)


class _Progress:
    """Report the written fraction to a callback: once per batch, then a final 1.0."""

    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback, self.total, self.done = callback, max(total, 1), 0

    def advance(self, n: int) -> None:
        self.done += n
        if self.callback is not None and self.done < self.total:
            self.callback(self.done / self.total, "importing rows")

    def finish(self) -> None:
        if self.callback is not None:
            self.callback(1.0, "imported")


# --------------------------------------------------------------------------- project


class Project:
    """An annotation project stored in a SQLite file or any SQLAlchemy database.

    Parameters
    ----------
    url_or_path : str or os.PathLike
        A file path (or any string without ``://``) opens or creates a SQLite
        file, creating missing parent folders; ``":memory:"`` is a throw-away
        in-memory database. Anything else is a SQLAlchemy URL such as
        ``postgresql+psycopg://user@host/db``.
    name : str, optional
        Project name stored in ``meta``; defaults to the file stem or database
        name when the project is created, and replaces the stored one if given.

    Attributes
    ----------
    url : str
        The SQLAlchemy URL of the database.
    engine : sqlalchemy.engine.Engine
        The engine; :meth:`close` disposes it.

    Raises
    ------
    ValueError
        If the URL is invalid, the file is not a database, or the database was
        written by a different schema version.
    """

    def __init__(self, url_or_path: str | os.PathLike, *, name: str | None = None,
                 create: bool = True, actor: str | None = None) -> None:
        if not create:
            _require_existing(url_or_path)
        parsed = _parse_url(url_or_path)
        self.url: str = parsed.render_as_string(hide_password=False)
        self.engine: Engine = _make_engine(parsed)
        try:
            self._initialise(name, create=create, actor=actor)
        except sa.exc.DatabaseError as err:
            self.engine.dispose()
            raise ValueError(f"cannot open the project database {self!r}: {err.orig}. Check "
                             "that it is a curation project (or a new, empty database).") from None
        except BaseException:
            self.engine.dispose()
            raise

    def __repr__(self) -> str:
        return f"Project({self.display_url!r})"

    @property
    def display_url(self) -> str:
        """The URL with its password hidden: what may be shown, logged or stored."""
        return self.engine.url.render_as_string(hide_password=True)

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection (the object must not be used afterwards)."""
        self.engine.dispose()

    # ----------------------------------------------------------------- transactions

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """One write transaction, serialised against every other writer; commits on success.

        SQLite: ``BEGIN IMMEDIATE`` takes the file's write lock. PostgreSQL: a transaction-level
        advisory lock does the same, so a decision's ``old_label`` (read, then appended) and an
        import's check-then-insert never interleave with another process's write.
        """
        with self.engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_WRITE_LOCK})
                yield conn

    def _initialise(self, name: str | None, *, create: bool, actor: str | None) -> None:
        with self._write() as conn:
            if not create and not sa.inspect(conn).has_table(_meta.name):
                raise NoProjectError(f"there is no project at {self!r}; create it first, e.g. "
                                 "curation import FILE --project PROJECT.")
            _metadata.create_all(conn)
            stored = dict(conn.execute(sa.select(_meta.c.key, _meta.c.value)).all())
            version = stored.get("schema_version")
            if version is not None and version != SCHEMA_VERSION:
                raise ValueError(
                    f"{self!r} has schema version {version!r} but this code reads version "
                    f"{SCHEMA_VERSION!r}; open it with a matching version of curation.")
            if version is None:
                conn.execute(_meta.insert(), [{"key": "schema_version", "value": SCHEMA_VERSION}])
                _log(conn, actor, "create", url=self.display_url)
            default = Path(self.engine.url.database or "memory").stem
            if "name" not in stored:
                conn.execute(_meta.insert(), [{"key": "name", "value": name or default}])
            elif name is not None and name != stored["name"]:
                conn.execute(_meta.update().where(_meta.c.key == "name").values(value=name))

    @property
    def name(self) -> str:
        """The project name stored in ``meta``."""
        with self._read() as conn:
            return conn.execute(sa.select(_meta.c.value).where(_meta.c.key == "name")).scalar_one()

    # ----------------------------------------------------------------- import

    def import_annotations(
        self,
        frame: pd.DataFrame,
        *,
        source: str = "",
        label_set: Sequence[str] | None = None,
        on_conflict: str = "error",
        progress: Progress | None = None,
        actor: str | None = None,
    ) -> ImportResult:
        """Store a long annotation frame, all in one transaction.

        Parameters
        ----------
        frame : pandas.DataFrame
            Long frame with ``item_id, text, annotator_id, label`` and optional
            ``gold`` (as returned by :func:`curation.io.load_annotations`).
        source : str
            Where the frame came from (file name); recorded with the import.
        label_set : sequence of str, optional
            Declared labels, added (in order) to the stored label set. Labels
            seen in ``label``/``gold`` are added after them in any case.
        on_conflict : {"error", "replace", "keep"}
            What to do when a stored (item, annotator) label differs:
            raise, overwrite (logging each change in ``decisions`` with
            ``action="reimport"``), or keep the stored label. ``"replace"``
            also lets a new text replace a stored item's text.
        progress : callable, optional
            Called with the written fraction (0..1) after each batch of
            :data:`BATCH_SIZE` rows, and finally with 1.0.
        actor : str, optional
            Who imports. In team mode only a lead may import (new annotations, replaced
            labels and new labels all change everyone's data); the audit log names them.

        Returns
        -------
        ImportResult

        Raises
        ------
        ValueError
            On a malformed frame, a stored item whose text differs, or (with
            ``on_conflict="error"``) a stored label that differs. Nothing is
            written then.
        AccessError
            In team mode, when ``actor`` is not a lead. Nothing is written then.

        Notes
        -----
        Idempotent: re-importing a frame adds nothing and no ``imports`` row;
        the earlier identical import's id is returned. A stored gold label is
        never erased by an empty one.
        """
        clean = _normalise_frame(frame)
        labels = _check_labels(label_set, "label_set") if label_set is not None else []
        if on_conflict not in ON_CONFLICT:
            raise ValueError(f"on_conflict={on_conflict!r} is not one of {list(ON_CONFLICT)}; "
                             "pick one of them.")
        digest = _frame_sha256(clean)
        with self._write() as conn:
            _check_role(conn, actor, "lead", to=("replace stored labels" if on_conflict == "replace"
                                                 else "import annotations"))
            plan = _plan_import(conn, clean, on_conflict, labels)
            earlier = _find_import(conn, digest)
            if earlier is not None and not plan.changes_anything:
                _Progress(progress, 0).finish()
                logger.info("import of %r: nothing new (same as import #%d)", source, earlier)
                return _result(earlier, clean, plan)
            import_id = _insert_import(conn, source, digest, len(clean), plan)
            _apply_plan(conn, plan, import_id, source, _Progress(progress, plan.n_writes))
            _log(conn, actor, "import", import_id=import_id, source=source, on_conflict=on_conflict,
                 rows=len(clean), new_annotations=len(plan.new_annotations),
                 replaced=len(plan.replaced), new_labels=plan.new_labels)
        logger.info("import #%d of %r: %d rows, %d new annotations, %d replaced", import_id,
                    source, len(clean), len(plan.new_annotations), len(plan.replaced))
        return _result(import_id, clean, plan)

    # ----------------------------------------------------------------- reading

    def annotations(self) -> pd.DataFrame:
        """The stored long frame, ordered by ``item_id, annotator_id``.

        Returns
        -------
        pandas.DataFrame
            Columns ``item_id, text, annotator_id, label, gold`` (strings;
            ``gold`` is ``None`` where unknown).
        """
        query = (sa.select(_annotations.c[ITEM], _items.c[TEXT], _annotations.c[ANNOTATOR],
                           _annotations.c[LABEL], _items.c[GOLD])
                 .join_from(_annotations, _items))
        with self._read() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame.from_records(rows, columns=[ITEM, TEXT, ANNOTATOR, LABEL, GOLD])
        frame[GOLD] = _none_for_na(frame[GOLD])
        return frame.sort_values([ITEM, ANNOTATOR], kind="stable", ignore_index=True)

    def items(self) -> pd.DataFrame:
        """One row per stored item: ``item_id, text, gold, n_annotations`` ordered by id."""
        counts = (sa.select(_annotations.c[ITEM], sa.func.count().label("n"))
                  .group_by(_annotations.c[ITEM]).subquery())
        query = (sa.select(_items.c[ITEM], _items.c[TEXT], _items.c[GOLD],
                           sa.func.coalesce(counts.c.n, 0).label("n_annotations"))
                 .select_from(_items.outerjoin(counts, counts.c[ITEM] == _items.c[ITEM])))
        with self._read() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame.from_records(rows, columns=[ITEM, TEXT, GOLD, "n_annotations"])
        frame[GOLD] = _none_for_na(frame[GOLD])
        frame["n_annotations"] = frame["n_annotations"].astype("int64")
        return frame.sort_values(ITEM, kind="stable", ignore_index=True)

    def label_set(self) -> list[str]:
        """The stored label set, in declaration order."""
        with self._read() as conn:
            return _stored_labels(conn)

    def set_label_set(self, labels: Sequence[str], *, actor: str | None = None) -> list[str]:
        """Add labels to the label set (new ones at the end; existing order kept).

        Parameters
        ----------
        labels : sequence of str
            Labels in the desired order; labels already stored are ignored.
        actor : str, optional
            Who changes it: in team mode a lead (:class:`AccessError` otherwise).

        Returns
        -------
        list of str
            The whole label set after the change.
        """
        checked = _check_labels(labels, "labels")
        with self._write() as conn:
            _check_role(conn, actor, "lead", to="change the label set")
            before = _stored_labels(conn)
            _add_labels(conn, checked)
            after = _stored_labels(conn)
            if after != before:
                _log(conn, actor, "label_set", added=[x for x in after if x not in before])
            return after

    def n_items(self) -> int:
        """Number of stored items."""
        return self._count(_items)

    def n_annotations(self) -> int:
        """Number of stored (item, annotator) annotations."""
        return self._count(_annotations)

    def is_empty(self) -> bool:
        """Whether the project holds no items yet."""
        return self.n_items() == 0

    def data_version(self) -> tuple[int, ...]:
        """A cheap fingerprint that changes whenever stored annotations or decisions change.

        Every write that alters annotations records an import (and a label replaced by a
        re-import also appends a decision), so the newest import and decision ids, with
        the row counts, identify the contents; caches key on it.
        """
        with self._read() as conn:
            return tuple(int(conn.execute(sa.select(expr)).scalar_one() or 0) for expr in (
                sa.func.max(_imports.c.import_id), sa.func.max(_decisions.c.decision_id),
                sa.select(sa.func.count()).select_from(_items).scalar_subquery(),
                sa.select(sa.func.count()).select_from(_annotations).scalar_subquery()))

    def imports(self) -> pd.DataFrame:
        """All recorded imports, oldest first."""
        return self._table_frame(_imports, _imports.c.import_id)

    def _count(self, table: sa.Table) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def _table_frame(self, table: sa.Table, order: sa.Column) -> pd.DataFrame:
        with self._read() as conn:
            rows = conn.execute(sa.select(table).order_by(order)).all()
        frame = pd.DataFrame.from_records(rows, columns=[c.name for c in table.columns])
        for col in table.columns:
            if col.nullable and isinstance(col.type, sa.String):
                frame[col.name] = _none_for_na(frame[col.name])
        return frame

    # ----------------------------------------------------------------- decisions

    def record_decision(
        self,
        item_id: str,
        *,
        reviewer: str,
        action: str,
        new_label: str | None = None,
        note: str = "",
    ) -> int:
        """Append a review decision to the audit log.

        Parameters
        ----------
        item_id : str
            A stored item.
        reviewer : str
            Who decided (required, non-empty).
        action : {"set_label", "keep", "drop", "ambiguous", "note", "undo"}
            ``"undo"`` cancels the item's most recent decision that is not
            undone yet; its note reads ``"undo of #<decision_id>"``.
        new_label : str, optional
            Required for ``"set_label"``; must be in the label set. Not
            accepted with ``"undo"``.
        note : str
            Free text.

        Returns
        -------
        int
            The new ``decision_id``.

        Notes
        -----
        ``old_label`` is the item's curated label before the decision: the
        ``new_label`` of its latest effective ``set_label`` decision, else
        ``None``. For an undo, ``new_label`` is the curated label after it.
        """
        reviewer = _check_decision_args(item_id, reviewer, action, new_label, note)
        with self._write() as conn:
            _require_member(conn, reviewer)
            _require_item(conn, item_id)
            if action == "set_label" or new_label is not None:
                _require_label(conn, new_label, action)
            live = _live_decisions(_item_decisions(conn, item_id))
            old_label = _curated_label(live)
            if action == "undo":
                new_label, note = _undo_fields(item_id, live, note)
            row = {ITEM: item_id, "reviewer": reviewer, "action": action,
                   "old_label": old_label, "new_label": new_label, "note": note,
                   "created_at": _utcnow()}
            decision_id = conn.execute(_decisions.insert().values(**row)).inserted_primary_key[0]
        logger.info("decision #%d: %s %s on %r by %r", decision_id, action, new_label or "",
                    item_id, reviewer)
        return int(decision_id)

    def decisions(self) -> pd.DataFrame:
        """The whole audit log, in the order it was written (``decision_id``)."""
        return self._table_frame(_decisions, _decisions.c.decision_id)

    def latest_decisions(self) -> pd.DataFrame:
        """The effective latest decision per item, after undos are applied.

        Returns
        -------
        pandas.DataFrame
            One row per item that has an effective review decision, ordered by
            ``item_id``: the ``decisions`` columns plus ``curated_label`` (the
            ``new_label`` of the item's latest effective ``set_label``, or
            ``None``). Re-import log rows and undone decisions are ignored.
        """
        log = self.decisions()
        rows = []
        for _item, group in log.groupby(ITEM, sort=True):
            live = _live_decisions(group.itertuples(index=False))
            if live:
                rows.append({**live[-1]._asdict(), "curated_label": _curated_label(live)})
        frame = pd.DataFrame(rows, columns=[*_DECISION_COLUMNS, "curated_label"])
        for col in ("old_label", "new_label", "curated_label"):
            frame[col] = _none_for_na(frame[col])
        return frame

    # ----------------------------------------------------------------- team mode

    def members(self) -> pd.DataFrame:
        """Team members (``name, role, added_by, created_at``), by name; empty in local mode."""
        return self._table_frame(_members, _members.c.name)

    @property
    def team_mode(self) -> bool:
        """True once the project has members: decisions, exports and retraining then need one."""
        with self._read() as conn:
            return conn.execute(sa.select(_members.c.name).limit(1)).first() is not None

    def role(self, name: str | None) -> str | None:
        """The member's role, or None for a name that is not a member (or None)."""
        if not name:
            return None
        with self._read() as conn:
            return conn.execute(sa.select(_members.c.role).where(_members.c.name == name)).scalar()

    def set_member(self, name: str, role: str, *, by: str) -> None:
        """Add a member or change their role.

        The first member must be a ``lead`` (added by anyone: that starts team mode); after
        that only a lead (``by``) may add members or change roles, and the last lead cannot
        be demoted.

        Raises
        ------
        ValueError
            On a blank name or an unknown role.
        AccessError
            When ``by`` is not a lead of a project that has members.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a member needs a non-empty name (the name they sign in with).")
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; use one of {list(ROLES)}.")
        name = name.strip()
        _check_storable(name, "the member name")
        with self._write() as conn:
            roles = dict(conn.execute(sa.select(_members.c.name, _members.c.role)).all())
            if not roles and role != "lead":
                raise ValueError(f"the first member must be a lead (who can then add annotators); "
                                 f"add {name!r} with role='lead', or add a lead first.")
            if roles and roles.get(by) != "lead":
                raise AccessError(f"only a lead can add members or change roles; {by!r} is "
                                  f"{_role_phrase(roles.get(by))}.")
            if roles.get(name) == "lead" and role != "lead" and list(roles.values()).count("lead") == 1:
                raise ValueError(f"{name!r} is the project's only lead; make someone else a lead first.")
            if name in roles:
                conn.execute(_members.update().where(_members.c.name == name).values(role=role))
            else:
                conn.execute(_members.insert().values(name=name, role=role, added_by=by or name,
                                                      created_at=_utcnow()))
            _log(conn, by or name, "member", name=name, role=role, before=roles.get(name))
        logger.info("member %r is now %s (by %r)", name, role, by)

    def remove_member(self, name: str, *, by: str) -> None:
        """Remove a member (a lead's act); the last lead can only go when no one else is left."""
        with self._write() as conn:
            roles = dict(conn.execute(sa.select(_members.c.name, _members.c.role)).all())
            if roles.get(by) != "lead":
                raise AccessError(f"only a lead can remove members; {by!r} is "
                                  f"{_role_phrase(roles.get(by))}.")
            if name not in roles:
                raise ValueError(f"{name!r} is not a member; members are {format_list(sorted(roles))}.")
            if roles[name] == "lead" and list(roles.values()).count("lead") == 1 and len(roles) > 1:
                raise ValueError(f"{name!r} is the only lead; make someone else a lead first.")
            conn.execute(_members.delete().where(_members.c.name == name))
            _log(conn, by, "member_removed", name=name, role=roles[name])
        logger.info("member %r removed (by %r)", name, by)

    def require_role(self, name: str | None, role: str, *, to: str) -> None:
        """In team mode, refuse (:class:`AccessError`) unless ``name`` has ``role`` (a lead has both).

        ``to`` says what was attempted, for the message. In local mode this allows everything.
        """
        with self._read() as conn:
            _check_role(conn, name, role, to=to)

    def log(self, actor: str | None, action: str, **detail: Any) -> None:
        """Append a row to the audit log, for a write that happens outside the database (an
        export, a cancelled job). Writes inside it log themselves."""
        with self._write() as conn:
            _log(conn, actor, action, **detail)

    def audit(self) -> pd.DataFrame:
        """The audit log, oldest first: ``audit_id, actor, action, detail`` (a dict), ``created_at``.

        One row per write to the project but decisions and augmentations, which are signed in
        their own tables: project creation, imports (with what they added or replaced), label
        set changes, member changes and removals, runs started, exports and cancelled jobs.
        ``actor`` is None where no one was signed in (local mode).
        """
        frame = self._table_frame(_audit, _audit.c.audit_id)
        frame["detail"] = pd.Series([_from_json(v) for v in frame["detail"]], index=frame.index,
                                    dtype=object)
        return frame

    # ----------------------------------------------------------------- runs

    def start_run(self, kind: str, params: Mapping[str, Any] | None = None, *,
                  actor: str | None = None) -> int:
        """Record a run (status ``"running"``) and return its ``run_id``.

        Parameters
        ----------
        kind : str
            What runs (e.g. ``"consensus"``).
        params : mapping, optional
            JSON-serialisable parameters.
        actor : str, optional
            Who started it, for the audit log. In team mode a run is started by a member
            (:class:`AccessError` otherwise, checked in the write); callers check a stricter
            role first where the run needs one (a retrain job: a lead).
        """
        if not isinstance(kind, str) or not kind.strip():
            raise ValueError(f"run kind {kind!r} is empty; name what runs, e.g. 'consensus'.")
        payload = _to_json(dict(params or {}), "run params")
        with self._write() as conn:
            _check_role(conn, actor, "annotator", to=f"start a {kind.strip()} run")
            row = {"kind": kind.strip(), "status": "running", "params": payload,
                   "created_at": _utcnow()}
            run_id = conn.execute(_runs.insert().values(**row)).inserted_primary_key[0]
            _log(conn, actor, "run", run_id=int(run_id), kind=kind.strip())
        return int(run_id)

    def finish_run(self, run_id: int, *, status: str,
                   result: Mapping[str, Any] | None = None) -> None:
        """Mark a running run as finished.

        Parameters
        ----------
        run_id : int
            From :meth:`start_run`.
        status : {"done", "failed", "cancelled"}
        result : mapping, optional
            JSON-serialisable result.

        Raises
        ------
        ValueError
            For an unknown run, a bad status, or a run that already finished.
        """
        if status not in RUN_STATUSES:
            raise ValueError(f"run status {status!r} is not one of {list(RUN_STATUSES)}; "
                             "pick one of them.")
        payload = None if result is None else _to_json(dict(result), "run result")
        with self._write() as conn:
            _finish_run(conn, run_id, status, payload)

    def runs(self) -> pd.DataFrame:
        """All runs, oldest first; ``params``/``result`` decoded from JSON."""
        frame = self._table_frame(_runs, _runs.c.run_id)
        for col in ("params", "result"):
            frame[col] = pd.Series([_from_json(v) for v in frame[col]], index=frame.index,
                                   dtype=object)
        return frame

    def get_run(self, run_id: int) -> dict[str, Any]:
        """One run as a dict (``params``/``result`` decoded); ValueError if unknown."""
        with self._read() as conn:
            row = conn.execute(sa.select(_runs).where(_runs.c.run_id == run_id)).first()
        if row is None:
            raise ValueError(f"no run #{run_id} in {self!r}; list them with Project.runs().")
        out = row._asdict()
        out["params"], out["result"] = _from_json(out["params"]), _from_json(out["result"])
        return out

    # ----------------------------------------------------------------- embeddings

    def cached_embeddings(self, model: str, text_sha1s: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of some texts, for one model key.

        Parameters
        ----------
        model : str
            The model key the vectors were stored under
            (:attr:`curation.embeddings.Embedder.model_key`).
        text_sha1s : sequence of str
            SHA-1 hex digests of the texts (:func:`text_sha1`); duplicates are
            fine. Looked up in chunks of 900, within SQLite's variable limit.

        Returns
        -------
        dict of str to numpy.ndarray
            ``text_sha1 -> float32 vector`` for the digests that are stored;
            the others are simply absent.
        """
        model = _check_model_key(model)
        keys = list(dict.fromkeys(_check_sha1s(text_sha1s)))
        columns = (_embeddings.c.text_sha1, _embeddings.c.dim, _embeddings.c.vector)
        found: dict[str, np.ndarray] = {}
        with self._read() as conn:
            for start in range(0, len(keys), _EMBED_CHUNK):
                chunk = keys[start:start + _EMBED_CHUNK]
                query = sa.select(*columns).where(_embeddings.c.model == model,
                                                  _embeddings.c.text_sha1.in_(chunk))
                found.update((key, _decode_vector(key, dim, blob))
                             for key, dim, blob in conn.execute(query))
        return found

    def store_embeddings(self, model: str, vectors: Mapping[str, np.ndarray], *,
                         actor: str | None = None) -> int:
        """Cache embeddings under a model key; digests already stored are left as they are.

        Parameters
        ----------
        model : str
            The model key (:attr:`curation.embeddings.Embedder.model_key`).
        vectors : mapping of str to array-like
            ``text_sha1 -> 1-D vector``; all of one length (the length already
            stored for ``model``, if any) and finite. Stored as float32.
        actor : str, optional
            Who computed them: in team mode a member (:class:`AccessError` otherwise, checked
            in the write; a cache is still shared data).

        Returns
        -------
        int
            How many vectors were new (written), all in one transaction.

        Raises
        ------
        ValueError
            On a digest that is not 40 lower-case hex characters, vectors of
            different or wrong lengths, or non-finite values; nothing is written.
        """
        model = _check_model_key(model)
        keys, matrix = _check_vectors(vectors)
        if not keys:
            return 0
        now = _utcnow()
        rows = [{"model": model, "text_sha1": key, "dim": matrix.shape[1],
                 "vector": row.tobytes(), "created_at": now} for key, row in zip(keys, matrix)]
        with self._write() as conn:
            _check_role(conn, actor, "annotator", to="cache embeddings")
            _check_stored_dim(conn, model, matrix.shape[1])
            before = _count_embeddings(conn, model)
            for start in range(0, len(rows), BATCH_SIZE):
                _insert_ignoring_duplicates(conn, _embeddings, rows[start:start + BATCH_SIZE])
            added = _count_embeddings(conn, model) - before
        logger.info("stored %d new embeddings under %r (%d were cached already)", added, model,
                    len(rows) - added)
        return added

    def n_embeddings(self, model: str | None = None) -> int:
        """Number of cached embeddings, for one model key or (``None``) all of them."""
        with self._read() as conn:
            return _count_embeddings(conn, None if model is None else _check_model_key(model))

    # ----------------------------------------------------------------- flags

    def save_flags(self, frame: pd.DataFrame, *, params: Mapping[str, Any] | None = None,
                   actor: str | None = None) -> int:
        """Store a flags frame as a new ``"flags"`` run.

        Starts a run of kind ``"flags"``, then writes every flag and marks the
        run ``"done"`` (result ``{"n_flags": ..., "n_items": ...}``) in one
        transaction; if writing fails the run is marked ``"failed"``.

        Parameters
        ----------
        frame : pandas.DataFrame
            Columns ``item_id, kind, score, reason, suggested_label, rule_id``
            (as :func:`curation.flags.flag_items` returns them; other columns
            are ignored). One row per (item, kind); scores finite; ``reason``
            may be empty; ``suggested_label`` and ``rule_id`` may be missing.
        params : mapping, optional
            JSON-serialisable run parameters.
        actor : str, optional
            Who flagged, for the audit log.

        Returns
        -------
        int
            The ``run_id``.

        Raises
        ------
        ValueError
            On missing columns, blank ids or kinds, non-finite scores, repeated
            (item, kind) pairs or item ids that are not stored; no run is
            started then.
        """
        rows = _flag_rows(frame)
        with self._read() as conn:
            _require_items(conn, sorted({r[ITEM] for r in rows}))
        n_items = len({r[ITEM] for r in rows})
        run_id = self.start_run(_FLAGS_RUN, params, actor=actor)
        try:
            with self._write() as conn:
                for start in range(0, len(rows), BATCH_SIZE):
                    batch = [{**r, "run_id": run_id, "position": start + i}
                             for i, r in enumerate(rows[start:start + BATCH_SIZE])]
                    conn.execute(_flags.insert(), batch)
                _finish_run(conn, run_id, "done",
                            _to_json({"n_flags": len(rows), "n_items": n_items}, "run result"))
        except BaseException:
            self._mark_failed(run_id)
            raise
        logger.info("flags run #%d: %d flags on %d items", run_id, len(rows), n_items)
        return run_id

    def latest_flags(self) -> pd.DataFrame:
        """The flags of the newest (highest ``run_id``) ``"flags"`` run that is ``"done"``.

        Returns
        -------
        pandas.DataFrame
            Columns ``item_id, kind, score, reason, suggested_label, rule_id,
            run_id`` in the order they were saved (the order of the frame given
            to :meth:`save_flags`, so a queue built from them is the same as
            the one built from that frame); ``None`` where
            ``suggested_label`` or ``rule_id`` is missing. Empty (same columns)
            when no flags run has finished.
        """
        newest = (sa.select(sa.func.max(_runs.c.run_id))
                  .where(_runs.c.kind == _FLAGS_RUN, _runs.c.status == "done"))
        columns = [_flags.c[c] for c in (*_FLAG_COLUMNS, "run_id")]
        with self._read() as conn:
            run_id = conn.execute(newest).scalar()
            rows = [] if run_id is None else conn.execute(
                sa.select(*columns).where(_flags.c.run_id == run_id)
                .order_by(_flags.c.position)).all()
        return _flags_frame(rows)

    def save_augmentations(self, frame: pd.DataFrame, *, reviewer: str) -> list[str]:
        """Store accepted augmented rows (with their provenance) in one transaction.

        ``frame`` has ``source_id`` (or ``item_id``: the source item), ``text``,
        ``label``, ``method`` and optionally ``params`` (dict), ``similarity`` and
        ``label_prob``, as :func:`curation.augment.augment` returns them. Each row's
        id is ``aug-`` + a hash of its source and text, so saving the same row
        again changes nothing (a removed one is accepted again). Returns the ids.
        """
        if not isinstance(reviewer, str) or not reviewer.strip():
            raise ValueError("a reviewer name is required; pass reviewer='<your name>'.")
        rows = _augmentation_rows(frame, reviewer.strip())
        with self._write() as conn:
            _require_member(conn, reviewer.strip())
            _require_items(conn, sorted({r[ITEM] for r in rows}), what="augmentation source")
            labels = set(_stored_labels(conn))
            bad = [r for r in rows if labels and r[LABEL] not in labels]
            if bad:
                raise ValueError(f"augmented rows of {format_list(sorted({r[ITEM] for r in bad}))} "
                                 f"have labels outside the label set {sorted(labels)}.")
            _insert_ignoring_duplicates(conn, _augmentations, rows)
            conn.execute(_augmentations.update()
                         .where(_augmentations.c.aug_id.in_([r["aug_id"] for r in rows]),
                                _augmentations.c.status == "removed")
                         .values(status="accepted", removed_by=None, removed_at=None))
        logger.info("saved %d augmented rows", len(rows))
        return [r["aug_id"] for r in rows]

    def augmentations(self, *, include_removed: bool = False) -> pd.DataFrame:
        """Stored augmented rows, oldest first (``params`` parsed back to dicts)."""
        query = sa.select(*[_augmentations.c[c] for c in AUGMENTATION_COLUMNS])
        if not include_removed:
            query = query.where(_augmentations.c.status == "accepted")
        with self._read() as conn:
            rows = conn.execute(query.order_by(_augmentations.c.created_at,
                                               _augmentations.c.aug_id)).all()
        frame = pd.DataFrame(rows, columns=list(AUGMENTATION_COLUMNS))
        frame["params"] = frame["params"].map(_from_json)
        return frame

    def remove_augmentations(self, aug_ids: Sequence[str], *, reviewer: str) -> int:
        """Mark augmented rows removed (kept in the table with who removed them and when)."""
        if not isinstance(reviewer, str) or not reviewer.strip():
            raise ValueError("a reviewer name is required; pass reviewer='<your name>'.")
        ids = [str(i) for i in aug_ids]
        with self._write() as conn:
            _require_member(conn, reviewer.strip())
            known = set(conn.execute(sa.select(_augmentations.c.aug_id)
                                     .where(_augmentations.c.aug_id.in_(ids))).scalars())
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise ValueError(f"no augmented rows with ids {format_list(unknown)}; pick ids from "
                                 "Project.augmentations().")
            result = conn.execute(_augmentations.update()
                                  .where(_augmentations.c.aug_id.in_(ids),
                                         _augmentations.c.status == "accepted")
                                  .values(status="removed", removed_by=reviewer.strip(),
                                          removed_at=_utcnow()))
        return int(result.rowcount)

    def _mark_failed(self, run_id: int) -> None:
        try:
            self.finish_run(run_id, status="failed")
        except (sa.exc.SQLAlchemyError, ValueError) as err:
            logger.warning("could not mark run #%d as failed: %s", run_id, err)


# --------------------------------------------------------------------------- import helpers


def _is_blank(value: Any) -> bool:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return True
    if isinstance(value, numbers.Number):  # str() of a 5,000-digit int raises
        return False
    return str(value).strip() == ""


def _none_for_na(values: pd.Series) -> pd.Series:
    values = values.astype(object)
    return values.where(values.notna(), None)


def _normalise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns ``item_id, text, annotator_id, label, gold`` as str (gold None when blank)."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"import_annotations expects a pandas DataFrame, got "
                         f"{type(frame).__name__}; load files with curation.io.load_annotations.")
    missing = [c for c in (ITEM, TEXT, ANNOTATOR, LABEL) if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks column(s) {missing} (it has {list(frame.columns)}); "
                         "load it with curation.io.load_annotations, which maps columns.")
    clean = pd.DataFrame(index=range(len(frame)))
    for col in (ITEM, TEXT, ANNOTATOR, LABEL):
        values = frame[col].reset_index(drop=True)
        blank = values.map(_is_blank)
        if blank.any():
            raise ValueError(f"column {col!r} is empty in rows {format_list(blank[blank].index)} "
                             "(0-based); fill them in or drop those rows.")
        clean[col] = _storable_column(values, col)
    gold = frame[GOLD].reset_index(drop=True) if GOLD in frame.columns else pd.Series([None] * len(frame))
    present = ~gold.map(_is_blank)
    clean[GOLD] = pd.Series(None, index=clean.index, dtype=object)
    if present.any():
        clean.loc[present, GOLD] = _storable_column(gold[present], GOLD)
    _check_frame(clean)
    return clean


def _storable_column(values: pd.Series, col: str) -> pd.Series:
    """``values`` as strings the store can keep on SQLite and PostgreSQL alike, else a
    ValueError naming the column, the 0-based rows and the fix (never the database's error)."""
    def as_str(value: Any) -> str | None:
        try:
            return str(value)
        except ValueError:  # an integer past Python's 4,300-digit str() limit
            return None

    # plain lists, not Series.map: pandas would infer Arrow strings, which raise on a surrogate
    out = [as_str(v) for v in values.tolist()]
    rows = values.index
    unconvertible = [r for r, v in zip(rows, out) if v is None]
    if unconvertible:
        raise ValueError(f"column {col!r} holds an integer too long to write as text in rows "
                         f"{format_list(unconvertible)} (0-based); ids are short names - "
                         "check the column mapping, or load the file with curation.io.load_annotations.")
    bad = [r for r, v in zip(rows, out) if _UNSTORABLE.search(v)]
    if bad:
        raise ValueError(f"column {col!r} holds a NUL byte or a lone UTF-16 surrogate, which is no "
                         f"character, in rows {format_list(bad)} (0-based); remove it "
                         "(curation.io.load_annotations refuses such files naming the place).")
    if col != TEXT:
        size = [len(v.encode("utf-8")) for v in out]
        long = [r for r, n in zip(rows, size) if n > MAX_KEY_BYTES]
        if long:
            raise ValueError(f"column {col!r} has a value of {max(size):,} bytes in rows "
                             f"{format_list(long)} (0-based), over the {MAX_KEY_BYTES:,} "
                             "bytes the store keeps for an id or label; is the text in this column? "
                             "Check the column mapping.")
    return pd.Series(out, index=rows, dtype=object)


def _check_storable(value: str, what: str, *, key: bool = True) -> None:
    """One user-given string (a label, name or note) the store is about to keep."""
    if _UNSTORABLE.search(value):
        raise ValueError(f"{what} {value[:80]!r} holds a NUL byte or a lone UTF-16 surrogate, "
                         "which is no character; remove it.")
    if key and len(value.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"{what} {value[:80]!r}... has {len(value.encode('utf-8')):,} bytes, over "
                         f"the {MAX_KEY_BYTES:,} the store keeps for an id, label or name; shorten it.")


def _check_frame(frame: pd.DataFrame) -> None:
    dup = frame.duplicated([ITEM, ANNOTATOR], keep=False)
    if dup.any():
        pairs = frame.loc[dup, [ITEM, ANNOTATOR]].drop_duplicates().itertuples(index=False)
        raise ValueError(f"(item, annotator) pairs appear more than once: "
                         f"{format_list(f'({i!r}, {a!r})' for i, a in pairs)}; keep one label per "
                         "annotator and item (curation.io.validate_long_frame checks this).")
    for col, what in ((TEXT, "texts"), (GOLD, "gold labels")):
        n = frame.dropna(subset=[col]).groupby(ITEM, sort=True)[col].nunique()
        bad = n.index[n > 1]
        if len(bad):
            raise ValueError(f"item ids {format_list(bad)} have several different {what} in the "
                             f"frame; give each item one {what[:-1]}.")


def _frame_sha256(frame: pd.DataFrame) -> str:
    canonical = frame.sort_values([ITEM, ANNOTATOR], kind="stable")
    data = canonical.to_csv(index=False, lineterminator="\n").encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _check_labels(labels: Any, what: str) -> list[str]:
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise ValueError(f"{what} must be a list of label strings, got {labels!r}; "
                         "e.g. ['positive', 'negative'].")
    out = []
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{what} contains {label!r}; every label must be a non-empty string.")
        _check_storable(label.strip(), f"{what}: the label")
        out.append(label.strip())
    return list(dict.fromkeys(out))


def _fetch_by_items(conn: Connection, columns: Sequence[sa.Column], ids: Sequence[str],
                    names: Sequence[str]) -> pd.DataFrame:
    """Rows of ``columns`` whose item id is in ``ids`` (queried in chunks)."""
    key = columns[0]
    rows: list[Any] = []
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = list(ids[start:start + _IN_CHUNK])
        rows += conn.execute(sa.select(*columns).where(key.in_(chunk))).all()
    return pd.DataFrame.from_records(rows, columns=list(names)).astype(object)


def _plan_import(conn: Connection, frame: pd.DataFrame, on_conflict: str,
                 labels: list[str]) -> _ImportPlan:
    plan = _ImportPlan()
    _plan_items(conn, frame, on_conflict, plan)
    _plan_annotations(conn, frame, on_conflict, plan)
    seen = sorted(set(frame[LABEL]) | set(frame[GOLD].dropna()))
    stored = set(_stored_labels(conn))
    plan.new_labels = [x for x in dict.fromkeys([*labels, *seen]) if x not in stored]
    return plan


def _plan_items(conn: Connection, frame: pd.DataFrame, on_conflict: str, plan: _ImportPlan) -> None:
    incoming = frame.drop_duplicates(ITEM)[[ITEM, TEXT]]
    golds = frame.dropna(subset=[GOLD]).drop_duplicates(ITEM).set_index(ITEM)[GOLD]
    stored = _fetch_by_items(conn, [_items.c[ITEM], _items.c[TEXT], _items.c[GOLD]],
                             incoming[ITEM].tolist(), [ITEM, "old_text", "old_gold"])
    merged = incoming.merge(stored, on=ITEM, how="left")
    merged["new_gold"] = merged[ITEM].map(golds).astype(object)
    is_new = merged["old_text"].isna()
    changed = merged.loc[~is_new & (merged["old_text"] != merged[TEXT])]
    if len(changed) and on_conflict != "replace":
        raise ValueError(f"{len(changed)} stored item(s) have a different text: "
                         f"{format_list(map(repr, changed[ITEM]))}. item ids must be unique per "
                         "text; rename the new items or pass on_conflict='replace'.")
    now = _utcnow()
    for r in merged.loc[is_new].itertuples(index=False):
        plan.new_items.append({ITEM: r.item_id, TEXT: r.text, "text_sha1": _sha1(r.text),
                               GOLD: _na_to_none(r.new_gold), "created_at": now})
    plan.text_updates = [{"b_item": r.item_id, "b_text": r.text, "b_sha1": _sha1(r.text),
                          "old_text": r.old_text} for r in changed.itertuples(index=False)]
    regold = merged.loc[~is_new & merged["new_gold"].notna()
                        & (merged["new_gold"] != merged["old_gold"])]
    plan.gold_updates = [{"b_item": r.item_id, "b_gold": r.new_gold}
                         for r in regold.itertuples(index=False)]


def _plan_annotations(conn: Connection, frame: pd.DataFrame, on_conflict: str,
                      plan: _ImportPlan) -> None:
    stored = _fetch_by_items(
        conn, [_annotations.c[ITEM], _annotations.c[ANNOTATOR], _annotations.c[LABEL]],
        frame[ITEM].unique().tolist(), [ITEM, ANNOTATOR, "old_label"])
    merged = frame.merge(stored, on=[ITEM, ANNOTATOR], how="left")
    is_new = merged["old_label"].isna()
    same = ~is_new & (merged["old_label"] == merged[LABEL])
    differ = merged.loc[~is_new & ~same]
    if len(differ) and on_conflict == "error":
        shown = (f"item {r.item_id!r} annotator {r.annotator_id!r}: {r.old_label!r} -> {r.label!r}"
                 for r in differ.itertuples(index=False))
        raise ValueError(f"{len(differ)} stored label(s) differ from the new ones: "
                         f"{format_list(shown)}. Pass on_conflict='replace' to overwrite them "
                         "(each change is logged in the decisions table) or on_conflict='keep' "
                         "to keep the stored labels.")
    plan.new_annotations = [{ITEM: r.item_id, ANNOTATOR: r.annotator_id, LABEL: r.label}
                            for r in merged.loc[is_new].itertuples(index=False)]
    plan.n_unchanged = int(same.sum())
    if on_conflict == "replace":
        plan.replaced = [{"b_item": r.item_id, "b_annotator": r.annotator_id,
                          "b_label": r.label, "old_label": r.old_label}
                         for r in differ.itertuples(index=False)]
    else:
        plan.n_kept = len(differ)


def text_sha1(text: str) -> str:
    """The SHA-1 hex digest of a text's UTF-8 bytes: ``items.text_sha1`` and the embedding key.

    >>> text_sha1("hello")
    'aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d'
    """
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


_sha1 = text_sha1


def _na_to_none(value: Any) -> Any:
    return None if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)) else value


def _find_import(conn: Connection, digest: str) -> int | None:
    query = (sa.select(_imports.c.import_id).where(_imports.c.sha256 == digest)
             .order_by(_imports.c.import_id.desc()).limit(1))
    return conn.execute(query).scalar_one_or_none()


def _insert_import(conn: Connection, source: str, digest: str, n_rows: int,
                   plan: _ImportPlan) -> int:
    row = {"source": str(source), "sha256": digest, "n_rows": n_rows,
           "n_new_annotations": len(plan.new_annotations), "created_at": _utcnow()}
    return int(conn.execute(_imports.insert().values(**row)).inserted_primary_key[0])


def _in_batches(conn: Connection, statement: Any, rows: list[dict], progress: _Progress) -> None:
    for start in range(0, len(rows), BATCH_SIZE):
        batch = rows[start:start + BATCH_SIZE]
        conn.execute(statement, batch)
        progress.advance(len(batch))


def _apply_plan(conn: Connection, plan: _ImportPlan, import_id: int, source: str,
                progress: _Progress) -> None:
    now = _utcnow()
    by_item = _items.c[ITEM] == sa.bindparam("b_item")
    _in_batches(conn, _items.insert(), plan.new_items, progress)
    _in_batches(conn, _items.update().where(by_item).values(
        {TEXT: sa.bindparam("b_text"), "text_sha1": sa.bindparam("b_sha1")}),
        plan.text_updates, progress)
    _in_batches(conn, _items.update().where(by_item).values({GOLD: sa.bindparam("b_gold")}),
                plan.gold_updates, progress)
    rows = [{**r, "import_id": import_id, "created_at": now} for r in plan.new_annotations]
    _in_batches(conn, _annotations.insert(), rows, progress)
    _in_batches(conn, _annotations.update().where(
        (_annotations.c[ITEM] == sa.bindparam("b_item"))
        & (_annotations.c[ANNOTATOR] == sa.bindparam("b_annotator"))).values(
        {LABEL: sa.bindparam("b_label"), "import_id": import_id}), plan.replaced, progress)
    _log_reimport(conn, plan, source, now)
    _add_labels(conn, plan.new_labels)
    progress.finish()


def _log_reimport(conn: Connection, plan: _ImportPlan, source: str, now: dt.datetime) -> None:
    """Append one ``reimport`` decision per replaced label or text, so nothing is lost silently."""
    base = {"reviewer": f"import:{source}", "action": _REIMPORT, "created_at": now}
    rows = [{**base, ITEM: r["b_item"], "old_label": r["old_label"], "new_label": r["b_label"],
             "note": f"annotator {r['b_annotator']}"} for r in plan.replaced]
    rows += [{**base, ITEM: r["b_item"], "old_label": None, "new_label": None,
              "note": f"text replaced; old text: {r['old_text']}"} for r in plan.text_updates]
    for start in range(0, len(rows), BATCH_SIZE):
        conn.execute(_decisions.insert(), rows[start:start + BATCH_SIZE])


def _result(import_id: int, frame: pd.DataFrame, plan: _ImportPlan) -> ImportResult:
    return ImportResult(import_id=int(import_id), n_rows=len(frame),
                        n_new_items=len(plan.new_items),
                        n_new_annotations=len(plan.new_annotations),
                        n_unchanged=plan.n_unchanged, n_replaced=len(plan.replaced),
                        n_kept=plan.n_kept)


# --------------------------------------------------------------------------- labels


def _stored_labels(conn: Connection) -> list[str]:
    query = sa.select(_labels.c[LABEL]).order_by(_labels.c.position, _labels.c[LABEL])
    return list(conn.execute(query).scalars())


def _insert_ignoring_duplicates(conn: Connection, table: sa.Table, rows: list[dict]) -> None:
    """Insert rows, skipping those whose primary key exists (or repeats within ``rows``).

    SQLite and PostgreSQL use ``ON CONFLICT DO NOTHING``; other dialects look the keys up first.
    """
    if not rows:
        return
    dialects = {"sqlite": sqlite, "postgresql": postgresql}
    module = dialects.get(conn.dialect.name)
    if module is not None:
        conn.execute(module.insert(table).on_conflict_do_nothing(), rows)
        return
    keys = table.primary_key.columns.values()
    probe = max(keys, key=lambda c: len({r[c.name] for r in rows}))  # the most selective column
    values = list(dict.fromkeys(r[probe.name] for r in rows))
    present: set[tuple] = set()
    for start in range(0, len(values), _IN_CHUNK):
        query = sa.select(*keys).where(probe.in_(values[start:start + _IN_CHUNK]))
        present |= {tuple(r) for r in conn.execute(query)}
    fresh = []
    for row in rows:
        pk = tuple(row[c.name] for c in keys)
        if pk not in present:
            present.add(pk)
            fresh.append(row)
    if fresh:
        conn.execute(table.insert(), fresh)


def _add_labels(conn: Connection, labels: Sequence[str]) -> None:
    stored = set(_stored_labels(conn))
    new = [x for x in labels if x not in stored]
    if not new:
        return
    top = conn.execute(sa.select(sa.func.max(_labels.c.position))).scalar_one()
    start = -1 if top is None else int(top)
    rows = [{LABEL: x, "position": start + 1 + i} for i, x in enumerate(new)]
    _insert_ignoring_duplicates(conn, _labels, rows)


# --------------------------------------------------------------------------- decision helpers


def _check_decision_args(item_id: Any, reviewer: Any, action: Any, new_label: Any,
                         note: Any) -> str:
    if not isinstance(reviewer, str) or not reviewer.strip():
        raise ValueError("a reviewer name is required; pass reviewer='<your name>'.")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; allowed actions are {list(ACTIONS)}.")
    if not isinstance(item_id, str) or not item_id:
        raise ValueError(f"item_id must be a non-empty string, got {item_id!r}.")
    if not isinstance(note, str):
        raise ValueError(f"note must be a string, got {type(note).__name__}.")
    if action == "undo" and new_label is not None:
        raise ValueError("action='undo' takes no new_label; it restores the label from before "
                         "the undone decision.")
    if new_label is not None and not isinstance(new_label, str):
        raise ValueError(f"new_label must be a string, got {new_label!r}.")
    _check_storable(reviewer.strip(), "the reviewer name")
    _check_storable(note, "the note", key=False)
    return reviewer.strip()


class NoProjectError(ValueError):
    """``Project(url, create=False)`` found no project there; the message says how to make one."""


class AccessError(PermissionError):
    """A team-mode rule refused the act; the message names who, what and how to proceed."""


def _role_phrase(role: str | None) -> str:
    return f"an {role}" if role == "annotator" else (f"a {role}" if role else "not a member")


def _check_role(conn: Connection, name: str | None, role: str, *, to: str) -> None:
    """In team mode, refuse (:class:`AccessError`) unless ``name`` has ``role`` (a lead has both);
    inside the caller's transaction, so the check and the write see the same members."""
    roles = dict(conn.execute(sa.select(_members.c.name, _members.c.role)).all())
    if not roles:
        return
    have = roles.get(name) if name else None
    if have == "lead" or (have is not None and have == role):
        return
    who = f"{name!r} is {_role_phrase(have)}" if name else "no one is signed in"
    raise AccessError(f"only {'a lead' if role == 'lead' else 'a member'} can {to} in this "
                      f"team project; {who}. Sign in as a member (see README: Team mode), "
                      "or ask a lead.")


def _log(conn: Connection, actor: str | None, action: str, **detail: Any) -> None:
    if action not in AUDIT_ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; use one of {list(AUDIT_ACTIONS)}.")
    conn.execute(_audit.insert().values(actor=actor or None, action=action,
                                        detail=_to_json(detail, "audit detail"),
                                        created_at=_utcnow()))


def _require_existing(url_or_path: str | os.PathLike) -> None:
    """A SQLite project file must exist (no folder or file is made); other URLs are checked
    once connected."""
    text = os.fspath(url_or_path)
    if text == ":memory:" or (("://" in text) and not text.startswith("sqlite")):
        return
    path = sa.make_url(text).database if "://" in text else text
    if not path or not Path(path).expanduser().is_file():
        raise NoProjectError(f"there is no project at {redact_url(text)!r}; create it first, e.g. "
                         "curation import FILE --project PROJECT.")


def _require_member(conn: Connection, reviewer: str) -> None:
    """In team mode a decision is signed by a member (annotator or lead)."""
    members = [n for (n,) in conn.execute(sa.select(_members.c.name)).all()]
    if members and reviewer not in members:
        raise AccessError(f"{reviewer!r} is not a member of this team project, so cannot record "
                          f"decisions; members are {format_list(sorted(members))}. Ask a lead to "
                          "add you.")


def _require_item(conn: Connection, item_id: str) -> None:
    found = conn.execute(sa.select(_items.c[ITEM]).where(_items.c[ITEM] == item_id)).first()
    if found is None:
        raise ValueError(f"unknown item id {item_id!r}; import it first "
                         "(Project.import_annotations) before recording decisions on it.")


def _require_label(conn: Connection, label: str | None, action: str) -> None:
    labels = _stored_labels(conn)
    if label is None:
        raise ValueError(f"action={action!r} needs new_label, one of the label set {labels}.")
    if label not in labels:
        raise ValueError(f"label {label!r} is not in the label set {labels}; pick one of them "
                         "or add it with Project.set_label_set.")


def _item_decisions(conn: Connection, item_id: str) -> list[Any]:
    query = (sa.select(*(_decisions.c[c] for c in _DECISION_COLUMNS))
             .where(_decisions.c[ITEM] == item_id).order_by(_decisions.c.decision_id))
    return conn.execute(query).all()


def _undone_id(note: str) -> int | None:
    match = _UNDO_NOTE.match(note or "")
    return int(match.group(1)) if match else None


def _live_decisions(rows: Iterable[Any]) -> list[Any]:
    """Review decisions (oldest first) that are not undone; undo and reimport rows excluded."""
    rows = list(rows)
    undone = {_undone_id(r.note) for r in rows if r.action == "undo"}
    return [r for r in rows if r.action in _REVIEW_ACTIONS and r.decision_id not in undone]


def _curated_label(live: Sequence[Any]) -> str | None:
    return next((r.new_label for r in reversed(live) if r.action == "set_label"), None)


def _undo_fields(item_id: str, live: list[Any], note: str) -> tuple[str | None, str]:
    if not live:
        raise ValueError(f"item {item_id!r} has no decision left to undo.")
    target = live[-1]
    text = f"undo of #{target.decision_id}" + (f": {note}" if note else "")
    return _curated_label(live[:-1]), text


# --------------------------------------------------------------------------- run helpers


def _to_json(value: dict, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} cannot be stored as JSON ({err}); pass only str, int, float, "
                         "bool, None, lists and dicts with string keys.") from None


def _from_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _finish_run(conn: Connection, run_id: int, status: str, payload: str | None) -> None:
    current = _run_status(conn, run_id)
    if current != "running":
        raise ValueError(f"run #{run_id} already finished with status {current!r}; "
                         "start a new run instead.")
    conn.execute(_runs.update().where(_runs.c.run_id == run_id)
                 .values(status=status, result=payload, finished_at=_utcnow()))


def _run_status(conn: Connection, run_id: int) -> str:
    status = conn.execute(sa.select(_runs.c.status).where(_runs.c.run_id == run_id)).scalar()
    if status is None:
        raise ValueError(f"no run #{run_id}; start one with Project.start_run.")
    return status


# --------------------------------------------------------------------------- embedding helpers


def _short(value: Any, width: int = 48) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def _check_model_key(model: Any) -> str:
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"the embedding model key must be a non-empty string, got {model!r}; "
                         "pass Embedder.model_key.")
    return model


def _check_sha1s(values: Any) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"expected a sequence of SHA-1 hex digests, got {_short(values)}; "
                         "hash each text with curation.store.text_sha1(text).")
    keys = list(values)
    bad = [k for k in keys if not isinstance(k, str) or not _SHA1.fullmatch(k)]
    if bad:
        raise ValueError(f"{len(bad)} key(s) are not SHA-1 hex digests (40 lower-case hex "
                         f"characters): {format_list(map(_short, bad))}; hash each text with "
                         "curation.store.text_sha1(text).")
    return keys


def _check_vectors(vectors: Any) -> tuple[list[str], np.ndarray]:
    """Digests and a ``(n, dim)`` little-endian float32 matrix; ValueError on bad input."""
    if not isinstance(vectors, Mapping):
        raise ValueError(f"vectors must be a mapping text_sha1 -> vector, got "
                         f"{type(vectors).__name__}; e.g. {{text_sha1(text): embedding}}.")
    keys = _check_sha1s(list(vectors))
    if not keys:
        return [], np.zeros((0, 0), dtype="<f4")
    arrays = [np.asarray(v) for v in vectors.values()]
    shape = arrays[0].shape
    if len(shape) != 1 or shape[0] == 0:
        raise ValueError(f"the vector of {keys[0]!r} has shape {shape}; each vector must be "
                         "1-D and non-empty (one row of the embedding matrix).")
    odd = [k for k, a in zip(keys, arrays) if a.shape != shape]
    if odd:
        raise ValueError(f"vectors {format_list(map(repr, odd))} are not of shape {shape} like "
                         f"{keys[0]!r}; store one model's vectors (one length) per model key.")
    try:
        matrix = np.stack(arrays).astype("<f4")
    except (TypeError, ValueError) as err:
        raise ValueError(f"vectors must hold numbers ({err}).") from None
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad):
        raise ValueError(f"vectors {format_list(repr(keys[i]) for i in bad)} hold NaN or "
                         "infinite values (as float32); fix the encoder output before caching.")
    return keys, matrix


def _decode_vector(key: str, dim: int, blob: bytes) -> np.ndarray:
    vector = np.frombuffer(blob, dtype="<f4")
    if vector.size != dim:
        raise ValueError(f"the stored embedding of {key!r} has {vector.size} values, not {dim}; "
                         "the cache is damaged: delete that model's rows from the embeddings "
                         "table and they will be recomputed.")
    return vector.astype(np.float32)


def _check_stored_dim(conn: Connection, model: str, dim: int) -> None:
    query = sa.select(_embeddings.c.dim).where(_embeddings.c.model == model).limit(1)
    stored = conn.execute(query).scalar()
    if stored is not None and int(stored) != dim:
        raise ValueError(f"model key {model!r} already holds vectors of length {stored}, not "
                         f"{dim}; vectors from another model need another model key.")


def _count_embeddings(conn: Connection, model: str | None) -> int:
    query = sa.select(sa.func.count()).select_from(_embeddings)
    if model is not None:
        query = query.where(_embeddings.c.model == model)
    return int(conn.execute(query).scalar_one())


# --------------------------------------------------------------------------- flag helpers


def _flag_rows(frame: Any) -> list[dict]:
    """Validated flag rows (dicts of the flag columns); ValueError naming what is wrong."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"save_flags expects a pandas DataFrame, got {type(frame).__name__}; "
                         "pass FlagReport.flags from curation.flags.flag_items.")
    missing = [c for c in _FLAG_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"the flags frame lacks column(s) {missing} (it has "
                         f"{list(frame.columns)}); it needs {list(_FLAG_COLUMNS)}, as "
                         "curation.flags.flag_items returns them.")
    frame = frame.reset_index(drop=True)
    out = pd.DataFrame({c: _required_text(frame[c], c) for c in (ITEM, "kind")}, dtype=object)
    out["score"] = _finite_scores(frame["score"], out)
    out["reason"] = [("" if _is_blank(v) else str(v)) for v in frame["reason"]]
    for col in ("suggested_label", "rule_id"):  # object dtype: pandas 3 would turn None into NaN
        out[col] = pd.Series([(None if _is_blank(v) else str(v)) for v in frame[col]], dtype=object)
    dup = out.duplicated([ITEM, "kind"], keep=False)
    if dup.any():
        pairs = out.loc[dup, [ITEM, "kind"]].drop_duplicates().itertuples(index=False)
        raise ValueError(f"(item, kind) pairs appear more than once in the flags: "
                         f"{format_list(f'({i!r}, {k!r})' for i, k in pairs)}; keep one flag "
                         "per item and kind.")
    return out.to_dict("records")


def _required_text(values: pd.Series, col: str) -> list[str]:
    blank = values.map(_is_blank)
    if blank.any():
        raise ValueError(f"column {col!r} of the flags is empty in rows "
                         f"{format_list(blank[blank].index)} (0-based); fill them in or drop "
                         "those rows.")
    return [str(v) for v in values]


def _finite_scores(values: pd.Series, out: pd.DataFrame) -> list[float]:
    scores = pd.to_numeric(values, errors="coerce").astype("float64")
    bad = ~np.isfinite(scores.to_numpy())
    if bad.any():
        shown = (f"({out.at[i, ITEM]!r}, {out.at[i, 'kind']!r}): {values.iloc[i]!r}"
                 for i in np.flatnonzero(bad))
        raise ValueError(f"flag scores must be finite numbers; {format_list(shown)}. Give "
                         "every flag a numeric score.")
    return [float(x) for x in scores]


def _require_items(conn: Connection, ids: Sequence[str], *, what: str = "flagged item") -> None:
    present: set[str] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        query = sa.select(_items.c[ITEM]).where(_items.c[ITEM].in_(ids[start:start + _IN_CHUNK]))
        present.update(conn.execute(query).scalars())
    unknown = [i for i in ids if i not in present]
    if unknown:
        raise ValueError(f"{len(unknown)} {what} id(s) are not in the project: "
                         f"{format_list(map(repr, unknown))}; import those items first "
                         "(Project.import_annotations) or drop those rows.")


def _flags_frame(rows: Sequence[Any]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(list(rows), columns=[*_FLAG_COLUMNS, "run_id"])
    frame = frame.astype({"score": "float64", "run_id": "int64"})
    for col in ("suggested_label", "rule_id"):
        frame[col] = _none_for_na(frame[col])
    return frame


def _augmentation_rows(frame: Any, reviewer: str) -> list[dict]:
    """Validated rows for the augmentations table; ValueError naming the row and the fix."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"save_augmentations expects a pandas DataFrame, got "
                         f"{type(frame).__name__}; pass AugmentResult.accepted.")
    frame = frame.rename(columns={"source_id": ITEM}).reset_index(drop=True)
    missing = [c for c in (ITEM, TEXT, LABEL, "method") if c not in frame.columns]
    if missing:
        raise ValueError(f"the augmented rows lack column(s) {missing}; they need source_id "
                         "(or item_id), text, label and method, as curation.augment returns them.")
    rows = []
    # dicts, not iterrows(): a row Series would infer Arrow strings, which raise on a surrogate
    for k, row in enumerate(frame.to_dict("records")):
        for column in (ITEM, TEXT, LABEL, "method"):
            if _is_blank(row[column]):
                raise ValueError(f"augmented row {k}: column {column!r} is empty; fill it or drop "
                                 "the row.")
        _check_storable(str(row[TEXT]), f"augmented row {k}: the text", key=False)
        _check_storable(str(row[LABEL]), f"augmented row {k}: the label")
        params = row["params"] if "params" in frame.columns and isinstance(row["params"], dict) else {}
        rows.append({
            "aug_id": "aug-" + hashlib.sha1(f"{row[ITEM]}\n{row[TEXT]}".encode()).hexdigest()[:16],
            ITEM: str(row[ITEM]), TEXT: str(row[TEXT]), LABEL: str(row[LABEL]),
            "method": str(row["method"]), "params": _to_json(params, f"augmented row {k} params"),
            "similarity": _na_to_none(row.get("similarity")),
            "label_prob": _na_to_none(row.get("label_prob")),
            "status": "accepted", "reviewer": reviewer, "created_at": _utcnow(),
        })
    return list({r["aug_id"]: r for r in rows}.values())
