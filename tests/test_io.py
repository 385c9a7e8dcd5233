"""Loading: every layout and container, and a test per validation error."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.io import AnnotationFileError, load_annotations, validate_long_frame

LONG_CSV = (
    "item_id,text,annotator_id,label,gold\n"
    "1,Card was charged twice,ann_a,complaint,complaint\n"
    "1,Card was charged twice,ann_b,complaint,complaint\n"
    "2,How do I order a new card?,ann_a,request,\n"
    "2,How do I order a new card?,ann_b,complaint,\n"
)


def write(tmp_path, name, content, mode="w"):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def expected_rows():
    return [["1", "Card was charged twice", "ann_a", "complaint", "complaint"],
            ["1", "Card was charged twice", "ann_b", "complaint", "complaint"],
            ["2", "How do I order a new card?", "ann_a", "request", None],
            ["2", "How do I order a new card?", "ann_b", "complaint", None]]


def rows(df):
    return df.astype(object).where(df.notna(), None).values.tolist()


# --------------------------------------------------------------------------- layouts and containers


def test_long_csv(tmp_path):
    df = load_annotations(write(tmp_path, "a.csv", LONG_CSV))
    assert list(df.columns) == ["item_id", "text", "annotator_id", "label", "gold"]
    assert rows(df) == expected_rows()
    assert df.attrs["label_set"] == ["complaint", "request"]


def test_tsv_jsonl_parquet_json_give_the_same_frame(tmp_path):
    base = pd.read_csv(io.StringIO(LONG_CSV), dtype=str, keep_default_na=False)
    tsv = write(tmp_path, "a.tsv", base.to_csv(sep="\t", index=False))
    jsonl = write(tmp_path, "a.jsonl", base.to_json(orient="records", lines=True))
    records = write(tmp_path, "a.json", base.to_json(orient="records"))
    parquet = tmp_path / "a.parquet"
    base.to_parquet(parquet)
    for path in (tsv, jsonl, records, parquet):
        assert rows(load_annotations(path)) == expected_rows(), path.suffix


def test_column_mapping(tmp_path):
    csv = LONG_CSV.replace("item_id,text,annotator_id", "id,sentence,worker")
    df = load_annotations(write(tmp_path, "a.csv", csv),
                          columns={"id": "item_id", "sentence": "text", "worker": "annotator_id"})
    assert rows(df) == expected_rows()


def test_wide_format(tmp_path):
    wide = ("item_id,text,gold,ann_a,ann_b\n"
            "1,Card was charged twice,complaint,complaint,complaint\n"
            "2,How do I order a new card?,,request,complaint\n"
            "3,Thanks!,,praise,\n")
    df = load_annotations(write(tmp_path, "w.csv", wide), format="wide")
    assert rows(df.sort_values(["item_id", "annotator_id"]))[:4] == expected_rows()
    assert rows(df[df.item_id == "3"]) == [["3", "Thanks!", "ann_a", "praise", None]]
    # auto picks wide when there is no annotator_id/label column
    assert len(load_annotations(write(tmp_path, "w2.csv", wide))) == 5


def test_wide_format_with_named_annotator_columns(tmp_path):
    wide = "item_id,text,source,ann_a,ann_b\n1,Hi,web,praise,praise\n"
    df = load_annotations(write(tmp_path, "w.csv", wide), format="wide",
                          annotator_columns=["ann_a", "ann_b"])
    assert sorted(df.annotator_id) == ["ann_a", "ann_b"]


def label_studio_export():
    return [
        {"id": 11, "data": {"text": "Card was charged twice"},
         "annotations": [
             {"id": 1, "completed_by": 5, "result": [
                 {"type": "choices", "from_name": "sentiment", "value": {"choices": ["complaint"]}}]},
             {"id": 2, "completed_by": {"id": 6, "email": "b@x.org"}, "result": [
                 {"type": "choices", "value": {"choices": ["request"]}}]},
             {"id": 3, "completed_by": 7, "was_cancelled": True, "result": []}]},
        {"id": 12, "data": {"text": "Thanks!"},
         "annotations": [{"id": 4, "completed_by": 5, "result": [
             {"type": "choices", "value": {"choices": ["praise"]}}]}]},
    ]


def test_label_studio(tmp_path):
    path = write(tmp_path, "ls.json", json.dumps(label_studio_export()))
    df = load_annotations(path)
    assert rows(df) == [["11", "Card was charged twice", "5", "complaint", None],
                        ["11", "Card was charged twice", "b@x.org", "request", None],
                        ["12", "Thanks!", "5", "praise", None]]
    assert rows(load_annotations(path, format="label-studio")) == rows(df)


def test_utf8_with_bom_is_read(tmp_path):
    df = load_annotations(write(tmp_path, "bom.csv", b"\xef\xbb\xbf" + LONG_CSV.encode()))
    assert rows(df) == expected_rows()


def test_streamlit_style_upload_object():
    class Upload(io.BytesIO):
        name = "upload.csv"

    assert rows(load_annotations(Upload(LONG_CSV.encode()))) == expected_rows()


# --------------------------------------------------------------------------- validation errors


def error_of(tmp_path, name, content, **kwargs) -> str:
    with pytest.raises(AnnotationFileError) as err:
        load_annotations(write(tmp_path, name, content), **kwargs)
    assert isinstance(err.value, ValueError)
    return str(err.value)


def test_misspelt_column_names_file_suggests_and_says_fix(tmp_path):
    msg = error_of(tmp_path, "bad.csv", LONG_CSV.replace("annotator_id", "anotator"))
    assert "bad.csv" in msg
    assert "'annotator_id' is missing" in msg
    assert "did you mean 'anotator'" in msg
    assert "--map" in msg and "columns=" in msg


def test_mapping_with_unknown_source_column(tmp_path):
    msg = error_of(tmp_path, "a.csv", LONG_CSV, columns={"labl": "label"})
    assert "'labl' is missing" in msg and "did you mean 'label'" in msg


def test_empty_text_names_the_line(tmp_path):
    msg = error_of(tmp_path, "a.csv", LONG_CSV.replace("How do I order a new card?", " ", 1))
    assert "empty text at line 4" in msg and "fill in the text" in msg


def test_non_text_text_names_the_record(tmp_path):
    content = "\n".join(json.dumps(r) for r in [
        {"item_id": 1, "text": "fine", "annotator_id": "a", "label": "x"},
        {"item_id": 2, "text": 12345, "annotator_id": "a", "label": "x"}])
    msg = error_of(tmp_path, "a.jsonl", content)
    assert "non-text" in msg and "line 2" in msg and "int" in msg


def test_missing_label_names_the_line(tmp_path):
    msg = error_of(tmp_path, "a.csv", LONG_CSV.replace("ann_b,complaint,\n", "ann_b,,\n"))
    assert "missing labels at line 5" in msg and "fill in column 'label'" in msg


def test_wide_item_without_any_label(tmp_path):
    msg = error_of(tmp_path, "w.csv", "item_id,text,ann_a,ann_b\n1,Hi,praise,\n2,Yo,,\n",
                   format="wide")
    assert "line 3" in msg and "no label in any annotator column" in msg


def test_two_labels_from_one_annotator(tmp_path):
    content = LONG_CSV + "2,How do I order a new card?,ann_a,praise,\n"
    msg = error_of(tmp_path, "a.csv", content)
    assert "item '2' annotator 'ann_a'" in msg
    assert "'request' vs 'praise'" in msg and "line 4" in msg and "line 6" in msg
    assert "Keep one label" in msg


def test_exact_duplicate_rows_are_dropped(tmp_path):
    df = load_annotations(write(tmp_path, "a.csv", LONG_CSV + LONG_CSV.splitlines(True)[1]))
    assert len(df) == 4


def test_label_outside_declared_set(tmp_path):
    msg = error_of(tmp_path, "a.csv", LONG_CSV.replace("ann_a,request", "ann_a,requets"),
                   label_set=["complaint", "request", "praise"])
    assert "['requets']" in msg and "line 4" in msg
    assert "did you mean 'request'" in msg and "add them to the label set" in msg


def test_gold_outside_declared_set(tmp_path):
    msg = error_of(tmp_path, "a.csv", LONG_CSV, label_set=["request", "praise", "complaint "])
    assert "column 'label'" in msg or "column 'gold'" in msg


def test_same_item_id_with_two_texts(tmp_path):
    msg = error_of(tmp_path, "a.csv", LONG_CSV.replace("1,Card was charged twice,ann_b",
                                                       "1,Another text,ann_b"))
    assert "item ids 1 appear with different texts" in msg


def test_undecodable_bytes_say_which_encoding(tmp_path):
    content = LONG_CSV.replace("Thanks", "x").replace("twice", "twice \u20ac5").encode("cp1252")
    msg = error_of(tmp_path, "win.csv", content)
    assert "line 2" in msg and "utf-8" in msg
    assert "encoding='cp1252'" in msg and "--encoding cp1252" in msg
    df = load_annotations(tmp_path / "win.csv", encoding="cp1252")
    assert df.text.iloc[0] == "Card was charged twice \u20ac5"


def test_file_over_the_size_limit(tmp_path):
    msg = error_of(tmp_path, "a.csv", LONG_CSV, max_bytes=100)
    assert "a.csv" in msg and "over the" in msg and "limit" in msg and "--max-mb" in msg


def test_broken_json_names_line(tmp_path):
    msg = error_of(tmp_path, "a.jsonl", '{"item_id": 1}\n{"item_id": 2,,}\n')
    assert "line 2 is not valid JSON" in msg


def test_zero_rows(tmp_path):
    msg = error_of(tmp_path, "a.csv", "item_id,text,annotator_id,label\n")
    assert "no annotation rows" in msg


def test_unknown_extension(tmp_path):
    msg = error_of(tmp_path, "a.xlsx", "x")
    assert "file type" in msg and "file_type" in msg


def test_missing_file(tmp_path):
    with pytest.raises(AnnotationFileError, match="no such file"):
        load_annotations(tmp_path / "nope.csv")


def test_label_studio_multiple_choices(tmp_path):
    tasks = label_studio_export()
    tasks[1]["annotations"][0]["result"][0]["value"]["choices"] = ["praise", "request"]
    msg = error_of(tmp_path, "ls.json", json.dumps(tasks))
    assert "task 12, annotation 4" in msg and "single-label" in msg


def test_label_studio_wrong_text_key(tmp_path):
    tasks = [{"id": 1, "data": {"review": "x"}, "annotations": []}]
    msg = error_of(tmp_path, "ls.json", json.dumps(tasks))
    assert "task 1 has no data['text']" in msg and "review" in msg


def test_label_studio_empty_result_is_a_missing_label(tmp_path):
    tasks = label_studio_export()
    tasks[1]["annotations"][0]["result"] = []
    msg = error_of(tmp_path, "ls.json", json.dumps(tasks))
    assert "missing labels at task 12, annotation 4" in msg


def test_corrupt_parquet(tmp_path):
    msg = error_of(tmp_path, "a.parquet", b"PAR1 not really")
    assert "cannot be read as Parquet" in msg


# --------------------------------------------------------------------------- limits on what a file expands to


def refusal(name: str, content: str | bytes, **kwargs) -> str:
    """The loader's message for ``content`` uploaded as ``name`` (so it starts with the name)."""
    raw = content.encode() if isinstance(content, str) else content
    with pytest.raises(AnnotationFileError) as err:
        load_annotations(raw, name=name, **kwargs)
    return str(err.value)


