"""Augmented rows a person accepted (``augmentations``), with their provenance; removal keeps
the row, marked with who removed it and when."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from curation.messages import format_list
from curation.schema import ITEM, LABEL, TEXT, TEXT_PAIR, has_pairs, pair_key
from curation.store.database import (
    Database,
    _check_storable,
    _from_json,
    _insert_ignoring_duplicates,
    _is_blank,
    _na_to_none,
    _require_items,
    _to_json,
)
from curation.store.imports import _stored_labels
from curation.store.tables import AUGMENTATION_COLUMNS, _augmentations, _utcnow
from curation.store.team import _require_member

logger = logging.getLogger(__name__)


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
    pairs = has_pairs(frame)
    rows = []
    # dicts, not iterrows(): a row Series would infer Arrow strings, which raise on a surrogate
    for k, row in enumerate(frame.to_dict("records")):
        for column in (ITEM, TEXT, LABEL, "method"):
            if _is_blank(row[column]):
                raise ValueError(f"augmented row {k}: column {column!r} is empty; fill it or drop "
                                 "the row.")
        _check_storable(str(row[TEXT]), f"augmented row {k}: the text", key=False)
        second = None
        if pairs:
            if _is_blank(row[TEXT_PAIR]):
                raise ValueError(f"augmented row {k}: column 'text_pair' is empty; an augmented "
                                 "pair keeps both texts (one of them changed).")
            second = str(row[TEXT_PAIR])
            _check_storable(second, f"augmented row {k}: the second text", key=False)
        identity = f"{row[ITEM]}\n{pair_key(str(row[TEXT]), second)}"  # single: as it always was
        _check_storable(str(row[LABEL]), f"augmented row {k}: the label")
        params = row["params"] if "params" in frame.columns and isinstance(row["params"], dict) else {}
        rows.append({
            "aug_id": "aug-" + hashlib.sha1(identity.encode()).hexdigest()[:16],
            ITEM: str(row[ITEM]), TEXT: str(row[TEXT]), TEXT_PAIR: second, LABEL: str(row[LABEL]),
            "method": str(row["method"]), "params": _to_json(params, f"augmented row {k} params"),
            "similarity": _na_to_none(row.get("similarity")),
            "label_prob": _na_to_none(row.get("label_prob")),
            "status": "accepted", "reviewer": reviewer, "created_at": _utcnow(),
        })
    return list({r["aug_id"]: r for r in rows}.values())


class Augmentations(Database):
    """Accepted augmented rows: save (idempotent by source and text), list, remove."""

    def save_augmentations(self, frame: pd.DataFrame, *, actor: str) -> list[str]:
        """Store accepted augmented rows (with their provenance) in one transaction.

        ``frame`` has ``source_id`` (or ``item_id``: the source item), ``text``,
        ``label``, ``method`` and optionally ``params`` (dict), ``similarity`` and
        ``label_prob``, as :func:`curation.augment.augment` returns them. Each row's
        id is ``aug-`` + a hash of its source and text, so saving the same row
        again changes nothing (a removed one is accepted again). Returns the ids.
        """
        if not isinstance(actor, str) or not actor.strip():
            raise ValueError("a reviewer name is required; pass actor='<your name>'.")
        reviewer = actor.strip()
        rows = _augmentation_rows(frame, reviewer)
        with self._write() as conn:
            _require_member(conn, reviewer)
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
        """Stored augmented rows, oldest first (``params`` parsed back to dicts; ``text_pair``
        after ``text`` when the rows are sentence pairs)."""
        query = sa.select(*[_augmentations.c[c] for c in (*AUGMENTATION_COLUMNS, TEXT_PAIR)])
        if not include_removed:
            query = query.where(_augmentations.c.status == "accepted")
        with self._read() as conn:
            rows = conn.execute(query.order_by(_augmentations.c.created_at,
                                               _augmentations.c.aug_id)).all()
        frame = pd.DataFrame(rows, columns=[*AUGMENTATION_COLUMNS, TEXT_PAIR])
        frame["params"] = frame["params"].map(_from_json)
        if frame[TEXT_PAIR].isna().all():
            return frame.drop(columns=[TEXT_PAIR])
        return frame[[*AUGMENTATION_COLUMNS[:3], TEXT_PAIR, *AUGMENTATION_COLUMNS[3:]]]

    def remove_augmentations(self, aug_ids: Sequence[str], *, actor: str) -> int:
        """Mark augmented rows removed (kept in the table with who removed them and when)."""
        if not isinstance(actor, str) or not actor.strip():
            raise ValueError("a reviewer name is required; pass actor='<your name>'.")
        reviewer = actor.strip()
        ids = [str(i) for i in aug_ids]
        with self._write() as conn:
            _require_member(conn, reviewer)
            known = set(conn.execute(sa.select(_augmentations.c.aug_id)
                                     .where(_augmentations.c.aug_id.in_(ids))).scalars())
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise ValueError(f"no augmented rows with ids {format_list(unknown)}; pick ids from "
                                 "Project.augmentations().")
            result = conn.execute(_augmentations.update()
                                  .where(_augmentations.c.aug_id.in_(ids),
                                         _augmentations.c.status == "accepted")
                                  .values(status="removed", removed_by=reviewer,
                                          removed_at=_utcnow()))
        return int(result.rowcount)

