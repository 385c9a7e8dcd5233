"""Review decisions (``decisions``): an append-only log, undo by appending, and the effective
latest decision per item. Nothing here updates or deletes a row."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from curation.schema import ITEM
from curation.store.database import Database, _check_storable, _none_for_na
from curation.store.imports import _stored_labels
from curation.store.tables import _DECISION_COLUMNS, _decisions, _items, _utcnow
from curation.store.team import _check_role, _log, _require_member, needed

logger = logging.getLogger(__name__)

#: Review actions accepted by :meth:`Project.record_decision`.
ACTIONS = ("set_label", "keep", "drop", "ambiguous", "note", "undo")


_REVIEW_ACTIONS = tuple(a for a in ACTIONS if a != "undo")


_UNDO_NOTE = re.compile(r"^undo of #(\d+)")


def _check_decision_args(item_id: Any, actor: Any, action: Any, new_label: Any,
                         note: Any) -> str:
    if not isinstance(actor, str) or not actor.strip():
        raise ValueError("a reviewer name is required; pass actor='<your name>'.")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; allowed actions are {list(ACTIONS)}.")
    if not isinstance(item_id, str) or not item_id:
        raise ValueError(f"item_id must be a non-empty string, got {item_id!r}.")
    if not isinstance(note, str):
        raise ValueError(f"note must be a string, got {type(note).__name__}.")
    if action == "note" and not note.strip():
        raise ValueError("a note needs its text: write it in the note box, or pick another "
                         "action (an empty note would count the item as decided).")
    if action == "undo" and new_label is not None:
        raise ValueError("action='undo' takes no new_label; it restores the label from before "
                         "the undone decision.")
    if new_label is not None and not isinstance(new_label, str):
        raise ValueError(f"new_label must be a string, got {new_label!r}.")
    _check_storable(actor.strip(), "the reviewer name")
    _check_storable(note, "the note", key=False)
    return actor.strip()


def _imported_rows(rows: pd.DataFrame) -> list[dict]:
    """The rows of :meth:`Decisions.import_decisions`, each checked as ``record_decision``
    checks one (ValueError naming the row)."""
    required = [c for c in (ITEM, "reviewer", "action") if c not in rows.columns]
    if required:
        raise ValueError(f"the decisions lack column(s) {required}; they need item_id, "
                         "reviewer, action and (for set_label) new_label.")
    records = rows.to_dict("records")
    for k, r in enumerate(records):
        if r["action"] not in ("keep", "set_label"):
            raise ValueError(f"decision row {k}: action {r['action']!r}; an imported decision is "
                             "keep or set_label.")
        for column in ("new_label", "current_label"):
            r[column] = None if _blank(r.get(column)) else str(r[column])
        r["note"] = "" if _blank(r.get("note")) else str(r["note"])
        r["reviewer"] = _check_decision_args(str(r[ITEM]), r["reviewer"], r["action"],
                                             r["new_label"], r["note"])
        if r["action"] == "set_label" and r["new_label"] is None:
            raise ValueError(f"decision row {k} (item {r[ITEM]!r}): set_label needs new_label.")
    return records


def _check_imported(conn: Connection, records: list[dict]) -> None:
    """Every signer a member (team mode), every item stored, every label in the set."""
    labels = set(_stored_labels(conn))
    for k, r in enumerate(records):
        _require_member(conn, r["reviewer"])
        _require_item(conn, str(r[ITEM]))
        for label in (r["new_label"], r["current_label"]):
            if label is not None and label not in labels:
                raise ValueError(f"decision row {k} (item {r[ITEM]!r}): label {label!r} is not "
                                 f"in the label set {sorted(labels)}.")


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value == ""


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


def _undo_fields(item_id: str, live: list[Any], note: str,
                 expect: int | None = None) -> tuple[str | None, str]:
    if not live:
        raise ValueError(f"item {item_id!r} has no decision left to undo.")
    target = live[-1]
    if expect is not None and target.decision_id != expect:
        raise ValueError(f"decision #{expect} on item {item_id!r} is no longer its latest "
                         f"(#{target.decision_id} by {target.reviewer!r} came after it, or it was "
                         "undone already): nothing was undone; reload to see the item as it is.")
    text = f"undo of #{target.decision_id}" + (f": {note}" if note else "")
    return _curated_label(live[:-1]), text


class Decisions(Database):
    """The review decisions of a project: record one, read the log, the effective latest ones."""

    def record_decision(
        self,
        item_id: str,
        *,
        actor: str,
        action: str,
        new_label: str | None = None,
        note: str = "",
        undo_of: int | None = None,
        current_label: str | None = None,
    ) -> int:
        """Append a review decision to the audit log.

        Parameters
        ----------
        item_id : str
            A stored item.
        actor : str
            Who decided (required, non-empty).
        action : {"set_label", "keep", "drop", "ambiguous", "note", "undo"}
            ``"undo"`` cancels the item's most recent decision that is not
            undone yet; its note reads ``"undo of #<decision_id>"``.
        new_label : str, optional
            Required for ``"set_label"``; must be in the label set. Not
            accepted with ``"undo"``.
        note : str
            Free text.
        undo_of : int, optional
            With ``"undo"``: the decision the caller means to undo. When it is
            no longer the item's latest live decision (someone decided after
            it, or it was undone), nothing is written and ``ValueError`` says
            so, instead of undoing another decision.
        current_label : str, optional
            The label the reviewer saw on the item (its consensus): recorded as
            ``old_label`` when no earlier decision set one, so the log says what
            a decision changed or kept. Must be in the label set.

        Returns
        -------
        int
            The new ``decision_id``.

        Notes
        -----
        ``old_label`` is the item's label before the decision: the ``new_label``
        of its latest effective ``set_label`` decision, else ``current_label``
        (``None`` when not given). For an undo, ``new_label`` is the curated
        label after it.
        """
        reviewer = _check_decision_args(item_id, actor, action, new_label, note)
        with self._write() as conn:
            _require_member(conn, reviewer)
            _require_item(conn, item_id)
            if action == "set_label" or new_label is not None:
                _require_label(conn, new_label, action)
            live = _live_decisions(_item_decisions(conn, item_id))
            old_label = _curated_label(live)
            if old_label is None and current_label is not None:
                _require_label(conn, current_label, "current_label")
                old_label = current_label
            if action == "undo":
                new_label, note = _undo_fields(item_id, live, note, undo_of)
            elif undo_of is not None:
                raise ValueError("undo_of goes with action='undo' only.")
            row = {ITEM: item_id, "reviewer": reviewer, "action": action,
                   "old_label": old_label, "new_label": new_label, "note": note,
                   "created_at": _utcnow()}
            decision_id = conn.execute(_decisions.insert().values(**row)).inserted_primary_key[0]
        logger.info("decision #%d: %s %s on %r by %r", decision_id, action, new_label or "",
                    item_id, reviewer)
        return int(decision_id)

    def import_decisions(self, rows: pd.DataFrame, *, actor: str | None,
                         source: str = "") -> list[int]:
        """Record decisions made elsewhere (a Label Studio round trip), all in one transaction:
        every row is checked before any is written, and a bad one writes nothing.

        Parameters
        ----------
        rows : DataFrame
            ``item_id, reviewer, action`` (``keep`` or ``set_label``), ``new_label`` (for
            ``set_label``), optional ``current_label`` (the label the reviewer saw, recorded as
            ``old_label`` when no decision set one) and ``note``; in the order they were made
            (the last decision on an item is its effective one).
        actor : str, optional
            Who imports: in team mode a lead ("import review decisions"), and every reviewer
            must be a member (a decision is signed by a member).
        source : str
            Where they came from, for the audit log.

        Returns
        -------
        list of int
            The new decision ids, in row order.
        """
        records = _imported_rows(rows)
        written = []
        with self._write() as conn:
            _check_role(conn, actor, needed("import review decisions"),
                        to="import review decisions")
            _check_imported(conn, records)
            now = _utcnow()
            for r in records:
                live = _live_decisions(_item_decisions(conn, str(r[ITEM])))
                old = _curated_label(live) or r["current_label"]
                row = {ITEM: str(r[ITEM]), "reviewer": r["reviewer"], "action": r["action"],
                       "old_label": old, "new_label": r["new_label"], "note": r["note"],
                       "created_at": now}
                written.append(int(conn.execute(_decisions.insert().values(**row))
                                   .inserted_primary_key[0]))
            _log(conn, actor, "decisions_import", source=source, decisions=len(written),
                 reviewers=sorted({r["reviewer"] for r in records}))
        logger.info("imported %d decisions from %r", len(written), source)
        return written

    def decisions(self) -> pd.DataFrame:
        """The whole audit log, in the order it was written (``decision_id``)."""
        return self._table_frame(_decisions, _decisions.c.decision_id)

    def recent_decisions(self, actor: str, limit: int = 10) -> pd.DataFrame:
        """``actor``'s decisions that are still in force, newest first, at most ``limit``.

        A decision is in force when it is its item's latest live decision: not undone, and no
        one decided the item after it (so undoing it undoes that reviewer's own work and
        nothing else). Columns: the ``decisions`` columns plus ``curated_label``.
        """
        mine = sa.select(_decisions.c[ITEM]).where(_decisions.c.reviewer == actor)
        query = (sa.select(*(_decisions.c[c] for c in _DECISION_COLUMNS))
                 .where(_decisions.c[ITEM].in_(mine)).order_by(_decisions.c.decision_id))
        with self._read() as conn:
            rows = conn.execute(query).all()
        by_item: dict[str, list[Any]] = {}
        for row in rows:
            by_item.setdefault(getattr(row, ITEM), []).append(row)
        found = []
        for group in by_item.values():
            live = _live_decisions(group)
            if live and live[-1].reviewer == actor:
                found.append({**live[-1]._asdict(), "curated_label": _curated_label(live)})
        found.sort(key=lambda r: -r["decision_id"])
        return pd.DataFrame(found[:max(int(limit), 0)],
                            columns=[*_DECISION_COLUMNS, "curated_label"])

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

