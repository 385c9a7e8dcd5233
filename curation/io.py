"""Load annotation files into the long frame, validating once at the boundary.

Every loader returns the same shape: one row per (item, annotator) with the
columns ``item_id, text, annotator_id, label, gold`` (``gold`` missing where
unknown), all strings. Whatever is wrong with a file raises
:class:`AnnotationFileError` (a ``ValueError``) whose message names the file,
the rows/columns/ids at fault and how to fix it; no other exception escapes.

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

A file's size on disk says nothing about what it expands to (a 20 KiB
dictionary-encoded Parquet file can hold 20 GiB of text, a 48 MB CSV a million
columns), so the limits below are checked before the values are built: rows,
columns and cells from the CSV header or the Parquet footer, JSON nesting by a
scan of the brackets, Parquet row groups and decoded bytes group by group.
Each limit is a keyword of :func:`load_annotations` that its message names.
"""

from __future__ import annotations

import contextlib
import io as _io
import json
import logging
import math
import numbers
import os
import re
import reprlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.messages import MAX_LISTED, format_list, suggest
from curation.schema import (
    ANNOTATOR,
    GOLD,
    ITEM,
    LABEL,
    LONG_COLUMNS,
    REQUIRED_COLUMNS,
    TEXT,
    TEXT_PAIR,
    has_pairs,
    pair_key,
)

__all__ = [
    "AnnotationFileError",
    "declared_labels",
    "loaded_from",
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_CELLS",
    "DEFAULT_MAX_COLUMNS",
    "DEFAULT_MAX_DECODED_BYTES",
    "DEFAULT_MAX_DEPTH",
    "DEFAULT_MAX_ID_CHARS",
    "DEFAULT_MAX_ROWS",
    "DEFAULT_MAX_ROW_GROUPS",
    "DEFAULT_MAX_TEXT_CHARS",
    "FORMATS",
    "LIMITS",
    "limit_variable",
    "effective_limits",
    "limits_from_env",
    "load_annotations",
    "parse_limit",
    "read_table",
    "validate_long_frame",
]

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
#: Longest text accepted (characters). Models read a few hundred tokens; a text this long is
#: almost always a broken file (an unclosed quote that swallowed the lines after it).
DEFAULT_MAX_TEXT_CHARS = 100_000
#: Rows (annotations) in one file. At the 200 MiB size limit a CSV row of an id, a short text, an
#: annotator and a label is ~100 bytes, so this is about what ``max_bytes`` lets through; the
#: largest public crowd-labelled sets hold 1-2 million annotations.
DEFAULT_MAX_ROWS = 2_000_000
#: Columns in one file. A long file has 4-6; a wide file one per annotator, and a team of more
#: than a few hundred annotators exports the long layout. pandas spends ~3.5 KB and super-linear
#: time per column (50,000 columns: 8 s), so a million columns is gigabytes and hours.
DEFAULT_MAX_COLUMNS = 1_000
#: Rows x columns: 2 million rows of 10 columns. 20 million short text cells take ~0.4 GB.
DEFAULT_MAX_CELLS = 20_000_000
#: JSON nesting. A Label Studio export nests 8 levels, a record 1-2; Python's JSON parser
#: recurses once per level and fails near 1,000 with a RecursionError.
DEFAULT_MAX_DEPTH = 64
#: Parquet row groups. Writers put 64 Ki-1 Mi rows in a group (pyarrow 1 Mi, DuckDB 122,880), so
#: 2 million rows make a few dozen; every group costs footer metadata and a read call.
DEFAULT_MAX_ROW_GROUPS = 10_000
#: Bytes a Parquet file's values take once decoded, a dictionary value counted each time it is
#: used: 2 million annotations of 1,000 characters. A CSV cannot hold more than ``max_bytes``,
#: whereas a 20 KiB dictionary-encoded Parquet file can decode to 20 GiB.
DEFAULT_MAX_DECODED_BYTES = 2 * 1024**3
#: Characters in an item id, annotator id, label or gold label. These are names (a UUID has 36,
#: a URL 100-200); a longer value is a text in the wrong column.
DEFAULT_MAX_ID_CHARS = 512
FORMATS = ("auto", "long", "wide", "label-studio")
_FILE_TYPES = {
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".txt": "tsv",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json",
    ".parquet": "parquet", ".pq": "parquet",
}
_WHERE = "__where__"
_FIX_SPLIT = "split the file and import the parts one after the other"
_FIX_COLUMNS = ("check that this is an annotation file, and a CSV's separator (a wide file has "
                "one column per annotator; a larger team should export the long layout)")
_FIX_LABEL_STUDIO = "fix the export (Label Studio: Export > JSON) or the script that wrote it"


class AnnotationFileError(ValueError):
    """A file that cannot be loaded as annotations; the message says where and how to fix it."""


@dataclass(frozen=True)
class _Limits:
    """What a file may expand to; each field is the keyword of :func:`load_annotations`."""

    max_rows: int = DEFAULT_MAX_ROWS
    max_columns: int = DEFAULT_MAX_COLUMNS
    max_cells: int = DEFAULT_MAX_CELLS
    max_depth: int = DEFAULT_MAX_DEPTH
    max_row_groups: int = DEFAULT_MAX_ROW_GROUPS
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    max_id_chars: int = DEFAULT_MAX_ID_CHARS
    max_text_chars: int = DEFAULT_MAX_TEXT_CHARS

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise AnnotationFileError(f"{field.name}={value!r} must be a whole number of at "
                                          "least 1.")

    @classmethod
    def resolve(cls, given: Mapping[str, int | None]) -> _Limits:
        """The limits asked for, the environment's (``CURATION_MAX_ROWS``...) where none was."""
        from_env = limits_from_env()
        return cls(**{k: from_env.get(k, getattr(cls, k)) if given.get(k) is None else given[k]
                      for k in LIMITS})


#: The keywords of :func:`load_annotations` that bound what a file may expand to.
LIMITS = tuple(field.name for field in fields(_Limits))
#: Their defaults, for a file of our own (the bundled demo) that the environment must not refuse.
DEFAULT_LIMITS = {field.name: field.default for field in fields(_Limits)}


def limit_variable(keyword: str) -> str:
    """The environment variable that sets a limit for the app and the CLIs: ``CURATION_MAX_ROWS``."""
    return f"CURATION_{keyword.upper()}"


def limits_from_env(environ: Mapping[str, str] | None = None) -> dict[str, int]:
    """The limits an operator set in the environment (``CURATION_MAX_ROWS=5000000``...).

    An explicit keyword of :func:`load_annotations` (or ``--limit`` on the command line) wins
    over these; unset variables keep the defaults. A value that is not a whole number of at
    least 1 raises :class:`AnnotationFileError` naming the variable.

    >>> limits_from_env({"CURATION_MAX_ROWS": "5_000_000", "HOME": "/root"})
    {'max_rows': 5000000}
    """
    environ = os.environ if environ is None else environ
    out = {}
    for keyword in LIMITS:
        raw = environ.get(limit_variable(keyword), "").strip()
        if raw:
            out[keyword] = parse_limit(raw, limit_variable(keyword))
    return out


