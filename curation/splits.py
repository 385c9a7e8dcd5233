"""Leakage-aware, stratified train / validation / test splits.

Two steps:

1. :func:`near_duplicate_groups` puts texts that are equal after
   :func:`normalise_text`, or whose embeddings have cosine similarity at or
   above a threshold, into one group. The groups are the connected components
   of that "near-duplicate" graph, so the relation is made transitive.
2. :func:`stratified_group_split` assigns whole groups to splits, so no group
   spans two splits, with each split's per-class counts close to its share of
   the overall class counts.

Why a greedy assignment rather than scikit-learn's ``StratifiedGroupKFold``:
K-fold gives folds of equal size, so fractions such as 0.7 / 0.15 / 0.15 need
K folds merged (0.1 / 0.25 has no exact K at all), and it cannot pin groups to
train (augmented rows need that). The greedy hits any fractions; with small
groups every split's count of every class lands within about one group's size
of its target (``tests/test_splits.py`` checks this with property tests).
"""

from __future__ import annotations

import logging
import sys
import unicodedata
from collections.abc import Sequence
from functools import cache

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components

from curation.messages import format_list
from curation.schema import TEXT, TEXT_PAIR, has_pairs, pair_key

__all__ = ["MCNEMAR_MIN_DISCORDANT", "SPLITS", "near_duplicate_groups", "normalise_text", "text_keys",
           "similar_pairs", "smallest_detectable_change", "stratified_folds",
           "stratified_group_split"]

logger = logging.getLogger(__name__)

#: Split names, in the order :func:`stratified_group_split` fills them.
SPLITS = ("train", "validation", "test")
#: Items that must change, all in one direction, before McNemar's exact test can reach p < 0.05:
#: :math:`2 \cdot 2^{-k} < 0.05 \iff k \ge 6`.
MCNEMAR_MIN_DISCORDANT = 6

#: Columns of one similarity tile are this many times the row block (bounds memory).
_COLUMN_BLOCKS = 8
#: From this many rows :func:`similar_pairs` searches an approximate nearest-neighbour index
#: (faiss HNSW) instead of every pair: below it the exact search is fast enough (100,000 rows:
#: benchmarks/embedding_scale.py) and finds every pair.
INDEX_MIN_ROWS = 200_000
#: Neighbours the index returns per row: a row with more near-duplicates than this is still
#: joined to its group through the neighbours it has (groups are connected components).
NEIGHBOURS = 32


@cache
def _punctuation_table() -> dict[int, None]:
    """``str.translate`` table deleting every Unicode punctuation character (category P*)."""
    return {cp: None for cp in range(sys.maxunicode + 1)
            if unicodedata.category(chr(cp)).startswith("P")}


