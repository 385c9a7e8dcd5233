"""Agreement coefficients: hand-checked fixtures and equality with the reference libraries."""

from __future__ import annotations

import itertools

import krippendorff
import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa

from curation.agreement import (
    agreement_coefficients,
    annotator_agreement,
    bootstrap_ci,
    cohen_kappa_pairwise,
    count_table,
    fleiss_kappa,
    gwet_ac1,
    item_agreement,
    krippendorff_alpha,
    per_class_agreement,
    percent_agreement,
)

TOL = 1e-9


def long(rows):
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"]).assign(text="t")


@pytest.fixture
def hand():
    """4 items, labels a/b: (a,a,a) (a,a,b) (b,b) (a). Values worked out in the docstring below.

    Pairable items 1-3: P_o = (1 + 1/3 + 1) / 3 = 7/9.
    Fleiss: p_a = 5/8, p_b = 3/8 -> P_e = 17/32 -> kappa = (7/9 - 17/32) / (15/32) = 71/135.
    Alpha: n = 8, sum o_cc = 3 + 1 + 2 = 6, sum n_c^2 = 34 -> 1 - 7 * 2 / 30 = 8/15.
    AC1: pi_a = (1 + 2/3 + 0 + 1) / 4 = 2/3 -> P_e = 2 * (2/3)(1/3) / 1 = 4/9 -> (7/9 - 4/9) / (5/9) = 3/5.
    """
    return long([("1", "x", "a"), ("1", "y", "a"), ("1", "z", "a"),
                 ("2", "x", "a"), ("2", "y", "a"), ("2", "z", "b"),
                 ("3", "x", "b"), ("3", "y", "b"), ("4", "x", "a")])


def test_hand_fixture_exact_values(hand):
    assert percent_agreement(hand) == pytest.approx(7 / 9, abs=TOL)
    assert fleiss_kappa(hand) == pytest.approx(71 / 135, abs=TOL)
    assert krippendorff_alpha(hand) == pytest.approx(8 / 15, abs=TOL)
    assert gwet_ac1(hand) == pytest.approx(3 / 5, abs=TOL)


def test_gwet_ac1_counts_unused_labels_in_the_label_set(hand):
    # q = 3: P_e = (2/9 + 2/9 + 0) / 2 = 2/9 -> (7/9 - 2/9) / (7/9) = 5/7
    assert gwet_ac1(hand, labels=["a", "b", "c"]) == pytest.approx(5 / 7, abs=TOL)


def test_gwet_ac1_stays_high_when_one_class_dominates():
    # 2 raters, 100 items: 95 agree on "x", 1 agrees on "y", 4 split -> kappa collapses, AC1 does not
    rows = [(str(i), r, "x") for i in range(95) for r in "ab"]
    rows += [("95", "a", "y"), ("95", "b", "y")]
    rows += [(str(i), "a", "x") for i in range(96, 100)] + [(str(i), "b", "y") for i in range(96, 100)]
    df = long(rows)
    assert percent_agreement(df) == pytest.approx(0.96, abs=TOL)
    assert fleiss_kappa(df) < 0.35
    assert gwet_ac1(df) > 0.95


def reference_alpha(df: pd.DataFrame) -> float:
    labels = sorted(df.label.unique())
    wide = df.pivot(index="annotator_id", columns="item_id", values="label")
    codes = wide.apply(lambda col: col.map(lambda v: labels.index(v) if isinstance(v, str) else np.nan))
    return krippendorff.alpha(reliability_data=codes.to_numpy(float), level_of_measurement="nominal")