def parse_limit(raw: str, what: str) -> int:
    """``"2_000_000"`` -> 2000000; anything but a whole number >= 1 names ``what`` and the fix."""
    try:
        value = int(raw.replace(",", "_"))
    except ValueError:
        value = 0
    if value < 1:
        raise AnnotationFileError(f"{what}={raw!r} is not a whole number of at least 1; give e.g. "
                                  "5000000, or leave it out for the default.")
    return value


def effective_limits() -> dict[str, int]:
    """Each limit as :func:`load_annotations` applies it when no keyword is given: the
    environment's value (``CURATION_MAX_ROWS``...) where set, else the default."""
    limits = _Limits.resolve({})
    return {keyword: getattr(limits, keyword) for keyword in LIMITS}


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
    max_text_chars: int | None = None,
    max_rows: int | None = None,
    max_columns: int | None = None,
    max_cells: int | None = None,
    max_depth: int | None = None,
    max_row_groups: int | None = None,
    max_decoded_bytes: int | None = None,
    max_id_chars: int | None = None,
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
    max_rows, max_columns, max_cells : int
        Most rows (annotations, also after the wide layout is unfolded), columns
        and rows x columns; checked from the CSV header, the Parquet footer or the
        parsed JSON before a frame is built.
    max_depth : int
        Deepest JSON nesting, checked before the JSON parser recurses.
    max_row_groups, max_decoded_bytes : int
        Parquet: most row groups, and most bytes the values decode to (a
        dictionary-encoded value counted each time it is used).
    max_id_chars : int
        Longest item id, annotator id, label or gold label.

        Each limit left out (None) is taken from the environment variable
        ``CURATION_<KEYWORD>`` (e.g. ``CURATION_MAX_ROWS``, see :func:`limits_from_env`), else
        its ``DEFAULT_``. The command line sets them with ``--limit max_rows=5000000``.

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
    limits = _Limits.resolve(dict(max_rows=max_rows, max_columns=max_columns, max_cells=max_cells,
                                  max_depth=max_depth, max_row_groups=max_row_groups,
                                  max_decoded_bytes=max_decoded_bytes, max_id_chars=max_id_chars,
                                  max_text_chars=max_text_chars))
    if file_type == "hf" or (isinstance(source, (str, os.PathLike)) and Path(source).is_dir()):
        frame = _from_table(_read_dataset_folder(source, name or str(source), limits),
                            name=name or str(source), format=format, columns=columns,
                            annotator_columns=annotator_columns, limits=limits)
        return validate_long_frame(frame, name=name or str(source), label_set=label_set,
                                   max_text_chars=limits.max_text_chars,
                                   max_id_chars=limits.max_id_chars)
    raw, name = _read_bytes(source, name=name, max_bytes=max_bytes)
    ftype = file_type or _guess_file_type(name)
    table = _parse(raw, ftype, name=name, encoding=encoding, limits=limits)
    if isinstance(table, list):  # Label Studio tasks
        if format not in ("auto", "label-studio"):
            raise AnnotationFileError(
                f"{name}: holds Label Studio tasks but format={format!r} was asked; "
                "use format='label-studio'.")
        frame = _from_label_studio(table, name=name, columns=columns, limits=limits)
    else:
        frame = _from_table(table, name=name, format=format, columns=columns,
                            annotator_columns=annotator_columns, limits=limits)
    return validate_long_frame(frame, name=name, label_set=label_set,
                               max_text_chars=limits.max_text_chars, max_id_chars=limits.max_id_chars)


def read_table(source: str | os.PathLike | bytes | Any, *, encoding: str | None = None,
               max_bytes: int = DEFAULT_MAX_BYTES, file_type: str | None = None,
               name: str | None = None) -> pd.DataFrame:
    """Read a CSV/TSV/JSONL/JSON-records/Parquet table with the same guards as
    :func:`load_annotations` (size limit before parsing, the limits on rows, columns,
    nesting and decoded size - the environment's where set -, encoding check, the file type from the name), for files that are
    not annotations (e.g. a truth file). Columns as in the file, CSV/TSV cells as strings.

    >>> read_table(b"item_id,label\\na,p\\n", name="t.csv").to_dict(orient="records")
    [{'item_id': 'a', 'label': 'p'}]
    """
    raw, name = _read_bytes(source, name=name, max_bytes=max_bytes)
    table = _parse(raw, file_type or _guess_file_type(name), name=name, encoding=encoding,
                   limits=_Limits.resolve({}))
    if isinstance(table, list):
        raise AnnotationFileError(f"{name}: holds Label Studio tasks; a table (one record per "
                                  "row) was expected here.")
    return table.drop(columns=[_WHERE])


def validate_long_frame(
    frame: pd.DataFrame, *, name: str = "data", label_set: Sequence[str] | None = None,
    max_text_chars: int | None = None, max_id_chars: int | None = None,
) -> pd.DataFrame:
    """Check a long frame and return it normalised (stripped strings, ``gold`` column).

    Exact duplicate rows are dropped (logged); everything else that is wrong
    raises :class:`AnnotationFileError` naming the rows or ids.
    """
    limits = _Limits.resolve(dict(max_text_chars=max_text_chars, max_id_chars=max_id_chars))
    frame = frame.reset_index(drop=True)  # a copy, with positions as labels
    if _WHERE not in frame.columns:
        frame[_WHERE] = [f"row {i + 1}" for i in range(len(frame))]
    _require_columns(frame, REQUIRED_COLUMNS, name=name, hint="")
    if GOLD not in frame.columns:
        frame[GOLD] = None
    if frame.empty:
        raise AnnotationFileError(f"{name}: has no annotation rows; add at least one row.")
    _check_text(frame, name, limits.max_text_chars)
    if has_pairs(frame):
        _check_text(frame, name, limits.max_text_chars, column=TEXT_PAIR)
    for col in (ITEM, ANNOTATOR, LABEL):
        frame[col] = _clean_ids(frame, col, name, limits.max_id_chars)
    frame[GOLD] = _clean_gold(frame, name, limits.max_id_chars)
    _check_one_text_per_item(frame, name)
    frame = _drop_exact_duplicates(frame, name)
    _check_one_label_per_annotator(frame, name)
    labels = _check_label_set(frame, name, label_set)
    out = frame.loc[:, _long_columns(frame)].reset_index(drop=True)
    out.attrs.update(source=name, label_set=labels)  # read with declared_labels(frame)
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
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20)):
        if n_bytes >= scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes / 1024:.1f} KiB"


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
    # a UTF-16 byte-order mark declares the encoding (as UTF-8's does): read it, not a guess
    bom16 = raw[:2] in (b"\xff\xfe", b"\xfe\xff")
    tried = [encoding] if encoding else ["utf-8", "utf-8-sig"] + (["utf-16"] if bom16 else [])
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
    where = (f"{name}: byte {bad!r} at line {line} (offset {last.start}) is not valid "
             f"{' or '.join(tried)}; ")
    if guess is None:
        raise AnnotationFileError(
            where + "its encoding could not be told: pass the one it was saved in (e.g. "
            "encoding='gb18030', 'big5', 'cp1252'; CLI --encoding), or re-save the file as UTF-8.")
    raise AnnotationFileError(
        where + f"the file looks like {guess}: pass encoding={guess!r} (CLI --encoding {guess}), "
        "or re-save the file as UTF-8.")


