"""Export: files per format round-trip, the data card, augmentations, atomic writes, errors."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from curation.export import FORMATS, ExportResult, export_dataset

FILE_FORMATS = [f for f in FORMATS if f != "hf"]  # hf is a datasets folder (tests/test_formats.py)
from curation.splits import SPLITS

FILE_COLUMNS = ["item_id", "text", "label", "confidence", "source", "augmented_from"]


def _curated(n: int = 60) -> pd.DataFrame:
    """n items over three classes (20 each), two near-duplicate pairs, two augmentations."""
    labels = ["neg", "neu", "pos"] * (n // 3)
    frame = pd.DataFrame({
        "item_id": [f"i{k:03d}" for k in range(n)],
        "text": [f"review number {k} about café ünïcode" for k in range(n)],
        "label": labels,
        "confidence": np.round(np.linspace(0.4, 1.0, n), 3),
        "source": ["web", "app"] * (n // 2),
        "augmented_from": [None] * n,
    })
    frame.loc[3, "text"] = "Review number 0, about CAFÉ ünïcode!"  # near-duplicate of i000
    frame.loc[4, "text"] = "review  number 1 about café ünïcode."  # near-duplicate of i001
    augmented = pd.DataFrame({
        "item_id": ["aug1", "aug2"], "text": ["a paraphrase of ten", "a paraphrase of eleven"],
        "label": [labels[10], labels[11]], "confidence": [1.0, 1.0], "source": ["augment"] * 2,
        "augmented_from": ["i010", "i011"],
    })
    return pd.concat([frame, augmented], ignore_index=True)


def _read(path):
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype={c: str for c in ("item_id", "text", "label", "source",
                                                        "augmented_from")})
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    return pd.read_parquet(path)


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Same values whatever the format stored: object columns, missing as None."""
    frame = frame.reset_index(drop=True).astype(object)
    return frame.where(frame.notna(), None)


@pytest.fixture
def exported(tmp_path) -> ExportResult:
    return export_dataset(_curated(), tmp_path / "out", formats=FORMATS, seed=1,
                          card={"agreement": {"fleiss_kappa": 0.61,
                                              "per_class": [{"label": "neg", "kappa": 0.5},
                                                            {"label": "pos", "kappa": 0.7}]},
                                "flags": {"raised": 12, "resolved": 10},
                                "decisions": ["relabelled 3", "dropped 2"]})


def test_files_exist_for_every_format(exported):
    names = sorted(p.name for p in exported.out_dir.iterdir())
    expected = sorted([f"{s}.{f}" for s in SPLITS for f in FILE_FORMATS]
                      + ["data_card.json", "data_card.md"])
    assert names == sorted([*expected, "hf"])
    top = [p.relative_to(exported.out_dir).parts for p in exported.files]
    assert sorted(parts[0] for parts in top if len(parts) == 1) == expected
    assert {parts[0] for parts in top if len(parts) > 1} == {"hf"}
    assert [p.name for p in exported.files[-2:]] == ["data_card.json", "data_card.md"]


def test_no_temporary_folders_left(exported):
    assert [p.name for p in exported.out_dir.parent.iterdir()] == ["out"]


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_files_round_trip(exported, fmt):
    for split in SPLITS:
        got = _read(exported.out_dir / f"{split}.{fmt}")
        assert list(got.columns) == FILE_COLUMNS
        want = exported.splits.loc[exported.splits["split"] == split, FILE_COLUMNS]
        pd.testing.assert_frame_equal(_comparable(got), _comparable(want))


def test_splits_frame_keeps_every_row(exported):
    splits = exported.splits
    assert len(splits) == 62
    assert splits["item_id"].tolist() == _curated()["item_id"].tolist()
    assert list(splits.columns) == FILE_COLUMNS + ["split", "leakage_group"]


