"""Schema migrations of the project database, on Alembic.

A project opens at the newest schema revision: :class:`curation.store.Project` calls
:func:`upgrade` inside its opening write transaction (serialised against every other writer, so
two processes opening an old project at once upgrade it once). What happens, by what the
database holds:

- nothing (a new project): the tables are created and stamped with the newest revision;
- schema version 1 without Alembic's ``alembic_version`` table (every project made before
  revisions existed): the revisions run from the first, which adds only what the file lacks;
- an older revision: the newer revisions run;
- a revision this code does not know (a newer curation wrote it): refused, nothing changes.

Before a SQLite project file is upgraded, :func:`backup_sqlite` copies it next to itself
(``<file>.schema-<revision>.bak``), so an upgrade never risks stored work; on PostgreSQL the
upgrade is one transaction (DDL included), and a failure leaves the database as it was.
``curation migrate`` shows the state and upgrades or downgrades on request.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import Connection

from curation.store.tables import _meta, metadata

__all__ = ["SCHEMA_VERSION", "SchemaState", "backup_sqlite", "check_downgrade", "downgrade", "head",
           "state", "upgrade"]

logger = logging.getLogger(__name__)

#: The human-readable schema version kept in ``meta`` (the revision is the authority).
SCHEMA_VERSION = "4"
_LOCATION = Path(__file__).with_name("migrations")
_VERSION_TABLE = "alembic_version"


@dataclass(frozen=True)
class SchemaState:
    """Where a project database stands: ``current`` revision (None: before revisions, schema 1,
    or an empty database), the code's ``head``, and the revisions an upgrade would run."""

    current: str | None
    head: str
    pending: tuple[str, ...]
    empty: bool = False

    @property
    def up_to_date(self) -> bool:
        return not self.pending and not self.empty

    @property
    def shown(self) -> str:
        """The current revision in words, for messages and the audit log."""
        return self.current or "1 (before revisions)"


def _config(conn: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(_LOCATION))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


@functools.cache
def _script() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def head() -> str:
    """The newest revision this code knows."""
    return str(_script().get_current_head())


def _known(revision: str) -> bool:
    try:
        return _script().get_revision(revision) is not None
    except CommandError:
        return False


def state(conn: Connection) -> SchemaState:
    """The database's schema state; ValueError for a revision this code does not know."""
    tables = set(sa.inspect(conn).get_table_names())
    if _meta.name not in tables:
        return SchemaState(None, head(), (), empty=True)
    current = MigrationContext.configure(conn).get_current_revision() \
        if _VERSION_TABLE in tables else None
    if current is not None and not _known(current):
        raise ValueError(f"the project database is at schema revision {current!r}, which this "
                         f"version of curation does not know (it knows up to {head()!r}): a "
                         "newer curation wrote it. Upgrade curation (pip install -U curation) "
                         "to open it.")
    if current is None:
        version = conn.execute(sa.select(_meta.c.value)
                               .where(_meta.c.key == "schema_version")).scalar()
        if version not in (None, "1"):
            raise ValueError(f"the project database says schema version {version!r} but has no "
                             "revision record; this version of curation reads version 1 and "
                             "its revisions. Open it with the curation that made it.")
    pending = [s.revision for s in _script().iterate_revisions(head(), current or "base")]
    return SchemaState(current, head(), tuple(reversed(pending)))


def upgrade(conn: Connection, before: SchemaState) -> None:
    """Bring the database from ``before`` (its :func:`state`, read in the caller's transaction)
    to the newest revision, inside that transaction; an empty database gets the tables."""
    if before.empty:
        metadata.create_all(conn)
        conn.execute(_meta.insert(), [{"key": "schema_version", "value": SCHEMA_VERSION}])
        MigrationContext.configure(conn).stamp(_script(), "head")
        return
    if before.pending:
        logger.warning("upgrading the project database from schema revision %s to %s: %s",
                       before.shown, before.head, ", ".join(before.pending))
        command.upgrade(_config(conn), "head")
    # a table lost by hand (restored from a partial dump, dropped by mistake) comes back empty
    # rather than failing at the first read; the revisions themselves are checked against the
    # tables by tests/test_migrations.py
    metadata.create_all(conn)


def check_downgrade(before: SchemaState, revision: str) -> None:
    """ValueError unless a database in state ``before`` can be taken back to ``revision``."""
    if not _known(revision):
        raise ValueError(f"unknown schema revision {revision!r}; known revisions are "
                         f"{[s.revision for s in reversed(list(_script().walk_revisions()))]}.")
    if before.current is None:
        raise ValueError("this project has no revision record to go back from; it is schema "
                         "version 1 already.")


def downgrade(conn: Connection, revision: str, before: SchemaState | None = None) -> SchemaState:
    """Take the database back to ``revision`` (e.g. ``"0001"``: schema version 1, which older
    curation versions open), inside the caller's transaction; returns the state before
    (``before``, when the caller read it already in this transaction)."""
    before = state(conn) if before is None else before
    check_downgrade(before, revision)
    command.downgrade(_config(conn), revision)
    return before


def backup_sqlite(path: str | Path, revision: str | None) -> Path:
    """Copy a SQLite project (SQLite's backup API: a consistent copy, WAL included) to
    ``<file>.schema-<revision>.bak`` next to it, or with a time stamp when that name is taken.

    Called while the caller holds the file's write lock (a reserved lock: readers still read),
    through a connection of its own: the backup API cannot read through the connection that
    holds the lock, and the lock makes the copy the only one (other openers wait for it)."""
    path = Path(path)
    tag = revision or "1"
    target = path.with_name(f"{path.name}.schema-{tag}.bak")
    if target.exists():
        stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        target = path.with_name(f"{path.name}.schema-{tag}.{stamp}.bak")
    source = sqlite3.connect(path, timeout=30)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    logger.warning("saved a copy of %s from before the schema upgrade: %s", path, target)
    return target