#: Unicode ranges of Latin-script text (charset-normalizer's names), and the multi-byte
#: encodings it can report: Latin text in a one-byte code page is suggested as cp1252.
_LATIN_RANGES = {"Basic Latin", "Control character", "Latin-1 Supplement", "Latin Extended-A",
                 "Latin Extended-B", "General Punctuation", "Currency Symbols",
                 "Letterlike Symbols"}
_MULTIBYTE = {"gb18030", "gb2312", "gbk", "big5", "big5hkscs", "cp932", "cp949", "cp950",
              "shift-jis", "euc-jp", "euc-kr", "iso2022-jp", "hz", "utf-16", "utf-32",
              "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"}
#: Bytes of a file that the encoding guess reads (enough for a few thousand lines).
_GUESS_BYTES = 256 * 1024


def _guess_encoding(raw: bytes) -> str | None:
    """The encoding charset-normalizer finds most coherent for the file's first bytes (GB18030
    for GBK Chinese, Big5, cp1252, ...), when the whole file then decodes; else None. Never
    latin-1 by default: every byte string "decodes" as latin-1, garbling Chinese silently."""
    from charset_normalizer import from_bytes

    best = from_bytes(raw[:_GUESS_BYTES]).best()
    if best is None or best.encoding in ("ascii", "utf_8"):
        return None
    encoding = best.encoding.replace("_", "-")
    if set(best.alphabets) <= _LATIN_RANGES and encoding not in _MULTIBYTE:
        # Latin script in a one-byte code page: a few accented letters cannot tell cp775 from
        # cp850 from cp1252; Windows' Western page is the one such files are saved in
        encoding = "cp1252"
    try:
        raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    return encoding


# --------------------------------------------------------------------------- limits


def _over_limit(name: str, phrase: str, keyword: str, limit: int, fix: str, *,
                shown: str | None = None) -> AnnotationFileError:
    """``"f.csv: <phrase>, over the limit of 1,000 (max_columns=1000); <fix>, or raise it"``."""
    return AnnotationFileError(
        f"{name}: {phrase}, over the limit of {shown or f'{limit:,}'} ({keyword}={limit}); "
        f"{fix}, or raise the limit ({_how_to_raise(keyword)}).")


def _how_to_raise(*keywords: str) -> str:
    """Where each kind of user raises a limit: the library, the CLIs, the app's operator."""
    return (f"{', '.join(f'{k}=...' for k in keywords)} in load_annotations; on the command line "
            f"{' '.join(f'--limit {k}=N' for k in keywords)}; for the app "
            f"{', '.join(f'{limit_variable(k)}=N' for k in keywords)} in its environment")


def _check_shape(name: str, limits: _Limits, *, rows: int, columns: int, where: str = "",
                 noun: str = "rows", at_least: bool = False) -> None:
    """Refuse ``rows`` x ``columns`` over max_columns, max_rows or max_cells, before building it.

    ``where`` says where the count comes from (e.g. ``" (in the header line)"``); ``at_least``
    when reading stopped at the limit, so the true count is unknown.
    """
    some = "at least " if at_least else ""
    if columns > limits.max_columns:
        raise _over_limit(name, f"has {columns:,} columns{where}", "max_columns",
                          limits.max_columns, _FIX_COLUMNS)
    if rows > limits.max_rows:
        raise _over_limit(name, f"has {some}{rows:,} {noun}{where}", "max_rows", limits.max_rows,
                          _FIX_SPLIT)
    if rows * columns > limits.max_cells:
        raise _over_limit(name, f"has {some}{rows:,} {noun} x {columns:,} columns = "
                          f"{some}{rows * columns:,} cells{where}", "max_cells", limits.max_cells,
                          _FIX_SPLIT)


# --------------------------------------------------------------------------- parsing containers


def _parse(raw: bytes, ftype: str, *, name: str, encoding: str | None,
           limits: _Limits) -> pd.DataFrame | list:
    if ftype == "parquet":
        return _parse_parquet(raw, name, limits)
    text = _decode(raw, name, encoding)
    if ftype in ("csv", "tsv"):
        return _parse_delimited(text, name, sep="," if ftype == "csv" else "\t", limits=limits)
    if ftype == "jsonl":
        return _records_frame(_parse_jsonl(text, name, limits), name, unit="line", limits=limits)
    if ftype == "json":
        return _parse_json(text, name, limits)
    raise AnnotationFileError(
        f"{name}: file_type={ftype!r} is not supported; use csv, tsv, jsonl, json or parquet.")


_FIRST_NON_BLANK_LINE = re.compile(r"^.*\S.*$", re.MULTILINE)