def test_card_counts_match_files(exported):
    card = json.loads((exported.out_dir / "data_card.json").read_text(encoding="utf-8"))
    assert card == exported.card
    for split in SPLITS:
        frame = _read(exported.out_dir / f"{split}.csv")
        assert card["counts"][split] == {k: v for k, v in frame["label"].value_counts().items()}
        assert card["split_sizes"][split] == len(frame)
    assert card["total_rows"] == 62 == sum(card["split_sizes"].values())
    assert card["augmented_rows"] == 2
    assert card["near_duplicate_groups"] == 2
    assert card["rows_in_near_duplicate_groups"] == 4
    # what the test split can show: never a change below 6 items' worth
    n_test = card["split_sizes"]["test"]
    power = card["test_power"]
    assert power["test_items"] == n_test
    assert power["smallest_detectable_accuracy_change"] == pytest.approx(6 / n_test)
    assert power["classes_under_10"] == sorted(card["counts"]["test"])   # a tiny fixture
    assert "a 0.020 change needs at least 300 test items" in power["note"]


def test_card_settings_and_caller_entries(exported):
    card = exported.card
    assert card["created_at"].endswith("+00:00")
    assert (card["seed"], card["test_size"], card["val_size"]) == (1, 0.15, 0.15)
    assert card["near_duplicate_threshold"] == 0.95
    assert card["agreement"]["per_class"][1] == {"label": "pos", "kappa": 0.7}
    assert card["decisions"] == ["relabelled 3", "dropped 2"]
    shares = card["class_shares"]["train"]
    assert sum(shares.values()) == pytest.approx(1, abs=1e-3)


def test_card_markdown(exported):
    md = (exported.out_dir / "data_card.md").read_text(encoding="utf-8")
    counts = exported.card["counts"]
    assert "| class | train | validation | test | total |" in md
    for label in ("neg", "neu", "pos"):
        row = [counts[s][label] for s in SPLITS]
        assert f"| {label} | {' | '.join(map(str, row))} | {sum(row)} |" in md
    sizes = [exported.card["split_sizes"][s] for s in SPLITS]
    assert f"| total | {' | '.join(map(str, sizes))} | {sum(sizes)} |" in md
    assert "## Class shares per split" in md
    shown = md.replace("\\", "")  # as Markdown shows it (text is escaped, see the next test)
    assert "- **What the test split can show**: no change in accuracy smaller than" in shown
    assert "## Agreement" in md and "- **fleiss_kappa**: 0.61" in shown
    assert "### Per class" in md and "| label | kappa |" in md and "| pos | 0.7 |" in md
    assert "## Decisions" in md and "- relabelled 3" in md


def test_near_duplicates_share_a_split(exported):
    splits = exported.splits.set_index("item_id")
    for a, b in (("i000", "i003"), ("i001", "i004")):
        assert splits.at[a, "split"] == splits.at[b, "split"]
        assert splits.at[a, "leakage_group"] == splits.at[b, "leakage_group"]


@pytest.mark.parametrize("seed", range(8))
def test_augmented_rows_only_in_train_with_their_source(tmp_path, seed):
    result = export_dataset(_curated(), tmp_path / "out", seed=seed)
    splits = result.splits.set_index("item_id")
    for aug, source in (("aug1", "i010"), ("aug2", "i011")):
        assert splits.at[aug, "split"] == "train"
        assert splits.at[aug, "leakage_group"] == splits.at[source, "leakage_group"]
        assert splits.at[source, "split"] == "train"
    assert set(pd.read_csv(result.out_dir / "validation.csv")["item_id"]).isdisjoint({"aug1", "aug2"})
    assert set(pd.read_csv(result.out_dir / "test.csv")["item_id"]).isdisjoint({"aug1", "aug2"})


def test_augmentation_pulls_its_sources_near_duplicates_into_train(tmp_path):
    frame = _curated()
    frame.loc[20, "text"] = frame.loc[10, "text"].upper()  # i020 duplicates aug1's source
    splits = export_dataset(frame, tmp_path / "out").splits.set_index("item_id")
    assert splits.at["i020", "split"] == "train"


