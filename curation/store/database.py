"""The database under every concern of the store: URLs, the engine (SQLite's WAL, foreign keys
and ``BEGIN IMMEDIATE``; PostgreSQL's advisory write lock), :class:`Database` with its read and
write transactions, the store's errors, and the checks and conversions several concerns share."""

from __future__ import annotations

import json
import logging
import numbers
import os
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from curation.messages import format_list
from curation.schema import ITEM
from curation.store.tables import _items

logger = logging.getLogger(__name__)

#: Rows written per bulk statement (and per progress call) during an import.
BATCH_SIZE = 5000


_BUSY_TIMEOUT_S = 30


_IN_CHUNK = 500


#: Most UTF-8 bytes of an id, label or name the store keeps. They are primary keys, and a
#: PostgreSQL B-tree entry holds at most ~2,700 bytes (``index row size exceeds maximum``);
#: :func:`curation.io.load_annotations` refuses more than 512 characters by default.
MAX_KEY_BYTES = 2_000


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


_WRITE = "curation_write"


#: The advisory lock key that serialises writers on PostgreSQL (advisory locks are per database).
_PG_WRITE_LOCK = 0x637572617469  # "curati"


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
            _use_wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL (a no-op when it is already), waiting for other openers.

    The switch from a rollback journal needs the file's exclusive lock. SQLite answers "database
    is locked" at once, without its busy handler, when another connection holds the reserved
    lock at that moment (for one, a second opener in the middle of its own switch); two
    processes opening an older or foreign project together met that. Retried here until the
    busy timeout, as the busy handler would have."""
    deadline = time.monotonic() + _BUSY_TIMEOUT_S
    pause = 0.005
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.2)


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


def _is_blank(value: Any) -> bool:
    if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)):
        return True
    if isinstance(value, numbers.Number):  # str() of a 5,000-digit int raises
        return False
    return str(value).strip() == ""


def _none_for_na(values: pd.Series) -> pd.Series:
    values = values.astype(object)
    return values.where(values.notna(), None)


def _na_to_none(value: Any) -> Any:
    return None if value is None or (pd.api.types.is_scalar(value) and pd.isna(value)) else value


def _check_storable(value: str, what: str, *, key: bool = True) -> None:
    """One user-given string (a label, name or note) the store is about to keep."""
    if _UNSTORABLE.search(value):
        raise ValueError(f"{what} {value[:80]!r} holds a NUL byte or a lone UTF-16 surrogate, "
                         "which is no character; remove it.")
    if key and len(value.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"{what} {value[:80]!r}... has {len(value.encode('utf-8')):,} bytes, over "
                         f"the {MAX_KEY_BYTES:,} the store keeps for an id, label or name; shorten it.")


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


def _to_json(value: dict, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{what} cannot be stored as JSON ({err}); pass only str, int, float, "
                         "bool, None, lists and dicts with string keys.") from None


def _from_json(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _short(value: Any, width: int = 48) -> str:
    text = repr(value)
    return text if len(text) <= width else text[:width - 3] + "..."


class NoProjectError(ValueError):
    """``Project(url, create=False)`` found no project there; the message says how to make one."""


class AccessError(PermissionError):
    """A team-mode rule refused the act; the message names who, what and how to proceed."""


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


def rows_frame(rows: Sequence[Any], columns: Sequence[str]) -> pd.DataFrame:
    """A frame of query result rows, built from plain tuples: pandas probes a SQLAlchemy ``Row``
    for attributes it does not have, which cost 0.8 s for 100,000 rows."""
    return pd.DataFrame.from_records([tuple(r) for r in rows], columns=list(columns))


class Database:
    """One project database: its engine and its transactions, which every concern of the store
    reads and writes through. ``url_or_path`` as for :class:`curation.store.Project`."""

    def __init__(self, url_or_path: str | os.PathLike) -> None:
        parsed = _parse_url(url_or_path)
        self.url: str = parsed.render_as_string(hide_password=False)
        self.engine: Engine = _make_engine(parsed)

    def __repr__(self) -> str:
        return f"Project({self.display_url!r})"

    @property
    def display_url(self) -> str:
        """The URL with its password hidden: what may be shown, logged or stored."""
        return self.engine.url.render_as_string(hide_password=True)

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection (the object must not be used afterwards)."""
        self.engine.dispose()

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

    def _count(self, table: sa.Table) -> int:
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())

    def _table_frame(self, table: sa.Table, order: sa.Column) -> pd.DataFrame:
        with self._read() as conn:
            rows = conn.execute(sa.select(table).order_by(order)).all()
        frame = rows_frame(rows, [c.name for c in table.columns])
        for col in table.columns:
            if col.nullable and isinstance(col.type, sa.String):
                frame[col.name] = _none_for_na(frame[col.name])
        return frame