def _parse_delimited(text: str, name: str, *, sep: str, limits: _Limits) -> pd.DataFrame:
    """Count the header's fields first, then let pandas read no more rows than the limits allow."""
    width = _header_width(text, sep)
    _check_shape(name, limits, rows=0, columns=width, where=" (in the header line)")
    cap = min(limits.max_rows, limits.max_cells // width)
    try:
        frame = pd.read_csv(_io.StringIO(text), sep=sep, dtype=str, keep_default_na=False,
                            skip_blank_lines=True, nrows=cap + 1)
    except pd.errors.EmptyDataError:
        raise AnnotationFileError(f"{name}: is empty; it needs a header row and annotation rows.")
    except pd.errors.ParserError as err:
        raise AnnotationFileError(
            f"{name}: cannot be parsed as {'CSV' if sep == ',' else 'TSV'} ({err}); check the "
            "quoting of texts with separators or line breaks, or pass the right file type.") from None
    _check_shape(name, limits, rows=len(frame), columns=len(frame.columns), at_least=len(frame) > cap,
                 where=f" (reading stopped at line {cap + 2:,})" if len(frame) > cap else "")
    frame.columns = [str(c).strip() for c in frame.columns]
    frame[_WHERE] = [f"line {i + 2}" for i in range(len(frame))]
    return frame


def _header_width(text: str, sep: str) -> int:
    """Fields in the header (first non-blank) line, counted without parsing; a separator inside
    a quoted name counts too, so this is never below what pandas finds on that line."""
    header = _FIRST_NON_BLANK_LINE.search(text)
    return header.group().count(sep) + 1 if header else 1


# JSON ------------------------------------------------------------------------------------------

#: How the nesting scan reads JSON: escapes (``\"``, ``\\``) and strings are skipped (an
#: unterminated string runs to the end of its line); brackets count.
_JSON_TOKEN = re.compile(r'\\.|"[^"\\\n]*(?:\\.[^"\\\n]*)*"?|[\[\]{}]', re.DOTALL)
#: Every byte but a quote, a bracket or a line break (deleted by the fast scan).
_NOT_STRUCTURE = bytes(sorted(set(range(256)) - set(b'"[]{}\n')))
#: Integers with more digits than this are kept as their digits: int() refuses over 4,300.
_MAX_INT_DIGITS = 4_000


class _LongInteger:
    """A JSON integer too long for ``int()``, kept as its digits: as an id, the id-length check
    names its row; as a text, the text check refuses it like any number."""

    def __init__(self, digits: str) -> None:
        self.digits = digits

    def __str__(self) -> str:
        return self.digits

    def __repr__(self) -> str:
        return f"<integer of {len(self.digits):,} digits>"


def _json_int(digits: str) -> int | _LongInteger:
    return int(digits) if len(digits) <= _MAX_INT_DIGITS else _LongInteger(digits)


_JSON = json.JSONDecoder(parse_int=_json_int)


def _json_loads(text: str) -> Any:
    return _JSON.decode(text)


#: A JSON escape of a UTF-16 surrogate; only a high one followed by a low one makes a character.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _refuse_lone_surrogates(text: str, data: Any, name: str, where: str) -> None:
    """A lone ``\\ud800``-``\\udfff`` escape decodes to no character: UTF-8, pandas' Arrow
    strings and every database refuse it later with an error naming neither file nor place."""
    if "\\u" not in text or not _SURROGATE_ESCAPE.search(text):
        return
    stack = [data]
    while stack:  # nesting is bounded by max_depth, checked before parsing
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.keys())
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, str) and (found := _LONE_SURROGATE.search(value)):
            raise AnnotationFileError(
                f"{name}: {where} holds the escape \\u{ord(found.group()):04x}, half of a UTF-16 "
                f"surrogate pair without its other half, which is no character (in {_short(value)}); "
                "fix the program that wrote the file (a pair is a \\ud800-\\udbff escape followed by "
                "a \\udc00-\\udfff one), or remove the escape.")


def _parse_jsonl(text: str, name: str, limits: _Limits) -> list[tuple[int, Any]]:
    lines = text.split("\n")  # not splitlines(): U+2028 and friends are valid inside JSON strings
    _check_depth(name, text, limits.max_depth, lines=lines)
    records = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if len(records) == limits.max_rows:
            _check_shape(name, limits, rows=len(records) + 1, columns=0, at_least=True,
                         where=f" (reading stopped at line {lineno:,})")
        try:
            record = _json_loads(line)
        except json.JSONDecodeError as err:
            raise AnnotationFileError(
                f"{name}: line {lineno} is not valid JSON ({err.msg} at column {err.colno}); "
                "each line must be one JSON object.") from None
        _refuse_lone_surrogates(line, record, name, f"line {lineno}")
        records.append((lineno, record))
    return records


def _looks_like_jsonl(text: str) -> bool:
    """True when the first two non-blank lines are each one JSON object."""
    lines = [line for line in text.split("\n", 200)[:200] if line.strip()][:2]
    try:
        return len(lines) == 2 and all(isinstance(_json_loads(line), dict) for line in lines)
    except json.JSONDecodeError:
        return False


def _parse_json(text: str, name: str, limits: _Limits) -> pd.DataFrame | list:
    _check_depth(name, text, limits.max_depth)
    try:
        data = _json_loads(text)
    except json.JSONDecodeError as err:
        hint = (" It looks like JSON Lines (one object per line): pass file_type='jsonl' "
                "(CLI --file-type jsonl), or name the file .jsonl."
                if err.msg == "Extra data" and _looks_like_jsonl(text) else "")
        raise AnnotationFileError(
            f"{name}: is not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})."
            + hint) from None
    _refuse_lone_surrogates(text, data, name, "its JSON")
    if isinstance(data, dict) and isinstance(data.get("tasks"), list):
        data = data["tasks"]
    if not isinstance(data, list):
        raise AnnotationFileError(
            f"{name}: JSON must be a list of Label Studio tasks or of records, "
            f"not a {type(data).__name__}.")
    if data and all(isinstance(t, dict) and "data" in t for t in data):
        return data
    return _records_frame(list(enumerate(data, start=1)), name, unit="record", limits=limits)


def _check_depth(name: str, text: str, max_depth: int, *, lines: list[str] | None = None) -> None:
    """Refuse JSON nested deeper than ``max_depth`` before ``json.loads`` recurses into it.

    A fast scan of the whole text first; only when it finds too deep a nesting is the place
    looked up: the line of the first bracket over the limit (``lines``: JSON Lines, where an
    unbalanced line is left for the parser to name).
    """
    depth = _nesting(text)
    if depth <= max_depth:
        return
    if lines is None:
        offset = _first_too_deep(text, max_depth)
        line = None if offset is None else text.count("\n", 0, offset) + 1
    else:
        line = next((n for n, chunk in enumerate(lines, start=1)
                     if _first_too_deep(chunk, max_depth) is not None), None)
        depth = 0 if line is None else _nesting(lines[line - 1])
    if line is not None:
        raise _over_limit(name, f"line {line} nests JSON {depth:,} levels deep", "max_depth",
                          max_depth, "an annotation record is flat (a Label Studio export nests 8 "
                          "levels): check that this is an annotation export")


def _nesting(text: str) -> int:
    """How deep the brackets outside JSON strings nest, in C-speed passes: drop escapes, keep
    quotes, brackets and line breaks, drop strings, then a running sum (numpy, in chunks)."""
    data = re.sub(rb"\\.", b"", text.encode("utf-8", "surrogatepass"), flags=re.DOTALL)
    data = re.sub(rb'"[^"\n]*"?', b"", data.translate(None, _NOT_STRUCTURE)).replace(b"\n", b"")
    depth = deepest = 0
    for start in range(0, len(data), 1 << 22):
        codes = np.frombuffer(data, np.uint8, count=min(1 << 22, len(data) - start), offset=start)
        running = depth + np.cumsum(np.where((codes == ord("[")) | (codes == ord("{")), 1, -1))
        deepest, depth = max(deepest, int(running.max())), int(running[-1])
    return deepest


