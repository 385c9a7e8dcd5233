"""Export the curated dataset: leakage-aware stratified splits, files, and a data card.

:func:`export_dataset` groups near-duplicate texts (:func:`curation.splits.near_duplicate_groups`),
ties every augmented row (non-empty ``augmented_from``) to its source item's group and pins
that group to train, splits the rest with :func:`curation.splits.stratified_group_split`, and
writes ``train``, ``validation`` and ``test`` files per format plus ``data_card.json`` and
``data_card.md``.

Writing is atomic: every file is first written into a fresh temporary folder next to
``out_dir`` (same filesystem). Only when all of them are written are they moved in: a new
``out_dir`` is the temporary folder renamed in one step; into an existing ``out_dir`` each
file is moved with ``os.replace`` (atomic per file; the data cards move last). A failure
while writing removes the temporary folder and leaves ``out_dir`` as it was.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from curation.messages import format_list, markdown_text, suggest
from curation.splits import (
    MCNEMAR_MIN_DISCORDANT,
    SPLITS,
    near_duplicate_groups,
    smallest_detectable_change,
    stratified_group_split,
)

__all__ = ["CARD_FILES", "ExportResult", "FORMATS", "FORMULA_PREFIXES", "REQUIRED", "export_dataset",
           "formula_cells", "power_of_test_split"]

logger = logging.getLogger(__name__)

#: Output formats and their writers' file extensions.
FORMATS = ("csv", "jsonl", "parquet", "hf")
#: Formats written as one file per split; ``hf`` is a ``datasets`` folder (:mod:`curation.hf_format`).
_FILE_FORMATS = ("csv", "jsonl", "parquet")
#: Columns the curated frame must have; they lead every written file.
REQUIRED = ("item_id", "text", "label")
#: Column naming the source item of an augmented row.
AUGMENTED_FROM = "augmented_from"
#: Data card file names.
CARD_FILES = ("data_card.json", "data_card.md")
#: Columns added to :attr:`ExportResult.splits`; the curated frame may not have them.
_ADDED = ("split", "leakage_group")
#: ``status`` values (from :func:`curation.curate.curate`) left out of the export.
_DROPPED, _AMBIGUOUS = "dropped", "ambiguous"
#: Card entries :func:`export_dataset` computes besides its settings; ``card`` may not use them.
_COMPUTED_CARD_KEYS = ("created_at", "near_duplicate_groups", "rows_in_near_duplicate_groups",
                       "total_rows", "augmented_rows", "split_sizes", "counts", "class_shares",
                       "overall_class_shares", "files")


@dataclass(frozen=True)
class ExportResult:
    """What :func:`export_dataset` wrote.

    Attributes
    ----------
    out_dir : Path
    files : list of Path
        Every written file, data cards last.
    splits : DataFrame
        The exported rows, with ``split`` and ``leakage_group`` (rows sharing it
        are near-duplicates or augmentations of one another) columns.
    card : dict
        The data card, as written to ``data_card.json``.
    """

    out_dir: Path
    files: list[Path]
    splits: pd.DataFrame
    card: dict


# --- validation ---------------------------------------------------------------------------

def _check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    formats = (formats,) if isinstance(formats, str) else tuple(formats)
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        hint = suggest(bad[0], FORMATS) if bad else ""
        raise ValueError(f"unknown export format(s) {format_list(map(repr, bad)) or '(none given)'}"
                         f"{hint}; pass formats from {list(FORMATS)}, e.g. formats=('csv', 'parquet').")
    return tuple(dict.fromkeys(formats))


def _check_columns(curated: pd.DataFrame) -> None:
    missing = [c for c in REQUIRED if c not in curated.columns]
    if missing:
        parts = [f"{c!r}{suggest(c, list(map(str, curated.columns)))}" for c in missing]
        raise ValueError(f"curated frame lacks column(s) {', '.join(parts)}; it needs "
                         f"{list(REQUIRED)}: rename yours with df.rename(columns={{...}}).")
    clash = [c for c in _ADDED if c in curated.columns]
    if clash:
        raise ValueError(f"curated frame already has column(s) {clash}, which the export adds; "
                         "drop or rename them first.")


def _check_rows(curated: pd.DataFrame) -> None:
    if curated.empty:
        raise ValueError("nothing to export: the curated frame has no rows (were all items "
                         "dropped or marked ambiguous?); curate some items first.")
    ids = curated["item_id"].astype(str)
    dup = ids[ids.duplicated()].unique()
    if len(dup):
        raise ValueError(f"item_id must be unique; repeated: {format_list(dup)}. Keep one row "
                         "per item (df.drop_duplicates('item_id')) or give them distinct ids.")
    for col in ("text", *(["text_pair"] if "text_pair" in curated.columns else []), "label"):
        bad = curated["item_id"][curated[col].isna()]
        if len(bad):
            raise ValueError(f"{col} is missing for item_id {format_list(bad)}; fill it in or "
                             "drop those items.")


def _check_card(card: Mapping[str, Any] | None, reserved: Sequence[str]) -> dict:
    if card is None:
        return {}
    if not isinstance(card, Mapping):
        raise ValueError(f"card must be a mapping (dict) of extra data-card entries; got "
                         f"{type(card).__name__}.")
    clash = [k for k in card if k in reserved]
    if clash:
        raise ValueError(f"card keys {clash} clash with entries the export computes; "
                         "rename them (e.g. prefix 'source_').")
    return dict(card)


def _exported_rows(curated: pd.DataFrame, embeddings, include_ambiguous: bool):
    """Rows to export (dropped, and unless asked ambiguous, items left out) and their embeddings."""
    if embeddings is not None and np.shape(embeddings)[0] != len(curated):
        raise ValueError(f"embeddings have {np.shape(embeddings)[0]} rows but curated has "
                         f"{len(curated)}; pass one row per curated row, in the same order.")
    status = curated["status"] if "status" in curated.columns else pd.Series("", curated.index)
    skip = [_DROPPED] + ([] if include_ambiguous else [_AMBIGUOUS])
    keep = ~status.isin(skip).to_numpy()
    excluded = {s: int((status == s).sum()) for s in (_DROPPED, _AMBIGUOUS)}
    if not keep.all():
        logger.info("left out of the export: %s", excluded)
    rows = curated[keep].reset_index(drop=True)
    return rows, (None if embeddings is None else np.asarray(embeddings)[keep]), excluded


# --- splitting ----------------------------------------------------------------------------

def _augmented(rows: pd.DataFrame) -> np.ndarray:
    """True where ``augmented_from`` names a source item."""
    if AUGMENTED_FROM not in rows.columns:
        return np.zeros(len(rows), bool)
    source = rows[AUGMENTED_FROM]
    return (source.notna() & (source.astype(str).str.strip() != "")).to_numpy()


def _leakage_groups(rows: pd.DataFrame, near_dup: np.ndarray, aug: np.ndarray) -> np.ndarray:
    """Near-duplicate groups merged with the augmentation -> source links."""
    n = len(rows)
    position = pd.Series(np.arange(n), index=rows["item_id"].astype(str))
    source = rows.loc[aug, AUGMENTED_FROM].astype(str).str.strip() if aug.any() else pd.Series(dtype=str)
    found = source.isin(position.index)
    if not found.all():
        logger.warning("augmented rows %s name source items not in the export; they go to train "
                       "on their own", format_list(rows.loc[source.index[~found], "item_id"]))
    _, first = np.unique(near_dup, return_index=True)
    i = np.concatenate([np.arange(n), source.index[found].to_numpy()])
    j = np.concatenate([first[near_dup], position[source[found]].to_numpy()])
    graph = sparse.coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    return pd.factorize(connected_components(graph, directed=False)[1])[0]


def _split_rows(rows: pd.DataFrame, embeddings, *, threshold: float, test_size: float,
                val_size: float, seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """``rows`` with ``split`` and ``leakage_group`` columns, and the near-duplicate groups."""
    near_dup = near_duplicate_groups(rows["text"].tolist(), embeddings=embeddings,
                                     threshold=threshold,
                                     pairs=rows["text_pair"].tolist() if "text_pair" in rows else None)
    aug = _augmented(rows)
    groups = _leakage_groups(rows, near_dup, aug)
    forced = np.isin(groups, groups[aug])
    split = np.full(len(rows), SPLITS[0], dtype=object)
    split[~aug] = stratified_group_split(rows["label"][~aug].tolist(), groups=groups[~aug],
                                         test_size=test_size, val_size=val_size, seed=seed,
                                         force_train=forced[~aug])
    return rows.assign(split=split, leakage_group=groups), near_dup


# --- the data card --------------------------------------------------------------------------

def _split_tables(splits: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts (class x split, plus ``total``) and shares of each class within each split."""
    labels = splits["label"].astype(str)
    counts = pd.crosstab(labels, splits["split"]).reindex(columns=list(SPLITS), fill_value=0)
    counts = counts.sort_index().astype(int)
    counts["total"] = counts.sum(axis=1)
    shares = (counts / counts.sum().replace(0, 1)).round(4)
    return counts, shares.rename(columns={"total": "overall"})