def test_augmentations_do_not_shrink_validation_and_test(tmp_path):
    plain = export_dataset(_curated().iloc[:60], tmp_path / "a").card["split_sizes"]
    with_aug = export_dataset(_curated(), tmp_path / "b").card["split_sizes"]
    assert with_aug["train"] == plain["train"] + 2
    assert (with_aug["validation"], with_aug["test"]) == (plain["validation"], plain["test"])


def test_embeddings_join_groups(tmp_path):
    frame = _curated().iloc[:60]
    emb = np.eye(60)
    emb[30, 31] = 10.0  # i030 ~ i031
    result = export_dataset(frame, tmp_path / "out", embeddings=emb, near_duplicate_threshold=0.99)
    splits = result.splits.set_index("item_id")
    assert splits.at["i030", "leakage_group"] == splits.at["i031", "leakage_group"]
    assert result.card["embeddings_used"] is True
    assert result.card["near_duplicate_groups"] == 3


def test_dropped_and_ambiguous_items_left_out(tmp_path):
    frame = _curated().iloc[:60].assign(status="consensus")
    frame.loc[[0, 1], "status"] = "dropped"
    frame.loc[2, "status"] = "ambiguous"
    result = export_dataset(frame, tmp_path / "a")
    assert result.card["total_rows"] == 57
    assert result.card["excluded_rows"] == {"dropped": 2, "ambiguous": 1}
    kept = export_dataset(frame, tmp_path / "b", include_ambiguous=True)
    assert "i002" in set(kept.splits["item_id"]) and kept.card["total_rows"] == 58