def _first_too_deep(text: str, max_depth: int) -> int | None:
    """Offset of the first bracket that opens level ``max_depth + 1``, or None (the same reading
    as :func:`_nesting`, one token at a time)."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()[0]
        if token in "[{":
            depth += 1
            if depth > max_depth:
                return match.start()
        elif token in "]}":
            depth -= 1
    return None


def _records_frame(records: list[tuple[int, Any]], name: str, *, unit: str,
                   limits: _Limits) -> pd.DataFrame:
    bad = [n for n, r in records if not isinstance(r, dict)]
    if bad:
        raise AnnotationFileError(
            f"{name}: {unit} {format_list(bad)} is not a JSON object; each {unit} must be an object "
            "with the annotation's fields.")
    keys: set = set()
    where = ""
    for n, record in records:
        keys.update(record)
        if len(keys) > limits.max_columns:
            where = f" (distinct keys up to {unit} {n})"
            break
    _check_shape(name, limits, rows=len(records), columns=len(keys), where=where)
    frame = pd.DataFrame([r for _, r in records])
    frame[_WHERE] = [f"{unit} {n}" for n, _ in records]
    return frame


# Parquet ---------------------------------------------------------------------------------------


def _parse_parquet(raw: bytes, name: str, limits: _Limits) -> pd.DataFrame:
    """Check the footer, then read group by group with text columns kept dictionary-encoded, so
    that nothing is expanded before its decoded size is known."""
    with _reading_parquet(name, limits):
        parquet = _open_parquet(raw, limits)
        _check_parquet_metadata(parquet.metadata, name, limits)
        text_columns = _text_columns(parquet.schema_arrow, name)
        parquet = _open_parquet(raw, limits, read_dictionary=text_columns)
        frame = _to_frame(_read_row_groups(parquet, name, limits))
    frame.columns = [str(c) for c in frame.columns]
    frame[_WHERE] = [f"row {i + 1}" for i in range(len(frame))]
    return frame


def _footer_list_limit(limits: _Limits) -> int:
    """Longest list the footer may hold: the row groups, or a row group's columns (the schema
    adds a root node; key-value metadata a few entries)."""
    return max(limits.max_row_groups, limits.max_columns) + 64


@contextlib.contextmanager
def _reading_parquet(name: str, limits: _Limits) -> Iterator[None]:
    """Turn pyarrow's several unrelated error types into one message naming the file."""
    try:
        yield
    except AnnotationFileError:
        raise
    except Exception as err:  # pyarrow raises OSError, ArrowInvalid, ValueError, ...
        if "Exceeded size limit" in str(err):  # thrift_container_size_limit, see _open_parquet
            raise AnnotationFileError(
                f"{name}: its Parquet footer lists more than {_footer_list_limit(limits):,} row "
                f"groups or columns, over the limits (max_row_groups={limits.max_row_groups}, "
                f"max_columns={limits.max_columns}); rewrite it with fewer, larger row groups, or "
                f"raise the limits ({_how_to_raise('max_row_groups', 'max_columns')}).") from None
        raise AnnotationFileError(
            f"{name}: cannot be read as Parquet ({type(err).__name__}: {err}); check the file "
            "type or re-export it.") from None


def _open_parquet(raw: bytes, limits: _Limits, *,
                  read_dictionary: list[str] | None = None) -> pq.ParquetFile:
    """Parse the footer only, refusing lists longer than the limits allow while parsing it (a
    footer of a million row groups would otherwise take ~8 bytes of memory per byte)."""
    return pq.ParquetFile(pa.BufferReader(raw), read_dictionary=read_dictionary,
                          thrift_container_size_limit=_footer_list_limit(limits))


def _check_parquet_metadata(meta: pq.FileMetaData, name: str, limits: _Limits) -> None:
    """Refuse from the footer alone: shape, row groups and stored (uncompressed) bytes. Dictionary
    encoding makes the stored bytes far smaller than the decoded ones: see _read_row_groups."""
    where = " (Parquet metadata)"
    _check_shape(name, limits, rows=meta.num_rows, columns=meta.num_columns, where=where)
    if meta.num_row_groups > limits.max_row_groups:
        raise _over_limit(name, f"has {meta.num_row_groups:,} row groups{where}", "max_row_groups",
                          limits.max_row_groups,
                          "rewrite it with fewer, larger row groups (pyarrow: row_group_size=...)")
    stored = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
    if stored > limits.max_decoded_bytes:
        raise _over_limit(name, f"holds {_size(stored)} of uncompressed values{where}",
                          "max_decoded_bytes", limits.max_decoded_bytes, _FIX_SPLIT,
                          shown=_size(limits.max_decoded_bytes))


def _is_text_type(dtype: pa.DataType) -> bool:
    return (pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
            or pa.types.is_binary(dtype) or pa.types.is_large_binary(dtype))


def _text_columns(schema: pa.Schema, name: str) -> list[str]:
    """The string and binary columns (to read as dictionaries); nested columns are refused."""
    for field in schema:
        dtype = field.type.value_type if pa.types.is_dictionary(field.type) else field.type
        if pa.types.is_nested(dtype):
            raise AnnotationFileError(
                f"{name}: column {field.name!r} is a nested Parquet column ({dtype}); an "
                "annotation file holds one plain value (text or a number) per cell - flatten the "
                "column or drop it before exporting.")
    return [field.name for field in schema if _is_text_type(field.type)]


def _read_row_groups(parquet: pq.ParquetFile, name: str, limits: _Limits) -> pa.Table:
    """The table, read one row group at a time, refused as soon as its values decode to more
    than max_decoded_bytes."""
    parts, decoded, total = [], 0, parquet.num_row_groups
    for index in range(total):
        parts.append(parquet.read_row_group(index))
        decoded += _decoded_bytes(parts[-1])
        if decoded > limits.max_decoded_bytes:
            raise _over_limit(
                name, f"decodes to {_size(decoded)} by row group {index + 1} of {total} (each "
                "use of a dictionary-encoded value counted)", "max_decoded_bytes",
                limits.max_decoded_bytes, _FIX_SPLIT, shown=_size(limits.max_decoded_bytes))
    return pa.concat_tables(parts) if parts else parquet.schema_arrow.empty_table()


def _decoded_bytes(table: pa.Table) -> int:
    """Bytes the values take once dictionaries are expanded (what pandas would otherwise build):
    for a dictionary-encoded text column, the length of the value each row points to."""
    total = 0
    for chunk in (chunk for column in table.columns for chunk in column.chunks):
        if pa.types.is_dictionary(chunk.type) and _is_text_type(chunk.type.value_type):
            lengths = pc.binary_length(chunk.dictionary).take(chunk.indices)
            total += (pc.sum(lengths).as_py() or 0) + 4 * len(chunk)
        else:
            total += chunk.nbytes
    return total


def _to_frame(table: pa.Table) -> pd.DataFrame:
    """pandas frame; dictionary (Categorical) columns become object columns whose cells share
    one Python string per distinct value."""
    frame = table.to_pandas().reset_index(drop=True)
    for i, dtype in enumerate(frame.dtypes):
        if isinstance(dtype, pd.CategoricalDtype):
            frame.isetitem(i, frame.iloc[:, i].astype(object))
    return frame


# --------------------------------------------------------------------------- datasets folders


