"""Alembic revisions of the project database (run by :mod:`curation.store.migrate`)."""