def normalise_text(text: str) -> str:
    """The form two texts are compared in: NFKC, casefolded, no punctuation, single spaces.

    Punctuation (Unicode categories ``P*``) is removed, not replaced by a space,
    so ``"e-mail"`` and ``"email"`` compare equal. Symbols and emoji are kept.

    Parameters
    ----------
    text : str

    Returns
    -------
    str

    Examples
    --------
    >>> normalise_text("Hi,  there!")
    'hi there'
    >>> normalise_text("ＨＥＬＬＯ\\n  World…") == normalise_text("hello world")
    True
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.translate(_punctuation_table()).split())


def text_keys(frame: pd.DataFrame) -> pd.Series:
    """Each row's text(s) as compared for duplicates and leaks: :func:`normalise_text` of the
    text, and for a sentence pair of both texts, joined by a character neither holds (so a
    premise shared by two pairs does not make them equal).

    >>> frame = pd.DataFrame({"text": ["A cat.", "a cat"], "text_pair": ["sits", "runs"]})
    >>> text_keys(frame).tolist() == ["a cat\x1fsits", "a cat\x1fruns"]
    True
    >>> text_keys(frame[["text"]]).tolist()
    ['a cat', 'a cat']
    """
    first = frame[TEXT].astype(str).map(normalise_text)
    if not has_pairs(frame):
        return first
    second = frame[TEXT_PAIR].astype(str).map(normalise_text)
    return pd.Series([pair_key(a, b) for a, b in zip(first, second)], index=frame.index,
                     dtype=object)


def _duplicate_key(text: str) -> str:
    """``normalise_text``, except that punctuation-only texts keep their punctuation."""
    key = normalise_text(text)
    if key:
        return key
    return "\0" + " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _unit_rows(embeddings: np.ndarray) -> np.ndarray:
    """Validated embeddings with rows scaled to unit length (zero rows stay zero)."""
    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise ValueError(f"embeddings must be a 2-D array (n_texts, dim); got shape {x.shape}.")
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(x).all(axis=1))
    if bad.size:
        raise ValueError(f"embeddings rows {format_list(bad)} contain NaN or inf; "
                         "re-embed those texts or drop them.")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1).astype(x.dtype)


def _tile_pairs(x: np.ndarray, rows: slice, cols: slice, threshold: float):
    """Pairs ``i < j`` with ``i`` in ``rows``, ``j`` in ``cols`` and cosine >= threshold."""
    sims = x[rows] @ x[cols].T
    if cols.start == rows.start:
        np.fill_diagonal(sims, -1)  # no self-pairs on a diagonal tile
    hit_rows = np.flatnonzero(sims.max(axis=1) >= threshold)  # cheaper than nonzero on a tile
    r, c = np.nonzero(sims[hit_rows] >= threshold)
    r = hit_rows[r]
    cos = sims[r, c]
    i, j = r + rows.start, c + cols.start
    keep = j > i
    return i[keep], j[keep], cos[keep]


def similar_pairs(embeddings: np.ndarray, *, threshold: float, block: int = 2048,
                  method: str = "auto",
                  neighbours: int = NEIGHBOURS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs of rows whose cosine similarity is at least ``threshold``: every pair (exact, in
    blocks), or from :data:`INDEX_MIN_ROWS` rows on those an approximate index finds.

    ``cos(i, j) = <x_i, x_j> / (|x_i| |x_j|)``. Rows are L2-normalised, then
    ``block`` rows at a time are multiplied against the rows after them, in
    tiles of ``block x 8 * block``: memory stays ``O(block^2)`` and only the
    upper triangle is computed, never an ``n x n`` matrix. float32 input stays
    float32 (twice as fast); other dtypes are computed in float64. A tolerance
    of a few ulps absorbs rounding, so identical rows pair even at 1.0.

    Parameters
    ----------
    embeddings : ndarray of shape (n, dim)
    threshold : float in (0, 1]
    block : int
        Rows per block.
    method : {"auto", "exact", "index"}
        ``auto``: exact below :data:`INDEX_MIN_ROWS` rows, else the index. ``index``: faiss's
        HNSW graph over the unit rows (inner product), each row's ``neighbours`` nearest kept
        when at or above the threshold: sub-quadratic, and it can miss a pair (its recall
        against the exact search is measured in ``benchmarks/embedding_scale.py``).
    neighbours : int
        Neighbours per row asked of the index.

    Returns
    -------
    i, j : ndarray of int64, with ``i < j``, sorted by ``(i, j)``
    cosine : ndarray of float

    Examples
    --------
    >>> x = np.array([[1.0, 0.0], [0.99, 0.141], [0.0, 1.0]])
    >>> i, j, cos = similar_pairs(x, threshold=0.95)
    >>> i.tolist(), j.tolist(), cos.round(2).tolist()
    ([0], [1], [0.99])
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold}.")
    if block < 1:
        raise ValueError(f"block must be a positive number of rows; got {block}.")
    if method not in ("auto", "exact", "index"):
        raise ValueError(f"method must be 'auto', 'exact' or 'index'; got {method!r}.")
    x = _unit_rows(embeddings)
    cut = threshold - 4 * np.finfo(x.dtype).eps
    if method == "index" or (method == "auto" and len(x) >= INDEX_MIN_ROWS):
        return _indexed_pairs(x, cut, neighbours)
    n, width = len(x), block * _COLUMN_BLOCKS
    parts = [_tile_pairs(x, slice(r0, min(r0 + block, n)), slice(c0, min(c0 + width, n)), cut)
             for r0 in range(0, n, block) for c0 in range(r0, n, width)]
    if not parts:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, x.dtype)
    i, j, cos = (np.concatenate(p) for p in zip(*parts))
    order = np.lexsort((j, i))
    return i[order].astype(np.int64), j[order].astype(np.int64), np.minimum(cos[order], 1.0)


def _indexed_pairs(x: np.ndarray, cut: float,
                   neighbours: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`similar_pairs` through a faiss HNSW index: each row's nearest ``neighbours``."""
    import faiss

    if isinstance(neighbours, bool) or not isinstance(neighbours, int) or neighbours < 1:
        raise ValueError(f"neighbours must be a positive integer; got {neighbours!r}.")
    data = np.ascontiguousarray(x, dtype=np.float32)
    n, dim = data.shape
    if n < 2:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
    index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.add(data)
    k = min(neighbours + 1, n)
    index.hnsw.efSearch = max(64, 2 * k)
    firsts, seconds, sims = [], [], []
    for start in range(0, n, 50_000):
        scores, found = index.search(data[start:start + 50_000], k)
        rows = np.repeat(np.arange(start, start + len(found)), k).reshape(found.shape)
        keep = (found >= 0) & (found != rows) & (scores >= cut)
        a, b = rows[keep], found[keep]
        firsts.append(np.minimum(a, b))
        seconds.append(np.maximum(a, b))
        sims.append(scores[keep])
    i, j, cos = np.concatenate(firsts), np.concatenate(seconds), np.concatenate(sims)
    pairs = pd.DataFrame({"i": i, "j": j, "cos": cos}).drop_duplicates(["i", "j"])
    pairs = pairs.sort_values(["i", "j"], kind="stable")
    return (pairs["i"].to_numpy(np.int64), pairs["j"].to_numpy(np.int64),
            np.minimum(pairs["cos"].to_numpy(np.float32), 1.0))


