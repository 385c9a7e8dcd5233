"""`curation evaluate-flags`: the queue against random, vote share, Dawid-Skene, cleanlab and
CROWDLAB, on items whose truth is known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from commands.curation import main
from curation.flags import evaluate_flags, read_truth, truth_from_frame
from curation.flags._evaluate import _random_figures, ranking_figures
from test_flags import clusters


def test_ranking_figures_by_hand():
    # order by score: d(w) a(w) b c(w) e; ties (b, e at 0.2) broken by id
    scores = pd.Series({"a": 0.8, "b": 0.2, "c": 0.1, "d": 0.9, "e": 0.2})
    wrong = pd.Series({"a": True, "b": False, "c": True, "d": True, "e": False})
    figures = ranking_figures(scores, wrong, [2, 3, 5])
    assert figures["at"][2] == {"precision": 1.0, "recall": 2 / 3, "found": 2}
    assert figures["at"][3]["precision"] == pytest.approx(2 / 3)
    assert figures["at"][5]["recall"] == 1.0
    # AUC: of the 3x2 (wrong, right) pairs, the wrong one scores higher in 4 (c is below b and e)
    assert figures["auc"] == pytest.approx(4 / 6)
    # precision is >= 0.7 down to depth 2 (2 of 3 found), then 2/3, 2/4, 3/5
    assert figures["recall_at_precision"] == pytest.approx(2 / 3)


def test_recall_at_precision_is_zero_when_the_top_is_right():
    scores = pd.Series({"a": 0.9, "b": 0.8, "c": 0.1})
    wrong = pd.Series({"a": False, "b": False, "c": True})
    assert ranking_figures(scores, wrong, [1])["recall_at_precision"] == 0.0


def test_random_order_is_the_expectation():
    figures = _random_figures(100, 10, [10, 50], seed=0)
    assert figures["auc"] == 0.5
    assert figures["at"][10] == {"precision": 0.1, "recall": 0.1, "found": 1.0}
    assert figures["at"][50]["recall"] == 0.5
    assert figures["recall_at_precision"] < 0.2


def test_truth_file_errors_name_the_row_and_the_fix(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("item_id,verdict\na,p\n")
    with pytest.raises(ValueError, match="needs the columns item_id and one of label"):
        read_truth(bad)
    bad.write_text("item_id,label\na,p\nb,q\n")
    with pytest.raises(ValueError, match=r"row 3 \(item 'b'\) has the label 'q'.*the labels are"):
        read_truth(bad, labels=["n", "p"])
    bad.write_text("item_id,label\na,p\na,n\n")
    with pytest.raises(ValueError, match="item 'a' has more than one true label"):
        read_truth(bad)
    bad.write_text("item_id,label\na,p\n,n\n")
    with pytest.raises(ValueError, match="row 3 has no item_id"):
        read_truth(bad)
    good = tmp_path / "g.csv"
    good.write_text("item_id,gold\na,p\na,p\nb, n \n")
    assert read_truth(good).to_dict() == {"a": "p", "b": "n"}


def _planted():
    """The clusters fixture with a known truth: p7 (all said n) and p3 (2 of 3 said n) are p."""
    df, emb = clusters()
    truth = pd.Series({i: ("n" if i.startswith("n") else "p") for i in df["item_id"].unique()})
    truth["b0"] = "p"
    return df, emb, truth


def test_every_baseline_on_the_same_items():
    df, emb, truth = _planted()
    result = evaluate_flags(df, truth, embeddings=emb)
    assert result.n_wrong == 2 and result.n_items == 81
    assert set(result.rows) == {"review queue", "random order", "minority-vote share",
                                "Dawid-Skene posterior", "cleanlab find_label_issues",
                                "CROWDLAB (cleanlab)"}
    assert result.missing == {}
    # the queue puts both wrong labels first (the flagger tests show why)
    assert result.rows["review queue"]["at"][2]["precision"] == 1.0
    assert result.rows["review queue"]["auc"] == 1.0
    # the vote share cannot see p7 (all three agreed on the wrong label)
    assert result.rows["minority-vote share"]["auc"] < 1.0
    assert result.ks == [2, 50, 81, 8]
    table = result.table()
    assert table["ordering"].tolist()[0] == "review queue" and "recall@8" in table.columns
    assert json.loads(json.dumps(result.to_dict()))["orderings"]["review queue"]["at"]["2"]["found"] == 2
    assert "the queue is at least as good as it on AUC" in result.summary()


def test_ties_are_reported_on_their_own():
    df, emb, truth = _planted()
    tie = pd.DataFrame({"item_id": "t1", "text": "tied", "annotator_id": ["x", "y"],
                        "label": ["n", "p"]})
    df = pd.concat([df, tie], ignore_index=True)
    emb = np.vstack([emb, emb[:1]])
    truth["t1"] = "p"
    result = evaluate_flags(df, truth, embeddings=emb)
    assert result.n_items == 81  # t1 is not ranked
    assert result.ties["n"] == 1 and result.ties["truth_in_tie"] == 1


def test_without_embeddings_the_model_baselines_say_why():
    df, _emb, truth = _planted()
    result = evaluate_flags(df, truth)
    assert set(result.missing) == {"cleanlab find_label_issues", "CROWDLAB (cleanlab)"}
    assert "needs embeddings" in result.missing["CROWDLAB (cleanlab)"]


def test_truth_that_matches_nothing_is_refused():
    df, emb, _truth = _planted()
    with pytest.raises(ValueError, match="none of the truth file's item ids"):
        evaluate_flags(df, pd.Series({"zzz": "p"}), embeddings=emb)


def test_cli_with_the_files_gold_column_and_with_a_truth_file(tmp_path, capsys):
    df, _emb, truth = _planted()
    path = tmp_path / "ann.csv"
    df.assign(gold=df["item_id"].map(truth)).to_csv(path, index=False)
    out = tmp_path / "eval.json"
    assert main(["evaluate-flags", str(path), "--no-model", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "review queue" in text and "minority-vote share" in text
    assert "not computed: CROWDLAB (cleanlab)" in text
    saved = json.loads(out.read_text())
    assert saved["n_wrong"] == 2 and saved["truth_source"] == "the gold column of ann.csv"
    plain = tmp_path / "plain.csv"
    df.to_csv(plain, index=False)
    assert main(["evaluate-flags", str(plain), "--no-model"]) == 2
    assert "has no gold labels: give the true labels with --truth" in capsys.readouterr().err
    truth_file = tmp_path / "truth.csv"
    truth.rename("label").rename_axis("item_id").reset_index().to_csv(truth_file, index=False)
    assert main(["evaluate-flags", str(plain), "--no-model", "--truth", str(truth_file)]) == 0
    assert "truth: truth.csv; 81 ranked items, 2 with a wrong" in capsys.readouterr().out


def test_truth_from_the_gold_column():
    frame = pd.DataFrame({"item_id": ["a", "a", "b"], "gold": ["p", "p", None]})
    assert truth_from_frame(frame).to_dict() == {"a": "p"}


def test_calibration_figures_by_hand():
    from curation.flags._evaluate import calibration_figures

    # bin 9 (0.9-1.0): confidences 1.0, 1.0, 0.95, 0.95; 2 of 4 right -> gap |0.5 - 0.975|
    # bin 5 (0.5-0.6): confidence 0.5, right -> gap 0.5
    conf = pd.Series([1.0, 1.0, 0.95, 0.95, 0.5])
    right = pd.Series([True, False, True, False, True])
    c = calibration_figures(conf, right)
    assert c["ece"] == pytest.approx(0.8 * 0.475 + 0.2 * 0.5)
    assert c["n_sure"] == 2 and c["sure_accuracy"] == 0.5
    assert c["accuracy"] == pytest.approx(0.6)


def test_the_evaluation_measures_each_consensus_calibration():
    df, emb, truth = _planted()
    result = evaluate_flags(df, truth, embeddings=emb)
    assert set(result.calibration) == {"majority vote share", "Dawid-Skene posterior",
                                       "CROWDLAB consensus quality"}
    # 80 of the 81 votes are unanimous (p3 split 2-1), and p7 is unanimous and wrong
    sure = result.calibration["majority vote share"]
    assert sure["n_sure"] == 80 and sure["sure_accuracy"] == pytest.approx(79 / 80)


def test_flagging_and_its_baselines_fork_no_process_pool(monkeypatch):
    """cleanlab forks a pool per call when it sees several cores; forked from the Streamlit server
    the workers keep its SIGTERM handler, the pool's terminate() cannot end them, and the Review
    page waits for ever. Here the machine claims 8 cores and any pool is refused."""
    import multiprocessing

    import psutil

    def no_pool(*args, **kwargs):
        raise AssertionError("a process pool was started from the flagging code")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    monkeypatch.setattr(multiprocessing, "cpu_count", lambda: 8)
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 8)
    df, emb, truth = _planted()
    result = evaluate_flags(df, truth, embeddings=emb)  # flags (label_issue) and the cleanlab baseline
    assert "cleanlab find_label_issues" in result.rows and result.n_wrong == 2
