"""Bad input, fuzzed: malformed annotation files through the loader and through the upload page.

Hypothesis builds files that are wrong in one known way each (wrong columns, mixed types, empty
and huge texts, broken encodings, broken JSON, duplicated pairs, unknown labels, 0 rows, garbage
and pickled bytes, Label Studio fields of the wrong type, deep nesting, NUL characters, Parquet
list/struct/binary/dictionary columns and row groups, wide files with many columns, expansion
bombs, huge ids). Every one must end in the clear validation error (``AnnotationFileError``,
naming the file and, where there is one, the planted row, column or limit), never in another
exception, and the project's stored data must be exactly as before. The examples are
derandomised, so CI runs the same cases every time. Bombs that would expand to gigabytes are also
loaded in a child process whose peak memory is measured.
"""

from __future__ import annotations

import collections
import io
import json
import pickle
import re
import string
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.io import (
    DEFAULT_MAX_COLUMNS,
    DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_ID_CHARS,
    DEFAULT_MAX_TEXT_CHARS,
    AnnotationFileError,
)
from curation.store import Project
from curation.workspace import import_file

LABELS = ["pos", "neg", "neu"]
BASE = pd.DataFrame({"item_id": ["a", "a", "b"], "text": ["good", "good", "bad"],
                     "annotator_id": ["x", "y", "x"], "label": ["pos", "pos", "neg"]})
#: Set by a pickled "upload" if it were ever unpickled.
MARKER = Path(__file__).with_name(".pickle-was-executed")


class _Payload:
    def __reduce__(self):  # what an attacker's pickle does: run code on load
        return (Path.touch, (MARKER,))


# --------------------------------------------------------------------------- file builders

ids = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=6)
words = st.text(string.ascii_letters + " ,.!?'", min_size=1, max_size=40).filter(lambda t: t.strip())


@st.composite
def good_rows(draw, min_rows: int = 2, max_rows: int = 12) -> list[dict]:
    n = draw(st.integers(min_rows, max_rows))
    rows, seen = [], set()
    for i in range(n):
        item, annotator = f"it{draw(st.integers(0, 5))}", draw(st.sampled_from(["ann", "bob", "cy"]))
        if (item, annotator) in seen:
            continue
        seen.add((item, annotator))
        rows.append({"item_id": item, "text": f"text of {item}", "annotator_id": annotator,
                     "label": draw(st.sampled_from(LABELS))})
    return rows


def _csv(rows: list[dict], columns: list[str] | None = None, sep: str = ",") -> bytes:
    return pd.DataFrame(rows, columns=columns).to_csv(index=False, sep=sep).encode()


def _jsonl(rows: list) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode()


def _parquet(table: pa.Table | list[dict], **options) -> bytes:
    if isinstance(table, list):
        table = pa.Table.from_pylist(table)
    buf = io.BytesIO()
    pq.write_table(table, buf, **options)
    return buf.getvalue()


def _where(fmt: str, index: int) -> str:
    """How the loader names the planted row (CSV: header is line 1; JSONL: line; JSON: record)."""
    return {"csv": f"line {index + 2}", "tsv": f"line {index + 2}", "jsonl": f"line {index + 1}",
            "json": f"record {index + 1}", "parquet": f"row {index + 1}"}[fmt]


def _encode(rows: list[dict], fmt: str) -> bytes:
    if fmt in ("csv", "tsv"):
        return _csv(rows, sep="," if fmt == "csv" else "\t")
    if fmt == "jsonl":
        return _jsonl(rows)
    if fmt == "parquet":
        return _parquet(rows)
    return json.dumps(rows).encode()


fmts = st.sampled_from(["csv", "tsv", "jsonl", "json"])
all_fmts = st.sampled_from(["csv", "tsv", "jsonl", "json", "parquet"])


@st.composite
def wrong_columns(draw):
    names = draw(st.lists(ids.filter(lambda c: c not in ("item_id", "text", "annotator_id", "label",
                                                         "gold", "id", "txt", "data")),
                          min_size=1, max_size=4, unique=True))
    rows = [{c: draw(words) for c in names} for _ in range(draw(st.integers(1, 5)))]
    return "wrong columns", "f.csv", _csv(rows, names), {}, None