def _components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected-component id per node, numbered in order of first appearance."""
    graph = sparse.coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n)).tocsr()
    _, labels = connected_components(graph, directed=False)
    return pd.factorize(labels)[0].astype(np.int64)


def _check_texts(texts: Sequence[str]) -> list[str]:
    texts = list(texts)
    bad = [k for k, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"texts at positions {format_list(bad)} are not strings "
                         "(missing text?); fill or drop those rows first.")
    return texts


def near_duplicate_groups(texts: Sequence[str], *, embeddings: np.ndarray | None = None,
                          threshold: float = 0.95,
                          pairs: Sequence[str] | None = None) -> np.ndarray:
    """Group id per text; near-duplicates share a group.

    Two texts are near-duplicates when ``normalise_text(a) == normalise_text(b)``
    or, with ``embeddings``, when their cosine similarity is ``>= threshold``
    (:func:`similar_pairs`). Groups are connected components of that relation,
    numbered ``0, 1, ...`` in order of first appearance.

    Parameters
    ----------
    texts : sequence of str
    embeddings : ndarray of shape (len(texts), dim), optional
        One row per text, in the same order.
    threshold : float in (0, 1]
        Cosine similarity at or above which two texts are near-duplicates.
    pairs : sequence of str, optional
        The second texts of sentence pairs: two pairs are equal when both sides are.

    Returns
    -------
    ndarray of int64, one group id per text

    Examples
    --------
    >>> near_duplicate_groups(["Hello world!", "hello   WORLD", "something else"]).tolist()
    [0, 0, 1]
    """
    texts = _check_texts(texts)
    n = len(texts)
    keys = [_duplicate_key(t) for t in texts]
    if pairs is not None:
        pairs = _check_texts(pairs)
        if len(pairs) != n:
            raise ValueError(f"pairs must have one second text per text: {n} texts, {len(pairs)} "
                             "second texts.")
        keys = [pair_key(k, _duplicate_key(p)) for k, p in zip(keys, pairs)]
    codes = pd.factorize(pd.Series(keys, dtype=object))[0]
    _, first = np.unique(codes, return_index=True)
    i, j = [np.arange(n)], [first[codes]]
    if embeddings is not None:
        if np.ndim(embeddings) != 2 or len(embeddings) != n:
            raise ValueError(f"embeddings must have one row per text: {n} texts but shape "
                             f"{np.shape(embeddings)}; embed the same texts in the same order.")
        ei, ej, _ = similar_pairs(embeddings, threshold=threshold)
        i.append(ei)
        j.append(ej)
    return _components(n, np.concatenate(i), np.concatenate(j))


def _check_sizes(test_size: float, val_size: float) -> np.ndarray:
    """Validated fractions in :data:`SPLITS` order."""
    for name, value in (("test_size", test_size), ("val_size", val_size)):
        if not 0 <= value < 1:
            raise ValueError(f"{name} must be in [0, 1); got {value}.")
    if test_size + val_size >= 1:
        raise ValueError(f"test_size + val_size must be below 1 to leave rows for train; "
                         f"got {test_size} + {val_size}.")
    return np.array([1 - test_size - val_size, val_size, test_size])


def _codes(values: Sequence, name: str, n: int) -> np.ndarray:
    """Integer codes for labels or groups; ValueError on missing values or wrong length."""
    values = pd.Series(list(values), dtype=object)
    if len(values) != n:
        raise ValueError(f"{name} has {len(values)} entries but labels has {n}; "
                         "give one per row.")
    codes = pd.factorize(values)[0]
    if (codes < 0).any():
        raise ValueError(f"{name} missing at rows {format_list(np.flatnonzero(codes < 0))}; "
                         "fill them or drop those rows.")
    return codes


def _group_table(groups: np.ndarray, labels: np.ndarray, n_classes: int):
    """CSR-like group -> (class, count): ``indptr``, ``classes``, ``counts``."""
    keys, counts = np.unique(groups.astype(np.int64) * n_classes + labels, return_counts=True)
    owner = keys // n_classes
    indptr = np.searchsorted(owner, np.arange(groups.max() + 2))
    return indptr, keys % n_classes, counts


def _assign_groups(groups: np.ndarray, labels: np.ndarray, fractions: np.ndarray, *,
                   pinned: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Split index per group: pinned groups to train, then the greedy, largest groups first.

    Each group goes to the split ``s`` maximising ``sum_c g_c * (target[s, c] -
    current[s, c])``, which is the split where adding it most reduces the squared
    error between counts and targets (``target = fraction * class total``).
    """
    n_classes = labels.max() + 1
    indptr, classes, counts = _group_table(groups, labels, n_classes)
    target = fractions[:, None] * np.bincount(labels, minlength=n_classes)[None, :]
    current = np.zeros_like(target)
    np.add.at(current[0], labels[pinned[groups]], 1)
    assign = np.where(pinned, 0, -1)
    sizes = np.bincount(groups, minlength=len(pinned))
    perm = rng.permutation(np.flatnonzero(~pinned))
    for g in perm[np.argsort(-sizes[perm], kind="stable")]:
        cls, cnt = classes[indptr[g]:indptr[g + 1]], counts[indptr[g]:indptr[g + 1]]
        s = int(np.argmax((target[:, cls] - current[:, cls]) @ cnt))
        current[s, cls] += cnt
        assign[g] = s
    return assign


