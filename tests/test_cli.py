"""The ``curation`` command line: readable output, JSON keys, exit code 2 on bad input."""

from __future__ import annotations

import pytest

import json
import subprocess
import sys

import pandas as pd

from commands.curation import main

CSV = ("item_id,text,annotator_id,label\n"
       "1,a,x,p\n1,a,y,p\n1,a,z,n\n2,b,x,n\n2,b,y,n\n2,b,z,n\n3,c,x,p\n3,c,y,n\n")


def test_agreement_prints_and_writes_json(tmp_path, capsys):
    src = tmp_path / "a.csv"
    src.write_text(CSV)
    out = tmp_path / "out" / "report.json"
    assert main(["agreement", str(src), "--target", "0.8", "--json", str(out), "--n-boot", "100"]) == 0
    text = capsys.readouterr().out
    assert "VERDICT:" in text and "Krippendorff's alpha" in text and "x ~ y" in text
    d = json.loads(out.read_text())
    assert d["n_items"] == 3 and d["n_annotators"] == 3 and d["n_annotations"] == 8
    assert d["target"] == 0.8 and d["meets_target"] is False
    assert {"a": "x", "b": "y"}.items() <= d["cohen_kappa_pairwise"][0].items()
    assert set(d["ci"]) == {"percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1"}


def test_consensus_writes_csv(tmp_path, capsys):
    src = tmp_path / "a.csv"
    src.write_text(CSV)
    out = tmp_path / "c.csv"
    assert main(["consensus", str(src), "--method", "majority", "--out", str(out)]) == 0
    got = pd.read_csv(out, dtype=str, keep_default_na=False)
    assert got[["item_id", "label"]].values.tolist() == [["1", "p"], ["2", "n"], ["3", ""]]
    assert got["tie"].tolist() == ["", "", "n|p"]
    assert "1 ties" in capsys.readouterr().out
    assert main(["consensus", str(src), "--method", "dawid-skene", "--out", str(out)]) == 0
    assert pd.read_csv(out)["confidence"].between(0, 1).all()


