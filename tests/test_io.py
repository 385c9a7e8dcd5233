"""Loading: every layout and container, and a test per validation error."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from curation.io import AnnotationFileError, load_annotations

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
