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