@st.composite
def mixed_types(draw):
    rows, fmt = draw(good_rows()), draw(st.sampled_from(["jsonl", "json"]))
    i = draw(st.integers(0, len(rows) - 1))
    field = draw(st.sampled_from(["text", "item_id", "annotator_id", "label"]))
    bad = {"text": st.one_of(st.integers(), st.floats(allow_nan=False), st.booleans(),
                             st.lists(st.integers(), max_size=2), st.dictionaries(ids, ids, max_size=2)),
           "item_id": st.one_of(st.lists(ids, min_size=1, max_size=2), st.dictionaries(ids, ids, min_size=1)),
           "annotator_id": st.one_of(st.lists(ids, min_size=1, max_size=2), st.none()),
           "label": st.one_of(st.none(), st.lists(ids, min_size=1, max_size=2),
                              st.dictionaries(ids, ids, min_size=1))}[field]
    rows[i] = {**rows[i], field: draw(bad)}
    return "mixed types", f"f.{fmt}", _encode(rows, fmt), {}, _where(fmt, i)


@st.composite
def empty_text(draw):
    rows, fmt = draw(good_rows()), draw(fmts)
    i = draw(st.integers(0, len(rows) - 1))
    blank = draw(st.sampled_from(["", " ", "   ", "\t"] if fmt not in ("csv", "tsv") else ["", "   "]))
    item = rows[i]["item_id"]
    rows = [{**r, "text": blank} if r["item_id"] == item else r for r in rows]
    return "empty text", f"f.{fmt}", _encode(rows, fmt), {}, _where(fmt, i)


@st.composite
def huge_text(draw):
    rows, fmt = draw(good_rows()), draw(fmts)
    i = draw(st.integers(0, len(rows) - 1))
    size = draw(st.integers(DEFAULT_MAX_TEXT_CHARS + 1, DEFAULT_MAX_TEXT_CHARS + 50_000))
    item = rows[i]["item_id"]
    rows = [{**r, "text": "w" * size} if r["item_id"] == item else r for r in rows]
    return "huge text", f"f.{fmt}", _encode(rows, fmt), {}, _where(fmt, i)


@st.composite
def broken_encoding(draw):
    rows, fmt = draw(good_rows()), draw(fmts)
    raw = _encode(rows, fmt)
    at = draw(st.integers(0, len(raw)))
    junk = draw(st.sampled_from([b"\xff", b"\xe9t\xe9", b"\xc3\x28", b"\x80\x81", b"\xfe\xff\x00"]))
    line = raw[:at].count(b"\n") + 1
    return "broken encoding", f"f.{fmt}", raw[:at] + junk + raw[at:], {}, f"line {line}"


@st.composite
def broken_json(draw):
    rows, fmt = draw(good_rows()), draw(st.sampled_from(["jsonl", "json"]))
    raw = _encode(rows, fmt)
    if draw(st.booleans()):  # truncated inside the last record
        last = raw.rfind(b"\n") + 1 if fmt == "jsonl" else 0
        cut = draw(st.integers(last + 1, len(raw) - 1))
        return "broken JSON", f"f.{fmt}", raw[:cut], {}, None
    junk = draw(st.sampled_from([b"{", b"not json", b"{'single': 'quotes'}", b'{"a": 1,}', b"]"]))
    lines = raw.split(b"\n") if fmt == "jsonl" else [raw]
    at = draw(st.integers(0, len(lines)))
    lines.insert(at, junk)
    return "broken JSON", f"f.{fmt}", b"\n".join(lines), {}, (f"line {at + 1}" if fmt == "jsonl" else None)


@st.composite
def duplicated_pairs(draw):
    rows, fmt = draw(good_rows()), draw(fmts)
    i = draw(st.integers(0, len(rows) - 1))
    original = rows[i]
    other = next(lab for lab in LABELS if lab != original["label"])
    rows.insert(draw(st.integers(0, len(rows))), {**original, "label": other})
    return "duplicated pairs", f"f.{fmt}", _encode(rows, fmt), {}, f"item {original['item_id']!r}"


@st.composite
def unknown_labels(draw):
    rows, fmt = draw(good_rows()), draw(fmts)
    i = draw(st.integers(0, len(rows) - 1))
    label = draw(ids.filter(lambda x: x not in LABELS))
    rows[i] = {**rows[i], "label": label}
    return "unknown labels", f"f.{fmt}", _encode(rows, fmt), {"label_set": LABELS}, label


