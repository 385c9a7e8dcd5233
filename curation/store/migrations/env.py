"""Alembic environment of the project database.

The app runs the revisions itself when a project opens (:func:`curation.store.migrate.upgrade`,
which hands its open connection in ``config.attributes["connection"]``, so the upgrade is part of
the opening transaction). For developers, the ``alembic`` command line works too, with the
database given as ``-x url=...``::

    alembic -c curation/store/migrations/alembic.ini -x url=sqlite:///demo.sqlite current
    alembic -c curation/store/migrations/alembic.ini -x url=sqlite:///scratch.sqlite \\
        revision --autogenerate -m "what changes"

Offline (``--sql``) mode is refused: revision 0002 moves data, which needs a live database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from curation.store.tables import metadata


def _run(connection: sa.engine.Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata,
                      render_as_batch=True, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise SystemExit("the project database's revisions move data, so they need a live "
                         "database; run them without --sql (or open the project with curation, "
                         "which upgrades it).")
    shared = context.config.attributes.get("connection")
    if shared is not None:
        _run(shared)
        return
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("give the project database as -x url=sqlite:///path/project.sqlite "
                         "(or a PostgreSQL URL).")
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
    finally:
        engine.dispose()


# Alembic runs this file with its context set up; imported any other way (pytest's doctest
# collection walks every module) there is nothing to run.
if hasattr(context, "config"):
    main()
