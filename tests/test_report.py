"""The agreement report: coefficient choice, verdict, JSON shape."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from curation.report import SKEW_THRESHOLD, agreement_report, choose_coefficient


def long(rows):
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"]).assign(text="t")


def balanced(n_per_item=3, missing=False):
    rows = []
    for i in range(40):
        k = n_per_item - (1 if missing and i % 2 else 0)
        for a in range(k):
            rows.append((str(i), f"a{a}", "pq"[i % 2] if a or i % 5 else "pq"[(i + 1) % 2]))
    return long(rows)


def test_choice_fleiss_for_complete_balanced_design():
    assert choose_coefficient(balanced())[0] == "fleiss_kappa"


def test_choice_alpha_for_missing_annotations():
    judged, reason = choose_coefficient(balanced(missing=True))
    assert judged == "krippendorff_alpha" and "2-3 annotations" in reason


def test_choice_ac1_for_a_dominant_label():
    rows = [(str(i), a, "x" if i < 90 else "y") for i in range(100) for a in ("a", "b")]
    judged, reason = choose_coefficient(long(rows))
    assert judged == "gwet_ac1" and "'x' holds 90%" in reason
    assert SKEW_THRESHOLD == 0.80


def test_report_verdict_and_json_keys():
    rep = agreement_report(balanced(), target=0.5, n_boot=200)
    d = json.loads(json.dumps(rep.to_dict()))
    for key in ("n_items", "n_annotators", "n_annotations", "percent_agreement", "fleiss_kappa",
                "krippendorff_alpha", "gwet_ac1", "cohen_kappa_pairwise", "ci", "target",
                "meets_target"):
        assert key in d, key
    assert d["n_items"] == 40 and d["n_annotators"] == 3 and d["n_annotations"] == 120
    assert d["cohen_kappa_pairwise"][0].keys() >= {"a", "b", "kappa", "n"}
    assert d["meets_target"] == (d["fleiss_kappa"] >= 0.5)
    assert d["judged_by"] == "fleiss_kappa"
    assert d["ci"]["fleiss_kappa"][0] <= d["fleiss_kappa"] <= d["ci"]["fleiss_kappa"][1]
    assert "target" in rep.verdict()


def test_report_user_choice_and_bad_options():
    rep = agreement_report(balanced(), judge_by="gwet_ac1", n_boot=50)
    assert rep.judged_by == "gwet_ac1" and rep.judged_reason == "chosen by the user."
    with pytest.raises(ValueError, match="target"):
        agreement_report(balanced(), target=90)
    with pytest.raises(ValueError, match="judge_by"):
        agreement_report(balanced(), judge_by="cohen")


def test_most_disputed_items_come_first():
    df = long([("1", "a", "x"), ("1", "b", "x"), ("2", "a", "x"), ("2", "b", "y"), ("3", "a", "z")])
    rep = agreement_report(df, n_boot=20, top_k=5)
    assert rep.disagreements["item_id"].tolist() == ["2", "1"]
    assert rep.disagreements["votes"].tolist() == ["x 1, y 1", "x 2"]
    assert any("single annotation" in n for n in rep.notes)


def test_auto_choice_on_two_real_data_sets(amazon, dynasent):
    """The 80% prevalence rule, checked on two data sets: skewed Amazon -> AC1, balanced DynaSent -> kappa."""
    rep = agreement_report(amazon, n_boot=100)
    assert rep.judged_by == "gwet_ac1"
    assert rep.coefficients["gwet_ac1"] > rep.coefficients["fleiss_kappa"] + 0.2
    assert any("Fleiss' kappa" in n and "would not meet" in n for n in rep.notes) == rep.meets_target
    assert choose_coefficient(dynasent)[0] == "fleiss_kappa"


# ------------------------------------------------------------------ agreement at any crowd size
def crowd(n_items=300, n_good=9, seed=0):
    """Each item labelled by 3 of ``n_good`` careful annotators (90% right) and, on every item,
    by 'random' (right by chance) and, on one item only, by 'once' (who disagrees)."""
    rng = pd.Series(range(n_items)).sample(frac=1, random_state=seed).to_numpy()
    import numpy as np

    gen = np.random.default_rng(seed)
    rows = []
    for i in rng:
        truth = "pqr"[i % 3]
        for a in gen.choice(n_good, 3, replace=False):
            label = truth if gen.random() < 0.9 else "pqr"[(i + 1) % 3]
            rows.append((str(i), f"g{a}", label))
        rows.append((str(i), "random", "pqr"[gen.integers(3)]))
    rows.append(("0", "once", "r" if rows[0][2] != "r" else "p"))
    return long(rows)


def test_lowest_and_outliers_need_enough_labels_and_find_the_random_annotator():
    report = agreement_report(crowd(), n_boot=50)
    # 'once' (one label, disagreeing) agrees least of all, but one label names no one
    assert report.per_annotator["agreement_with_others"].idxmin() == "once"
    assert report.lowest(min_items=20) == ("random", pytest.approx(
        report.per_annotator.at["random", "agreement_with_others"]))
    assert report.outliers(min_items=20).index.tolist() == ["random"]
    assert "once" not in report.outliers(min_items=20).index
    assert report.lowest(min_items=10_000) is None
    assert report.outliers(min_items=10_000).empty
    # a crowd of equally careful annotators has no outlier
    careful = crowd()
    careful = careful[careful["annotator_id"].str.startswith("g")]
    assert agreement_report(careful, n_boot=50).outliers().empty
    with pytest.raises(ValueError, match="min_items=0"):
        report.outliers(min_items=0)


def test_pair_summary_and_busiest_pairs():
    report = agreement_report(crowd(), n_boot=50)
    summary = report.pair_summary(min_overlap=20)
    used = report.pairwise[report.pairwise["n"] >= 20]["kappa"].dropna()
    assert summary["n_pairs"] == len(report.pairwise) and summary["n_used"] == len(used)
    assert summary["quantiles"]["median"] == pytest.approx(used.median())
    assert report.pair_summary(min_overlap=10_000)["quantiles"] == {}
    assert report.busiest(1) == ["random"]  # on every item
    top = report.busiest(4)
    pairs = report.busiest_pairs(4)
    assert set(pairs["a"]) | set(pairs["b"]) <= set(top) and len(pairs) <= 6
    assert json.dumps(report.to_dict())  # the summaries are JSON-ready
    with pytest.raises(ValueError, match="min_overlap=0"):
        report.pair_summary(min_overlap=0)


def test_summaries_at_a_real_crowd_of_244_workers(dynasent):
    from app_pages._charts import kappa_heatmap, kappa_histogram

    report = agreement_report(dynasent, n_boot=50)
    assert report.n_annotators == 244
    lowest = report.lowest()
    assert lowest is not None
    assert report.per_annotator.at[lowest[0], "n_labels"] >= 20
    for name in report.outliers().index:
        assert report.per_annotator.at[name, "n_labels"] >= 20
    # the charts stay small at any crowd size (Altair refuses more than 5,000 rows)
    top = report.busiest(60)
    heat = kappa_heatmap(report.busiest_pairs(60), min_overlap=20, order=top).to_dict()
    assert heat and len(report.busiest_pairs(60)) * 2 <= 5000
    assert kappa_histogram(report.pairwise["kappa"]).to_dict()