@st.composite
def zero_rows(draw):
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl", "json", "parquet", "empty"]))
    columns = ["item_id", "text", "annotator_id", "label"]
    raw = {"csv": ",".join(columns).encode() + b"\n", "tsv": "\t".join(columns).encode() + b"\n",
           "jsonl": b"\n\n", "json": b"[]", "empty": b""}.get(fmt)
    if fmt == "parquet":
        buf = io.BytesIO()
        pd.DataFrame({c: pd.Series([], dtype=str) for c in columns}).to_parquet(buf)
        raw = buf.getvalue()
    return "0 rows", f"f.{'csv' if fmt == 'empty' else fmt}", raw, {}, None


@st.composite
def garbage_or_pickle(draw):
    ext = draw(st.sampled_from(["parquet", "json", "jsonl", "csv"]))
    if draw(st.booleans()):
        raw = pickle.dumps({"rows": [_Payload()], "pad": draw(st.binary(max_size=20))})
        return "pickled bytes", f"f.{ext}", raw, {}, None
    raw = draw(st.binary(min_size=1, max_size=200).filter(lambda b: b"\n" not in b[:1]))
    if ext != "parquet":
        raw = b"\xff\xfe\x00" + raw  # garbage that is not text either
    return "garbage bytes", f"f.{ext}", raw, {}, None


# Label Studio ----------------------------------------------------------------------------------

#: JSON values by type, to put where another type belongs.
json_values = {"string": words, "number": st.integers(-5, 10**6), "float": st.floats(-1e6, 1e6),
               "bool": st.booleans(), "list": st.lists(ids, max_size=3),
               "object": st.dictionaries(ids, ids, max_size=3)}


def _wrong(*kinds: str):
    return st.one_of(*(json_values[k] for k in kinds))


#: A field of a Label Studio export -> values of a wrong type for it.
LS_WRONG = {
    "id": _wrong("float", "bool", "list", "object"),
    "data": _wrong("string", "number", "bool", "list"),
    "annotations": _wrong("string", "number", "bool", "object"),
    "annotation": _wrong("string", "number", "bool", "list"),
    "result": _wrong("string", "number", "bool", "object"),
    "result item": _wrong("string", "number", "bool", "list"),
    "value": _wrong("string", "number", "bool", "list"),
    "choices": _wrong("string", "number", "bool", "object"),
    "completed_by": st.one_of(_wrong("float", "bool", "list"),
                              st.builds(lambda e: {"email": e}, st.lists(ids, min_size=1, max_size=2))),
}


def _label_studio_tasks(rows: list[dict]) -> list[dict]:
    """One task per item, one annotation (one choices result) per row."""
    tasks: dict = {}
    for n, row in enumerate(rows, start=1):
        task = tasks.setdefault(row["item_id"], {"id": 100 + len(tasks), "data": {"text": row["text"]},
                                                 "annotations": []})
        task["annotations"].append({"id": n, "completed_by": row["annotator_id"], "result": [
            {"type": "choices", "from_name": "sentiment", "value": {"choices": [row["label"]]}}]})
    return list(tasks.values())


@st.composite
def label_studio_wrong_types(draw):
    tasks = _label_studio_tasks(draw(good_rows()))
    t = draw(st.integers(0, len(tasks) - 1))
    task = tasks[t]
    k = draw(st.integers(0, len(task["annotations"]) - 1))
    ann, field = task["annotations"][k], draw(st.sampled_from(sorted(LS_WRONG)))
    value, place = draw(LS_WRONG[field]), f"task {task['id']}, annotation {task['annotations'][k]['id']}"
    if field == "id":
        task["id"], where = value, f"the task at position {t + 1}: 'id' is "
    elif field in ("data", "annotations"):
        task[field], where = value, f"task {task['id']}: '{field}' is "
    elif field == "annotation":
        task["annotations"][k] = value
        where = f"task {task['id']}, annotation #{k + 1}: the annotation is "
    elif field in ("result", "completed_by"):
        ann[field], where = value, f"{place}: '{field}' is "
    elif field == "result item":
        ann["result"][0], where = value, f"{place}: result #1 is "
    else:  # value, choices
        result = ann["result"][0]
        (result if field == "value" else result["value"])[field] = value
        where = f"{place}: result #1 '{field}' is "
    export = {"tasks": tasks} if draw(st.booleans()) else tasks
    return "Label Studio wrong types", "ls.json", json.dumps(export).encode(), {}, where


# nesting, NUL, ids -----------------------------------------------------------------------------