def parquet_bytes(table: pa.Table, **options) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, **options)
    return buf.getvalue()


def repeated(value, n: int) -> pa.DictionaryArray:
    """``n`` rows of one dictionary-encoded value: a few bytes on disk, ``n`` values decoded."""
    return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, np.int32)), pa.array([value]))


def long_table(n: int = 4) -> pa.Table:
    return pa.table({"item_id": [f"i{k}" for k in range(n)], "text": [f"text {k}" for k in range(n)],
                     "annotator_id": ["ann"] * n, "label": ["pos", "neg"] * (n // 2)})


def long_csv(n_rows: int) -> str:
    body = "".join(f"{k},text {k},ann,pos\n" for k in range(n_rows))
    return "item_id,text,annotator_id,label\n" + body


def test_csv_header_over_max_columns_is_refused_before_parsing():
    header = ",".join(["item_id", "text"] + [f"a{k}" for k in range(999)])  # 1,001 fields
    content = header + "\n1,hi" + ",pos" * 999 + "\n"
    msg = refusal("wide.csv", content)
    assert msg.startswith("wide.csv: has 1,001 columns (in the header line), over the limit of "
                          "1,000 (max_columns=1000);"), msg
    assert "max_columns=... in load_annotations" in msg
    assert len(load_annotations(content.encode(), name="w.csv", max_columns=1001)) == 999


def rows_file(n_rows: int, suffix: str) -> str:
    frame = pd.DataFrame({"item_id": range(n_rows), "text": [f"t{k}" for k in range(n_rows)],
                          "annotator_id": "a", "label": "p"})
    if suffix == "jsonl":
        return frame.to_json(orient="records", lines=True)
    return frame.to_csv(index=False, sep="," if suffix == "csv" else "\t")


@pytest.mark.parametrize("suffix", ["csv", "tsv", "jsonl"])
def test_rows_over_max_rows_name_where_reading_stopped(suffix):
    msg = refusal(f"rows.{suffix}", rows_file(11, suffix), max_rows=10)
    line = 11 if suffix == "jsonl" else 12  # the 11th row (a CSV's header is line 1)
    assert msg.startswith(f"rows.{suffix}: has at least 11 rows (reading stopped at line {line}), "
                          "over the limit of 10 (max_rows=10); split the file"), msg
    assert len(load_annotations(rows_file(10, suffix).encode(), name=f"ten.{suffix}",
                                max_rows=10)) == 10


def test_cells_over_max_cells():
    msg = refusal("cells.csv", long_csv(20), max_cells=50)
    assert msg.startswith("cells.csv: has at least 13 rows x 4 columns = at least 52 cells (reading "
                          "stopped at line 14), over the limit of 50 (max_cells=50);"), msg


def test_json_records_with_too_many_keys_name_the_record():
    records = [{"item_id": 1, "text": "t", "annotator_id": "a", "label": "p"},
               {f"key{k}": k for k in range(1_000)}]
    msg = refusal("keys.json", json.dumps(records))
    assert msg.startswith("keys.json: has 1,004 columns (distinct keys up to record 2), over the "
                          "limit of 1,000 (max_columns=1000);"), msg


def test_wide_layout_unfolding_respects_max_rows_and_max_cells():
    wide = "item_id,text,a,b,c,d\n1,t1,p,p,p,p\n2,t2,p,p,p,p\n3,t3,p,p,p,p\n"  # 3 rows x 4 annotators
    msg = refusal("w.csv", wide, max_rows=11)
    assert msg.startswith("w.csv: has 12 annotations (the wide layout unfolded: 3 rows x 4 annotator "
                          "columns), over the limit of 11 (max_rows=11);"), msg
    msg = refusal("w.csv", wide, max_cells=59)  # the table is 3 x 7 = 21 cells
    assert "has 12 annotations x 5 columns = 60 cells (the wide layout unfolded" in msg
    assert "(max_cells=59)" in msg
    assert len(load_annotations(wide.encode(), name="w.csv", max_rows=12, max_cells=60)) == 12


@pytest.mark.parametrize("name, content, line", [
    ("deep.json", "[" * 100_000 + "]" * 100_000, 1),
    ("deep.jsonl", '{"item_id": 1}\n' + "[" * 100_000 + "]" * 100_000, 2),
    ("deep_ls.json", json.dumps(label_studio_export()).replace(
        '"data": {"text": "Thanks!"}', '"data": {"text": "Thanks!", "x": ' + "{\"a\": " * 100_000
        + "1" + "}" * 100_000 + "}"), 1),
])
def test_deep_json_gives_the_depth_message_not_a_recursion_error(name, content, line):
    msg = refusal(name, content)
    assert msg.startswith(f"{name}: line {line} nests JSON "), msg
    assert "over the limit of 64 (max_depth=64)" in msg


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = 'quoted \\" ' + "[{" * 500 + ' and a backslash \\\\'
    rows = [{"item_id": 1, "text": text, "annotator_id": "a", "label": "p"}]
    df = load_annotations(json.dumps(rows[0]).encode(), name="a.jsonl", max_depth=1)
    assert df.text.tolist() == [json.loads(json.dumps(text))]
    msg = refusal("b.jsonl", json.dumps({**rows[0], "meta": [[1]]}), max_depth=2)
    assert msg.startswith("b.jsonl: line 1 nests JSON 3 levels deep, over the limit of 2")


def test_fast_and_exact_nesting_scans_agree():
    """The whole-text scan (C speed) and the one that finds the line read JSON alike."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from curation.io import _first_too_deep, _nesting

    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(st.text(alphabet='"[]{}\\\na\u00e9', max_size=30), st.integers(0, 5))
    def agree(text, depth):
        assert (_nesting(text) > depth) == (_first_too_deep(text, depth) is not None)

    agree()


def test_parquet_shape_is_refused_from_the_footer():
    raw = parquet_bytes(long_table(6), row_group_size=2)
    msg = refusal("a.parquet", raw, max_rows=5)
    assert msg.startswith("a.parquet: has 6 rows (Parquet metadata), over the limit of 5 (max_rows=5)")
    msg = refusal("a.parquet", raw, max_columns=3)
    assert msg.startswith("a.parquet: has 4 columns (Parquet metadata), over the limit of 3")
    msg = refusal("a.parquet", raw, max_row_groups=2)
    assert msg.startswith("a.parquet: has 3 row groups (Parquet metadata), over the limit of 2 "
                          "(max_row_groups=2); rewrite it with fewer, larger row groups")
    assert len(load_annotations(raw, name="a.parquet", max_rows=6, max_row_groups=3)) == 6


def test_parquet_footer_with_a_huge_list_is_refused_while_parsing_it():
    raw = parquet_bytes(long_table(1_100), row_group_size=1)  # 1,100 row groups
    msg = refusal("groups.parquet", raw, max_row_groups=10)
    assert msg.startswith("groups.parquet: its Parquet footer lists more than 1,064 row groups or "
                          "columns, over the limits (max_row_groups=10, max_columns=1000)"), msg


def test_parquet_uncompressed_size_from_the_footer():
    raw = parquet_bytes(pa.table({"item_id": ["1"] * 600, "text": ["x" * 2_000] * 600,
                                  "annotator_id": ["a"] * 600, "label": ["p"] * 600}),
                        use_dictionary=False, compression="zstd")
    assert len(raw) < 20_000  # compresses well: 1.2 MB of text
    msg = refusal("plain.parquet", raw, max_decoded_bytes=1_000_000)
    assert msg.startswith("plain.parquet: holds 1.2 MiB of uncompressed values (Parquet metadata), "
                          "over the limit of 976.6 KiB (max_decoded_bytes=1000000)"), msg


def test_dictionary_encoded_parquet_bomb_is_refused_before_decoding():
    """2 million rows of one 10,000-character text: 20 KiB on disk, 20 GB once decoded."""
    n = 2_000_000
    raw = parquet_bytes(pa.table({"item_id": repeated("i", n), "text": repeated("w" * 10_000, n),
                                  "annotator_id": repeated("a", n), "label": repeated("p", n)}))
    meta = pq.ParquetFile(io.BytesIO(raw)).metadata
    assert len(raw) < 100_000 and meta.num_rows * 10_000 > 10 * 2**30
    assert sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups)) < 2**20
    msg = refusal("bomb.parquet", raw)
    assert msg.startswith("bomb.parquet: decodes to 9.8 GiB by row group 1 of 2 (each use of a "
                          "dictionary-encoded value counted), over the limit of 2.0 GiB "
                          "(max_decoded_bytes=2147483648)"), msg


def test_dictionary_encoded_parquet_within_the_limits_loads_with_nulls():
    table = pa.table({"item_id": ["1", "1", "2"], "text": ["a", "a", "b"],
                      "annotator_id": ["x", "y", "x"], "label": ["p", "n", "p"],
                      "gold": pa.array(["p", None, None]).dictionary_encode()})
    df = load_annotations(parquet_bytes(table), name="d.parquet")
    assert rows(df) == [["1", "a", "x", "p", "p"], ["1", "a", "y", "n", None],
                        ["2", "b", "x", "p", None]]


@pytest.mark.parametrize("limit", ["max_rows", "max_columns", "max_cells", "max_depth",
                                   "max_row_groups", "max_decoded_bytes", "max_id_chars"])
@pytest.mark.parametrize("value", [0, -1, 2.5, "10", True])
def test_limits_must_be_positive_whole_numbers(limit, value):
    msg = refusal("a.csv", LONG_CSV, **{limit: value})
    assert msg == f"{limit}={value!r} must be a whole number of at least 1."


# --------------------------------------------------------------------------- malformed structures


def label_studio_with(change) -> str:
    tasks = label_studio_export()
    change(tasks)
    return json.dumps(tasks)


def _set(path: list, value):
    def change(tasks):
        target = tasks
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return change


@pytest.mark.parametrize("path, value, expected", [
    ([1, "annotations"], "oops",
     "task 12: 'annotations' is a string ('oops'), not a list of annotations;"),
    ([1, "annotations"], {"id": 4},
     "task 12: 'annotations' is an object ({'id': 4}), not a list of annotations;"),
    ([1, "annotations", 0], "oops",
     "task 12, annotation #1: the annotation is a string ('oops'), not an object;"),
    ([1, "annotations", 0, "result"], "oops",
     "task 12, annotation 4: 'result' is a string ('oops'), not a list of results;"),
    ([1, "annotations", 0, "result", 0], "oops",
     "task 12, annotation 4: result #1 is a string ('oops'), not an object;"),
    ([1, "annotations", 0, "result", 0, "value"], "oops",
     "task 12, annotation 4: result #1 'value' is a string ('oops'), not an object such as"),
    ([1, "annotations", 0, "result", 0, "value", "choices"], "abc",
     "task 12, annotation 4: result #1 'choices' is a string ('abc'), not a list of labels;"),
    ([1, "data"], ["Thanks!"], "task 12: 'data' is a list (['Thanks!']), not an object such as"),
    ([1, "data"], "Thanks!", "task 12: 'data' is a string ('Thanks!'), not an object such as"),
    ([1, "annotations", 0, "completed_by"], [5],
     "task 12, annotation 4: 'completed_by' is a list ([5]), not a whole number or text;"),
    ([1, "annotations", 0, "completed_by"], {"email": ["b@x.org"]},
     "task 12, annotation 4: 'completed_by' is a list (['b@x.org']), not a whole number or text;"),
    ([1, "id"], [12], "the task at position 2: 'id' is a list ([12]), not a whole number or text;"),
    ([1, "id"], 12.5, "the task at position 2: 'id' is a number (12.5), not a whole number or text;"),
])
def test_label_studio_fields_of_the_wrong_type_are_named(path, value, expected):
    msg = refusal("ls.json", label_studio_with(_set(path, value)))
    assert msg.startswith(f"ls.json: {expected}"), msg
    assert msg.endswith("fix the export (Label Studio: Export > JSON) or the script that wrote it.")


@pytest.mark.parametrize("column", ["label", "gold", "item_id", "text"])
def test_parquet_list_columns_are_refused_by_name(column):
    table = long_table(2).append_column("gold", pa.array(["pos", "neg"]))
    table = table.set_column(table.schema.get_field_index(column), column,
                             pa.array([["pos", "neg"], ["neg"]]))
    msg = refusal("l.parquet", parquet_bytes(table))
    assert msg.startswith(f"l.parquet: column {column!r} is a nested Parquet column "
                          "(list<element: string>); an annotation file holds one plain value"), msg


def test_array_cells_handed_to_validation_are_refused():
    """numpy arrays (what pandas makes of a Parquet list) count as lists, for gold too."""
    frame = pd.DataFrame({"item_id": ["1", "2"], "text": ["a", "b"], "annotator_id": ["x", "x"],
                          "label": ["p", "n"], "gold": [None, np.array(["p", "n"])]})
    with pytest.raises(AnnotationFileError) as err:
        validate_long_frame(frame, name="f")
    assert str(err.value).startswith("f: column 'gold' holds lists/objects at row 2 (e.g. "
                                     "array(['p', 'n']"), str(err.value)
    frame["gold"] = [None, None]
    frame["label"] = [np.array(["p", "n"]), "n"]
    with pytest.raises(AnnotationFileError, match="column 'label' holds lists/objects at row 1"):
        validate_long_frame(frame, name="f")


@pytest.mark.parametrize("column", ["item_id", "annotator_id", "label"])
def test_parquet_binary_ids_are_refused(column):
    table = long_table(2)
    table = table.set_column(table.schema.get_field_index(column), column, pa.array([b"a", b"b"]))
    msg = refusal("b.parquet", parquet_bytes(table))
    assert msg == (f"b.parquet: column {column!r} holds binary (bytes) values at row 1, row 2 (e.g. "
                   "b'a'); store the column as text (UTF-8 strings), not as binary.")


@pytest.mark.parametrize("name, column, line", [
    ("nul.csv", "item_id", "line 3"), ("nul.csv", "text", "line 3"), ("nul.csv", "label", "line 3"),
    ("nul.jsonl", "annotator_id", "line 2"), ("nul.jsonl", "text", "line 2"),
])
def test_nul_characters_are_refused_with_the_row_and_column(name, column, line):
    frame = pd.read_csv(io.StringIO(LONG_CSV), dtype=str, keep_default_na=False)
    frame.loc[1, column] = frame.loc[1, column][:2] + "\x00" + frame.loc[1, column][2:]
    content = (frame.to_csv(index=False) if name.endswith(".csv")
               else frame.to_json(orient="records", lines=True))
    msg = refusal(name, content)
    assert msg.startswith(f"{name}: column {column!r} holds a NUL character (\\x00) at {line}; "
                          "remove it"), msg


@pytest.mark.parametrize("literal", ["Infinity", "-Infinity", "1e400"])
def test_non_finite_ids_are_refused(literal):
    content = (f'{{"item_id": 1, "text": "a", "annotator_id": "x", "label": "p"}}\n'
               f'{{"item_id": {literal}, "text": "b", "annotator_id": "x", "label": "p"}}\n')
    msg = refusal("inf.jsonl", content)
    assert msg.startswith("inf.jsonl: column 'item_id' holds numbers that are not finite at line 2 "
                          "(e.g. "), msg
    assert msg.endswith("write the value as text or a finite number.")


@pytest.mark.parametrize("name, content, place", [
    ("long.jsonl", '{"item_id": ' + "7" * 5_000 + ', "text": "a", "annotator_id": "x", "label": "p"}',
     "column 'item_id' has a value of 5,000 characters at line 1"),
    ("long.csv", "item_id,text,annotator_id,label\n1,a,x,p\n2,b," + "y" * 513 + ",p\n",
     "column 'annotator_id' has a value of 513 characters at line 3"),
    ("long.json", json.dumps([{"item_id": 1, "text": "a", "annotator_id": "x", "label": "p" * 600}]),
     "column 'label' has a value of 600 characters at record 1"),
])
def test_ids_longer_than_max_id_chars_are_refused(name, content, place):
    msg = refusal(name, content)
    assert msg.startswith(f"{name}: {place}, over the limit of 512 (max_id_chars=512); ids and "
                          "labels are short names"), msg


def test_an_id_of_exactly_max_id_chars_is_kept():
    df = load_annotations(LONG_CSV.replace("ann_a", "a" * 512).encode(), name="a.csv")
    assert df.annotator_id.str.len().max() == 512
    assert "513 characters" in refusal("b.csv", LONG_CSV.replace("ann_a", "a" * 513))


def test_a_huge_json_number_as_text_is_a_non_text_value():
    content = '{"item_id": 1, "text": ' + "9" * 5_000 + ', "annotator_id": "x", "label": "p"}'
    msg = refusal("t.jsonl", content)
    assert msg.startswith("t.jsonl: column 'text' holds non-text values at line 1 (e.g. <integer of "
                          "5,000 digits> of type int)"), msg


# --------------------------------------------------------------------------- limits from the environment

def _rows_csv(n: int) -> bytes:
    return ("item_id,text,annotator_id,label\n"
            + "".join(f"{i},text {i},a,pos\n" for i in range(n))).encode()


def test_limits_come_from_the_environment_unless_given(monkeypatch):
    """The app's operator sets CURATION_MAX_ROWS...; an explicit keyword (the CLI's --limit) wins."""
    from curation.io import DEFAULT_MAX_ROWS, effective_limits

    assert effective_limits()["max_rows"] == DEFAULT_MAX_ROWS
    monkeypatch.setenv("CURATION_MAX_ROWS", "3")
    assert effective_limits()["max_rows"] == 3
    with pytest.raises(AnnotationFileError) as caught:
        load_annotations(_rows_csv(5), name="f.csv")
    message = str(caught.value)
    assert "over the limit of 3 (max_rows=3)" in message
    assert "--limit max_rows=N" in message and "CURATION_MAX_ROWS=N" in message
    assert len(load_annotations(_rows_csv(5), name="f.csv", max_rows=5)) == 5
    monkeypatch.setenv("CURATION_MAX_ROWS", "many")
    with pytest.raises(AnnotationFileError, match=r"CURATION_MAX_ROWS='many' is not a whole number"):
        load_annotations(_rows_csv(2), name="f.csv")
    monkeypatch.delenv("CURATION_MAX_ROWS")
    monkeypatch.setenv("CURATION_MAX_TEXT_CHARS", "5")
    with pytest.raises(AnnotationFileError, match="text longer than 5 characters at line 2"):
        load_annotations(_rows_csv(1), name="f.csv")


@pytest.mark.parametrize("name, raw, where", [
    ("f.jsonl", b'{"item_id": "1", "text": "cut \\ud83d", "annotator_id": "a", "label": "p"}\n', "line 1"),
    ("f.json", b'[{"item_id": "\\udc00", "text": "t", "annotator_id": "a", "label": "p"}]', "its JSON"),
])
def test_a_lone_surrogate_escape_is_named_not_a_unicode_error(name, raw, where):
    with pytest.raises(AnnotationFileError) as caught:
        load_annotations(raw, name=name)
    assert str(caught.value).startswith(f"{name}: {where} holds the escape \\u")


def test_an_escaped_surrogate_pair_is_one_character():
    raw = b'{"item_id": "1", "text": "smile \\ud83d\\ude00", "annotator_id": "a", "label": "p"}\n'
    assert load_annotations(raw, name="f.jsonl")["text"].tolist() == ["smile \U0001F600"]


def test_auto_detection_never_reads_counts_as_annotators(tmp_path):
    """A file with item_id, text and only numeric columns (vote counts, scores) is not silently
    read as one column per annotator (issue 17: kappa -0.068 on Amazon's vote counts, exit 0);
    format='wide' still reads numeric ratings when the user says so."""
    path = tmp_path / "votes.csv"
    path.write_text("item_id,text,is_book_in,is_book_out,Y\n1,good,0,5,0\n2,bad,3,2,1\n",
                    encoding="utf-8")
    with pytest.raises(AnnotationFileError, match=r"votes.csv: has no annotator_id and label "
                       r"columns.*every value in those columns is a number.*format='wide'"):
        load_annotations(path)
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("item_id,text,ann1,ann2\n1,good,4,5\n2,bad,1,2\n", encoding="utf-8")
    frame = load_annotations(ratings, format="wide")
    assert sorted(frame["annotator_id"].unique()) == ["ann1", "ann2"] and len(frame) == 4
    words = tmp_path / "words.csv"
    words.write_text("item_id,text,ann1,ann2\n1,good,pos,pos\n2,bad,neg,pos\n", encoding="utf-8")
    assert len(load_annotations(words)) == 4  # labels that are words: wide, as before


# ---------------------------------------------------------------- clear errors (issue 18, part 3)
def test_json_lines_in_a_json_file_says_which_file_type_to_pass(tmp_path):
    path = tmp_path / "votes.json"
    rows = [{"item_id": "1", "text": "a", "annotator_id": "x", "label": "p"},
            {"item_id": "1", "text": "a", "annotator_id": "y", "label": "n"}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    with pytest.raises(AnnotationFileError) as err:
        load_annotations(path)
    assert "Extra data" in str(err.value) and "looks like JSON Lines" in str(err.value)
    assert "--file-type jsonl" in str(err.value)
    assert len(load_annotations(path, file_type="jsonl")) == 2  # and the advice works
    broken = tmp_path / "broken.json"
    broken.write_text('{"a": 1} oops', encoding="utf-8")
    with pytest.raises(AnnotationFileError) as err:
        load_annotations(broken)
    assert "JSON Lines" not in str(err.value)  # not JSON Lines either: no such advice


def test_a_missing_column_hint_names_the_usual_column_before_a_look_alike(tmp_path):
    path = tmp_path / "pairs.csv"
    path.write_text("prem_id,id,sentence,worker,category\np1,1,a,x,yes\n", encoding="utf-8")
    with pytest.raises(AnnotationFileError) as err:
        load_annotations(path, format="long")
    message = str(err.value)
    assert "'item_id' is missing - did you mean 'id'?" in message
    assert "'text' is missing - did you mean 'sentence'?" in message
    assert "'annotator_id' is missing - did you mean 'worker'?" in message
    assert "'label' is missing - did you mean 'category'?" in message


def test_columns_that_would_collide_are_refused_by_name(tmp_path):
    path = tmp_path / "nli.csv"
    path.write_text("id,premise,hypothesis,worker,label\n1,a,b,x,yes\n", encoding="utf-8")
    with pytest.raises(AnnotationFileError) as err:
        load_annotations(path, columns={"id": "item_id", "premise": "text", "hypothesis": "text",
                                        "worker": "annotator_id"})
    assert "2 columns named 'text' ('premise', 'hypothesis')" in str(err.value)
    assert "sentence pair" in str(err.value)
    own = tmp_path / "own.csv"
    own.write_text("item_id,text,premise,annotator_id,label\n1,a,b,x,yes\n", encoding="utf-8")
    with pytest.raises(AnnotationFileError, match="'premise', 'text' already in the file"):
        load_annotations(own, columns={"premise": "text"})
    # a wide file that has a 'label' column: the unfolded columns would collide with it
    wide = tmp_path / "wide.csv"
    wide.write_text("item_id,text,label,ann1\n1,a,p,p\n", encoding="utf-8")
    with pytest.raises(AnnotationFileError) as err:
        load_annotations(wide, format="wide")
    assert "already has a column named 'label'" in str(err.value)
    assert "format='long'" in str(err.value)


ZH = ("item_id,text,annotator_id,label\n"
      + "".join(f"{i},我的信用卡被盗了，请帮我冻结账户。银行客服回复很慢,a{i % 3},投诉\n" for i in range(20)))
ZH_TW = ("item_id,text,annotator_id,label\n"
         + "".join(f"{i},我的信用卡被盜了，請幫我凍結帳戶。銀行客服回覆很慢,a{i % 3},投訴\n" for i in range(20)))
RU = ("item_id,text,annotator_id,label\n"
      + "".join(f"{i},Моя карта украдена пожалуйста заблокируйте счёт,a{i % 3},жалоба\n"
                for i in range(20)))


@pytest.mark.parametrize("content, saved_as, suggested", [
    (ZH, "gbk", "gb18030"),          # GB18030 reads every GBK file
    (ZH, "gb18030", "gb18030"),
    (ZH_TW, "big5", "big5"),
    (RU, "cp1251", "cp1251"),
])
def test_a_non_utf8_file_gets_the_encoding_it_was_saved_in_never_latin1(tmp_path, content,
                                                                        saved_as, suggested):
    path = tmp_path / "votes.csv"
    path.write_bytes(content.encode(saved_as))
    with pytest.raises(AnnotationFileError) as err:
        load_annotations(path)
    assert f"encoding={suggested!r}" in str(err.value) and "latin-1" not in str(err.value)
    frame = load_annotations(path, encoding=suggested)  # the advice reads the text right
    assert frame["text"].iloc[0] == content.splitlines()[1].split(",")[1]


def test_utf16_with_a_byte_order_mark_is_read_without_being_asked(tmp_path):
    path = tmp_path / "votes.csv"
    path.write_bytes(ZH.encode("utf-16"))  # Excel's "Unicode text" saves with a BOM
    frame = load_annotations(path)
    assert frame["label"].iloc[0] == "投诉" and len(frame) == 20
