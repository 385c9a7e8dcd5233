"""Runs (``runs``): background work with its kind, status and JSON params and result."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from curation.store.database import Database, _from_json, _to_json
from curation.store.tables import _runs, _utcnow
from curation.store.team import _check_role, _log, needed

logger = logging.getLogger(__name__)

#: Final states accepted by :meth:`Project.finish_run`.
RUN_STATUSES = ("done", "failed", "cancelled")


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


class Runs(Database):
    """Runs of a project: start, finish (once), list, read one."""

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
            _check_role(conn, actor, needed("start a run"), to=f"start a {kind.strip()} run")
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

    def set_run_progress(self, run_id: int, progress: Mapping[str, Any]) -> bool:
        """Record a running run's latest progress (a worker's fraction done, message, seconds
        left; JSON). Returns False, writing nothing, once the run has finished (a late report
        of a cancelled or failed job never overwrites its end)."""
        payload = _to_json(dict(progress), "run progress")
        with self._write() as conn:
            _run_status(conn, run_id)  # ValueError for an unknown run
            done = conn.execute(_runs.update().where((_runs.c.run_id == run_id)
                                                     & (_runs.c.status == "running"))
                                .values(progress=payload)).rowcount
        return bool(done)

    def runs(self) -> pd.DataFrame:
        """All runs, oldest first; ``params``/``result``/``progress`` decoded from JSON."""
        frame = self._table_frame(_runs, _runs.c.run_id)
        for col in ("params", "result", "progress"):
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
        for col in ("params", "result", "progress"):
            out[col] = _from_json(out[col])
        return out

    def _mark_failed(self, run_id: int) -> None:
        try:
            self.finish_run(run_id, status="failed")
        except (sa.exc.SQLAlchemyError, ValueError) as err:
            logger.warning("could not mark run #%d as failed: %s", run_id, err)