@st.composite
def deep_nesting(draw):
    rows, fmt = draw(good_rows()), draw(st.sampled_from(["jsonl", "json", "label-studio"]))
    decoy = " [{" * draw(st.integers(0, 60))  # brackets inside strings: no nesting at all
    rows = [{**r, "text": r["text"] + decoy} for r in rows]
    records = _label_studio_tasks(rows) if fmt == "label-studio" else rows
    i = draw(st.integers(0, len(records) - 1))
    depth = draw(st.integers(DEFAULT_MAX_DEPTH + 1, 5_000))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"k": ', "}")]))
    lines = [json.dumps(r) for r in records]
    lines[i] = lines[i][:-1] + ', "meta": ' + opener * depth + "1" + closer * depth + "}"
    if fmt == "jsonl":
        return "deep nesting", "f.jsonl", "\n".join(lines).encode(), {}, f"line {i + 1} nests JSON"
    raw = ("[\n" + ",\n".join(lines) + "\n]").encode()  # one record per line, from line 2
    return "deep nesting", "f.json", raw, {}, f"line {i + 2} nests JSON"


@st.composite
def nul_bytes(draw):
    rows, fmt = draw(good_rows()), draw(all_fmts)
    i = draw(st.integers(0, len(rows) - 1))
    field = draw(st.sampled_from(["item_id", "text", "annotator_id", "label"]))
    value = rows[i][field]
    at = draw(st.integers(0, len(value)))
    rows[i] = {**rows[i], field: value[:at] + "\x00" + value[at:]}
    where = f"column '{field}' holds a NUL character (\\x00) at {_where(fmt, i)};"
    return "NUL bytes", f"f.{fmt}", _encode(rows, fmt), {}, where


@st.composite
def huge_ids(draw):
    rows, fmt = draw(good_rows()), draw(all_fmts)
    i = draw(st.integers(0, len(rows) - 1))
    field = draw(st.sampled_from(["item_id", "annotator_id", "label"]))
    size = draw(st.integers(DEFAULT_MAX_ID_CHARS + 1, 6_000))
    where = f"column '{field}' has a value of {size:,} characters at {_where(fmt, i)}, over the limit"
    if fmt in ("jsonl", "json") and draw(st.booleans()):  # a JSON number, beyond int()'s 4,300 digits
        rows[i] = {**rows[i], field: "@huge@"}
        raw = _encode(rows, fmt).replace(b'"@huge@"', b"7" * size)
    else:
        rows[i] = {**rows[i], field: draw(st.sampled_from(string.ascii_letters)) * size}
        raw = _encode(rows, fmt)
    return "huge ids", f"f.{fmt}", raw, {}, where


@st.composite
def lone_surrogates(draw):
    """A JSON escape of half a UTF-16 pair (what a program that cut a string in the middle of
    an emoji writes): it decodes to no character, and Arrow strings, UTF-8 and both databases
    raise on it far from the file."""
    rows, fmt = draw(good_rows()), draw(st.sampled_from(["jsonl", "json", "label-studio"]))
    i = draw(st.integers(0, len(rows) - 1))
    # Label Studio: ids are task ids, and a task's text is its first row's
    field = draw(st.sampled_from(["annotator_id", "label"] if fmt == "label-studio"
                                 else ["item_id", "text", "annotator_id", "label"]))
    code = draw(st.one_of(st.integers(0xD800, 0xDBFF), st.integers(0xDC00, 0xDFFF)))
    value = rows[i][field]
    at = draw(st.integers(0, len(value)))
    rows[i] = {**rows[i], field: value[:at] + chr(code) + value[at:]}
    escape = f"holds the escape \\u{code:04x}, half of a UTF-16 surrogate pair"
    if fmt == "jsonl":  # json.dumps writes the lone surrogate as its escape
        return "lone surrogates", "f.jsonl", _jsonl(rows), {}, f"line {i + 1} {escape}"
    records = _label_studio_tasks(rows) if fmt == "label-studio" else rows
    return "lone surrogates", "f.json", json.dumps(records).encode(), {}, f"its JSON {escape}"


# Parquet structure, wide files, bombs ----------------------------------------------------------


def _with_column(table: pa.Table, name: str, values: pa.Array) -> pa.Table:
    if name in table.column_names:
        return table.set_column(table.column_names.index(name), name, values)
    return table.append_column(name, values)