def _read_dataset_folder(source: Any, name: str, limits: _Limits) -> pd.DataFrame:
    """A Hugging Face ``save_to_disk`` folder (our ``hf`` export among them) as a table: every
    split, labels as names; rows without an ``annotator_id`` are one annotator's, named after
    the folder (``hf:<folder>``), and rows without an ``item_id`` get ``<split>-<row>``."""
    from curation.hf_format import is_dataset_folder, read_dataset_dict

    path = Path(source)
    if not is_dataset_folder(path):
        raise AnnotationFileError(
            f"{name}: is a folder but not a Hugging Face dataset saved with save_to_disk (no "
            "dataset_dict.json or dataset_info.json in it, or in its 'hf' folder); pass a file, "
            "or the folder `curation export --formats hf` wrote.")

    def check(rows: int, columns: int) -> None:  # before a split is read into memory
        _check_shape(name, limits, rows=rows, columns=columns)

    try:
        table = read_dataset_dict(path, check=check)
    except AnnotationFileError:  # a limit, named by _check_shape
        raise
    except (OSError, ValueError, KeyError) as err:
        raise AnnotationFileError(f"{name}: the datasets folder could not be read ({err}); "
                                  "save it again with DatasetDict.save_to_disk.") from err
    position = table.groupby("split", sort=False).cumcount() + 1
    table[_WHERE] = "split " + table["split"].astype(str) + " row " + position.astype(str)
    if ITEM not in table.columns:
        table[ITEM] = table["split"].astype(str) + "-" + position.astype(str)
    if ANNOTATOR not in table.columns and LABEL in table.columns:
        table[ANNOTATOR] = f"hf:{path.name}"
    return table.drop(columns=["split"])


# --------------------------------------------------------------------------- layouts


def _long_columns(frame: pd.DataFrame) -> list[str]:
    """The long frame's columns; ``text_pair`` (right after ``text``) when the items are pairs."""
    columns = list(LONG_COLUMNS)
    if has_pairs(frame):
        columns.insert(columns.index(TEXT) + 1, TEXT_PAIR)
    return columns


def _from_table(frame: pd.DataFrame, *, name: str, format: str, columns: Mapping[str, str] | None,
                annotator_columns: Sequence[str] | None, limits: _Limits) -> pd.DataFrame:
    frame = _apply_mapping(frame, columns, name)
    if format == "auto":
        has_long = ANNOTATOR in frame.columns or LABEL in frame.columns
        format = "long" if has_long or not {ITEM, TEXT} <= set(frame.columns) else "wide"
        guessed = format == "wide" and not annotator_columns
        logger.info("%s: read as %s format", name, format)
    else:
        guessed = False
    if format == "label-studio":
        raise AnnotationFileError(
            f"{name}: format='label-studio' needs a Label Studio JSON export (a list of tasks "
            "with 'data' and 'annotations').")
    if format == "wide":
        return _from_wide(frame, name=name, annotator_columns=annotator_columns, limits=limits,
                          guessed=guessed)
    _require_columns(frame, REQUIRED_COLUMNS, name=name,
                     hint=" (long format; for one column per annotator use format='wide')")
    return frame


def _apply_mapping(frame: pd.DataFrame, columns: Mapping[str, str] | None, name: str) -> pd.DataFrame:
    if not columns:
        return frame
    targets = (*LONG_COLUMNS, TEXT_PAIR)
    unknown_targets = sorted(set(columns.values()) - set(targets))
    if unknown_targets:
        raise AnnotationFileError(
            f"column mapping targets {unknown_targets} are not canonical names; map to one of "
            f"{', '.join(targets)}.")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise AnnotationFileError(
            f"{name}: the column mapping names {_missing_msg(missing, frame.columns)}; "
            "fix the mapping's keys.")
    for target in dict.fromkeys(columns.values()):
        sources = [c for c, t in columns.items() if t == target]
        kept = [c for c in frame.columns if c == target and c not in columns]
        if len(sources) + len(kept) > 1:
            both = format_list(repr(c) for c in sources + kept)
            pair = (" For a sentence pair (premise and hypothesis, question and answer) map the "
                    "first to 'text' and the second to 'text_pair' (CLI --map "
                    f"{sources[-1] if sources else 'COLUMN'}=text_pair)." if target == TEXT else "")
            raise AnnotationFileError(
                f"{name}: the column mapping would make {len(sources) + len(kept)} columns named "
                f"{target!r} ({both}{' already in the file' if kept else ''}); map exactly one "
                f"column to {target!r}, or rename the file's own {target!r} column.{pair}")
    return frame.rename(columns=dict(columns))


def _from_wide(frame: pd.DataFrame, *, name: str, annotator_columns: Sequence[str] | None,
               limits: _Limits, guessed: bool = False) -> pd.DataFrame:
    """The wide layout unfolded. ``guessed``: auto-detection chose it (no annotator_id and label
    columns, none named), and it never guesses silently: when every value in the would-be
    annotator columns is a number (vote counts, scores, features), refuse and say how to choose."""
    _require_columns(frame, (ITEM, TEXT), name=name, hint=" (wide format)")
    fixed = {ITEM, TEXT, TEXT_PAIR, GOLD, _WHERE}
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
    taken = [c for c in (ANNOTATOR, LABEL) if c in frame.columns]
    if taken:
        raise AnnotationFileError(
            f"{name}: wide format unfolds the annotator columns into 'annotator_id' and 'label', "
            f"but the file already has a column named {format_list(repr(c) for c in taken)}. If "
            "the file has one row per annotation, pass format='long' (--format long); if it is "
            "an annotator's column, rename it in the file (to that annotator's name).")
    _check_shape(name, limits, rows=len(frame) * len(annotators), columns=len(LONG_COLUMNS),
                 noun="annotations", where=f" (the wide layout unfolded: {len(frame):,} rows x "
                 f"{len(annotators):,} annotator columns)")
    keep = [c for c in (ITEM, TEXT, TEXT_PAIR, GOLD, _WHERE) if c in frame.columns]
    long = frame.melt(id_vars=keep, value_vars=annotators, var_name=ANNOTATOR, value_name=LABEL)
    blank = long[LABEL].map(_is_blank)
    given = long.loc[~blank, LABEL]
    if guessed and len(given) and pd.to_numeric(given, errors="coerce").notna().all():
        raise AnnotationFileError(
            f"{name}: has no annotator_id and label columns, so it would be read as one column "
            f"per annotator ({format_list(annotators)}), but every value in those columns is a "
            "number: they look like counts or scores, not labels. If each of those columns "
            "is an annotator's labels, pass format='wide' (--format wide); if the file is long, "
            "map its columns (--map COLUMN=annotator_id --map COLUMN=label).")
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


# Label Studio ----------------------------------------------------------------------------------


def _from_label_studio(tasks: list, *, name: str, columns: Mapping[str, str] | None,
                       limits: _Limits) -> pd.DataFrame:
    first = tasks[0].get("data") if tasks and isinstance(tasks[0], dict) else None
    first = first if isinstance(first, dict) else {}

    def field(target: str) -> str | None:
        """The data key mapped to ``target``, else ``target`` itself when the first task's
        data has it (our own tasks: curation.label_studio), else None."""
        mapped = next((k for k, v in (columns or {}).items() if v == target), None)
        return mapped if mapped is not None else (target if target in first else None)

    text_key, pair_field, item_field = field(TEXT) or TEXT, field(TEXT_PAIR), field(ITEM)
    rows = []
    for pos, task in enumerate(tasks, start=1):
        rows.extend(_label_studio_rows(task, pos, name, text_key, pair_field, item_field))
        _check_shape(name, limits, rows=len(rows), columns=len(LONG_COLUMNS), noun="annotations",
                     where=f" (counted up to task {pos:,} of {len(tasks):,})")
    if not rows:
        raise AnnotationFileError(f"{name}: the Label Studio export has no completed annotations.")
    return pd.DataFrame(rows)