def test_failure_midway_leaves_no_partial_dataset(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    out = tmp_path / "out"
    with pytest.raises(OSError, match="disk full"):
        export_dataset(_curated(), out, formats=("csv", "parquet"))
    assert list(tmp_path.iterdir()) == []
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(OSError, match="disk full"):
        export_dataset(_curated(), out, formats=("csv", "parquet"))
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_reexport_replaces_files(tmp_path):
    out = tmp_path / "out"
    export_dataset(_curated(), out, formats=("csv",), seed=0)
    second = export_dataset(_curated(), out, formats=("csv",), seed=5)
    test = pd.read_csv(out / "test.csv", dtype=str)
    assert test["item_id"].tolist() == second.splits.query("split == 'test'")["item_id"].tolist()
    assert json.loads((out / "data_card.json").read_text())["seed"] == 5


@pytest.mark.parametrize(("formats", "message"), [
    (("csv", "xlsx"), r"unknown export format\(s\) 'xlsx'; pass formats from \['csv', 'jsonl', 'parquet', 'hf'\]"),
    (("json",), "'json' - did you mean 'jsonl'\\?"),
    ((), r"\(none given\)"),
])
def test_bad_formats_name_the_fix(tmp_path, formats, message):
    with pytest.raises(ValueError, match=message):
        export_dataset(_curated(), tmp_path / "out", formats=formats)
    assert not (tmp_path / "out").exists()


def test_missing_columns_name_the_fix(tmp_path):
    frame = _curated().rename(columns={"label": "labels"}).drop(columns="text")
    with pytest.raises(ValueError, match=r"lacks column\(s\) 'text', 'label' - did you mean "
                                         r"'labels'\?.*df.rename\(columns="):
        export_dataset(frame, tmp_path / "out")


@pytest.mark.parametrize(("change", "message"), [
    (lambda f: f.iloc[:0], "no rows"),
    (lambda f: f.assign(item_id=["x", "x", "y", "y"] + list(f["item_id"][4:])),
     r"repeated: x, y.*drop_duplicates"),
    (lambda f: f.assign(label=[None] + list(f["label"][1:])), "label is missing for item_id i000"),
    (lambda f: f.assign(split="train"), r"already has column\(s\) \['split'\]"),
])
def test_bad_frames_name_the_fix(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        export_dataset(change(_curated()), tmp_path / "out")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"card": {"counts": 1}}, r"card keys \['counts'\] clash"),
    ({"card": ["not", "a", "mapping"]}, "card must be a mapping"),
    ({"embeddings": np.ones((3, 4))}, "embeddings have 3 rows but curated has 62"),
    ({"test_size": 0.6, "val_size": 0.5}, "must be below 1"),
    ({"near_duplicate_threshold": 0}, r"near_duplicate_threshold must be in \(0, 1\]"),
])
def test_bad_options(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_dataset(_curated(), tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_out_dir_that_is_a_file(tmp_path):
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        export_dataset(_curated(), path)


def test_card_quotes_user_text_as_text_and_csv_formulas_are_counted_or_neutralised(tmp_path):
    """Labels, ids and the caller's card entries go into the Markdown escaped (no image, link,
    heading or HTML forms); formula-leading cells are counted in the card, kept exact by default
    and prefixed with ' under excel_safe (CSV only)."""
    from curation.messages import markdown_text

    hostile = "![x](http://evil.example/p.png)"
    df = pd.DataFrame({"item_id": [f"i{k}" for k in range(20)],
                       "text": ['=HYPERLINK("http://evil.example","x")', "+cmd /c calc", "-5 stars",
                                "@SUM(A1)"] + [f"fine text {k}" for k in range(16)],
                       "label": [hostile, "<b>bold</b>"] * 10})
    card = {"notes": {"<script>alert(1)</script>": "www.evil.example [click](http://evil.example)"}}
    plain = export_dataset(df, tmp_path / "plain", test_size=0.2, val_size=0.2, card=card)
    safe = export_dataset(df, tmp_path / "safe", test_size=0.2, val_size=0.2, excel_safe=True)
    for result in (plain, safe):
        md = (result.out_dir / "data_card.md").read_text()
        for raw in (hostile, "<b>", "<script>", "[click](", "www.evil", "http://"):
            assert raw not in md  # no image, HTML, link or autolink can form
        assert f"| {markdown_text(hostile)} |" in md  # the label, shown as typed
        assert result.card["formula_cells"]["cells"] == 4
        assert result.card["formula_cells"]["by_column"] == {"text": 4}
    assert "(text 4): the files keep the exact text" in (
        plain.out_dir / "data_card.md").read_text().replace("\\", "")
    exact = pd.concat(pd.read_csv(plain.out_dir / f"{s}.csv", keep_default_na=False) for s in SPLITS)
    neutral = pd.concat(pd.read_csv(safe.out_dir / f"{s}.csv", keep_default_na=False) for s in SPLITS)
    assert set(exact["text"]) == set(df["text"])
    assert {t for t in neutral["text"] if not t.startswith("fine")} == {
        "'=HYPERLINK(\"http://evil.example\",\"x\")", "'+cmd /c calc", "'-5 stars", "'@SUM(A1)"}
    assert safe.card["formula_cells"]["excel_safe"] and not plain.card["formula_cells"]["excel_safe"]


def test_cli_export_excel_safe(tmp_path, capsys):
    from commands.curation import main

    data = tmp_path / "a.csv"
    pd.DataFrame({"item_id": [f"i{k}" for k in range(20)], "annotator_id": "x",
                  "text": ["=1+1"] * 10 + [f"t {k}" for k in range(10)],
                  "label": ["a", "b"] * 10}).to_csv(data, index=False)
    for flag, expected in (([], "=1+1"), (["--excel-safe"], "'=1+1")):
        out = tmp_path / f"out{len(flag)}"
        assert main(["export", str(data), "--out", str(out), *flag]) == 0, capsys.readouterr().err
        texts = pd.concat(pd.read_csv(out / f"{s}.csv") for s in SPLITS)["text"]
        assert (texts == expected).sum() == 10
