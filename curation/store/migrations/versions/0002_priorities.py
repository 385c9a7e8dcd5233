"""The review order in a table: ``priorities`` (run, item, priority, flagged).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01

Schema 1 kept each flags run's review order as two JSON dicts in ``runs.params``
(``priority``: the flagged items, ``rest_priority``: the unflagged items that still have some
doubt). This revision moves them into rows of ``priorities`` and takes them out of the params;
the downgrade puts them back. Ids that are no longer stored items are dropped (the foreign key
would refuse them; no version of curation ever deleted an item, so none is expected).
"""

from __future__ import annotations

import json
import math

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_BATCH = 5000
_runs = sa.table("runs", sa.column("run_id", sa.Integer), sa.column("kind", sa.String),
                 sa.column("params", sa.Text))
_items = sa.table("items", sa.column("item_id", sa.String))
_meta = sa.table("meta", sa.column("key", sa.String), sa.column("value", sa.Text))
_priorities = sa.table("priorities", sa.column("run_id", sa.Integer),
                       sa.column("item_id", sa.String), sa.column("priority", sa.Float),
                       sa.column("flagged", sa.Boolean))


def _flag_runs(conn: sa.Connection) -> list[tuple[int, dict]]:
    rows = conn.execute(sa.select(_runs.c.run_id, _runs.c.params)
                        .where(_runs.c.kind == "flags").order_by(_runs.c.run_id)).all()
    return [(int(run_id), json.loads(params or "{}")) for run_id, params in rows]


def _set_version(value: str) -> None:
    op.execute(_meta.update().where(_meta.c.key == "schema_version").values(value=value))


def upgrade() -> None:
    op.create_table(
        "priorities",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.run_id"), primary_key=True),
        sa.Column("item_id", sa.String, sa.ForeignKey("items.item_id"), primary_key=True),
        sa.Column("priority", sa.Float, nullable=False),
        sa.Column("flagged", sa.Boolean, nullable=False),
    )
    conn = op.get_bind()
    stored = set(conn.execute(sa.select(_items.c.item_id)).scalars())
    for run_id, params in _flag_runs(conn):
        if "priority" not in params and "rest_priority" not in params:
            continue
        rows, seen = [], set()
        for key, flagged in (("priority", True), ("rest_priority", False)):
            for item, value in (params.pop(key, None) or {}).items():
                if item in stored and item not in seen and value is not None \
                        and math.isfinite(float(value)):
                    seen.add(item)
                    rows.append({"run_id": run_id, "item_id": item, "priority": float(value),
                                 "flagged": flagged})
        for start in range(0, len(rows), _BATCH):
            conn.execute(_priorities.insert(), rows[start:start + _BATCH])
        conn.execute(_runs.update().where(_runs.c.run_id == run_id)
                     .values(params=json.dumps(params, sort_keys=True)))
    _set_version("2")


def downgrade() -> None:
    conn = op.get_bind()
    for run_id, params in _flag_runs(conn):
        rows = conn.execute(sa.select(_priorities.c.item_id, _priorities.c.priority,
                                      _priorities.c.flagged)
                            .where(_priorities.c.run_id == run_id)).all()
        if not rows:
            continue
        params["priority"] = {item: p for item, p, flagged in rows if flagged}
        params["rest_priority"] = {item: p for item, p, flagged in rows if not flagged}
        conn.execute(_runs.update().where(_runs.c.run_id == run_id)
                     .values(params=json.dumps(params, sort_keys=True)))
    op.drop_table("priorities")
    _set_version("1")