def _label_studio_rows(task: dict, pos: int, name: str, text_key: str,
                       pair_field: str | None = None, item_field: str | None = None) -> list[dict]:
    """One row per annotation of a task; every field of the wrong JSON type is refused by name."""
    task_id = _ls_id(task.get("id", pos), name=name, where=f"the task at position {pos}",
                     what="'id'")
    place = f"task {_label(task_id)}"
    data = _ls_expect(task.get("data"), dict, {}, name=name, where=place, what="'data'",
                      expected='an object such as {"text": "..."}')
    if text_key not in data:
        raise AnnotationFileError(
            f"{name}: {place} has no data[{text_key!r}]; its data keys are "
            f"{format_list(sorted(map(str, data)))}{suggest(text_key, list(data))}. "
            "Pass columns={'<key>': 'text'}.")
    if pair_field is not None and pair_field not in data:
        raise AnnotationFileError(
            f"{name}: {place} has no data[{pair_field!r}] (the second text of the pair); its "
            f"data keys are {format_list(sorted(map(str, data)))}. Give every task both texts.")
    texts = {TEXT: data[text_key]} | ({TEXT_PAIR: data[pair_field]} if pair_field else {})
    if item_field is not None:  # the item's own id (Label Studio renumbers the tasks it imports)
        if item_field not in data:
            raise AnnotationFileError(
                f"{name}: {place} has no data[{item_field!r}] (the item id); give every task "
                "one, or leave item ids to the task ids.")
        task_id = _ls_id(data[item_field], name=name, where=place, what=f"data[{item_field!r}]")
    annotations = _ls_expect(task.get("annotations"), list, [], name=name, where=place,
                             what="'annotations'", expected="a list of annotations")
    rows = []
    for index, ann in enumerate(annotations, start=1):
        ann = _ls_expect(ann, dict, {}, name=name, where=f"{place}, annotation #{index}",
                         what="the annotation", expected="an object")
        if ann.get("was_cancelled"):
            continue
        ann_id = ann.get("id")
        where = f"{place}, annotation {_label(ann_id) if _is_ls_id(ann_id) else f'#{index}'}"
        rows.append({ITEM: task_id, **texts, ANNOTATOR: _ls_annotator(ann, name, where),
                     LABEL: _ls_choice(ann, name, where), GOLD: None, _WHERE: where})
    return rows


def _ls_expect(value: Any, kind: type, default: Any, *, name: str, where: str, what: str,
               expected: str) -> Any:
    """``value`` when it is a ``kind`` (``default`` when null or missing), else the error."""
    if value is None:
        return default
    if not isinstance(value, kind):
        raise AnnotationFileError(
            f"{name}: {where}: {what} is {_describe(value)}, not {expected}; {_FIX_LABEL_STUDIO}.")
    return value


def _is_ls_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _ls_id(value: Any, *, name: str, where: str, what: str) -> str | int:
    """A task id or user id: a number or text, nothing else (a list would become "[1]")."""
    if not _is_ls_id(value):
        raise AnnotationFileError(
            f"{name}: {where}: {what} is {_describe(value)}, not a whole number or text; "
            f"{_FIX_LABEL_STUDIO}.")
    return value


def _ls_annotator(ann: dict, name: str, where: str) -> str | int | None:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return None if who is None else _ls_id(who, name=name, where=where, what="'completed_by'")


def _ls_choice(ann: dict, name: str, where: str) -> Any:
    choices = []
    results = _ls_expect(ann.get("result"), list, [], name=name, where=where, what="'result'",
                         expected="a list of results")
    for index, result in enumerate(results, start=1):
        what = f"result #{index}"
        result = _ls_expect(result, dict, {}, name=name, where=where, what=what,
                            expected="an object")
        if result.get("type") != "choices":
            continue
        value = _ls_expect(result.get("value"), dict, {}, name=name, where=where,
                           what=f"{what} 'value'", expected='an object such as {"choices": [...]}')
        choices += _ls_expect(value.get("choices"), list, [], name=name, where=where,
                              what=f"{what} 'choices'", expected="a list of labels")
    if len(choices) > 1:
        raise AnnotationFileError(
            f"{name}: {where} has several choices {_short(choices)}; only single-label "
            "classification is supported: keep one choice per annotation.")
    return choices[0] if choices else None


# --------------------------------------------------------------------------- value checks


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 60


def _short(value: Any) -> str:
    """``repr`` cut to a readable length: values quoted in messages come from the file."""
    return _REPR.repr(value.item() if isinstance(value, np.generic) else value)


def _label(value: Any) -> str:
    """An id as shown in a place (``task 11``), cut when it is too long to read."""
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _describe(value: Any) -> str:
    """What a JSON value is, for messages: ``"a string ('oops')"``, ``"null"``."""
    if value is None:
        return "null"
    kinds = ((bool, "true/false"), (str, "a string"), ((int, float), "a number"),
             (list, "a list"), (dict, "an object"))
    word = next((w for kind, w in kinds if isinstance(value, kind)), f"a {type(value).__name__}")
    return f"{word} ({_short(value)})"


def _require_columns(frame: pd.DataFrame, required: Sequence[str], *, name: str, hint: str) -> None:
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise AnnotationFileError(
            f"{name}: {_missing_msg(missing, [c for c in frame.columns if c != _WHERE])}{hint}. "
            "Rename the column in the file, or map it: columns={'<your column>': '<name>'} "
            "(CLI --map your_column=name).")


#: Columns that usually hold a canonical field, by name (lower case): a missing column's hint
#: names one of these when the file has it, before any look-alike by spelling ("id" for
#: item_id, not "prem_id").
SYNONYMS = {
    ITEM: ("id", "item", "uid", "guid", "idx", "example_id", "text_id", "sample_id", "doc_id"),
    TEXT: ("sentence", "content", "review", "message", "body", "document", "utterance",
           "sentence1", "premise", "question", "query"),
    ANNOTATOR: ("annotator", "worker", "worker_id", "workerid", "rater", "rater_id", "user",
                "user_id", "labeler", "labeller", "coder"),
    LABEL: ("annotation", "answer", "category", "class", "sentiment", "tag", "rating", "judgment",
            "judgement"),
    GOLD: ("gold_label", "truth", "true_label", "reference", "expert_label"),
}


def _closest_column(missing: str, available: Sequence[str]) -> str:
    """``" - did you mean 'id'?"``: a usual name of that field if the file has one, else the
    closest spelling, else ``""``."""
    lowered = {str(c).lower(): str(c) for c in available}
    for synonym in SYNONYMS.get(missing, ()):
        if synonym in lowered:
            return f" - did you mean {lowered[synonym]!r}?"
    return suggest(missing, list(available))