def random_long(seed, n_items=400, n_annotators=6, labels="abcd", p_missing=0.4):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, len(labels), n_items)
    rows = []
    for i in range(n_items):
        for a in range(n_annotators):
            if rng.random() < p_missing:
                continue
            lab = truth[i] if rng.random() < 0.7 else rng.integers(0, len(labels))
            rows.append((f"i{i}", f"ann{a}", labels[lab]))
    return long(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_equals_krippendorff_package(seed, hand):
    df = random_long(seed)
    assert krippendorff_alpha(df) == pytest.approx(reference_alpha(df), abs=TOL)
    assert krippendorff_alpha(hand) == pytest.approx(reference_alpha(hand), abs=TOL)


@pytest.mark.parametrize("seed", [0, 1])
def test_fleiss_equals_statsmodels_on_complete_designs(seed):
    df = random_long(seed, p_missing=0.0)
    table = count_table(df).counts
    assert fleiss_kappa(df) == pytest.approx(sm_fleiss_kappa(table), abs=TOL)


@pytest.mark.parametrize("seed", [0, 3])
def test_pairwise_cohen_equals_sklearn(seed):
    df = random_long(seed)
    got = cohen_kappa_pairwise(df)
    annotators = sorted(df.annotator_id.unique())
    assert len(got) == len(list(itertools.combinations(annotators, 2)))
    wide = df.pivot(index="item_id", columns="annotator_id", values="label")
    for row in got.itertuples():
        both = wide[[row.a, row.b]].dropna()
        assert row.n == len(both)
        assert row.kappa == pytest.approx(cohen_kappa_score(both[row.a], both[row.b]), abs=TOL)
        assert row.agreement == pytest.approx((both[row.a] == both[row.b]).mean(), abs=TOL)


def test_pairwise_cohen_undefined_when_both_use_one_label():
    df = long([("1", "x", "a"), ("1", "y", "a"), ("2", "x", "a"), ("2", "y", "a")])
    got = cohen_kappa_pairwise(df)
    assert np.isnan(got.kappa.iloc[0]) and got.n.iloc[0] == 2


def test_pairs_without_shared_items_are_absent():
    df = long([("1", "x", "a"), ("1", "y", "a"), ("2", "z", "a"), ("2", "w", "b")])
    assert cohen_kappa_pairwise(df)[["a", "b"]].values.tolist() == [["w", "z"], ["x", "y"]]


def test_per_class_and_item_agreement(hand):
    pc = per_class_agreement(hand)
    # a: same pairs 6 + 2 = 8 over n_a (r - 1) = 3*2 + 2*2 = 10; b: 2 / (1*2 + 2*1) = 0.5
    assert pc.loc["a", "specific_agreement"] == pytest.approx(0.8, abs=TOL)
    assert pc.loc["b", "specific_agreement"] == pytest.approx(0.5, abs=TOL)
    assert pc["n_annotations"].tolist() == [6, 3]
    # with two labels, each binary kappa equals the overall Fleiss kappa
    assert pc["kappa"].tolist() == pytest.approx([71 / 135, 71 / 135], abs=TOL)
    items = item_agreement(hand)
    assert items["agreement"].tolist()[:3] == pytest.approx([1, 1 / 3, 1])
    assert np.isnan(items["agreement"].iloc[3])
    assert items.loc["2", "entropy"] == pytest.approx(-(2 / 3 * np.log2(2 / 3) + 1 / 3 * np.log2(1 / 3)))


def test_annotator_agreement_leave_one_out(hand):
    got = annotator_agreement(hand)
    # x: item1 agree, item2 agree (others a,b tie? no: y=a,z=b tie -> skipped), item3 (y=b) agree
    assert got.loc["x", "agreement_with_others"] == 1.0
    # z: item1 agree, item2 says b against a,a -> 0.5
    assert got.loc["z", "agreement_with_others"] == 0.5
    assert got["n_labels"].to_dict() == {"x": 4, "y": 3, "z": 2}


def test_bootstrap_is_seeded_and_covers_the_estimate():
    df = random_long(5)
    first, again = bootstrap_ci(df, seed=7), bootstrap_ci(df, seed=7)
    assert first == again
    point = agreement_coefficients(df)
    for key, (low, high) in first.items():
        assert low < point[key] < high
    assert bootstrap_ci(df, seed=8) != first


def test_bootstrap_matches_naive_item_resampling():
    """Resampling count patterns has the same distribution as resampling items."""
    df = random_long(6, n_items=300)
    table = count_table(df)
    rng = np.random.default_rng(0)
    naive = []
    for _ in range(1000):
        idx = rng.integers(0, len(table.items), len(table.items))
        naive.append(krippendorff_alpha(type(table)(table.counts[idx], table.items[idx], table.labels)))
    low, high = np.percentile(naive, [2.5, 97.5])
    fast = bootstrap_ci(df, n_boot=1000, seed=1)["krippendorff_alpha"]
    assert fast[0] == pytest.approx(low, abs=0.01)
    assert fast[1] == pytest.approx(high, abs=0.01)


def test_bootstrap_rejects_bad_options(hand):
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(hand, n_boot=1)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(hand, level=95)


# --------------------------------------------------------------------------- real data


def test_amazon_crowd_matches_references(amazon):
    five = amazon.groupby("item_id").filter(lambda g: len(g) == 5)
    assert five.item_id.nunique() == 902
    assert fleiss_kappa(five) == pytest.approx(sm_fleiss_kappa(count_table(five).counts), abs=TOL)
    assert fleiss_kappa(five) == pytest.approx(0.687, abs=5e-4)  # PROVENANCE.md
    assert krippendorff_alpha(amazon) == pytest.approx(reference_alpha(amazon), abs=TOL)


def test_dynasent_real_workers_match_references(dynasent):
    assert krippendorff_alpha(dynasent) == pytest.approx(reference_alpha(dynasent), abs=TOL)
    assert krippendorff_alpha(dynasent) == pytest.approx(0.681, abs=5e-4)  # PROVENANCE.md
    assert fleiss_kappa(dynasent) == pytest.approx(
        sm_fleiss_kappa(count_table(dynasent).counts), abs=TOL)
    pairs = cohen_kappa_pairwise(dynasent)
    wide = dynasent.pivot(index="item_id", columns="annotator_id", values="label")
    busiest = pairs.sort_values("n", ascending=False).head(5)
    for row in busiest.itertuples():
        both = wide[[row.a, row.b]].dropna()
        assert row.n == len(both)
        ref = cohen_kappa_score(both[row.a], both[row.b])
        assert (np.isnan(row.kappa) and np.isnan(ref)) or row.kappa == pytest.approx(ref, abs=TOL)


def _irrcac():
    """irrCAC (Gwet's own package, ported from R) as a dev-only reference. It pins pandas < 3 and
    scipy 1.12, so scripts/dev.sh installs it with ``--no-deps``; CI must have it."""
    import os

    try:
        from irrCAC.raw import CAC
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("irrCAC is missing: scripts/dev.sh installs it (pip install --no-deps irrCAC)")
        pytest.skip("irrCAC not installed (pip install --no-deps irrCAC==0.4.4)")
    return CAC


@pytest.mark.parametrize("name", ["hand", "amazon", "dynasent 300 items"])
def test_ac1_and_alpha_equal_irrcac(name, hand, amazon, dynasent):
    """Gwet's AC1 and Krippendorff's alpha against irrCAC on data with missing ratings: the hand
    fixture (3, 3, 2 and 1 ratings), Amazon's anonymous slots (902 items with 5 votes, the rest
    fewer) and 300 DynaSent sentences by 204 real workers. Fleiss' kappa is compared only where
    every item has the same number of ratings: with unequal counts irrCAC uses Gwet's
    generalisation and this package Fleiss' own (the statsmodels test above)."""
    CAC = _irrcac()
    frame = {"hand": hand, "amazon": amazon,
             "dynasent 300 items": dynasent[dynasent.item_id.isin(dynasent.item_id.unique()[:300])]}[name]
    wide = frame.pivot(index="item_id", columns="annotator_id", values="label")
    ref = CAC(wide, categories=sorted(frame["label"].unique()), digits=12)
    assert gwet_ac1(frame) == pytest.approx(ref.gwet()["est"]["coefficient_value"], abs=1e-10)
    assert krippendorff_alpha(frame) == pytest.approx(
        ref.krippendorff()["est"]["coefficient_value"], abs=1e-10)
    if frame.groupby("item_id").size().nunique() == 1:
        assert fleiss_kappa(frame) == pytest.approx(ref.fleiss()["est"]["coefficient_value"], abs=1e-10)


def test_sparse_path_for_large_crowds_equals_dense(monkeypatch, dynasent):
    import curation.agreement as agreement

    dense = cohen_kappa_pairwise(dynasent)
    monkeypatch.setattr(agreement, "_DENSE_CELLS", 0)
    sparse_result = cohen_kappa_pairwise(dynasent)
    pd.testing.assert_frame_equal(dense, sparse_result)
    assert len(dense) > 1000  # a real crowd: many pairs, each sharing few items
    assert dense["n"].median() < 10


@pytest.mark.slow
def test_library_never_imports_streamlit():
    """Nor does the application layer or a command line: only the pages do."""
    import subprocess
    import sys

    code = ("import sys, curation, curation.workspace, fine_tune.jobs, actions, commands.curation, "
            "commands.fine_tune; "
            "sys.exit(1 if 'streamlit' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_bootstrap_does_not_depend_on_label_order():
    df = random_long(9)
    first = bootstrap_ci(df, labels=list("abcd"), seed=3)
    second = bootstrap_ci(df, labels=list("dcba"), seed=3)
    for key in first:
        assert first[key] == pytest.approx(second[key], abs=1e-12), key