@st.composite
def parquet_structure(draw):
    rows = draw(good_rows())
    table, variant = pa.Table.from_pylist(rows), draw(st.sampled_from(
        ["list", "struct", "binary", "row groups", "dictionary"]))
    if variant in ("list", "struct"):
        column = draw(st.sampled_from(["item_id", "text", "annotator_id", "label", "gold", "extra"]))
        cell = (lambda r: [r.get(column, "pos"), "neg"]) if variant == "list" else (
            lambda r: {"value": r.get(column, "pos"), "score": 1})
        table = _with_column(table, column, pa.array([cell(r) for r in rows]))
        return "Parquet structure", "f.parquet", _parquet(table), {}, \
            f"column '{column}' is a nested Parquet column"
    if variant == "binary":
        column = draw(st.sampled_from(["item_id", "text", "annotator_id", "label"]))
        table = _with_column(table, column, pa.array([r[column].encode() for r in rows], pa.binary()))
        what = "non-text values" if column == "text" else "binary (bytes) values"
        return "Parquet structure", "f.parquet", _parquet(table), {}, \
            f"column '{column}' holds {what} at row 1"
    if variant == "row groups":
        limit = draw(st.integers(1, len(rows) - 1))
        return "Parquet structure", "f.parquet", _parquet(table, row_group_size=1), \
            {"max_row_groups": limit}, f"has {len(rows)} row groups (Parquet metadata), over the limit"
    # every column dictionary-encoded (as pandas writes categoricals), one planted fault
    i, fault = draw(st.integers(0, len(rows) - 1)), draw(st.sampled_from(["empty text", "NUL"]))
    rows[i] = {**rows[i], "text": "   " if fault == "empty text" else "a\x00b"}
    table = pa.Table.from_pylist(rows)
    table = pa.table({c: table[c].dictionary_encode() for c in table.column_names})
    where = f"empty text at row {i + 1};" if fault == "empty text" else \
        f"column 'text' holds a NUL character (\\x00) at row {i + 1};"
    return "Parquet structure", "f.parquet", _parquet(table), {}, where


@st.composite
def many_columns(draw):
    """Wide files (one column per annotator) with more columns than the limit, or whose unfolding
    gives more annotations than max_rows."""
    fmt = draw(st.sampled_from(["csv", "tsv", "jsonl", "json", "parquet", "unfolded"]))
    if fmt == "unfolded":
        n_rows, n_ann = draw(st.integers(1, 4)), draw(st.integers(2, 30))
        limit = draw(st.integers(n_rows, n_rows * n_ann - 1))
        rows = [{"item_id": f"i{j}", "text": f"text {j}", **{f"ann{k}": "pos" for k in range(n_ann)}}
                for j in range(n_rows)]
        where = f"has {n_rows * n_ann} annotations (the wide layout unfolded: {n_rows} rows x {n_ann} "
        return "wide files, many columns", "f.csv", _csv(rows), {"max_rows": limit}, where
    limit = draw(st.integers(3, 30)) if fmt == "parquet" else DEFAULT_MAX_COLUMNS
    # each row labelled by its own annotators, so a JSON file's columns add up record by record
    sizes = draw(st.lists(st.integers(1, limit), min_size=1, max_size=4))
    if 2 + sum(sizes) <= limit:
        sizes.append(limit - 1 - sum(sizes) + draw(st.integers(0, 50)))
    ends = np.cumsum(sizes).tolist()
    rows = [{"item_id": f"i{j}", "text": f"text {j}", **{f"ann{k}": "pos" for k in range(end - size, end)}}
            for j, (size, end) in enumerate(zip(sizes, ends))]
    if fmt in ("jsonl", "json"):
        j = next(j for j, end in enumerate(ends) if 2 + end > limit)
        where = f"has {2 + ends[j]:,} columns (distinct keys up to {_where(fmt, j)})"
    else:
        source = "Parquet metadata" if fmt == "parquet" else "in the header line"
        where = f"has {2 + ends[-1]:,} columns ({source})"
    raw = _parquet(pa.Table.from_pandas(pd.DataFrame(rows), preserve_index=False)) if fmt == "parquet" \
        else _encode(rows, fmt)
    options = {"max_columns": limit} if fmt == "parquet" else {}
    return "wide files, many columns", f"f.{fmt}", raw, options, where