def _missing_msg(missing: Sequence[str], available: Sequence[str]) -> str:
    parts = [f"column {m!r} is missing{_closest_column(m, list(available))}" for m in missing]
    return "; ".join(parts) + f" (columns present: {format_list(available, 20) or 'none'})"


def _is_blank(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)):
        return value != value
    return isinstance(value, str) and not value.strip()


def _check_text(frame: pd.DataFrame, name: str, max_chars: int = DEFAULT_MAX_TEXT_CHARS, *,
                column: str = TEXT) -> None:
    values = frame[column]
    not_str = ~values.map(lambda v: isinstance(v, str) or _is_blank(v))
    if not_str.any():
        bad = frame.loc[not_str, column].iloc[0]
        kind = "int" if isinstance(bad, _LongInteger) else type(bad).__name__
        raise AnnotationFileError(
            f"{name}: column {column!r} holds non-text values at "
            f"{format_list(frame.loc[not_str, _WHERE].tolist())} (e.g. {_short(bad)} of type "
            f"{kind}); text must be a string - check the column mapping.")
    empty = values.map(_is_blank)
    if empty.any():
        what = "text" if column == TEXT else "second text of the pair (text_pair)"
        raise AnnotationFileError(
            f"{name}: empty {what} at {format_list(frame.loc[empty, _WHERE].tolist())}; "
            "fill in the text or remove those rows.")
    _refuse_nul(frame, values, column, name)
    long = values.str.len() > max_chars
    if long.any():
        raise AnnotationFileError(
            f"{name}: {column} longer than {max_chars:,} characters at "
            f"{format_list(frame.loc[long, _WHERE].tolist())} (the longest has "
            f"{int(values.str.len().max()):,}); a text this long is usually an unclosed quote that "
            "swallowed the lines after it - check the quoting, or split the document, or raise "
            f"the limit ({_how_to_raise('max_text_chars')}).")


def _refuse_nul(frame: pd.DataFrame, values: pd.Series, col: str, name: str) -> None:
    """NUL is no character of any text, and PostgreSQL refuses it in a text column."""
    has_nul = values.str.contains("\x00", regex=False)
    if has_nul.any():
        raise AnnotationFileError(
            f"{name}: column {col!r} holds a NUL character (\\x00) at "
            f"{format_list(frame.loc[has_nul, _WHERE].tolist())}; remove it (it is no part of a "
            "text, and databases such as PostgreSQL refuse it) - often a sign of a binary or "
            "UTF-16 file read as UTF-8.")


#: How a cell that is not one plain value is described, and the fix.
_NOT_PLAIN = {
    "lists/objects": "give one plain value per cell",
    "binary (bytes) values": "store the column as text (UTF-8 strings), not as binary",
    "numbers that are not finite": "write the value as text or a finite number",
}


def _not_plain(value: Any) -> str | None:
    """What keeps ``value`` from being an id or label, or None when it is one plain value."""
    if isinstance(value, (list, dict, tuple, set, np.ndarray)):
        return "lists/objects"
    if isinstance(value, (bytes, bytearray)):
        return "binary (bytes) values"
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return "numbers that are not finite"
    if isinstance(value, (str, bool, np.bool_, numbers.Number, _LongInteger)):
        return None
    return f"values of type {type(value).__name__}"


def _clean_ids(frame: pd.DataFrame, col: str, name: str,
               max_chars: int = DEFAULT_MAX_ID_CHARS) -> pd.Series:
    blank = frame[col].map(_is_blank)
    if blank.any():
        what = "missing labels" if col == LABEL else f"missing {col}"
        raise AnnotationFileError(
            f"{name}: {what} at {format_list(frame.loc[blank, _WHERE].tolist())}; "
            f"fill in column {col!r} or remove those rows.")
    return _clean_values(frame, col, name, max_chars)


def _clean_gold(frame: pd.DataFrame, name: str, max_chars: int = DEFAULT_MAX_ID_CHARS) -> pd.Series:
    present = ~frame[GOLD].map(_is_blank)
    gold = pd.Series(None, index=frame.index, dtype=object)
    if present.any():
        gold[present] = _clean_values(frame.loc[present], GOLD, name, max_chars)
    return gold


def _clean_values(frame: pd.DataFrame, col: str, name: str, max_chars: int) -> pd.Series:
    """Non-blank ids or labels as stripped strings; refuses what is not one short plain value."""
    _refuse_not_plain(frame, col, name)
    out = frame[col].map(_as_id)
    _refuse_nul(frame, out, col, name)
    lengths = out.str.len()
    too_long = lengths > max_chars
    if too_long.any():
        raise _over_limit(
            name, f"column {col!r} has a value of {int(lengths.max()):,} characters at "
            f"{format_list(frame.loc[too_long, _WHERE].tolist())}", "max_id_chars", max_chars,
            "ids and labels are short names - is the text in this column? Check the column mapping")
    return out


def _refuse_not_plain(frame: pd.DataFrame, col: str, name: str) -> None:
    values = frame[col]
    if set(map(type, values.to_numpy(dtype=object))) <= {str, int, bool}:  # the usual case, fast
        return
    problems = values.map(_not_plain)
    if problems.notna().any():
        first = problems.dropna().iloc[0]
        bad = problems == first
        raise AnnotationFileError(
            f"{name}: column {col!r} holds {first} at {format_list(frame.loc[bad, _WHERE].tolist())}"
            f" (e.g. {_short(values[bad].iloc[0])}); "
            f"{_NOT_PLAIN.get(first, 'store the column as text')}.")


def _as_id(value: Any) -> str:
    """``3.0`` (a whole number read as float) -> ``"3"``; anything else its stripped text."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _check_one_text_per_item(frame: pd.DataFrame, name: str) -> None:
    texts = frame[TEXT]
    if has_pairs(frame):
        texts = pd.Series([pair_key(t, p) for t, p in zip(frame[TEXT], frame[TEXT_PAIR])],
                          index=frame.index)
    n_texts = texts.groupby(frame[ITEM], sort=False).nunique()
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


def loaded_from(frame: pd.DataFrame) -> str:
    """The name :func:`load_annotations` gave the file a frame came from ("" when unknown)."""
    return str(frame.attrs.get("source", "")) if isinstance(frame, pd.DataFrame) else ""


def declared_labels(frame: pd.DataFrame) -> list[str] | None:
    """The label set a file declared (or the labels it holds, sorted), as
    :func:`load_annotations` found it; None for a frame that did not come from the loader.

    The one place the loader's ``attrs`` are read: pandas drops ``attrs`` on many operations, so
    read it right after loading and pass it on as an explicit ``labels=`` argument (every
    function that needs the label set takes one); a project's label set is
    :meth:`curation.store.Project.label_set`.
    """
    labels = frame.attrs.get("label_set") if isinstance(frame, pd.DataFrame) else None
    return [str(x) for x in labels] if labels else None
