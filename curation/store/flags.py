"""Flags and the review order: each ``"flags"`` run's flags (``flags``) and the priority of
every item a reviewer can reach (``priorities``), written in one transaction with the run."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from curation.messages import format_list
from curation.schema import ITEM
from curation.store.database import (
    BATCH_SIZE,
    _is_blank,
    _none_for_na,
    _require_items,
    _to_json,
    rows_frame,
)
from curation.store.runs import Runs, _finish_run
from curation.store.tables import FLAG_COLUMNS, _flags, _priorities, _runs

logger = logging.getLogger(__name__)

_FLAGS_RUN = "flags"
_NEWEST_FLAGS_RUN = (sa.select(sa.func.max(_runs.c.run_id))
                     .where(_runs.c.kind == _FLAGS_RUN, _runs.c.status == "done"))


def _flag_rows(frame: Any) -> list[dict]:
    """Validated flag rows (dicts of the flag columns); ValueError naming what is wrong."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"save_flags expects a pandas DataFrame, got {type(frame).__name__}; "
                         "pass FlagReport.flags from curation.flags.flag_items.")
    missing = [c for c in FLAG_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"the flags frame lacks column(s) {missing} (it has "
                         f"{list(frame.columns)}); it needs {list(FLAG_COLUMNS)}, as "
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


def _flags_frame(rows: Sequence[Any]) -> pd.DataFrame:
    frame = rows_frame(rows, [*FLAG_COLUMNS, "run_id"])
    frame = frame.astype({"score": "float64", "run_id": "int64"})
    for col in ("suggested_label", "rule_id"):
        frame[col] = _none_for_na(frame[col])
    return frame


class Flags(Runs):
    """Flags runs: their flags and review order (a flags run is a run of kind ``"flags"``)."""

    def save_flags(self, frame: pd.DataFrame, *, params: Mapping[str, Any] | None = None,
                   priorities: pd.DataFrame | None = None, actor: str | None = None) -> int:
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
        priorities : pandas.DataFrame, optional
            The run's review order: ``item_id, priority`` (finite) and optionally ``flagged``
            (bool; default true), one row per item; read back with :meth:`priorities`.
        actor : str, optional
            Who flagged, for the audit log.

        Returns
        -------
        int
            The ``run_id``.

        Raises
        ------
        ValueError
            On missing columns, blank ids or kinds, non-finite scores or priorities, repeated
            (item, kind) pairs or priority items, or item ids that are not stored; no run is
            started then.
        """
        rows = _flag_rows(frame)
        order = _priority_rows(priorities)
        with self._read() as conn:
            _require_items(conn, sorted({r[ITEM] for r in rows}))
            _require_items(conn, sorted({r[ITEM] for r in order}), what="review order item")
        n_items = len({r[ITEM] for r in rows})
        run_id = self.start_run(_FLAGS_RUN, params, actor=actor)
        try:
            with self._write() as conn:
                for start in range(0, len(rows), BATCH_SIZE):
                    batch = [{**r, "run_id": run_id, "position": start + i}
                             for i, r in enumerate(rows[start:start + BATCH_SIZE])]
                    conn.execute(_flags.insert(), batch)
                for start in range(0, len(order), BATCH_SIZE):
                    conn.execute(_priorities.insert(), [{**r, "run_id": run_id}
                                                        for r in order[start:start + BATCH_SIZE]])
                _finish_run(conn, run_id, "done",
                            _to_json({"n_flags": len(rows), "n_items": n_items}, "run result"))
        except BaseException:
            self._mark_failed(run_id)
            raise
        logger.info("flags run #%d: %d flags on %d items", run_id, len(rows), n_items)
        return run_id

    def latest_flags_run_id(self) -> int | None:
        """The id of the newest finished flags run (what :meth:`latest_flags` reads), or None:
        a cheap cache key for anything built from the flags."""
        with self._read() as conn:
            run_id = conn.execute(_NEWEST_FLAGS_RUN).scalar()
        return None if run_id is None else int(run_id)

    def flagged_items(self) -> set[str]:
        """The items the newest finished flags run flagged (empty before any run)."""
        with self._read() as conn:
            run_id = conn.execute(_NEWEST_FLAGS_RUN).scalar()
            rows = [] if run_id is None else conn.execute(
                sa.select(_flags.c[ITEM]).distinct().where(_flags.c.run_id == run_id)).all()
        return {r[0] for r in rows}

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
        columns = [_flags.c[c] for c in (*FLAG_COLUMNS, "run_id")]
        with self._read() as conn:
            run_id = conn.execute(_NEWEST_FLAGS_RUN).scalar()
            rows = [] if run_id is None else conn.execute(
                sa.select(*columns).where(_flags.c.run_id == run_id)
                .order_by(_flags.c.position)).all()
        return _flags_frame(rows)

    def priorities(self, run_id: int | None = None) -> pd.DataFrame:
        """The review order of a flags run (default: the newest finished one).

        Returns
        -------
        pandas.DataFrame
            ``item_id, priority, flagged``, highest priority first (ties by item id); empty
            (same columns) before any flags run, or for a run saved without an order.
        """
        query = sa.select(_priorities.c[ITEM], _priorities.c.priority, _priorities.c.flagged)
        with self._read() as conn:
            if run_id is None:
                run_id = conn.execute(_NEWEST_FLAGS_RUN).scalar()
            rows = [] if run_id is None else conn.execute(
                query.where(_priorities.c.run_id == int(run_id))
                .order_by(_priorities.c.priority.desc(), _priorities.c[ITEM])).all()
        out = rows_frame(rows, [ITEM, "priority", "flagged"])
        return out.astype({ITEM: object, "priority": "float64", "flagged": bool})


def _priority_rows(frame: Any) -> list[dict]:
    """Validated review-order rows; ValueError naming what is wrong."""
    if frame is None:
        return []
    if not isinstance(frame, pd.DataFrame) or not {ITEM, "priority"} <= set(frame.columns):
        raise ValueError("priorities must be a DataFrame with columns item_id and priority (and "
                         "optionally flagged), one row per item of the review order.")
    frame = frame.reset_index(drop=True)
    ids = _required_text(frame[ITEM], ITEM)
    values = pd.to_numeric(frame["priority"], errors="coerce").astype("float64").to_numpy()
    bad = np.flatnonzero(~np.isfinite(values))
    if len(bad):
        raise ValueError(f"priorities must be finite numbers; items "
                         f"{format_list(repr(ids[i]) for i in bad)} have none. Give every item of "
                         "the review order a numeric priority.")
    seen = pd.Series(ids).duplicated(keep=False)
    if seen.any():
        raise ValueError(f"items {format_list(sorted(set(pd.Series(ids)[seen])))} appear more than "
                         "once in the review order; give each item one priority.")
    flagged = (frame["flagged"].astype(bool).tolist() if "flagged" in frame.columns
               else [True] * len(ids))
    return [{ITEM: i, "priority": float(v), "flagged": bool(f)}
            for i, v, f in zip(ids, values, flagged)]