def _repeated(value: str, n: int) -> pa.DictionaryArray:
    """``n`` rows of one dictionary-encoded value: a few bytes on disk, ``n`` values decoded."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value]))


def _bomb_table(n_rows: int, text_chars: int, n_columns: int = 4) -> pa.Table:
    columns = {"item_id": _repeated("i", n_rows), "text": _repeated("w" * text_chars, n_rows),
               "annotator_id": _repeated("a", n_rows), "label": _repeated("pos", n_rows)}
    columns.update({f"extra{k}": _repeated("x" * text_chars, n_rows) for k in range(n_columns - 4)})
    return pa.table(columns)


@st.composite
def expansion_bombs(draw):
    """Small files that expand: dictionary-encoded Parquet rows, cells and text; CSV/TSV with
    tens of thousands of columns; more rows than max_rows."""
    variant = draw(st.sampled_from(["parquet rows", "parquet cells", "parquet text", "csv columns",
                                    "csv rows"]))
    if variant == "parquet rows":
        limit = draw(st.integers(10, 5_000))
        n = draw(st.integers(limit + 1, 20 * limit))
        return "expansion bombs", "bomb.parquet", _parquet(_bomb_table(n, 100)), {"max_rows": limit}, \
            f"has {n:,} rows (Parquet metadata), over the limit of {limit:,} (max_rows={limit})"
    if variant == "parquet cells":
        limit, n_columns = draw(st.integers(10, 20_000)), draw(st.integers(4, 8))
        n = draw(st.integers(limit // n_columns + 1, limit))
        return "expansion bombs", "bomb.parquet", _parquet(_bomb_table(n, 100, n_columns)), \
            {"max_cells": limit}, f"has {n:,} rows x {n_columns} columns = {n * n_columns:,} cells " \
            f"(Parquet metadata), over the limit of {limit:,} (max_cells={limit})"
    if variant == "parquet text":  # stored once, decoded once per row
        n, chars = draw(st.integers(100, 3_000)), draw(st.integers(1_000, 20_000))
        raw = _parquet(_bomb_table(n, chars))
        meta = pq.ParquetFile(io.BytesIO(raw)).metadata
        stored = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        limit = draw(st.integers(stored + 1, n * chars - 1))
        return "expansion bombs", "bomb.parquet", raw, {"max_decoded_bytes": limit}, \
            "by row group 1 of 1 (each use of a dictionary-encoded value counted), over the limit of "
    sep, ext = draw(st.sampled_from([(",", "csv"), ("\t", "tsv")]))
    if variant == "csv columns":  # a few hundred KB, refused from the header line
        n = draw(st.integers(DEFAULT_MAX_COLUMNS + 1, 50_000))
        raw = (sep.join(f"c{k}" for k in range(n)) + "\n" + sep.join(["x"] * n) + "\n").encode()
        return "expansion bombs", f"bomb.{ext}", raw, {}, \
            f"has {n:,} columns (in the header line), over the limit of {DEFAULT_MAX_COLUMNS:,}"
    limit = draw(st.integers(1, 3_000))
    n = draw(st.integers(limit + 1, 3 * limit + 10))
    raw = _csv([{"item_id": k, "text": f"t{k}", "annotator_id": "a", "label": "pos"} for k in range(n)],
               sep=sep)
    return "expansion bombs", f"bomb.{ext}", raw, {"max_rows": limit}, \
        f"has at least {limit + 1:,} rows (reading stopped at line {limit + 2:,})"


KINDS = {"wrong columns": wrong_columns(), "mixed types": mixed_types(), "empty text": empty_text(),
         "huge text": huge_text(), "broken encoding": broken_encoding(), "broken JSON": broken_json(),
         "duplicated pairs": duplicated_pairs(), "unknown labels": unknown_labels(),
         "0 rows": zero_rows(), "garbage or pickle": garbage_or_pickle(),
         "Label Studio wrong types": label_studio_wrong_types(), "deep nesting": deep_nesting(),
         "NUL bytes": nul_bytes(), "huge ids": huge_ids(), "lone surrogates": lone_surrogates(), "Parquet structure": parquet_structure(),
         "wide files, many columns": many_columns(), "expansion bombs": expansion_bombs()}
#: One kind drawn evenly, then a file of that kind.
malformed = st.sampled_from(sorted(KINDS)).flatmap(KINDS.__getitem__)


# --------------------------------------------------------------------------- through the loader


def _snapshot(project: Project) -> tuple:
    return (project.annotations().to_dict("list"), project.items().to_dict("list"),
            project.label_set(), len(project.imports()), len(project.decisions()))


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    with Project(tmp_path_factory.mktemp("fuzz") / "p.sqlite") as proj:
        proj.import_annotations(BASE, source="base.csv", label_set=LABELS)
        proj.record_decision("b", actor="x", action="set_label", new_label="neu")
        yield proj


#: Files tried per kind: each kind's test asserts it reached this many, so the corpus size does
#: not depend on which tests ran or in what order.
EXAMPLES_PER_KIND = 30
#: Kinds with fewer distinct files than that (hypothesis stops once it has tried them all).
FEWER = {"0 rows": 5}


def _minimum(kind: str) -> int:
    return FEWER.get(kind, EXAMPLES_PER_KIND)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_malformed_files_end_in_the_clear_error_and_change_nothing(project, kind):
    tried = _try_kind(project, kind, EXAMPLES_PER_KIND)
    print(f"{kind}: {sum(tried.values())} malformed files tried {dict(tried)}")
    assert sum(tried.values()) >= _minimum(kind), tried


def test_the_corpus_holds_at_least_400_cases_of_every_kind():
    assert sum(_minimum(kind) for kind in KINDS) >= 400 and len(KINDS) >= 18, len(KINDS)


@pytest.mark.parametrize("kind", ["NUL bytes", "huge ids", "lone surrogates"])
def test_nul_huge_ids_and_surrogates_change_nothing_on_each_back_end(store_url, kind):
    """The kinds a database itself would refuse (PostgreSQL: NUL in text, B-tree entry size,
    invalid UTF-8), on a SQLite and a PostgreSQL project."""
    with Project(store_url) as proj:
        proj.import_annotations(BASE, source="base.csv", label_set=LABELS)
        proj.record_decision("b", actor="x", action="set_label", new_label="neu")
        assert sum(_try_kind(proj, kind, 10).values()) >= 10


def _try_kind(project: Project, kind: str, n: int) -> collections.Counter:
    """``n`` generated files of ``kind`` (the same ones on every run), each checked; how many
    of each case kind were tried."""
    tried: collections.Counter = collections.Counter()

    @settings(max_examples=n, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=KINDS[kind])
    def check(case):
        _check_one_case(project, case)
        tried[case[0]] += 1

    check()
    return tried


def _check_one_case(project: Project, case: tuple) -> None:
    kind, name, raw, options, where = case
    before = _snapshot(project)
    with pytest.raises(AnnotationFileError) as caught:
        import_file(project, io.BytesIO(raw), name=name, **options)
    message = str(caught.value)
    assert message.startswith(f"{name}:"), message          # names the file
    if where is not None:
        assert where in message, (kind, where, message)      # and the row, column or id
    assert not MARKER.exists(), "a pickled upload was executed"
    assert _snapshot(project) == before


# --------------------------------------------------------------------------- through the upload page


def _as_shown(markdown: str) -> str:
    """What Markdown shows for a message: the page escapes punctuation (``f\\.csv``) and breaks
    autolinks with an invisible word joiner, so that text from the file is shown as typed."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


