"""Load annotation files into the long frame, validating once at the boundary.

Every loader returns the same shape: one row per (item, annotator) with the
columns ``item_id, text, annotator_id, label, gold`` (``gold`` missing where
unknown), all strings. Whatever is wrong with a file raises
:class:`AnnotationFileError` (a ``ValueError``) whose message names the file,
the rows/columns/ids at fault and how to fix it.

Supported layouts (``format=``):

``long``
    one row per annotation: ``item_id, text, annotator_id, label[, gold]``.
``wide``
    one row per item, one column per annotator (``item_id, text[, gold]``
    plus annotator columns; empty cells mean "not labelled by this annotator").
``label-studio``
    a Label Studio JSON export: a list of tasks with ``data``,
    ``annotations[].completed_by`` and a ``choices`` result.

Supported containers: CSV, TSV, JSON Lines, JSON (Label Studio or a list of
records) and Parquet. Nothing that can execute code (pickle, ...) is ever read.
"""

from __future__ import annotations

import io as _io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from curation._messages import MAX_LISTED, format_list, suggest
from curation._schema import ANNOTATOR, GOLD, ITEM, LABEL, LONG_COLUMNS, REQUIRED_COLUMNS, TEXT

__all__ = [
    "AnnotationFileError",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_TEXT_CHARS",
    "FORMATS",
    "load_annotations",
    "read_table",
    "validate_long_frame",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
#: Longest text accepted (characters). Models read a few hundred tokens; a text this long is
#: almost always a broken file (an unclosed quote that swallowed the lines after it).
DEFAULT_MAX_TEXT_CHARS = 100_000
FORMATS = ("auto", "long", "wide", "label-studio")
_FILE_TYPES = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".parquet": "parquet", ".pq": "parquet",
}
_WHERE = "__where__"


class AnnotationFileError(ValueError):
    """A file that cannot be loaded as annotations; the message says where and how to fix it."""


# --------------------------------------------------------------------------- public API


