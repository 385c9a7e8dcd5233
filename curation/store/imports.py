"""Imports and what they bring: ``items``, ``annotations``, the label set (``labels``) and the
``imports`` record. An import is planned in full (what is new, unchanged, replaced, kept) before
one transaction writes it; a replaced label or text is logged as a ``reimport`` decision."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from curation.messages import format_list
from curation.progress import Progress
from curation.schema import ANNOTATOR, GOLD, ITEM, LABEL, TEXT, TEXT_PAIR, has_pairs
from curation.store.database import (
    _IN_CHUNK,
    _UNSTORABLE,
    BATCH_SIZE,
    MAX_KEY_BYTES,
    Database,
    _check_storable,
    _insert_ignoring_duplicates,
    _is_blank,
    _na_to_none,
    _none_for_na,
    rows_frame,
)
from curation.store.tables import (
    _annotations,
    _decisions,
    _imports,
    _items,
    _labels,
    _utcnow,
)
from curation.store.team import _check_role, _log, needed

logger = logging.getLogger(__name__)

#: What :meth:`Project.import_annotations` does with a stored label that differs.
ON_CONFLICT = ("error", "replace", "keep")


def import_action(on_conflict: str) -> str:
    """The action an import is, in :data:`curation.store.NEEDS`: replacing stored labels is its
    own (``on_conflict="replace"``)."""
    return "replace stored labels" if on_conflict == "replace" else "import annotations"


_REIMPORT = "reimport"


@dataclass(frozen=True)
class ImportResult:
    """What :meth:`Project.import_annotations` did.

    Attributes
    ----------
    import_id : int
        The ``imports`` row recording this import, or the earlier identical
        import when nothing was new.
    n_rows : int
        Rows in the imported frame.
    n_new_items, n_new_annotations : int
        Items and (item, annotator) annotations that were not stored before.
    n_unchanged : int
        Rows whose annotation was already stored with the same label.
    n_replaced : int
        Stored labels overwritten (``on_conflict="replace"``; each is logged in
        ``decisions``).
    n_kept : int
        Rows whose differing stored label was kept (``on_conflict="keep"``).
    """

    import_id: int
    n_rows: int
    n_new_items: int
    n_new_annotations: int
    n_unchanged: int
    n_replaced: int
    n_kept: int = 0


@dataclass
class _ImportPlan:
    """Everything an import will write, computed before writing anything."""

    new_items: list[dict] = field(default_factory=list)
    text_updates: list[dict] = field(default_factory=list)
    gold_updates: list[dict] = field(default_factory=list)
    new_annotations: list[dict] = field(default_factory=list)
    replaced: list[dict] = field(default_factory=list)
    new_labels: list[str] = field(default_factory=list)
    n_unchanged: int = 0
    n_kept: int = 0

    @property
    def n_writes(self) -> int:
        return (len(self.new_items) + len(self.text_updates) + len(self.gold_updates)
                + len(self.new_annotations) + len(self.replaced))

    @property
    def changes_anything(self) -> bool:
        return bool(self.n_writes or self.new_labels)


class _Progress:
    """Report the written fraction to a callback: once per batch, then a final 1.0."""

    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback, self.total, self.done = callback, max(total, 1), 0

    def advance(self, n: int) -> None:
        self.done += n
        if self.callback is not None and self.done < self.total:
            self.callback(self.done / self.total, "importing rows")

    def finish(self) -> None:
        if self.callback is not None:
            self.callback(1.0, "imported")


def text_sha1(text: str) -> str:
    """The SHA-1 hex digest of a text's UTF-8 bytes: ``items.text_sha1`` and the embedding key.

    >>> text_sha1("hello")
    'aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d'
    """
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def _normalise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns ``item_id, text, annotator_id, label, gold`` as str (gold None when blank)."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"import_annotations expects a pandas DataFrame, got "
                         f"{type(frame).__name__}; load files with curation.io.load_annotations.")
    missing = [c for c in (ITEM, TEXT, ANNOTATOR, LABEL) if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks column(s) {missing} (it has {list(frame.columns)}); "
                         "load it with curation.io.load_annotations, which maps columns.")
    clean = pd.DataFrame(index=range(len(frame)))
    for col in (ITEM, TEXT, *([TEXT_PAIR] if has_pairs(frame) else []), ANNOTATOR, LABEL):
        values = frame[col].reset_index(drop=True)
        blank = values.map(_is_blank)
        if blank.any():
            raise ValueError(f"column {col!r} is empty in rows {format_list(blank[blank].index)} "
                             "(0-based); fill them in or drop those rows.")
        clean[col] = _storable_column(values, col)
    gold = frame[GOLD].reset_index(drop=True) if GOLD in frame.columns else pd.Series([None] * len(frame))
    present = ~gold.map(_is_blank)
    clean[GOLD] = pd.Series(None, index=clean.index, dtype=object)
    if present.any():
        clean.loc[present, GOLD] = _storable_column(gold[present], GOLD)
    _check_frame(clean)
    return clean


def _storable_column(values: pd.Series, col: str) -> pd.Series:
    """``values`` as strings the store can keep on SQLite and PostgreSQL alike, else a
    ValueError naming the column, the 0-based rows and the fix (never the database's error)."""
    def as_str(value: Any) -> str | None:
        try:
            return str(value)
        except ValueError:  # an integer past Python's 4,300-digit str() limit
            return None

    # plain lists, not Series.map: pandas would infer Arrow strings, which raise on a surrogate
    out = [as_str(v) for v in values.tolist()]
    rows = values.index
    unconvertible = [r for r, v in zip(rows, out) if v is None]
    if unconvertible:
        raise ValueError(f"column {col!r} holds an integer too long to write as text in rows "
                         f"{format_list(unconvertible)} (0-based); ids are short names - "
                         "check the column mapping, or load the file with curation.io.load_annotations.")
    bad = [r for r, v in zip(rows, out) if _UNSTORABLE.search(v)]
    if bad:
        raise ValueError(f"column {col!r} holds a NUL byte or a lone UTF-16 surrogate, which is no "
                         f"character, in rows {format_list(bad)} (0-based); remove it "
                         "(curation.io.load_annotations refuses such files naming the place).")
    if col not in (TEXT, TEXT_PAIR):
        size = [len(v.encode("utf-8")) for v in out]
        long = [r for r, n in zip(rows, size) if n > MAX_KEY_BYTES]
        if long:
            raise ValueError(f"column {col!r} has a value of {max(size):,} bytes in rows "
                             f"{format_list(long)} (0-based), over the {MAX_KEY_BYTES:,} "
                             "bytes the store keeps for an id or label; is the text in this column? "
                             "Check the column mapping.")
    return pd.Series(out, index=rows, dtype=object)


def _check_frame(frame: pd.DataFrame) -> None:
    dup = frame.duplicated([ITEM, ANNOTATOR], keep=False)
    if dup.any():
        pairs = frame.loc[dup, [ITEM, ANNOTATOR]].drop_duplicates().itertuples(index=False)
        raise ValueError(f"(item, annotator) pairs appear more than once: "
                         f"{format_list(f'({i!r}, {a!r})' for i, a in pairs)}; keep one label per "
                         "annotator and item (curation.io.validate_long_frame checks this).")
    for col, what in ((TEXT, "texts"), (TEXT_PAIR, "second texts"), (GOLD, "gold labels")):
        if col not in frame.columns:
            continue
        n = frame.dropna(subset=[col]).groupby(ITEM, sort=True)[col].nunique()
        bad = n.index[n > 1]
        if len(bad):
            raise ValueError(f"item ids {format_list(bad)} have several different {what} in the "
                             f"frame; give each item one {what[:-1]}.")


def _frame_sha256(frame: pd.DataFrame) -> str:
    canonical = frame.sort_values([ITEM, ANNOTATOR], kind="stable")
    data = canonical.to_csv(index=False, lineterminator="\n").encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def _check_labels(labels: Any, what: str) -> list[str]:
    if isinstance(labels, (str, bytes)) or not isinstance(labels, Iterable):
        raise ValueError(f"{what} must be a list of label strings, got {labels!r}; "
                         "e.g. ['positive', 'negative'].")
    out = []
    for label in labels:
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{what} contains {label!r}; every label must be a non-empty string.")
        _check_storable(label.strip(), f"{what}: the label")
        out.append(label.strip())
    return list(dict.fromkeys(out))


def _fetch_by_items(conn: Connection, columns: Sequence[sa.Column], ids: Sequence[str],
                    names: Sequence[str]) -> pd.DataFrame:
    """Rows of ``columns`` whose item id is in ``ids`` (queried in chunks)."""
    key = columns[0]
    rows: list[Any] = []
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = list(ids[start:start + _IN_CHUNK])
        rows += conn.execute(sa.select(*columns).where(key.in_(chunk))).all()
    return rows_frame(rows, names).astype(object)


def _plan_import(conn: Connection, frame: pd.DataFrame, on_conflict: str,
                 labels: list[str]) -> _ImportPlan:
    plan = _ImportPlan()
    _plan_items(conn, frame, on_conflict, plan)
    _plan_annotations(conn, frame, on_conflict, plan)
    seen = sorted(set(frame[LABEL]) | set(frame[GOLD].dropna()))
    stored = set(_stored_labels(conn))
    plan.new_labels = [x for x in dict.fromkeys([*labels, *seen]) if x not in stored]
    return plan


def _check_same_kind(conn: Connection, frame: pd.DataFrame) -> None:
    """One project holds single texts or sentence pairs, never both: a model reads every item
    the same way."""
    stored = conn.execute(sa.select(_items.c[TEXT_PAIR].is_not(None)).limit(1)).scalar()
    if stored is None or bool(stored) == has_pairs(frame):
        return
    if stored:
        raise ValueError("this project's items are sentence pairs (text and text_pair), and the "
                         "new file has one text per item; map the file's second text column to "
                         "text_pair (CLI --map COLUMN=text_pair), or import it into a new project.")
    raise ValueError("this project's items are single texts, and the new file has a second text "
                     "(text_pair); import the pairs into a new project, or leave text_pair "
                     "unmapped to import the first texts alone.")


def _plan_items(conn: Connection, frame: pd.DataFrame, on_conflict: str, plan: _ImportPlan) -> None:
    _check_same_kind(conn, frame)
    incoming = frame.drop_duplicates(ITEM)[[ITEM, TEXT]]
    incoming[TEXT_PAIR] = (frame.drop_duplicates(ITEM)[TEXT_PAIR] if has_pairs(frame)
                           else pd.Series(None, index=incoming.index, dtype=object))
    golds = frame.dropna(subset=[GOLD]).drop_duplicates(ITEM).set_index(ITEM)[GOLD]
    stored = _fetch_by_items(conn, [_items.c[ITEM], _items.c[TEXT], _items.c[TEXT_PAIR],
                                    _items.c[GOLD]],
                             incoming[ITEM].tolist(), [ITEM, "old_text", "old_pair", "old_gold"])
    merged = incoming.merge(stored, on=ITEM, how="left")
    merged["new_gold"] = merged[ITEM].map(golds).astype(object)
    is_new = merged["old_text"].isna()
    new_pair, old_pair = merged[TEXT_PAIR].fillna("\x00"), merged["old_pair"].fillna("\x00")
    changed = merged.loc[~is_new & ((merged["old_text"] != merged[TEXT]) | (old_pair != new_pair))]
    if len(changed) and on_conflict != "replace":
        raise ValueError(f"{len(changed)} stored item(s) have a different text: "
                         f"{format_list(map(repr, changed[ITEM]))}. item ids must be unique per "
                         "text; rename the new items or pass on_conflict='replace'.")
    now = _utcnow()
    for r in merged.loc[is_new].itertuples(index=False):
        plan.new_items.append({ITEM: r.item_id, TEXT: r.text, TEXT_PAIR: _na_to_none(r.text_pair),
                               "text_sha1": text_sha1(r.text), GOLD: _na_to_none(r.new_gold),
                               "created_at": now})
    plan.text_updates = [{"b_item": r.item_id, "b_text": r.text, "b_pair": _na_to_none(r.text_pair),
                          "b_sha1": text_sha1(r.text), "old_text": _old_text(r.old_text, r.old_pair)}
                         for r in changed.itertuples(index=False)]
    regold = merged.loc[~is_new & merged["new_gold"].notna()
                        & (merged["new_gold"] != merged["old_gold"])]
    plan.gold_updates = [{"b_item": r.item_id, "b_gold": r.new_gold}
                         for r in regold.itertuples(index=False)]


def _old_text(text: str, pair: Any) -> str:
    """A replaced item's text as the audit note shows it (both sides of a pair)."""
    return text if _is_blank(pair) else f"{text} || {pair}"


def _plan_annotations(conn: Connection, frame: pd.DataFrame, on_conflict: str,
                      plan: _ImportPlan) -> None:
    stored = _fetch_by_items(
        conn, [_annotations.c[ITEM], _annotations.c[ANNOTATOR], _annotations.c[LABEL]],
        frame[ITEM].unique().tolist(), [ITEM, ANNOTATOR, "old_label"])
    merged = frame.merge(stored, on=[ITEM, ANNOTATOR], how="left")
    is_new = merged["old_label"].isna()
    same = ~is_new & (merged["old_label"] == merged[LABEL])
    differ = merged.loc[~is_new & ~same]
    if len(differ) and on_conflict == "error":
        shown = (f"item {r.item_id!r} annotator {r.annotator_id!r}: {r.old_label!r} -> {r.label!r}"
                 for r in differ.itertuples(index=False))
        raise ValueError(f"{len(differ)} stored label(s) differ from the new ones: "
                         f"{format_list(shown)}. Pass on_conflict='replace' to overwrite them "
                         "(each change is logged in the decisions table) or on_conflict='keep' "
                         "to keep the stored labels.")
    plan.new_annotations = [{ITEM: r.item_id, ANNOTATOR: r.annotator_id, LABEL: r.label}
                            for r in merged.loc[is_new].itertuples(index=False)]
    plan.n_unchanged = int(same.sum())
    if on_conflict == "replace":
        plan.replaced = [{"b_item": r.item_id, "b_annotator": r.annotator_id,
                          "b_label": r.label, "old_label": r.old_label}
                         for r in differ.itertuples(index=False)]
    else:
        plan.n_kept = len(differ)


def _find_import(conn: Connection, digest: str) -> int | None:
    query = (sa.select(_imports.c.import_id).where(_imports.c.sha256 == digest)
             .order_by(_imports.c.import_id.desc()).limit(1))
    return conn.execute(query).scalar_one_or_none()


def _insert_import(conn: Connection, source: str, digest: str, n_rows: int,
                   plan: _ImportPlan) -> int:
    row = {"source": str(source), "sha256": digest, "n_rows": n_rows,
           "n_new_annotations": len(plan.new_annotations), "created_at": _utcnow()}
    return int(conn.execute(_imports.insert().values(**row)).inserted_primary_key[0])


def _in_batches(conn: Connection, statement: Any, rows: list[dict], progress: _Progress) -> None:
    for start in range(0, len(rows), BATCH_SIZE):
        batch = rows[start:start + BATCH_SIZE]
        conn.execute(statement, batch)
        progress.advance(len(batch))


def _apply_plan(conn: Connection, plan: _ImportPlan, import_id: int, source: str,
                progress: _Progress) -> None:
    now = _utcnow()
    by_item = _items.c[ITEM] == sa.bindparam("b_item")
    _in_batches(conn, _items.insert(), plan.new_items, progress)
    _in_batches(conn, _items.update().where(by_item).values(
        {TEXT: sa.bindparam("b_text"), TEXT_PAIR: sa.bindparam("b_pair"),
         "text_sha1": sa.bindparam("b_sha1")}),
        plan.text_updates, progress)
    _in_batches(conn, _items.update().where(by_item).values({GOLD: sa.bindparam("b_gold")}),
                plan.gold_updates, progress)
    rows = [{**r, "import_id": import_id, "created_at": now} for r in plan.new_annotations]
    _in_batches(conn, _annotations.insert(), rows, progress)
    _in_batches(conn, _annotations.update().where(
        (_annotations.c[ITEM] == sa.bindparam("b_item"))
        & (_annotations.c[ANNOTATOR] == sa.bindparam("b_annotator"))).values(
        {LABEL: sa.bindparam("b_label"), "import_id": import_id}), plan.replaced, progress)
    _log_reimport(conn, plan, source, now)
    _add_labels(conn, plan.new_labels)
    progress.finish()


def _log_reimport(conn: Connection, plan: _ImportPlan, source: str, now: dt.datetime) -> None:
    """Append one ``reimport`` decision per replaced label or text, so nothing is lost silently."""
    base = {"reviewer": f"import:{source}", "action": _REIMPORT, "created_at": now}
    rows = [{**base, ITEM: r["b_item"], "old_label": r["old_label"], "new_label": r["b_label"],
             "note": f"annotator {r['b_annotator']}"} for r in plan.replaced]
    rows += [{**base, ITEM: r["b_item"], "old_label": None, "new_label": None,
              "note": f"text replaced; old text: {r['old_text']}"} for r in plan.text_updates]
    for start in range(0, len(rows), BATCH_SIZE):
        conn.execute(_decisions.insert(), rows[start:start + BATCH_SIZE])


def _result(import_id: int, frame: pd.DataFrame, plan: _ImportPlan) -> ImportResult:
    return ImportResult(import_id=int(import_id), n_rows=len(frame),
                        n_new_items=len(plan.new_items),
                        n_new_annotations=len(plan.new_annotations),
                        n_unchanged=plan.n_unchanged, n_replaced=len(plan.replaced),
                        n_kept=plan.n_kept)


def _stored_labels(conn: Connection) -> list[str]:
    query = sa.select(_labels.c[LABEL]).order_by(_labels.c.position, _labels.c[LABEL])
    return list(conn.execute(query).scalars())


def _add_labels(conn: Connection, labels: Sequence[str]) -> None:
    stored = set(_stored_labels(conn))
    new = [x for x in labels if x not in stored]
    if not new:
        return
    top = conn.execute(sa.select(sa.func.max(_labels.c.position))).scalar_one()
    start = -1 if top is None else int(top)
    rows = [{LABEL: x, "position": start + 1 + i} for i, x in enumerate(new)]
    _insert_ignoring_duplicates(conn, _labels, rows)


def _pairs_or_not(frame: pd.DataFrame) -> pd.DataFrame:
    """Without its ``text_pair`` column when no stored item is a pair (frames of single texts
    look as they always did); with it, a missing second text reads as ""."""
    if frame[TEXT_PAIR].isna().all():
        return frame.drop(columns=[TEXT_PAIR])
    frame[TEXT_PAIR] = frame[TEXT_PAIR].fillna("").astype(object)
    return frame


class Annotations(Database):
    """The annotations of a project: import a long frame, read it back, items, the label set."""

    def import_annotations(
        self,
        frame: pd.DataFrame,
        *,
        source: str = "",
        label_set: Sequence[str] | None = None,
        on_conflict: str = "error",
        progress: Progress | None = None,
        actor: str | None = None,
    ) -> ImportResult:
        """Store a long annotation frame, all in one transaction.

        Parameters
        ----------
        frame : pandas.DataFrame
            Long frame with ``item_id, text, annotator_id, label`` and optional
            ``gold`` (as returned by :func:`curation.io.load_annotations`).
        source : str
            Where the frame came from (file name); recorded with the import.
        label_set : sequence of str, optional
            Declared labels, added (in order) to the stored label set. Labels
            seen in ``label``/``gold`` are added after them in any case.
        on_conflict : {"error", "replace", "keep"}
            What to do when a stored (item, annotator) label differs:
            raise, overwrite (logging each change in ``decisions`` with
            ``action="reimport"``), or keep the stored label. ``"replace"``
            also lets a new text replace a stored item's text.
        progress : callable, optional
            Called with the written fraction (0..1) after each batch of
            :data:`BATCH_SIZE` rows, and finally with 1.0.
        actor : str, optional
            Who imports. In team mode only a lead may import (new annotations, replaced
            labels and new labels all change everyone's data); the audit log names them.

        Returns
        -------
        ImportResult

        Raises
        ------
        ValueError
            On a malformed frame, a stored item whose text differs, or (with
            ``on_conflict="error"``) a stored label that differs. Nothing is
            written then.
        AccessError
            In team mode, when ``actor`` is not a lead. Nothing is written then.

        Notes
        -----
        Idempotent: re-importing a frame adds nothing and no ``imports`` row;
        the earlier identical import's id is returned. A stored gold label is
        never erased by an empty one.
        """
        clean = _normalise_frame(frame)
        labels = _check_labels(label_set, "label_set") if label_set is not None else []
        if on_conflict not in ON_CONFLICT:
            raise ValueError(f"on_conflict={on_conflict!r} is not one of {list(ON_CONFLICT)}; "
                             "pick one of them.")
        digest = _frame_sha256(clean)
        with self._write() as conn:
            action = import_action(on_conflict)
            _check_role(conn, actor, needed(action), to=action)
            plan = _plan_import(conn, clean, on_conflict, labels)
            earlier = _find_import(conn, digest)
            if earlier is not None and not plan.changes_anything:
                _Progress(progress, 0).finish()
                logger.info("import of %r: nothing new (same as import #%d)", source, earlier)
                return _result(earlier, clean, plan)
            import_id = _insert_import(conn, source, digest, len(clean), plan)
            _apply_plan(conn, plan, import_id, source, _Progress(progress, plan.n_writes))
            _log(conn, actor, "import", import_id=import_id, source=source, on_conflict=on_conflict,
                 rows=len(clean), new_annotations=len(plan.new_annotations),
                 replaced=len(plan.replaced), new_labels=plan.new_labels)
        logger.info("import #%d of %r: %d rows, %d new annotations, %d replaced", import_id,
                    source, len(clean), len(plan.new_annotations), len(plan.replaced))
        return _result(import_id, clean, plan)

    def annotations(self) -> pd.DataFrame:
        """The stored long frame, ordered by ``item_id, annotator_id``.

        Returns
        -------
        pandas.DataFrame
            Columns ``item_id, text, annotator_id, label, gold`` (strings;
            ``gold`` is ``None`` where unknown), and ``text_pair`` after ``text`` when the
            project's items are sentence pairs.
        """
        query = (sa.select(_annotations.c[ITEM], _items.c[TEXT], _items.c[TEXT_PAIR],
                           _annotations.c[ANNOTATOR], _annotations.c[LABEL], _items.c[GOLD])
                 .join_from(_annotations, _items))
        with self._read() as conn:
            rows = conn.execute(query).all()
        frame = _pairs_or_not(rows_frame(rows, [ITEM, TEXT, TEXT_PAIR, ANNOTATOR, LABEL, GOLD]))
        frame[GOLD] = _none_for_na(frame[GOLD])
        return frame.sort_values([ITEM, ANNOTATOR], kind="stable", ignore_index=True)

    def items(self) -> pd.DataFrame:
        """One row per stored item: ``item_id, text, gold, n_annotations`` ordered by id
        (``text_pair`` after ``text`` for sentence pairs)."""
        counts = (sa.select(_annotations.c[ITEM], sa.func.count().label("n"))
                  .group_by(_annotations.c[ITEM]).subquery())
        query = (sa.select(_items.c[ITEM], _items.c[TEXT], _items.c[TEXT_PAIR], _items.c[GOLD],
                           sa.func.coalesce(counts.c.n, 0).label("n_annotations"))
                 .select_from(_items.outerjoin(counts, counts.c[ITEM] == _items.c[ITEM])))
        with self._read() as conn:
            rows = conn.execute(query).all()
        frame = _pairs_or_not(rows_frame(rows, [ITEM, TEXT, TEXT_PAIR, GOLD, "n_annotations"]))
        frame[GOLD] = _none_for_na(frame[GOLD])
        frame["n_annotations"] = frame["n_annotations"].astype("int64")
        return frame.sort_values(ITEM, kind="stable", ignore_index=True)

    def gold_labels(self) -> pd.Series:
        """``item_id -> gold label`` of the items that have one, by item id (empty when none)."""
        query = (sa.select(_items.c[ITEM], _items.c[GOLD]).where(_items.c[GOLD].is_not(None))
                 .order_by(_items.c[ITEM]))
        with self._read() as conn:
            rows = conn.execute(query).all()
        return rows_frame(rows, [ITEM, GOLD]).set_index(ITEM)[GOLD].astype(str)

    def label_set(self) -> list[str]:
        """The stored label set, in declaration order."""
        with self._read() as conn:
            return _stored_labels(conn)

    def set_label_set(self, labels: Sequence[str], *, actor: str | None = None) -> list[str]:
        """Add labels to the label set (new ones at the end; existing order kept).

        Parameters
        ----------
        labels : sequence of str
            Labels in the desired order; labels already stored are ignored.
        actor : str, optional
            Who changes it: in team mode a lead (:class:`AccessError` otherwise).

        Returns
        -------
        list of str
            The whole label set after the change.
        """
        checked = _check_labels(labels, "labels")
        with self._write() as conn:
            _check_role(conn, actor, needed("change the label set"), to="change the label set")
            before = _stored_labels(conn)
            _add_labels(conn, checked)
            after = _stored_labels(conn)
            if after != before:
                _log(conn, actor, "label_set", added=[x for x in after if x not in before])
            return after

    def n_items(self) -> int:
        """Number of stored items."""
        return self._count(_items)

    def n_annotations(self) -> int:
        """Number of stored (item, annotator) annotations."""
        return self._count(_annotations)

    def is_empty(self) -> bool:
        """Whether the project holds no items yet."""
        return self.n_items() == 0

    def data_version(self) -> tuple[int, ...]:
        """A cheap fingerprint that changes whenever stored annotations or decisions change.

        Every write that alters annotations records an import (and a label replaced by a
        re-import also appends a decision), so the newest import and decision ids, with
        the row counts, identify the contents; caches key on it.
        """
        with self._read() as conn:
            return tuple(int(conn.execute(sa.select(expr)).scalar_one() or 0) for expr in (
                sa.func.max(_imports.c.import_id), sa.func.max(_decisions.c.decision_id),
                sa.select(sa.func.count()).select_from(_items).scalar_subquery(),
                sa.select(sa.func.count()).select_from(_annotations).scalar_subquery()))

    def imports(self) -> pd.DataFrame:
        """All recorded imports, oldest first."""
        return self._table_frame(_imports, _imports.c.import_id)