def test_malformed_uploads_through_the_page_show_the_error_and_keep_the_project(tmp_path, monkeypatch):
    """A sample of the same cases through the real Project page (Streamlit AppTest)."""
    from streamlit.testing.v1 import AppTest

    url = tmp_path / "page.sqlite"
    with Project(url) as proj:
        proj.import_annotations(BASE, source="base.csv", label_set=LABELS)
    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    monkeypatch.setenv("CURATION_URL", str(url))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"),
                           default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    seen = collections.Counter()

    def through_the_page(case):
        kind, name, raw, options, where = case
        if set(options) - {"label_set"}:  # a lowered limit (max_rows=...): the page has no such field
            return
        at.file_uploader[0].set_value((name, raw, "application/octet-stream")).run()
        # "unknown labels": the page's declared label set defaults to the project's (pos, neg, neu)
        at.button(key="FormSubmitter:import-Import").click().run()
        assert not at.exception, (kind, at.exception)
        errors = [_as_shown(e.value) for e in at.error]
        assert errors and errors[0].startswith(f"Nothing was imported. {name}:"), (kind, errors)
        if where is not None:
            assert where in errors[0], (kind, where, errors[0])
        seen[kind] += 1

    for kind in sorted(KINDS):  # every kind, 4 files each
        settings(max_examples=4, deadline=None, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))(given(case=KINDS[kind])(through_the_page))()
    with Project(url) as proj:
        assert proj.annotations()[["item_id", "annotator_id", "label"]].values.tolist() == \
            BASE[["item_id", "annotator_id", "label"]].values.tolist()
        assert len(proj.imports()) == 1
    assert not MARKER.exists()
    assert sum(seen.values()) >= 50 and len(seen) >= 15, seen


# --------------------------------------------------------------------------- memory of expansion bombs