def _warn_missing(labels: Sequence, split: np.ndarray, fractions: np.ndarray) -> None:
    """Log the classes absent from a split that should hold some of every class."""
    table = pd.crosstab(pd.Series(list(labels), dtype=object), split)
    wanted = [s for s, f in zip(SPLITS, fractions) if f > 0]
    table = table.reindex(columns=wanted, fill_value=0)
    missing = {c: [s for s in wanted if table.at[c, s] == 0] for c in table.index}
    missing = {c: m for c, m in missing.items() if m}
    if missing:
        logger.warning("too few rows or groups to put these classes in every split: %s",
                       format_list(f"{c!r} ({int(table.loc[c].sum())} rows, none in "
                                   f"{', '.join(m)})" for c, m in missing.items()))


def stratified_group_split(labels: Sequence, *, groups: Sequence | None = None,
                           test_size: float = 0.15, val_size: float = 0.15, seed: int = 0,
                           force_train: Sequence[bool] | None = None) -> np.ndarray:
    """Assign each row to ``"train"``, ``"validation"`` or ``"test"``, whole groups at a time.

    Targets are ``target[s, c] = fraction[s] * n_c`` rows of class ``c`` in split
    ``s``. Groups are shuffled with ``seed``, sorted by size (largest first), and
    each goes to the split with the largest count-weighted deficit
    ``sum_c g_c * (target[s, c] - current[s, c])``. Ties go to train, so a class
    with a single row lands in train. A class too small to reach every split is
    placed as well as possible and logged as a warning.

    Parameters
    ----------
    labels : sequence
        Class per row.
    groups : sequence, optional
        Group per row (e.g. :func:`near_duplicate_groups`); ``None``: each row
        its own group. All rows of a group land in one split.
    test_size, val_size : float in [0, 1), with ``test_size + val_size < 1``
    seed : int
    force_train : sequence of bool, optional
        Rows that must be in train; their whole groups go to train and count
        towards train's targets before the other groups are placed.

    Returns
    -------
    ndarray of str, one of :data:`SPLITS` per row

    Examples
    --------
    >>> split = stratified_group_split(["a"] * 10 + ["b"] * 10, test_size=0.2, val_size=0.2)
    >>> pd.crosstab(np.repeat(["a", "b"], 10), split).to_dict("index")
    {'a': {'test': 2, 'train': 6, 'validation': 2}, 'b': {'test': 2, 'train': 6, 'validation': 2}}
    """
    fractions = _check_sizes(test_size, val_size)
    n = len(labels)
    if n == 0:
        return np.array([], dtype=str)
    label_codes = _codes(labels, "labels", n)
    group_codes = np.arange(n) if groups is None else _codes(groups, "groups", n)
    forced = np.zeros(n, bool) if force_train is None else np.asarray(force_train, bool)
    if forced.shape != (n,):
        raise ValueError(f"force_train needs one bool per row ({n}); got shape {forced.shape}.")
    pinned = np.zeros(group_codes.max() + 1, bool)
    pinned[group_codes[forced]] = True
    assign = _assign_groups(group_codes, label_codes, fractions, pinned=pinned,
                            rng=np.random.default_rng(seed))
    split = np.array(SPLITS)[assign[group_codes]]
    _warn_missing(labels, split, fractions)
    return split


