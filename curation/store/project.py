"""The project front: opens (or creates) the database at the newest schema and joins the
concerns of the store into one :class:`Project`."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa

from curation.store import migrate
from curation.store.augmentations import Augmentations
from curation.store.database import Database, NoProjectError, _require_existing
from curation.store.decisions import Decisions
from curation.store.embedding_cache import EmbeddingCache
from curation.store.flags import Flags
from curation.store.imports import Annotations
from curation.store.tables import _meta
from curation.store.team import Team, _check_role, _log


class Project(Annotations, Decisions, Team, Flags, EmbeddingCache, Augmentations):
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
        If the URL is invalid, the file is not a database, or a newer version of curation
        wrote its schema.

    Notes
    -----
    Opening a project written by an older version upgrades its schema
    (:mod:`curation.store.migrate`; a SQLite file is copied first). The methods come from one
    class per concern, each in its own module: :class:`~curation.store.imports.Annotations`
    (imports, items, labels), :class:`~curation.store.decisions.Decisions`,
    :class:`~curation.store.team.Team` (members, roles, audit log),
    :class:`~curation.store.runs.Runs`, :class:`~curation.store.flags.Flags` (flags and the review
    order), :class:`~curation.store.embedding_cache.EmbeddingCache` and
    :class:`~curation.store.augmentations.Augmentations`; this class only opens the database.
    """

    def __init__(self, url_or_path: str | os.PathLike, *, name: str | None = None,
                 create: bool = True, actor: str | None = None) -> None:
        if not create:
            _require_existing(url_or_path)
        super().__init__(url_or_path)
        try:
            self._initialise(name, create=create, actor=actor)
        except sa.exc.DatabaseError as err:
            self.engine.dispose()
            raise ValueError(f"cannot open the project database {self!r}: {err.orig}. Check "
                             "that it is a curation project (or a new, empty database).") from None
        except BaseException:
            self.engine.dispose()
            raise

    def _initialise(self, name: str | None, *, create: bool, actor: str | None) -> None:
        with self._write() as conn:
            before = migrate.state(conn)
            if before.empty and not create:
                raise _no_project(self)
            if before.pending:
                _backup(self, before)
            migrate.upgrade(conn, before)
            if before.empty:
                _log(conn, actor, "create", url=self.display_url)
            elif before.pending:
                _log(conn, actor, "schema", before=before.shown, after=before.head)
            stored = dict(conn.execute(sa.select(_meta.c.key, _meta.c.value)).all())
            if stored.get("schema_version") != migrate.SCHEMA_VERSION:
                raise ValueError(
                    f"{self!r} says schema version {stored.get('schema_version')!r} at revision "
                    f"{migrate.head()!r}, where this code writes version "
                    f"{migrate.SCHEMA_VERSION!r}; the meta table was changed by hand. Restore "
                    "it from a backup, or open the project with the curation that made it.")
            default = Path(self.engine.url.database or "memory").stem
            if "name" not in stored:
                conn.execute(_meta.insert(), [{"key": "name", "value": name or default}])
            elif name is not None and name != stored["name"]:
                conn.execute(_meta.update().where(_meta.c.key == "name").values(value=name))

    def schema(self) -> migrate.SchemaState:
        """The database's schema state (current revision, this code's head, pending ones)."""
        with self._read() as conn:
            return migrate.state(conn)

    @property
    def name(self) -> str:
        """The project name stored in ``meta``."""
        with self._read() as conn:
            return conn.execute(sa.select(_meta.c.value).where(_meta.c.key == "name")).scalar_one()


def _no_project(db: Database) -> NoProjectError:
    return NoProjectError(f"there is no project at {db!r}; create it first, e.g. "
                          "curation import FILE --project PROJECT.")


def _backup(db: Database, before: migrate.SchemaState) -> None:
    """Copy a SQLite project file before its schema changes (nothing for other databases).

    Called inside the write transaction that changes it: other openers wait for the write
    lock, so exactly one of them copies the file as it was, and the rest find it upgraded."""
    database = db.engine.url.database
    if db.engine.url.get_backend_name() == "sqlite" and database and database != ":memory:":
        migrate.backup_sqlite(database, before.current)


def schema_state(url_or_path: str | os.PathLike) -> migrate.SchemaState:
    """Where an existing project's schema stands, read without changing anything (opening a
    :class:`Project` upgrades it); :class:`NoProjectError` where there is none."""
    _require_existing(url_or_path)
    db = Database(url_or_path)
    try:
        with db._read() as conn:
            state = migrate.state(conn)
    except sa.exc.DatabaseError as err:
        raise ValueError(f"cannot read the project database {db!r}: {err.orig}.") from None
    finally:
        db.close()
    if state.empty:
        raise _no_project(db)
    return state


def downgrade_schema(url_or_path: str | os.PathLike, revision: str, *, actor: str | None,
                     role: str = "lead", to: str = "take the schema back") -> migrate.SchemaState:
    """Take an existing project's schema back to ``revision`` (so an older curation opens it);
    in team mode only ``role`` may (checked in the transaction), and the audit log names them.
    A SQLite file is copied first. Returns the state before."""
    _require_existing(url_or_path)
    db = Database(url_or_path)
    try:
        with db._write() as conn:
            before = migrate.state(conn)
            if before.empty:
                raise _no_project(db)
            _check_role(conn, actor, role, to=to)
            migrate.check_downgrade(before, revision)
            if before.current != revision:
                _backup(db, before)
            _log(conn, actor, "schema", before=before.shown, after=revision)
            return migrate.downgrade(conn, revision, before)
    except sa.exc.DatabaseError as err:
        raise ValueError(f"cannot change the project database {db!r}: {err.orig}.") from None
    finally:
        db.close()