#: Loads argv[1] with the keyword arguments in argv[2] (JSON) and prints the refusal, the memory
#: in use before the load and the process's peak: a child process, so the peak is this load's.
CHILD = textwrap.dedent("""
    import json, resource, sys
    from curation.io import AnnotationFileError, load_annotations

    def peak_mb():
        # VmHWM: the peak of this process's own memory. Not ru_maxrss, which on Linux keeps the
        # parent's peak across fork and exec (under a long pytest run it read 1.4 GB here).
        with open("/proc/self/status") as status:
            line = next(x for x in status if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024  # kB

    def now_mb():
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 2**20

    before = now_mb()
    try:
        load_annotations(sys.argv[1], **json.loads(sys.argv[2]))
        message = None
    except AnnotationFileError as err:
        message = str(err)
    print(json.dumps({"message": message, "before_mb": before, "peak_mb": peak_mb()}))
""")
ROOT = Path(__file__).resolve().parents[1]
PEAK_MB = 600


def _load_in_a_child(path: Path, **options) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), json.dumps(options)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _decoded_gib(path: Path) -> float:
    """What a Parquet file decodes to, from its footer and dictionaries: rows x the longest
    value of each column (every column here holds one dictionary value, repeated)."""
    meta = pq.ParquetFile(path).metadata
    first = pq.ParquetFile(path, read_dictionary=pq.read_schema(path).names).read_row_group(0)
    longest = sum(max(map(len, column.chunk(0).dictionary.to_pylist())) for column in first.columns)
    return meta.num_rows * longest / 2**30


PARQUET_BOMBS = {  # name: (rows, characters per value, columns, the refusal it must get)
    "rows": (3_000_000, 2_000, 4, "has 3,000,000 rows (Parquet metadata), over the limit of 2,000,000"),
    "cells": (1_900_000, 500, 12,
              "has 1,900,000 rows x 12 columns = 22,800,000 cells (Parquet metadata)"),
    "text": (2_000_000, 10_000, 4, "by row group 1 of 2 (each use of a dictionary-encoded value "
                                   "counted), over the limit of 2.0 GiB (max_decoded_bytes="),
}


@pytest.mark.slow
@pytest.mark.parametrize("bomb", sorted(PARQUET_BOMBS))
def test_parquet_bombs_are_refused_with_bounded_memory(tmp_path, bomb):
    """Dictionary-encoded Parquet of a few KB that decodes to many GB: refused with a peak
    under 600 MB (before the limits, 216 KB of such a file took 4.3 GB)."""
    n_rows, chars, n_columns, refusal = PARQUET_BOMBS[bomb]
    path = tmp_path / f"{bomb}.parquet"
    pq.write_table(_bomb_table(n_rows, chars, n_columns), path)
    assert path.stat().st_size < 2**20 and _decoded_gib(path) > 5  # small on disk, huge decoded
    result = _load_in_a_child(path)
    assert result["message"].startswith(f"{path}: "), result
    assert refusal in result["message"], result
    assert result["peak_mb"] < PEAK_MB, result


@pytest.mark.slow
def test_a_csv_with_a_million_columns_is_refused_with_bounded_memory(tmp_path):
    """48 MB of CSV, 1,000,000 columns x 20 rows: pandas spends kilobytes per column, so this was
    over 9 GB; refused from the header line, under 600 MB."""
    def wide_csv(path: Path, n_columns: int) -> Path:
        header = ",".join(["item_id", "text"] + [f"a{k}" for k in range(n_columns - 2)])
        body = "".join(f"\n{j},text {j}" + ",p" * (n_columns - 2) for j in range(20))
        path.write_text(header + body + "\n")
        return path

    # what pandas builds for it were the limits not there: a 10,000-column slice (read, then
    # refused by the long layout's column check), times 100
    sample = _load_in_a_child(wide_csv(tmp_path / "sample.csv", 10_000), format="long",
                              max_columns=10_000, max_cells=10**9)
    assert "column 'annotator_id' is missing" in sample["message"], sample
    assert (sample["peak_mb"] - sample["before_mb"]) * 100 > 2_000, sample  # MB for 1,000,000

    path = wide_csv(tmp_path / "bomb.csv", 1_000_000)
    assert path.stat().st_size > 40 * 2**20
    result = _load_in_a_child(path)
    assert result["message"].startswith(f"{path}: has 1,000,000 columns (in the header line), over "
                                        "the limit of 1,000 (max_columns=1000)"), result
    assert result["peak_mb"] < PEAK_MB, result