def _card(splits: pd.DataFrame, near_dup: np.ndarray, files: dict[str, list[str]],
          settings: dict, extra: dict) -> dict:
    counts, shares = _split_tables(splits)
    sizes = np.bincount(near_dup)
    return {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **settings,
        "near_duplicate_groups": int((sizes > 1).sum()),
        "rows_in_near_duplicate_groups": int(sizes[sizes > 1].sum()),
        "total_rows": len(splits),
        "augmented_rows": int(_augmented(splits).sum()),
        "split_sizes": {s: int(counts[s].sum()) for s in SPLITS},
        "counts": {s: counts[s].to_dict() for s in SPLITS},
        "class_shares": {s: shares[s].to_dict() for s in SPLITS},
        "overall_class_shares": shares["overall"].to_dict(),
        "test_power": power_of_test_split(counts["test"].to_dict()),
        "files": files,
        **extra,
    }


def power_of_test_split(test_counts: Mapping[str, int], *, min_effect: float = 0.02) -> dict[str, Any]:
    """What a test split of this size can show about a change in accuracy, in words.

    A retrain-and-compare on ``n`` test items can never call a change smaller than
    :func:`curation.splits.smallest_detectable_change` real (McNemar's exact test needs
    :data:`~curation.splits.MCNEMAR_MIN_DISCORDANT` items to change, all the same way), and in
    practice needs several times that; classes with fewer than 10 test items give F1 values too
    noisy to read.

    Examples
    --------
    >>> power_of_test_split({"a": 100, "b": 50})["smallest_detectable_accuracy_change"]
    0.04
    """
    n = int(sum(test_counts.values()))
    small = sorted(k for k, v in test_counts.items() if v < 10)
    if n == 0:
        return {"test_items": 0, "smallest_detectable_accuracy_change": None, "classes_under_10": small,
                "note": "no test items: nothing can be measured on this split."}
    floor = smallest_detectable_change(n)
    need = int(np.ceil(MCNEMAR_MIN_DISCORDANT / min_effect))
    note = (f"no change in accuracy smaller than {floor:.3f} can be shown as real on {n} test items, "
            f"even in the best case ({MCNEMAR_MIN_DISCORDANT} items must change, all the same way); "
            + (f"a {min_effect:.3f} change needs at least {need} test items, and in practice "
               "several times that" if floor > min_effect else
               f"a {min_effect:.3f} change is within reach, given enough seeds"))
    if small:
        note += f"; class(es) {', '.join(map(str, small))} have fewer than 10 test items (F1 too noisy to read)"
    return {"test_items": n, "smallest_detectable_accuracy_change": floor,
            "classes_under_10": small, "note": note + "."}