def smallest_detectable_change(n_items: int, *, alpha: float = 0.05) -> float:
    """The smallest change in accuracy that ``n_items`` test items could ever show as real.

    Even in the best case, where the after model fixes test items and breaks none, McNemar's
    exact test needs :data:`MCNEMAR_MIN_DISCORDANT` changed items (at :math:`\\alpha = 0.05`;
    the smallest :math:`k` with :math:`2 \\cdot 2^{-k} < \\alpha`) before it can call the change
    real, so no change below :math:`k / n` can be shown on this test set, whatever the models.

    Examples
    --------
    >>> smallest_detectable_change(300)
    0.02
    >>> round(smallest_detectable_change(150), 3)
    0.04
    """
    if isinstance(n_items, bool) or not isinstance(n_items, (int, np.integer)) or n_items < 1:
        raise ValueError(f"n_items must be a positive integer; got {n_items!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1); got {alpha!r}.")
    k = 1
    while 2 * 0.5 ** k >= alpha:
        k += 1
    return k / n_items


def stratified_folds(labels: Sequence, *, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """``n_folds`` seeded stratified folds of ``labels``: a list of (train, held-out) positions.

    Every position is held out exactly once. A label rarer than the folds is spread over as many
    folds as it has items (scikit-learn warns about it; that is expected here, so the warning
    is silenced). The one fold helper for the out-of-fold probabilities of the flaggers and of
    the fine-tuned fold models.
    """
    import warnings

    from sklearn.model_selection import StratifiedKFold

    codes = np.asarray(labels)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, message=".*least populated class")
        return list(splitter.split(np.zeros(len(codes)), codes))
