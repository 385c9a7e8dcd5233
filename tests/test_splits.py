"""Splits: near-duplicate groups (exact cases, brute force) and the split's properties."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curation.splits import (
    SPLITS,
    near_duplicate_groups,
    normalise_text,
    similar_pairs,
    stratified_group_split,
)

PROPERTY = settings(max_examples=150, deadline=None)


# --- normalise_text / near_duplicate_groups -------------------------------------------------

@pytest.mark.parametrize(("raw", "expected"), [
    ("Hi,  there!", "hi there"),
    ("hello   WORLD", "hello world"),
    ("  Tabs\tand\nnewlines  ", "tabs and newlines"),
    ("\u201cQuoted\u201d \u2014 dash", "quoted dash"),
    ("ＦＵＬＬ width", "full width"),
    ("Straße", "strasse"),
    ("e-mail, don't", "email dont"),
    ("!!!", ""),
    ("", ""),
])
def test_normalise_text(raw, expected):
    assert normalise_text(raw) == expected


def test_groups_from_normalised_text():
    groups = near_duplicate_groups(["Hello world!", "hello   WORLD", "something else"])
    assert groups.tolist() == [0, 0, 1]


def test_groups_are_transitive_and_numbered_by_first_appearance():
    texts = ["b", "a", "A!", "c", "B."]
    assert near_duplicate_groups(texts).tolist() == [0, 1, 1, 2, 0]


def test_punctuation_only_texts_group_only_with_the_same_punctuation():
    assert near_duplicate_groups(["!!!", "?", "!!!", ""]).tolist() == [0, 1, 0, 2]


def _embeddings_with_close_pair() -> np.ndarray:
    """Rows 2 and 3 (0-based 1 and 2) have cosine exactly 0.99; every other pair is orthogonal."""
    e = np.zeros((4, 4))
    e[0, 0] = 1.0
    e[1, 1] = 1.0
    e[2, 1], e[2, 2] = 0.99, np.sqrt(1 - 0.99**2)
    e[3, 3] = 5.0  # not unit length: rows are normalised
    return e


@pytest.mark.parametrize(("threshold", "expected"), [(0.95, [0, 1, 1, 2]), (0.995, [0, 1, 2, 3])])
def test_groups_from_embeddings(threshold, expected):
    texts = ["one", "two", "three", "four"]
    got = near_duplicate_groups(texts, embeddings=_embeddings_with_close_pair(), threshold=threshold)
    assert got.tolist() == expected


def test_text_and_embedding_links_combine():
    texts = ["Same!", "other", "different", "same"]
    got = near_duplicate_groups(texts, embeddings=_embeddings_with_close_pair(), threshold=0.95)
    assert got.tolist() == [0, 1, 1, 0]


def test_embeddings_must_match_texts():
    with pytest.raises(ValueError, match="one row per text: 2 texts"):
        near_duplicate_groups(["a", "b"], embeddings=np.ones((3, 4)))


def test_missing_texts_are_named():
    with pytest.raises(ValueError, match="positions 1"):
        near_duplicate_groups(["a", None])


def test_nan_embeddings_are_named():
    e = np.ones((3, 2))
    e[2, 0] = np.nan
    with pytest.raises(ValueError, match="rows 2 contain NaN"):
        similar_pairs(e, threshold=0.9)


def test_similar_pairs_exact():
    i, j, cos = similar_pairs(_embeddings_with_close_pair(), threshold=0.95)
    assert (i.tolist(), j.tolist()) == ([1], [2])
    assert cos[0] == pytest.approx(0.99)


def test_identical_rows_pair_at_threshold_one():
    x = np.tile(np.random.default_rng(0).standard_normal(384).astype(np.float32), (3, 1))
    i, j, _ = similar_pairs(x, threshold=1.0)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (1, 2)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("block", [7, 64, 2048])
def test_similar_pairs_match_brute_force(dtype, block):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((60, 8))
    x = base[rng.integers(0, 60, 500)] + 0.3 * rng.standard_normal((500, 8))
    x = x.astype(dtype)
    threshold = 0.9
    unit = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    full = unit @ unit.T
    bi, bj = np.nonzero(np.triu(full >= threshold, k=1))
    assert len(bi) > 100
    i, j, cos = similar_pairs(x, threshold=threshold, block=block)
    near = np.abs(full - threshold) < 1e-5  # ties at float precision may go either way
    got, want = set(zip(i.tolist(), j.tolist())), set(zip(bi.tolist(), bj.tolist()))
    assert {p for p in got ^ want if not near[p]} == set()
    assert np.all(i < j)
    np.testing.assert_allclose(cos, full[i, j], atol=1e-5)
    assert np.all(np.diff(i * 500 + j) > 0)  # sorted by (i, j)


def test_similar_pairs_on_empty_input():
    i, j, cos = similar_pairs(np.empty((0, 5)), threshold=0.9)
    assert len(i) == len(j) == len(cos) == 0


@pytest.mark.parametrize("threshold", [0, -0.5, 1.5])
def test_similar_pairs_threshold_range(threshold):
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\]"):
        similar_pairs(np.ones((2, 2)), threshold=threshold)


def test_many_texts_with_embeddings_stay_fast():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5000, 64)).astype(np.float32)
    x[1::2] = x[::2] + 0.01 * rng.standard_normal((2500, 64)).astype(np.float32)
    groups = near_duplicate_groups([f"t{k}" for k in range(5000)], embeddings=x, threshold=0.95)
    assert groups.max() + 1 == 2500
    assert np.all(groups[::2] == groups[1::2])


# --- stratified_group_split: exact cases ------------------------------------------------------

def test_exact_stratified_counts():
    labels = ["a"] * 20 + ["b"] * 40
    split = stratified_group_split(labels, test_size=0.15, val_size=0.15)
    table = pd.crosstab(pd.Series(labels), split).reindex(columns=list(SPLITS))
    assert table.to_dict("index") == {"a": {"train": 14, "validation": 3, "test": 3},
                                      "b": {"train": 28, "validation": 6, "test": 6}}


def test_singleton_class_goes_to_train_with_a_warning(caplog):
    labels = ["a"] * 40 + ["rare"]
    with caplog.at_level(logging.WARNING, logger="curation.splits"):
        split = stratified_group_split(labels)
    assert split[-1] == "train"
    assert "'rare' (1 rows, none in validation, test)" in caplog.text


def test_zero_sizes_leave_splits_empty():
    split = stratified_group_split(["a", "b"] * 10, test_size=0.0, val_size=0.0)
    assert set(split) == {"train"}


def test_force_train_pins_whole_groups():
    labels = ["a", "b"] * 30
    groups = np.arange(60) // 2
    forced = np.zeros(60, bool)
    forced[[0, 11, 31]] = True
    for seed in range(10):
        split = stratified_group_split(labels, groups=groups, force_train=forced, seed=seed)
        assert set(split[np.isin(groups, groups[forced])]) == {"train"}
        assert (split == "test").sum() in (8, 10)  # target 9, in groups of 2


def test_empty_labels():
    assert stratified_group_split([]).tolist() == []


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"test_size": 1.0}, r"test_size must be in \[0, 1\)"),
    ({"val_size": -0.1}, r"val_size must be in \[0, 1\)"),
    ({"test_size": 0.5, "val_size": 0.5}, "must be below 1"),
    ({"groups": [1, 2]}, "groups has 2 entries but labels has 3"),
    ({"groups": [1, None, 2]}, "groups missing at rows 1"),
    ({"force_train": [True]}, "force_train needs one bool per row"),
])
def test_split_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        stratified_group_split(["a", "b", "a"], **kwargs)


def test_missing_labels_are_named():
    with pytest.raises(ValueError, match="labels missing at rows 2"):
        stratified_group_split(["a", "b", None])


# --- stratified_group_split: properties -------------------------------------------------------

@st.composite
def grouped_rows(draw, *, min_per_class: int = 1, max_group: int = 4):
    """(labels, groups, test_size, val_size, seed): shuffled labels cut into groups of 1..max_group."""
    per_class = draw(st.lists(st.integers(min_per_class, min_per_class + 60), min_size=1, max_size=4))
    labels = [f"c{k}" for k, n in enumerate(per_class) for _ in range(n)]
    labels = draw(st.permutations(labels))
    sizes = draw(st.lists(st.integers(1, max_group), min_size=len(labels), max_size=len(labels)))
    groups = np.repeat(np.arange(len(sizes)), sizes)[:len(labels)]
    test_size = draw(st.floats(0.0, 0.4))
    val_size = draw(st.floats(0.0, 0.4))
    return np.array(labels), groups, test_size, val_size, draw(st.integers(0, 2**31))


def _targets(labels, test_size, val_size):
    classes, counts = np.unique(labels, return_counts=True)
    fractions = np.array([1 - test_size - val_size, val_size, test_size])
    return classes, counts[:, None] * fractions[None, :]


def _table(labels, split, classes):
    return pd.crosstab(labels, split).reindex(index=classes, columns=list(SPLITS), fill_value=0)


@PROPERTY
@given(grouped_rows())
def test_every_row_assigned_and_no_group_spans_splits(case):
    labels, groups, test_size, val_size, seed = case
    split = stratified_group_split(labels, groups=groups, test_size=test_size, val_size=val_size,
                                   seed=seed)
    assert len(split) == len(labels)
    assert set(split) <= set(SPLITS)
    assert (pd.Series(split).groupby(groups).nunique() == 1).all()


@PROPERTY
@given(grouped_rows())
def test_split_sizes_near_targets(case):
    """|size - target| <= largest group + number of classes, for small groups."""
    labels, groups, test_size, val_size, seed = case
    split = stratified_group_split(labels, groups=groups, test_size=test_size, val_size=val_size,
                                   seed=seed)
    classes, targets = _targets(labels, test_size, val_size)
    sizes = _table(labels, split, classes).sum().to_numpy()
    tolerance = np.bincount(groups).max() + len(classes)
    assert np.all(np.abs(sizes - targets.sum(axis=0)) <= tolerance)


@PROPERTY
@given(grouped_rows(min_per_class=20))
def test_class_proportions_near_overall(case):
    """Each split's count of each class is within (largest group + 1) of ``fraction * n_c``.

    With >= 20 rows per class this is the proportion check: a split's share of
    class ``c`` is ``fraction * n_c`` give or take one group.
    """
    labels, groups, test_size, val_size, seed = case
    split = stratified_group_split(labels, groups=groups, test_size=test_size, val_size=val_size,
                                   seed=seed)
    classes, targets = _targets(labels, test_size, val_size)
    table = _table(labels, split, classes).to_numpy()
    assert np.all(np.abs(table - targets) <= np.bincount(groups).max() + 1)


@PROPERTY
@given(grouped_rows(min_per_class=20, max_group=2))
def test_deterministic_per_seed_and_seeds_differ(case):
    labels, groups, _, _, seed = case
    first = stratified_group_split(labels, groups=groups, seed=seed)
    again = stratified_group_split(labels, groups=groups, seed=seed)
    other = stratified_group_split(labels, groups=groups, seed=seed + 1)
    np.testing.assert_array_equal(first, again)
    assert (first != other).any()


def test_stratified_folds_hold_every_position_out_once_and_are_seeded():
    import warnings

    from curation.splits import stratified_folds

    labels = np.array(["a"] * 20 + ["b"] * 9 + ["rare"])  # "rare": one item, fewer than the folds
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the expected "least populated class" warning is silenced
        folds = stratified_folds(labels, n_folds=5, seed=3)
    held = np.concatenate([test for _, test in folds])
    assert sorted(held.tolist()) == list(range(30))
    for train, test in folds:
        assert not set(train) & set(test) and len(train) + len(test) == 30
        assert (labels[test] == "b").sum() in (1, 2)  # stratified: 9 "b" over 5 folds
    again = stratified_folds(labels, n_folds=5, seed=3)
    assert all((a[1] == b[1]).all() for a, b in zip(folds, again))
    other = stratified_folds(labels, n_folds=5, seed=4)
    assert any((a[1] != b[1]).any() for a, b in zip(folds, other))


def test_the_index_finds_the_near_duplicate_groups_of_the_exact_search():
    from curation.splits import similar_pairs

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 48)).astype(np.float32)
    x[100:160] = x[0] + 0.03 * rng.normal(size=(60, 48))  # a group of 61 near-duplicates
    x[500] = x[501]  # an exact twin
    exact = similar_pairs(x, threshold=0.95, method="exact")
    index = similar_pairs(x, threshold=0.95, method="index", neighbours=8)
    exact_pairs = set(zip(*(a.tolist() for a in exact[:2])))
    index_pairs = set(zip(*(a.tolist() for a in index[:2])))
    assert index_pairs <= exact_pairs and (500, 501) in index_pairs  # never a false pair
    assert len(index_pairs) < len(exact_pairs)  # 8 neighbours each, not all 1,830 of the group
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    def groups(i, j):
        graph = sparse.coo_matrix((np.ones(len(i)), (i, j)), shape=(len(x), len(x)))
        return connected_components(graph, directed=False)[1]

    ge, gi = groups(*exact[:2]), groups(*index[:2])
    assert len(set(ge[[0, *range(100, 160)]])) == 1 and len(set(gi[[0, *range(100, 160)]])) == 1
    assert (np.diff(index[0]) >= 0).all() and (index[2] >= 0.95 - 1e-6).all()
    with pytest.raises(ValueError, match="method must be"):
        similar_pairs(x, threshold=0.9, method="faiss")