def test_bad_input_exits_2_with_the_message(tmp_path, capsys):
    src = tmp_path / "bad.csv"
    src.write_text(CSV.replace("annotator_id", "annotator"))
    assert main(["agreement", str(src)]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "did you mean 'annotator'" in err and "Traceback" not in err


@pytest.mark.slow
def test_console_script_and_mapping(tmp_path):
    src = tmp_path / "w.csv"
    src.write_text(CSV.replace("annotator_id", "worker"))
    ok = subprocess.run([sys.executable, "-m", "curation", "agreement", str(src), "--map",
                         "worker=annotator_id", "--n-boot", "50"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([sys.executable, "-m", "curation", "agreement", str(tmp_path / "none.csv")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_flag_writes_json_in_priority_order(tmp_path, capsys):
    src = tmp_path / "a.csv"
    src.write_text(CSV + "4,A b!,x,p\n4,A b!,y,p\n5,a   B,x,n\n5,a   B,y,n\n")
    out = tmp_path / "flags.json"
    assert main(["flag", str(src), "--no-model", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "skipped label_issue: needs model" in text
    flags = json.loads(out.read_text())
    assert {"item_id", "kind", "score", "reason", "suggested_label", "rule_id", "priority"} <= set(flags[0])
    priorities = [f["priority"] for f in flags]
    assert priorities == sorted(priorities, reverse=True)
    kinds = {(f["item_id"], f["kind"]) for f in flags}
    assert ("4", "near_duplicate") in kinds and ("5", "near_duplicate") in kinds
    assert ("1", "disagreement") in kinds and ("2", "disagreement") not in kinds


def test_export_writes_splits_and_card(tmp_path, capsys):
    src = tmp_path / "a.csv"
    rows = [f"{i},text number {i},{a},{'p' if i % 3 else 'n'}" for i in range(60) for a in "xy"]
    src.write_text("item_id,text,annotator_id,label\n" + "\n".join(rows) + "\n")
    out = tmp_path / "export"
    assert main(["export", str(src), "--out", str(out), "--seed", "3", "--formats", "csv,jsonl",
                 "--test-size", "0.2", "--val-size", "0.2"]) == 0
    assert "wrote 60 rows" in capsys.readouterr().out
    sizes = {s: len(pd.read_csv(out / f"{s}.csv")) for s in ("train", "validation", "test")}
    assert sum(sizes.values()) == 60 and sizes["test"] == 12 and sizes["validation"] == 12
    card = json.loads((out / "data_card.json").read_text())
    assert card["seed"] == 3 and card["agreement"]["judged_by"] in ("fleiss_kappa", "gwet_ac1")
    assert (out / "train.jsonl").exists() and (out / "data_card.md").exists()


def test_limit_flag_sets_a_loader_limit_and_names_a_wrong_one(tmp_path, capsys, monkeypatch):
    src = tmp_path / "a.csv"
    src.write_text("item_id,text,annotator_id,label\n"
                   + "".join(f"{i},text {i},a,pos\n" for i in range(6)), encoding="utf-8")
    monkeypatch.setenv("CURATION_MAX_ROWS", "3")          # the environment's limit...
    assert main(["consensus", str(src), "--out", str(tmp_path / "c.csv")]) == 2
    assert "over the limit of 3 (max_rows=3)" in capsys.readouterr().err
    assert main(["consensus", str(src), "--out", str(tmp_path / "c.csv"),
                 "--limit", "max_rows=6"]) == 0           # ...and --limit wins over it
    assert main(["agreement", str(src), "--limit", "max_row=6"]) == 2
    assert "'max_row' is no limit - did you mean 'max_rows'?" in capsys.readouterr().err
    assert main(["agreement", str(src), "--limit", "max_rows=-1"]) == 2
    assert "--limit max_rows='-1' is not a whole number of at least 1" in capsys.readouterr().err


def test_agreement_at_1280_real_workers_prints_summaries_not_every_pair(tmp_path, capsys):
    from conftest import dynasent_long

    src = tmp_path / "dynasent.csv"
    dynasent_long("dynasent-v1.1-round01-yelp-dev.jsonl").to_csv(src, index=False)
    assert main(["agreement", str(src), "--n-boot", "50"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert "1280 annotators" in lines[0]
    assert len(lines) < 150  # was one line per annotator and 45 pairs of n=1
    assert "share 20 or more (--min-overlap)" in text
    assert "1247 more annotators" in text and "more pairs (--json has them all)" in text
    assert not any("nan" in line for line in lines if " ~ " in line)
    lowest = next(line for line in lines if "lowest agreement" in line)
    assert "20+ labels" in lowest
    # settable: fewer annotators listed, and a bad value is refused with the reason
    assert main(["agreement", str(src), "--n-boot", "50", "--annotators", "5"]) == 0
    assert "per annotator (" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["agreement", str(src), "--min-overlap", "0"])
    assert "'0' is not a whole number of 1 or more" in capsys.readouterr().err


def test_exports_lists_versions_and_diffs_two(tmp_path, capsys):
    from conftest import amazon_long

    src = tmp_path / "a.csv"
    frame = amazon_long().head(600)
    frame.to_csv(src, index=False)
    root = tmp_path / "exports"
    assert main(["export", str(src), "--out", str(root / "v0001"), "--test-size", "0.2",
                 "--val-size", "0"]) == 0
    assert "manifest.json" in capsys.readouterr().out
    # the same file with one item's votes turned: a relabel; and one item left out: removed
    changed = frame.copy()
    first, last = changed["item_id"].iloc[0], changed["item_id"].iloc[-1]
    flip = {"negative": "not_negative", "not_negative": "negative"}
    changed.loc[changed["item_id"] == first, "label"] = changed.loc[
        changed["item_id"] == first, "label"].map(flip)
    changed = changed[changed["item_id"] != last]
    changed.to_csv(src, index=False)
    assert main(["export", str(src), "--out", str(root / "v0002"), "--test-size", "0.2",
                 "--val-size", "0"]) == 0
    capsys.readouterr()
    assert main(["exports", str(root)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[1].split()[0] == "v0002" and listing[2].split()[0] == "v0001"
    out = tmp_path / "diff.json"
    assert main(["exports", str(root), "--diff", "1", "v0002", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "v0001 -> v0002: 0 items added, 1 removed, 1 relabelled" in text
    diff = json.loads(out.read_text())
    assert diff["removed"][0]["item_id"] == str(last)
    assert diff["relabelled"][0]["item_id"] == str(first)
    # a version that is not there: exit 2 and the reason
    assert main(["exports", str(root), "--diff", "1", "7"]) == 2
    assert "v0007: no manifest.json" in capsys.readouterr().err


def test_flag_warns_when_the_texts_are_in_a_script_the_model_was_not_trained_on(tmp_path, capsys):
    zh = tmp_path / "zh.csv"
    rows = [(i, f"我的信用卡被盗了，请帮我冻结账户{i}", a, lab)
            for i in range(8) for a, lab in (("x", "投诉"), ("y", "投诉" if i % 3 else "咨询"))]
    pd.DataFrame(rows, columns=["item_id", "text", "annotator_id", "label"]).to_csv(zh, index=False)
    assert main(["flag", str(zh), "--no-model"]) == 0  # votes only: nothing to warn about
    assert "warning" not in capsys.readouterr().err
    assert main(["flag", str(zh)]) == 0  # the bundled English MiniLM: said, and flagged anyway
    assert "warning: 100% of the letters are Han script" in capsys.readouterr().err
    from curation.languages import model_warning

    texts = [r[1] for r in rows]
    warning = model_warning(texts, None)
    assert warning.startswith("100% of the letters are Han script")
    assert "--model" in warning and "--no-model" in warning
    assert model_warning(texts, "paraphrase-multilingual-MiniLM-L12-v2") is None  # chosen
    assert model_warning(["Card was charged twice", "Thanks!"], None) is None
    from actions.projects import language_warning

    frame = pd.DataFrame(rows, columns=["item_id", "text", "annotator_id", "label"])
    assert language_warning(frame) == warning
