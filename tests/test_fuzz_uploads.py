"""Bad input, fuzzed: malformed annotation files through the loader and through the upload page.

Hypothesis builds files that are wrong in one known way each (wrong columns, mixed types, empty
and huge texts, broken encodings, broken JSON, duplicated pairs, unknown labels, 0 rows, garbage
and pickled bytes). Every one must end in the clear validation error (``AnnotationFileError``,
naming the file and, where there is one, the planted row), never in another exception, and the
project's stored data must be exactly as before. The examples are derandomised, so CI runs the
same cases every time.
"""

from __future__ import annotations

import collections
import io
import json
import pickle
import string
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.io import DEFAULT_MAX_TEXT_CHARS, AnnotationFileError
from curation.store import Project
from curation.workspace import import_file

LABELS = ["pos", "neg", "neu"]
BASE = pd.DataFrame({"item_id": ["a", "a", "b"], "text": ["good", "good", "bad"],
                     "annotator_id": ["x", "y", "x"], "label": ["pos", "pos", "neg"]})
#: Set by a pickled "upload" if it were ever unpickled.
MARKER = Path(__file__).with_name(".pickle-was-executed")
CASES: collections.Counter = collections.Counter()


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


def _where(fmt: str, index: int) -> str:
    """How the loader names the planted row (CSV: header is line 1; JSONL: line; JSON: record)."""
    return {"csv": f"line {index + 2}", "tsv": f"line {index + 2}", "jsonl": f"line {index + 1}",
            "json": f"record {index + 1}"}[fmt]


def _encode(rows: list[dict], fmt: str) -> bytes:
    if fmt in ("csv", "tsv"):
        return _csv(rows, sep="," if fmt == "csv" else "\t")
    if fmt == "jsonl":
        return _jsonl(rows)
    return json.dumps(rows).encode()


fmts = st.sampled_from(["csv", "tsv", "jsonl", "json"])


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


KINDS = {"wrong columns": wrong_columns(), "mixed types": mixed_types(), "empty text": empty_text(),
         "huge text": huge_text(), "broken encoding": broken_encoding(), "broken JSON": broken_json(),
         "duplicated pairs": duplicated_pairs(), "unknown labels": unknown_labels(),
         "0 rows": zero_rows(), "garbage or pickle": garbage_or_pickle()}
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
        proj.record_decision("b", reviewer="x", action="set_label", new_label="neu")
        yield proj


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_malformed_files_end_in_the_clear_error_and_change_nothing(project, kind):
    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=KINDS[kind])
    def check(case):
        _check_one_case(project, case)

    check()


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
    CASES[kind] += 1


def test_every_kind_of_malformed_file_was_tried():
    """Runs after the fuzz test above (file order): at least 200 cases, every kind several times."""
    if not CASES:
        pytest.skip("run together with the fuzz test")
    print(f"malformed files tried: {sum(CASES.values())} {dict(CASES)}")
    assert sum(CASES.values()) >= 200, CASES
    assert len(CASES) == 11 and min(CASES.values()) >= 5, CASES  # garbage/pickle are two kinds


# --------------------------------------------------------------------------- through the upload page


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
        at.file_uploader[0].set_value((name, raw, "application/octet-stream")).run()
        # "unknown labels": the page's declared label set defaults to the project's (pos, neg, neu)
        at.button(key="FormSubmitter:import-Import").click().run()
        assert not at.exception, (kind, at.exception)
        errors = [e.value for e in at.error]
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
    assert sum(seen.values()) >= 40 and len(seen) >= 10, seen