def _json_default(value: Any) -> Any:
    """JSON for what ``json`` does not know: numpy, pandas, dates; ``str`` otherwise."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray | pd.Series | pd.Index):
        return value.tolist()
    if isinstance(value, pd.DataFrame):
        return value.to_dict("records")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


class _Ours(str):
    """Card text the export wrote itself (percentages): shown as it is, not escaped."""


def _cell(value: Any) -> str:
    """A value as Markdown table / bullet text: one line; text (labels, ids, the caller's entries)
    escaped so it shows as typed, never as a link, image, HTML or a table break; numbers and the
    export's own text as they are."""
    if isinstance(value, Mapping | list | tuple):
        value = json.dumps(value, ensure_ascii=False, default=_json_default)
    line = " ".join(str(value).split())
    if isinstance(value, _Ours) or isinstance(value, int | float | np.number) and not isinstance(value, bool):
        return line
    return markdown_text(line)


def _md_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows] + [""]


def _is_records(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _md_value(title: str, value: Any, level: int) -> list[str]:
    """A caller's card entry: sections for mappings, tables for lists of records, bullets."""
    lines = ["#" * min(level, 6) + " " + _cell(title[:1].upper() + title[1:].replace("_", " ")), ""]
    if isinstance(value, Mapping):
        nested = {k: v for k, v in value.items() if isinstance(v, Mapping) or _is_records(v)}
        lines += [f"- **{_cell(k)}**: {_cell(v)}" for k, v in value.items() if k not in nested]
        lines += [""] if len(nested) < len(value) else []
        for k, v in nested.items():
            lines += _md_value(str(k), v, level + 1)
    elif _is_records(value):
        header = list(dict.fromkeys(k for record in value for k in record))
        lines += _md_table(header, [[r.get(k, "") for k in header] for r in value])
    elif isinstance(value, list | tuple):
        lines += [f"- {_cell(v)}" for v in value] + [""]
    else:
        lines += [_cell(value), ""]
    return lines


def _percent(share: float) -> str:
    return _Ours(f"{100 * share:.1f}%")


def _md_summary(card: dict) -> list[str]:
    files = [name for names in card["files"].values() for name in names]
    links = "same normalised text" + (f" or cosine >= {card['near_duplicate_threshold']}"
                                      if card["embeddings_used"] else "")
    return [
        "## Summary", "",
        f"- **Total rows**: {card['total_rows']} (augmented, all in train: {card['augmented_rows']})",
        "- **Split sizes**: " + ", ".join(f"{s} {n}" for s, n in card["split_sizes"].items()),
        f"- **Requested**: test {card['test_size']}, validation {card['val_size']}, "
        f"seed {card['seed']}",
        f"- **Near-duplicates** ({links}): {card['near_duplicate_groups']} group(s) with more "
        f"than one member ({card['rows_in_near_duplicate_groups']} rows), each kept within one split",
        "- **Left out**: " + ", ".join(f"{k} {v}" for k, v in card["excluded_rows"].items()),
        f"- **What the test split can show**: {_cell(card['test_power']['note'])}",
        f"- **Files**: {', '.join(files)}", "",
        *_formula_note(card["formula_cells"]),
    ]


def _card_markdown(card: dict, splits: pd.DataFrame, extra_keys: Sequence[str]) -> str:
    """The data card as Markdown: summary, count and share tables, then the caller's entries."""
    counts, shares = _split_tables(splits)
    lines = [
        "# Data card", "", f"Created {card['created_at']} (UTC).", "", *_md_summary(card),
        "## Rows per split and class", "",
        *_md_table(["class", *counts.columns],
                   [*counts.reset_index().to_numpy().tolist(), ["total", *counts.sum()]]),
        "## Class shares per split", "",
        *_md_table(["class", *shares.columns],
                   [[c, *map(_percent, row)] for c, row in zip(shares.index, shares.to_numpy())]),
    ]
    for key in extra_keys:
        lines += _md_value(str(key), card[key], 2)
    return "\n".join(lines).rstrip() + "\n"


# --- spreadsheet formulas -------------------------------------------------------------------

#: What makes a spreadsheet program (Excel, LibreOffice, Google Sheets) read a CSV cell as a
#: formula (OWASP "CSV injection"): = + - @ and a leading tab or carriage return.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def formula_cells(frame: pd.DataFrame) -> dict[str, int]:
    """Cells per text column that begin like a spreadsheet formula (:data:`FORMULA_PREFIXES`)."""
    counts = {}
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            n = int(values.map(lambda v: isinstance(v, str) and v.startswith(FORMULA_PREFIXES)).sum())
            if n:
                counts[str(column)] = n
    return counts


def _excel_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Formula-leading text cells prefixed with ``'``, which spreadsheets show and never run."""
    out = frame.copy()
    for column in formula_cells(frame):
        out[column] = out[column].map(
            lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v)
    return out


def _formula_note(found: dict) -> list[str]:
    if not found["cells"]:
        return []
    where = ", ".join(f"{_cell(c)} {n}" for c, n in found["by_column"].items())
    if found["excel_safe"]:
        what = ("the CSV files prefix them with ' so that spreadsheets show them as text "
                "(the JSONL and Parquet files keep the exact text)")
    else:
        what = ("the files keep the exact text (right for code); a spreadsheet program may run "
                "them as formulas: open the CSV as text, or export again with excel_safe "
                "(curation export --excel-safe, or the Curated page's option)")
    return [f"**Warning**: {found['cells']} cell(s) begin with =, +, -, @, a tab or a carriage "
            f"return ({where}): {what}.", ""]


# --- writing --------------------------------------------------------------------------------

def _write_csv(frame: pd.DataFrame, path: Path, excel_safe: bool = False) -> None:
    (_excel_safe(frame) if excel_safe else frame).to_csv(path, index=False)


def _write_jsonl(frame: pd.DataFrame, path: Path, excel_safe: bool = False) -> None:
    frame.to_json(path, orient="records", lines=True, force_ascii=False, date_format="iso")


def _write_parquet(frame: pd.DataFrame, path: Path, excel_safe: bool = False) -> None:
    frame.to_parquet(path, index=False)


_WRITERS = {"csv": _write_csv, "jsonl": _write_jsonl, "parquet": _write_parquet}


def _file_names(formats: Sequence[str]) -> dict[str, list[str]]:
    return {fmt: ([f"{split}.{fmt}" for split in SPLITS] if fmt in _FILE_FORMATS else [fmt + "/"])
            for fmt in formats}


def _write_all(folder: Path, splits: pd.DataFrame, formats: Sequence[str], card_json: str,
               card_md: str, excel_safe: bool = False,
               labels: Sequence[str] | None = None) -> list[str]:
    """Write every file into ``folder``; return their names, data cards last."""
    columns = [c for c in splits.columns if c not in _ADDED]
    names = []
    for fmt, files in _file_names(formats).items():
        if fmt not in _FILE_FORMATS:  # the datasets folder: every split, ClassLabel labels
            from curation.hf_format import write_dataset_dict

            parts = {s: splits.loc[splits["split"] == s, columns] for s in SPLITS}
            # the label set in its order, then any label the rows use that it lacks, sorted
            order = list(dict.fromkeys([*map(str, labels or []),
                                        *sorted(set(splits["label"].astype(str)))]))
            names += write_dataset_dict(folder, parts, labels=order, card=json.loads(card_json),
                                        card_md=card_md)
            continue
        for split, name in zip(SPLITS, files):
            part = splits.loc[splits["split"] == split, columns].reset_index(drop=True)
            _WRITERS[fmt](part, folder / name, excel_safe)
            names.append(name)
    (folder / CARD_FILES[0]).write_text(card_json, encoding="utf-8")
    (folder / CARD_FILES[1]).write_text(card_md, encoding="utf-8")
    return names + list(CARD_FILES)


def _write_atomically(out_dir: Path, write) -> list[Path]:
    """Run ``write(tmp_folder) -> names`` next to ``out_dir``, then move the files in."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    try:
        names = write(tmp)
        if out_dir.exists():
            for top in dict.fromkeys(Path(name).parts[0] for name in names):
                if (tmp / top).is_dir():  # a format folder (hf): the new one replaces the old
                    shutil.rmtree(out_dir / top, ignore_errors=True)
                os.replace(tmp / top, out_dir / top)
        else:
            tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [out_dir / name for name in names]


def _warn_stale(out_dir: Path, formats: Sequence[str]) -> None:
    stale = [p.name for fmt in _FILE_FORMATS if fmt not in formats for split in SPLITS
             if (p := out_dir / f"{split}.{fmt}").exists()]
    if stale:
        logger.warning("%s holds files from an earlier export that this one did not rewrite: "
                       "%s; delete them or export those formats again.", out_dir, format_list(stale))


# --- the entry point ------------------------------------------------------------------------

def export_dataset(curated: pd.DataFrame, out_dir: str | os.PathLike, *,
                   formats: Sequence[str] = ("csv",), test_size: float = 0.15,
                   val_size: float = 0.15, seed: int = 0, embeddings: np.ndarray | None = None,
                   near_duplicate_threshold: float = 0.95, card: Mapping[str, Any] | None = None,
                   include_ambiguous: bool = False, excel_safe: bool = False,
                   labels: Sequence[str] | None = None) -> ExportResult:
    """Split the curated dataset without leakage, write it per format, and write a data card.

    Parameters
    ----------
    curated : DataFrame
        One row per item with ``item_id``, ``text``, ``label`` and any other
        columns (written after those three). Rows with a non-empty
        ``augmented_from`` (the source ``item_id``) are augmentations: always in
        train, in their source's group, which is pinned to train too. Rows whose
        ``status`` is ``"dropped"`` (and ``"ambiguous"``, unless
        ``include_ambiguous``) are left out.
    out_dir : path
        Folder for ``{train,validation,test}.{format}`` and ``data_card.{json,md}``;
        created if missing, written atomically (see the module docstring).
    formats : sequence of {"csv", "jsonl", "parquet", "hf"}
        ``hf``: a Hugging Face ``DatasetDict`` saved with ``save_to_disk`` in ``out_dir/hf``
        (``label`` a ``ClassLabel`` over ``labels``; the data card as its README.md with a YAML
        header); load it with ``datasets.load_from_disk``.
    test_size, val_size : float
        Shares of the non-augmented rows.
    seed : int
    embeddings : ndarray of shape (len(curated), dim), optional
        Adds cosine >= ``near_duplicate_threshold`` to the near-duplicate test.
    near_duplicate_threshold : float in (0, 1]
    card : mapping, optional
        Extra data-card entries (agreement, flags, decisions, ...): kept as
        given in JSON, rendered as sections, bullets and tables in Markdown.
    include_ambiguous : bool
    labels : sequence of str, optional
        The label set in order: the ``hf`` format's ``ClassLabel`` names (labels the rows use
        that it lacks come after it, sorted). Default: the labels seen, sorted.
    excel_safe : bool
        CSV files only: prefix text cells that begin like a spreadsheet formula (=, +, -, @,
        tab, carriage return) with ``'``. Off by default: the files then hold the exact text,
        which is what code reading them needs; either way the data card counts such cells.

    Returns
    -------
    ExportResult

    Examples
    --------
    >>> import tempfile
    >>> df = pd.DataFrame({"item_id": [f"i{k}" for k in range(20)],
    ...                    "text": [f"text number {k}" for k in range(20)], "label": ["a", "b"] * 10})
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     result = export_dataset(df, Path(tmp) / "out", test_size=0.2, val_size=0.2)
    ...     sorted(p.name for p in result.out_dir.iterdir())
    ['data_card.json', 'data_card.md', 'test.csv', 'train.csv', 'validation.csv']
    >>> result.card["split_sizes"]
    {'train': 12, 'validation': 4, 'test': 4}
    """
    formats = _check_formats(formats)
    if not isinstance(curated, pd.DataFrame):
        raise ValueError(f"curated must be a pandas DataFrame; got {type(curated).__name__}.")
    _check_columns(curated)
    rows, embeddings, excluded = _exported_rows(curated, embeddings, include_ambiguous)
    _check_rows(rows)
    settings = {"seed": seed, "test_size": test_size, "val_size": val_size,
                "near_duplicate_threshold": near_duplicate_threshold,
                "embeddings_used": embeddings is not None, "excluded_rows": excluded,
                "formula_cells": {"cells": 0, "by_column": {}, "excel_safe": bool(excel_safe)}}
    extra = _check_card(card, [*_COMPUTED_CARD_KEYS, *settings])
    stratified_group_split([], test_size=test_size, val_size=val_size)  # checks sizes early
    if not 0 < near_duplicate_threshold <= 1:
        raise ValueError(f"near_duplicate_threshold must be in (0, 1]; got {near_duplicate_threshold}.")
    out_dir = Path(out_dir).absolute()
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"out_dir {out_dir} is a file; pass a folder path.")
    splits, near_dup = _split_rows(rows, embeddings, threshold=near_duplicate_threshold,
                                   test_size=test_size, val_size=val_size, seed=seed)
    found = formula_cells(splits[[c for c in splits.columns if c not in _ADDED]])
    settings["formula_cells"].update(cells=sum(found.values()), by_column=found)
    card_dict = _card(splits, near_dup, _file_names(formats), settings, extra)
    card_json = json.dumps(card_dict, indent=2, ensure_ascii=False, default=_json_default)
    card_dict = json.loads(card_json)
    card_md = _card_markdown(card_dict, splits, list(extra))
    files = _write_atomically(out_dir, lambda tmp: _write_all(tmp, splits, formats, card_json,
                                                              card_md, excel_safe, labels))
    _warn_stale(out_dir, formats)
    logger.info("exported %d rows to %s: %s", len(splits), out_dir, card_dict["split_sizes"])
    return ExportResult(out_dir=out_dir, files=files, splits=splits, card=card_dict)