def load_annotations(
    source: str | os.PathLike | bytes | Any,
    *,
    format: str = "auto",
    columns: Mapping[str, str] | None = None,
    annotator_columns: Sequence[str] | None = None,
    label_set: Sequence[str] | None = None,
    encoding: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    file_type: str | None = None,
    name: str | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> pd.DataFrame:
    """Read an annotation file into the validated long frame.

    Parameters
    ----------
    source : path, bytes or binary file-like (e.g. a Streamlit upload)
        The file. A file-like object's ``name`` gives the file type.
    format : {"auto", "long", "wide", "label-studio"}
        Layout; ``auto`` picks Label Studio for task JSON, long when the long
        columns are present, wide otherwise.
    columns : mapping, optional
        Renames ``{column in the file: canonical name}``, e.g.
        ``{"sentence": "text", "worker": "annotator_id"}``. For Label Studio the
        keys are keys of each task's ``data``.
    annotator_columns : sequence of str, optional
        Wide format: the columns holding one annotator each (default: every
        column other than ``item_id``, ``text`` and ``gold``).
    label_set : sequence of str, optional
        The declared labels; any other label (or gold) is an error.
    encoding : str, optional
        Text encoding; by default UTF-8 (with or without BOM) is tried.
    max_bytes : int
        Files larger than this are refused before parsing.
    file_type : {"csv", "tsv", "jsonl", "json", "parquet"}, optional
        Overrides the type guessed from the file name.
    name : str, optional
        Name used in messages (default: the path or the object's ``name``).
    max_text_chars : int
        Longer texts are refused, naming their rows.

    Returns
    -------
    pandas.DataFrame
        Columns ``item_id, text, annotator_id, label, gold``; ``attrs`` holds
        ``source`` and ``label_set`` (declared, else observed labels sorted).

    Raises
    ------
    AnnotationFileError
        With a message naming the file, the place and the fix.
    """
    if format not in FORMATS:
        raise AnnotationFileError(f"format={format!r} is not one of {', '.join(FORMATS)}.")
    raw, name = _read_bytes(source, name=name, max_bytes=max_bytes)
    ftype = file_type or _guess_file_type(name)
    table = _parse(raw, ftype, name=name, encoding=encoding)
    if isinstance(table, list):  # Label Studio tasks
        if format not in ("auto", "label-studio"):
            raise AnnotationFileError(
                f"{name}: holds Label Studio tasks but format={format!r} was asked; "
                "use format='label-studio'.")
        frame = _from_label_studio(table, name=name, columns=columns)
    else:
        frame = _from_table(table, name=name, format=format, columns=columns,
                            annotator_columns=annotator_columns)
    return validate_long_frame(frame, name=name, label_set=label_set, max_text_chars=max_text_chars)


def read_table(source: str | os.PathLike | bytes | Any, *, encoding: str | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES, file_type: str | None = None,
               name: str | None = None) -> pd.DataFrame:
    """Read a CSV/TSV/JSONL/JSON-records/Parquet table with the same guards as
    :func:`load_annotations` (size limit before parsing, encoding check, the file type from the
    name), for files that are not annotations (e.g. a truth file). Columns as in the file,
    CSV/TSV cells as strings.

    >>> read_table(b"item_id,label\\na,p\\n", name="t.csv").to_dict(orient="records")
    [{'item_id': 'a', 'label': 'p'}]
    """
    raw, name = _read_bytes(source, name=name, max_bytes=max_bytes)
    table = _parse(raw, file_type or _guess_file_type(name), name=name, encoding=encoding)
    if isinstance(table, list):
        raise AnnotationFileError(f"{name}: holds Label Studio tasks; a table (one record per "
                                  "row) was expected here.")
    return table.drop(columns=[_WHERE])


def validate_long_frame(
    frame: pd.DataFrame, *, name: str = "data", label_set: Sequence[str] | None = None,
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS,
) -> pd.DataFrame:
    """Check a long frame and return it normalised (stripped strings, ``gold`` column).

    Exact duplicate rows are dropped (logged); everything else that is wrong
    raises :class:`AnnotationFileError` naming the rows or ids.
    """
    frame = frame.copy()
    if _WHERE not in frame.columns:
        frame[_WHERE] = [f"row {i + 1}" for i in range(len(frame))]
    _require_columns(frame, REQUIRED_COLUMNS, name=name, hint="")
    if GOLD not in frame.columns:
        frame[GOLD] = None
    if frame.empty:
        raise AnnotationFileError(f"{name}: has no annotation rows; add at least one row.")
    _check_text(frame, name, max_text_chars)
    for col in (ITEM, ANNOTATOR, LABEL):
        frame[col] = _clean_ids(frame, col, name)
    frame[GOLD] = _clean_gold(frame[GOLD])
    _check_one_text_per_item(frame, name)
    frame = _drop_exact_duplicates(frame, name)
    _check_one_label_per_annotator(frame, name)
    labels = _check_label_set(frame, name, label_set)
    out = frame.loc[:, list(LONG_COLUMNS)].reset_index(drop=True)
    out.attrs.update(source=name, label_set=labels)
    return out


# --------------------------------------------------------------------------- reading bytes


def _read_bytes(source: Any, *, name: str | None, max_bytes: int) -> tuple[bytes, str]:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        name = name or str(path)
        if not path.is_file():
            raise AnnotationFileError(f"{name}: no such file; check the path.")
        _check_size(path.stat().st_size, name, max_bytes)
        return path.read_bytes(), name
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif hasattr(source, "getvalue"):
        data = source.getvalue()
    elif hasattr(source, "read"):
        data = source.read(max_bytes + 1)
    else:
        raise AnnotationFileError(
            f"cannot read annotations from a {type(source).__name__}; pass a path, bytes or a file.")
    name = name or str(getattr(source, "name", "") or "uploaded file")
    _check_size(len(data), name, max_bytes)
    return data, name


def _size(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:.1f} MiB" if n_bytes >= 2**20 else f"{n_bytes / 1024:.1f} KiB"


def _check_size(n_bytes: int, name: str, max_bytes: int) -> None:
    if n_bytes > max_bytes:
        raise AnnotationFileError(
            f"{name}: is {_size(n_bytes)}, over the {_size(max_bytes)} limit; "
            "split the file, or raise the limit (max_bytes=..., CLI --max-mb, app: "
            "CURATION_MAX_UPLOAD_MB).")


def _guess_file_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix not in _FILE_TYPES:
        raise AnnotationFileError(
            f"{name}: cannot tell the file type from {suffix or 'a name with no extension'!r}; "
            f"use one of {', '.join(sorted(_FILE_TYPES))} or pass file_type=... (CLI --file-type).")
    return _FILE_TYPES[suffix]


def _decode(raw: bytes, name: str, encoding: str | None) -> str:
    tried = [encoding] if encoding else ["utf-8", "utf-8-sig"]
    for enc in tried:
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError as err:
            last = err
            continue
        except LookupError:
            raise AnnotationFileError(f"{name}: unknown encoding {enc!r}; use e.g. 'utf-8' or 'cp1252'.")
        return text.lstrip("\ufeff")
    line = raw[: last.start].count(b"\n") + 1
    bad = raw[last.start: last.start + 1]
    guess = _guess_encoding(raw)
    raise AnnotationFileError(
        f"{name}: byte {bad!r} at line {line} (offset {last.start}) is not valid "
        f"{' or '.join(tried)}; the file looks like {guess}: pass encoding={guess!r} "
        f"(CLI --encoding {guess}), or re-save the file as UTF-8.")


def _guess_encoding(raw: bytes) -> str:
    for enc in ("utf-16", "cp1252"):
        try:
            text = raw.decode(enc)
        except UnicodeDecodeError:
            continue
        if enc != "utf-16" or raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            if text.isprintable() or "\n" in text:
                return enc
    return "latin-1"


# --------------------------------------------------------------------------- parsing containers


def _parse(raw: bytes, ftype: str, *, name: str, encoding: str | None) -> pd.DataFrame | list:
    if ftype == "parquet":
        return _parse_parquet(raw, name)
    text = _decode(raw, name, encoding)
    if ftype in ("csv", "tsv"):
        return _parse_delimited(text, name, sep="," if ftype == "csv" else "\t")
    if ftype == "jsonl":
        return _records_frame(_parse_jsonl(text, name), name, first_line=1, unit="line")
    if ftype == "json":
        return _parse_json(text, name)
    raise AnnotationFileError(
        f"{name}: file_type={ftype!r} is not supported; use csv, tsv, jsonl, json or parquet.")


def _parse_delimited(text: str, name: str, *, sep: str) -> pd.DataFrame:
    try:
        frame = pd.read_csv(_io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                            skip_blank_lines=True)
    except pd.errors.EmptyDataError:
        raise AnnotationFileError(f"{name}: is empty; it needs a header row and annotation rows.")
    except pd.errors.ParserError as err:
        raise AnnotationFileError(
            f"{name}: cannot be parsed as {'CSV' if sep == ',' else 'TSV'} ({err}); check the "
            "quoting of texts with separators or line breaks, or pass the right file type.") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    frame[_WHERE] = [f"line {i + 2}" for i in range(len(frame))]
    return frame


def _parse_jsonl(text: str, name: str) -> list[tuple[int, Any]]:
    records = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((lineno, json.loads(line)))
        except json.JSONDecodeError as err:
            raise AnnotationFileError(
                f"{name}: line {lineno} is not valid JSON ({err.msg} at column {err.colno}); "
                "each line must be one JSON object.") from None
    return records


def _parse_json(text: str, name: str) -> pd.DataFrame | list:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise AnnotationFileError(
            f"{name}: is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno}).") from None
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        data = data["tasks"]
    if not isinstance(data, list):
        raise AnnotationFileError(
            f"{name}: JSON must be a list of Label Studio tasks or of records, "
            f"not a {type(data).__name__}.")
    if data and all(isinstance(t, dict) and "data" in t for t in data):
        return data
    return _records_frame(list(enumerate(data, start=1)), name, first_line=1, unit="record")


def _records_frame(records: list[tuple[int, Any]], name: str, *, first_line: int,
                   unit: str) -> pd.DataFrame:
    bad = [n for n, r in records if not isinstance(r, dict)]
    if bad:
        raise AnnotationFileError(
            f"{name}: {unit} {format_list(bad)} is not a JSON object; each {unit} must be an object "
            "with the annotation's fields.")
    frame = pd.DataFrame([r for _, r in records])
    frame[_WHERE] = [f"{unit} {n}" for n, _ in records]
    return frame


def _parse_parquet(raw: bytes, name: str) -> pd.DataFrame:
    try:
        frame = pd.read_parquet(_io.BytesIO(raw))
    except Exception as err:  # pyarrow raises several unrelated types
        raise AnnotationFileError(
            f"{name}: cannot be read as Parquet ({type(err).__name__}: {err}); check the file "
            "type or re-export it.") from None
    frame = frame.reset_index(drop=True)
    frame.columns = [str(c) for c in frame.columns]
    frame[_WHERE] = [f"row {i + 1}" for i in range(len(frame))]
    return frame


# --------------------------------------------------------------------------- layouts


def _from_table(frame: pd.DataFrame, *, name: str, format: str, columns: Mapping[str, str] | None,
                annotator_columns: Sequence[str] | None) -> pd.DataFrame:
    frame = _apply_mapping(frame, columns, name)
    if format == "auto":
        has_long = ANNOTATOR in frame.columns or LABEL in frame.columns
        format = "long" if has_long or not {ITEM, TEXT} <= set(frame.columns) else "wide"
        logger.info("%s: read as %s format", name, format)
    if format == "label-studio":
        raise AnnotationFileError(
            f"{name}: format='label-studio' needs a Label Studio JSON export (a list of tasks "
            "with 'data' and 'annotations').")
    if format == "wide":
        return _from_wide(frame, name=name, annotator_columns=annotator_columns)
    _require_columns(frame, REQUIRED_COLUMNS, name=name,
                     hint=" (long format; for one column per annotator use format='wide')")
    return frame


def _apply_mapping(frame: pd.DataFrame, columns: Mapping[str, str] | None, name: str) -> pd.DataFrame:
    if not columns:
        return frame
    unknown_targets = sorted(set(columns.values()) - set(LONG_COLUMNS))
    if unknown_targets:
        raise AnnotationFileError(
            f"column mapping targets {unknown_targets} are not canonical names; map to one of "
            f"{', '.join(LONG_COLUMNS)}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AnnotationFileError(
            f"{name}: the column mapping names {_missing_msg(missing, frame.columns)}; "
            "fix the mapping's keys.")
    return frame.rename(columns=dict(columns))


def _from_wide(frame: pd.DataFrame, *, name: str,
               annotator_columns: Sequence[str] | None) -> pd.DataFrame:
    _require_columns(frame, (ITEM, TEXT), name=name, hint=" (wide format)")
    fixed = {ITEM, TEXT, GOLD, _WHERE}
    annotators = list(annotator_columns) if annotator_columns else [
        c for c in frame.columns if c not in fixed]
    missing = [c for c in annotators if c not in frame.columns]
    if missing:
        raise AnnotationFileError(
            f"{name}: annotator columns {_missing_msg(missing, frame.columns)}; "
            "fix annotator_columns.")
    if not annotators:
        raise AnnotationFileError(
            f"{name}: wide format needs at least one annotator column beside item_id and text "
            "(or use long format with annotator_id and label columns).")
    keep = [c for c in (ITEM, TEXT, GOLD, _WHERE) if c in frame.columns]
    long = frame.melt(id_vars=keep, value_vars=annotators, var_name=ANNOTATOR, value_name=LABEL)
    blank = long[LABEL].map(_is_blank)
    _check_items_have_labels(long, blank, name)
    long = long.loc[~blank].copy()
    long[_WHERE] = long[_WHERE] + ", column '" + long[ANNOTATOR].astype(str) + "'"
    return long


def _check_items_have_labels(long: pd.DataFrame, blank: pd.Series, name: str) -> None:
    unlabelled = blank.groupby(long[_WHERE]).all()
    if unlabelled.any():
        where = unlabelled.index[unlabelled].tolist()
        raise AnnotationFileError(
            f"{name}: {format_list(where)} has no label in any annotator column (missing labels); "
            "add at least one label or remove the row.")


def _from_label_studio(tasks: list, *, name: str, columns: Mapping[str, str] | None) -> pd.DataFrame:
    text_key = next((k for k, v in (columns or {}).items() if v == TEXT), TEXT)
    rows = []
    for pos, task in enumerate(tasks, start=1):
        rows.extend(_label_studio_rows(task, pos, name, text_key))
    if not rows:
        raise AnnotationFileError(f"{name}: the Label Studio export has no completed annotations.")
    return pd.DataFrame(rows)


def _label_studio_rows(task: dict, pos: int, name: str, text_key: str) -> list[dict]:
    task_id = task.get("id", pos)
    data = task.get("data") or {}
    if text_key not in data:
        raise AnnotationFileError(
            f"{name}: task {task_id} has no data[{text_key!r}]; its data keys are "
            f"{sorted(data)}{suggest(text_key, list(data))}. Pass columns={{'<key>': 'text'}}.")
    rows = []
    for ann in task.get("annotations") or []:
        if ann.get("was_cancelled"):
            continue
        where = f"task {task_id}, annotation {ann.get('id', '?')}"
        rows.append({ITEM: str(task_id), TEXT: data[text_key], ANNOTATOR: _ls_annotator(ann),
                     LABEL: _ls_choice(ann, name, where), GOLD: None, _WHERE: where})
    return rows


def _ls_annotator(ann: dict) -> str | None:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return None if who is None else str(who)


def _ls_choice(ann: dict, name: str, where: str) -> str | None:
    choices = [c for r in ann.get("result") or [] if r.get("type") == "choices"
               for c in (r.get("value") or {}).get("choices", [])]
    if len(choices) > 1:
        raise AnnotationFileError(
            f"{name}: {where} has several choices {choices}; only single-label classification "
            "is supported: keep one choice per annotation.")
    return choices[0] if choices else None


# --------------------------------------------------------------------------- value checks


def _require_columns(frame: pd.DataFrame, required: Sequence[str], *, name: str, hint: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise AnnotationFileError(
            f"{name}: {_missing_msg(missing, [c for c in frame.columns if c != _WHERE])}{hint}. "
            "Rename the column in the file, or map it: columns={'<your column>': '<name>'} "
            "(CLI --map your_column=name).")


def _missing_msg(missing: Sequence[str], available: Sequence[str]) -> str:
    parts = [f"column {m!r} is missing{suggest(m, list(available))}" for m in missing]
    return "; ".join(parts) + f" (columns present: {', '.join(map(str, available)) or 'none'})"


def _is_blank(value: Any) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return True
    return isinstance(value, str) and not value.strip()


def _check_text(frame: pd.DataFrame, name: str, max_chars: int = DEFAULT_MAX_TEXT_CHARS) -> None:
    values = frame[TEXT]
    not_str = ~values.map(lambda v: isinstance(v, str) or _is_blank(v))
    if not_str.any():
        bad = frame.loc[not_str]
        raise AnnotationFileError(
            f"{name}: column 'text' holds non-text values at {format_list(bad[_WHERE].tolist())} "
            f"(e.g. {bad[TEXT].iloc[0]!r} of type {type(bad[TEXT].iloc[0]).__name__}); "
            "text must be a string - check the column mapping.")
    empty = values.map(_is_blank)
    if empty.any():
        raise AnnotationFileError(
            f"{name}: empty text at {format_list(frame.loc[empty, _WHERE].tolist())}; "
            "fill in the text or remove those rows.")
    long = values.str.len() > max_chars
    if long.any():
        raise AnnotationFileError(
            f"{name}: text longer than {max_chars:,} characters at "
            f"{format_list(frame.loc[long, _WHERE].tolist())} (the longest has "
            f"{int(values.str.len().max()):,}); a text this long is usually an unclosed quote that "
            "swallowed the lines after it - check the quoting, or split the document, or raise "
            "the limit (max_text_chars=..., CLI --max-text-chars).")


def _clean_ids(frame: pd.DataFrame, col: str, name: str) -> pd.Series:
    values = frame[col]
    blank = values.map(_is_blank)
    if blank.any():
        what = "missing labels" if col == LABEL else f"missing {col}"
        raise AnnotationFileError(
            f"{name}: {what} at {format_list(frame.loc[blank, _WHERE].tolist())}; "
            f"fill in column {col!r} or remove those rows.")
    nested = values.map(lambda v: isinstance(v, (list, dict, tuple, set)))
    if nested.any():
        raise AnnotationFileError(
            f"{name}: column {col!r} holds lists/objects at "
            f"{format_list(frame.loc[nested, _WHERE].tolist())}; give one plain value per cell.")
    return values.map(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip())


def _clean_gold(values: pd.Series) -> pd.Series:
    return values.map(lambda v: None if _is_blank(v) else str(v).strip()).astype(object)


def _check_one_text_per_item(frame: pd.DataFrame, name: str) -> None:
    n_texts = frame.groupby(ITEM, sort=False)[TEXT].nunique()
    bad = n_texts.index[n_texts > 1].tolist()
    if bad:
        raise AnnotationFileError(
            f"{name}: item ids {format_list(bad)} appear with different texts; an item id must "
            "name one text - give the other texts their own ids.")


def _drop_exact_duplicates(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    dup = frame.duplicated(subset=[ITEM, ANNOTATOR, LABEL], keep="first")
    if dup.any():
        logger.warning("%s: dropped %d repeated identical annotations (%s)", name, int(dup.sum()),
                       format_list(frame.loc[dup, _WHERE].tolist()))
    return frame.loc[~dup]


def _check_one_label_per_annotator(frame: pd.DataFrame, name: str) -> None:
    dup = frame.duplicated(subset=[ITEM, ANNOTATOR], keep=False)
    if not dup.any():
        return
    clashes = frame.loc[dup].groupby([ITEM, ANNOTATOR], sort=False)
    parts = [f"item {item!r} annotator {ann!r}: {' vs '.join(map(repr, g[LABEL]))} "
             f"({', '.join(g[_WHERE])})" for (item, ann), g in list(clashes)[:MAX_LISTED]]
    raise AnnotationFileError(
        f"{name}: one annotator gave two different labels to one item - {'; '.join(parts)}"
        f"{' ...' if clashes.ngroups > MAX_LISTED else ''}. Keep one label per annotator "
        "and item (the latest decision), or give the second pass its own annotator_id.")


def _check_label_set(frame: pd.DataFrame, name: str, label_set: Sequence[str] | None) -> list[str]:
    observed = sorted(set(frame[LABEL]) | set(frame[GOLD].dropna()))
    if label_set is None:
        return observed
    allowed = [str(x) for x in label_set]
    for col in (LABEL, GOLD):
        values = frame[col]
        bad = values.notna() & ~values.isin(allowed)
        if bad.any():
            first = values[bad].iloc[0]
            raise AnnotationFileError(
                f"{name}: column {col!r} has labels outside the label set {allowed}: "
                f"{sorted(set(values[bad]))} at {format_list(frame.loc[bad, _WHERE].tolist())}"
                f"{suggest(first, allowed)} Correct them, or add them to the label set.")
    return allowed
