"""Inter-annotator agreement coefficients, as pure functions of the long frame.

Every coefficient here is a ratio of sums of per-item statistics of the
item x label count table ``n[i, k]`` (how many annotators gave item ``i`` label
``k``; ``r[i] = sum_k n[i, k]``). That is what makes the bootstrap cheap: items
with the same count vector are exchangeable, so resampling items is resampling
count patterns (:func:`bootstrap_ci`).

The values equal the reference implementations on the same data (tests check
this to 1e-9): scikit-learn ``cohen_kappa_score`` for pairs, statsmodels
``fleiss_kappa`` for complete designs, the ``krippendorff`` package for alpha.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from curation.schema import ANNOTATOR, ITEM, LABEL

__all__ = [
    "COEFFICIENTS",
    "agreement_coefficients",
    "annotator_agreement",
    "CountTable",
    "bootstrap_ci",
    "cohen_kappa_pairwise",
    "count_table",
    "fleiss_kappa",
    "gwet_ac1",
    "item_agreement",
    "krippendorff_alpha",
    "per_class_agreement",
    "percent_agreement",
]

#: Largest item x (annotator, label) indicator matrix built densely for pairwise kappas.
_DENSE_CELLS = 20_000_000

#: Coefficients that :func:`bootstrap_ci` can resample.
COEFFICIENTS = ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1")


@dataclass(frozen=True)
class CountTable:
    """A long frame encoded once: integer codes per annotation and the item x label counts.

    Every function here accepts either a long frame or a ``CountTable``; build
    it once with :func:`count_table` when computing several coefficients.

    Attributes
    ----------
    counts : ndarray of shape (n_items, n_labels), int
    items : Index of item ids (row order, first appearance)
    labels : list of labels (column order)
    annotators : Index of annotator ids (sorted)
    item_codes, annotator_codes, label_codes : ndarray, one entry per annotation
    """

    counts: np.ndarray
    items: pd.Index
    labels: list[str]
    annotators: pd.Index | None = None
    item_codes: np.ndarray | None = None
    annotator_codes: np.ndarray | None = None
    label_codes: np.ndarray | None = None

    def require_codes(self) -> None:
        if self.annotator_codes is None:
            raise ValueError("this CountTable holds counts only; build it with count_table(df) "
                             "from a long frame to get per-annotator results.")


def count_table(frame: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> CountTable:
    """Encode a long frame: codes per annotation and the item x label count table.

    ``labels`` fixes the column order (and adds unused labels, which matter for
    Gwet's AC1); by default the frame's ``attrs["label_set"]`` or the sorted
    observed labels.

    >>> frame = pd.DataFrame({"item_id": ["a", "a", "b"], "annotator_id": ["x", "y", "x"],
    ...                    "label": ["pos", "neg", "pos"]})
    >>> count_table(frame).counts.tolist()
    [[1, 1], [0, 1]]
    """
    if isinstance(frame, CountTable):
        return frame if labels is None or list(labels) == frame.labels else _relabel(frame, labels)
    item_codes, items = pd.factorize(frame[ITEM], sort=False)
    annotator_codes, annotators = pd.factorize(frame[ANNOTATOR], sort=True)
    raw_codes, observed = pd.factorize(frame[LABEL], sort=False)
    labels = _resolve_labels(frame, labels, observed)
    position = {lab: k for k, lab in enumerate(labels)}
    unknown = sorted(str(x) for x in observed if x not in position)
    if unknown:
        raise ValueError(f"labels {unknown} are not in labels={list(labels)}; add them.")
    label_codes = np.array([position[x] for x in observed], dtype=np.int64)[raw_codes]
    return CountTable(_bincount_2d(item_codes, label_codes, len(items), len(labels)),
                      pd.Index(items, name=ITEM), list(labels), pd.Index(annotators, name=ANNOTATOR),
                      item_codes.astype(np.int64), annotator_codes.astype(np.int64), label_codes)


def _bincount_2d(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    flat = np.bincount(rows * n_cols + cols, minlength=n_rows * n_cols)
    return flat.reshape(n_rows, n_cols)


def _relabel(table: CountTable, labels: Sequence[str]) -> CountTable:
    labels = [str(x) for x in labels]
    missing = sorted(set(table.labels) - set(labels))
    used = table.counts.sum(axis=0) > 0
    if any(lab in missing for lab, u in zip(table.labels, used) if u):
        raise ValueError(f"labels {missing} are not in labels={labels}; add them.")
    order = [table.labels.index(x) if x in table.labels else -1 for x in labels]
    counts = np.column_stack([table.counts[:, k] if k >= 0 else np.zeros(len(table.items), int)
                              for k in order])
    remap = np.array([labels.index(x) if x in labels else -1 for x in table.labels])
    codes = None if table.label_codes is None else remap[table.label_codes]
    return CountTable(counts, table.items, labels, table.annotators, table.item_codes,
                      table.annotator_codes, codes)


def _resolve_labels(frame: pd.DataFrame, labels: Sequence[str] | None, observed) -> list[str]:
    if labels is not None:
        return [str(x) for x in labels]
    return sorted(str(x) for x in observed)


# --------------------------------------------------------------------------- sufficient statistics


def _item_stats(counts: np.ndarray) -> dict[str, np.ndarray]:
    """Per-item statistics whose column sums determine every coefficient."""
    n = counts.astype(np.float64)
    r = n.sum(axis=1)
    pairable = r >= 2
    same_pairs = (n * (n - 1)).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        agree = np.where(pairable, same_pairs / (r * (r - 1)), 0.0)
        coincide = np.where(pairable, same_pairs / (r - 1), 0.0)
        share = np.where(r[:, None] > 0, n / r[:, None], 0.0)
    return {
        "pairable": pairable.astype(np.float64),
        "agree": agree,
        "coincide": coincide,
        "n_pairable": n * pairable[:, None],
        "share": share,
        "rated": (r >= 1).astype(np.float64),
    }


def _stack(stats: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, slice]]:
    cols, layout, start = [], {}, 0
    for key, value in stats.items():
        value = value.reshape(len(value), -1)
        layout[key] = slice(start, start + value.shape[1])
        cols.append(value)
        start += value.shape[1]
    return np.hstack(cols), layout


def _coefficients(sums: np.ndarray, layout: dict[str, slice], n_labels: int) -> dict[str, np.ndarray]:
    """All coefficients from column sums; ``sums`` may hold many rows (bootstrap replicates)."""
    s = {k: sums[..., v] for k, v in layout.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        p_obs = s["agree"][..., 0] / s["pairable"][..., 0]
        nc = s["n_pairable"]
        total = nc.sum(axis=-1)
        p_cat = nc / total[..., None]
        pe_fleiss = (p_cat**2).sum(axis=-1)
        fleiss = (p_obs - pe_fleiss) / (1 - pe_fleiss)
        alpha = 1 - (total - 1) * (total - s["coincide"][..., 0]) / (total**2 - (nc**2).sum(axis=-1))
        pi = s["share"] / s["rated"][..., 0][..., None]
        pe_gwet = (pi * (1 - pi)).sum(axis=-1) / max(n_labels - 1, 1)
        ac1 = (p_obs - pe_gwet) / (1 - pe_gwet)
    return {"percent_agreement": p_obs, "fleiss_kappa": fleiss,
            "krippendorff_alpha": alpha, "gwet_ac1": ac1}


def agreement_coefficients(
    frame: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None
) -> dict[str, float]:
    """Every coefficient of :data:`COEFFICIENTS` at once (one pass over the count table)."""
    table = count_table(frame, labels=labels)
    matrix, layout = _stack(_item_stats(table.counts))
    values = _coefficients(matrix.sum(axis=0), layout, len(table.labels))
    return {k: float(v) for k, v in values.items()}


# --------------------------------------------------------------------------- public coefficients


def percent_agreement(frame: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> float:
    """Mean share of agreeing annotator pairs per item.

    ``P_o = mean_i sum_k n_ik (n_ik - 1) / (r_i (r_i - 1))`` over items with
    ``r_i >= 2`` annotations. With two annotators per item this is the plain
    share of items both labelled the same.

    >>> frame = pd.DataFrame({"item_id": list("aabbcc"), "annotator_id": list("xyxyxy"),
    ...                    "label": ["p", "p", "p", "n", "n", "n"]})
    >>> round(percent_agreement(frame), 4)
    0.6667
    """
    return agreement_coefficients(frame, labels=labels)["percent_agreement"]


def fleiss_kappa(frame: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> float:
    """Fleiss' kappa, generalised to items with different numbers of annotators.

    ``kappa = (P_o - P_e) / (1 - P_e)`` with ``P_o`` as in
    :func:`percent_agreement` and ``P_e = sum_k p_k^2``, ``p_k`` the share of
    label ``k`` among all annotations of items with ``r_i >= 2``. When every
    item has the same number of annotators this is exactly statsmodels'
    ``fleiss_kappa`` (which requires that design).

    >>> frame = pd.DataFrame({"item_id": list("aabbcc"), "annotator_id": list("xyxyxy"),
    ...                    "label": ["p", "p", "p", "n", "n", "n"]})
    >>> round(fleiss_kappa(frame), 4)
    0.3333
    """
    return agreement_coefficients(frame, labels=labels)["fleiss_kappa"]


def krippendorff_alpha(frame: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> float:
    """Krippendorff's alpha for nominal data; missing annotations allowed.

    From the coincidence matrix over pairable items (``r_i >= 2``):
    ``alpha = 1 - (n - 1) (n - sum_c o_cc) / (n^2 - sum_c n_c^2)`` where
    ``o_cc = sum_i n_ic (n_ic - 1) / (r_i - 1)``, ``n_c = sum_i n_ic`` and
    ``n = sum_c n_c``. Equals ``krippendorff.alpha(..., level_of_measurement="nominal")``.

    >>> frame = pd.DataFrame({"item_id": list("aabbcc"), "annotator_id": list("xyxyxy"),
    ...                    "label": ["p", "p", "p", "n", "n", "n"]})
    >>> round(krippendorff_alpha(frame), 4)
    0.4444
    """
    return agreement_coefficients(frame, labels=labels)["krippendorff_alpha"]


def gwet_ac1(frame: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> float:
    """Gwet's AC1, robust to a dominant class (where kappa collapses).

    ``AC1 = (P_o - P_e) / (1 - P_e)`` with ``P_e = sum_k pi_k (1 - pi_k) / (q - 1)``,
    ``pi_k = mean_i n_ik / r_i`` over items with at least one annotation and ``q``
    the number of labels in the label set (Gwet 2014, missing ratings allowed).

    >>> frame = pd.DataFrame({"item_id": list("aabbcc"), "annotator_id": list("xyxyxy"),
    ...                    "label": ["p", "p", "p", "n", "n", "n"]})
    >>> round(gwet_ac1(frame), 4)
    0.3333
    """
    return agreement_coefficients(frame, labels=labels)["gwet_ac1"]


def item_agreement(frame: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Per item: number of annotations, pairwise agreement, vote entropy, majority share.

    ``agreement = sum_k n_ik (n_ik - 1) / (r_i (r_i - 1))`` (NaN for one annotation),
    ``entropy = -sum_k (n_ik / r_i) log2 (n_ik / r_i)``.
    """
    table = count_table(frame, labels=labels)
    n = table.counts.astype(np.float64)
    r = n.sum(axis=1)
    share = n / r[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        agree = np.where(r >= 2, (n * (n - 1)).sum(axis=1) / (r * (r - 1)), np.nan)
        entropy = -np.nansum(np.where(share > 0, share * np.log2(share), 0.0), axis=1)
    return pd.DataFrame({"n_annotations": r.astype(int), "agreement": agree,
                         "entropy": entropy + 0.0, "majority_share": share.max(axis=1)},
                        index=table.items)


# --------------------------------------------------------------------------- pairwise Cohen


def cohen_kappa_pairwise(frame: pd.DataFrame | CountTable, *,
                         labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Cohen's kappa for every annotator pair that shares at least one item.

    ``kappa = (p_o - p_e) / (1 - p_e)`` on the pair's shared items, with
    ``p_e = sum_k p_ak p_bk`` from each annotator's own label shares on those
    items; identical to scikit-learn's ``cohen_kappa_score`` (NaN where it is
    undefined, e.g. both annotators used a single, same label).

    Returns
    -------
    DataFrame with columns ``a, b, kappa, n, agreement`` (``a < b``), sorted by ``a, b``.

    >>> frame = pd.DataFrame({"item_id": list("aabb"), "annotator_id": list("xyxy"),
    ...                    "label": ["p", "p", "n", "p"]})
    >>> cohen_kappa_pairwise(frame)[["a", "b", "kappa", "n"]].values.tolist()
    [['x', 'y', 0.0, 2]]
    """
    table = count_table(frame, labels=labels)
    table.require_codes()
    pair_ids, confusion = _pair_confusions(table)
    if pair_ids.size == 0:
        return pd.DataFrame(columns=["a", "b", "kappa", "n", "agreement"])
    n = confusion.sum(axis=(1, 2))
    p_o = np.trace(confusion, axis1=1, axis2=2) / n
    p_e = (confusion.sum(axis=2) * confusion.sum(axis=1)).sum(axis=1) / n**2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(p_e < 1, (p_o - p_e) / (1 - p_e), np.nan)
    names = np.asarray(table.annotators, dtype=object)
    n_ann = len(names)
    return pd.DataFrame({"a": names[pair_ids // n_ann], "b": names[pair_ids % n_ann],
                         "kappa": kappa, "n": n.astype(int), "agreement": p_o})


def _pair_confusions(table: CountTable) -> tuple[np.ndarray, np.ndarray]:
    """One k x k confusion matrix for every annotator pair (a < b) sharing an item.

    With ``X`` the item x (annotator, label) indicator matrix, ``X.T @ X`` holds
    every pair's confusion counts at once; dense for small crowds, sparse for
    large ones (cost grows with the sum of squared annotations per item).
    """
    n_ann, k = len(table.annotators), len(table.labels)
    cols = table.annotator_codes * k + table.label_codes
    shape = (len(table.items), n_ann * k)
    if shape[0] * shape[1] <= _DENSE_CELLS:
        x = np.zeros(shape, dtype=np.float64)
        x[table.item_codes, cols] = 1.0
        gram = (x.T @ x).reshape(n_ann, k, n_ann, k).transpose(0, 2, 1, 3)
        a, b = np.triu_indices(n_ann, k=1)
        blocks = gram[a, b]
        keep = blocks.sum(axis=(1, 2)) > 0
        return (a * n_ann + b)[keep], np.rint(blocks[keep])
    return _sparse_pair_confusions(table.item_codes, cols, shape, n_ann, k)


def _sparse_pair_confusions(rows, cols, shape, n_ann: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    x = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=shape)
    gram = (x.T @ x).tocoo()
    a, b = gram.row // k, gram.col // k
    upper = a < b
    code = a[upper].astype(np.int64) * n_ann + b[upper]
    cell = (gram.row[upper] % k) * k + gram.col[upper] % k
    pair_ids, pair_index = np.unique(code, return_inverse=True)
    flat = np.bincount(pair_index * k * k + cell, weights=gram.data[upper],
                       minlength=len(pair_ids) * k * k)
    return pair_ids, np.rint(flat.reshape(-1, k, k))


# --------------------------------------------------------------------------- per class


def per_class_agreement(frame: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Agreement on each label.

    ``specific_agreement_k = sum_i n_ik (n_ik - 1) / sum_i n_ik (r_i - 1)``: given
    one annotator chose ``k``, the chance another one did too (items with
    ``r_i >= 2``). ``kappa`` is Fleiss' kappa of the two-category table
    ``k`` versus not-``k``. ``share`` is the label's share of all annotations.
    """
    table = count_table(frame, labels=labels)
    n = table.counts.astype(np.float64)
    r = n.sum(axis=1)
    pairable = r >= 2
    n_p, r_p = n[pairable], r[pairable]
    with np.errstate(divide="ignore", invalid="ignore"):
        specific = (n_p * (n_p - 1)).sum(axis=0) / (n_p * (r_p[:, None] - 1)).sum(axis=0)
    return pd.DataFrame({"label": table.labels, "n_annotations": n.sum(axis=0).astype(int),
                         "share": n.sum(axis=0) / n.sum(), "specific_agreement": specific,
                         "kappa": _binary_fleiss(n_p, r_p)}).set_index("label")


def _binary_fleiss(n: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Fleiss' kappa of "label k" versus "any other label", for every k at once."""
    rest = r[:, None] - n
    p_obs = ((n * (n - 1) + rest * (rest - 1)) / (r * (r - 1))[:, None]).mean(axis=0)
    p = n.sum(axis=0) / r.sum()
    p_exp = p**2 + (1 - p) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        return (p_obs - p_exp) / (1 - p_exp)


# --------------------------------------------------------------------------- bootstrap


def bootstrap_ci(
    frame: pd.DataFrame | CountTable,
    *,
    labels: Sequence[str] | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap confidence intervals over items for every coefficient.

    Items are resampled with replacement (``n_boot`` replicates, seeded). Since
    each coefficient depends on an item only through its count vector, a
    replicate is drawn as multinomial counts over the distinct count vectors:
    the same distribution as resampling items, at a cost that grows with the
    number of distinct vote patterns instead of items.

    >>> frame = pd.DataFrame({"item_id": list("aabbccdd"), "annotator_id": list("xyxyxyxy"),
    ...                    "label": list("ppnnppnp")})
    >>> ci = bootstrap_ci(frame, n_boot=200, seed=1)
    >>> ci["percent_agreement"][0] <= 0.75 <= ci["percent_agreement"][1]
    True
    """
    if n_boot < 10:
        raise ValueError(f"n_boot={n_boot} is too small for an interval; use at least 10 (default 1000).")
    if not 0 < level < 1:
        raise ValueError(f"level={level} must lie strictly between 0 and 1, e.g. 0.95.")
    table = count_table(frame, labels=labels)
    by_name = np.argsort(np.asarray(table.labels, dtype=str), kind="stable")
    patterns, freq = _distinct_rows(table.counts[:, by_name])  # same draws whatever the label order
    matrix, layout = _stack(_item_stats(patterns))
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(int(freq.sum()), freq / freq.sum(), size=n_boot).astype(np.float64)
    values = _coefficients(weights @ matrix, layout, len(table.labels))
    tail = (1 - level) / 2 * 100
    return {k: _percentile_interval(v, tail) for k, v in values.items()}


def _distinct_rows(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct count vectors and how often each occurs (fast path: one int64 key per row)."""
    base = int(counts.max(initial=0)) + 1
    if counts.shape[1] * np.log2(base) < 62:
        keys = counts.astype(np.int64) @ (base ** np.arange(counts.shape[1], dtype=np.int64))
        _, first, freq = np.unique(keys, return_index=True, return_counts=True)
        return counts[first], freq
    return np.unique(counts, axis=0, return_counts=True)


def _percentile_interval(values: np.ndarray, tail: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    low, high = np.percentile(values, [tail, 100 - tail])
    return (float(low), float(high))


# --------------------------------------------------------------------------- per annotator


def annotator_agreement(
    frame: pd.DataFrame | CountTable,
    *,
    consensus: pd.Series | None = None,
    labels: Sequence[str] | None = None,
    pairwise: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """How each annotator agrees with the others.

    Columns: ``n_labels``; ``agreement_with_others``, the share of their labels
    equal to the majority of the *other* annotators of the item (items where
    the others tie or there are none are left out, so nobody agrees with
    themselves); ``agreement_with_consensus`` with the given consensus
    (Series item_id -> label, e.g. from Dawid-Skene; NaN if none given);
    ``mean_pairwise_kappa``, their Cohen's kappas with every partner weighted
    by shared items.

    >>> frame = pd.DataFrame({"item_id": list("aaabbb"), "annotator_id": list("xyzxyz"),
    ...                    "label": list("ppnppp")})
    >>> annotator_agreement(frame)["agreement_with_others"].tolist()
    [1.0, 1.0, 0.5]
    """
    table = count_table(frame, labels=labels)
    table.require_codes()
    agree, disagree = _leave_one_out_outcomes(table.counts)
    cell = table.item_codes * len(table.labels) + table.label_codes
    hits, usable = agree.ravel()[cell], (agree | disagree).ravel()[cell]
    who = table.annotator_codes
    n_ann = len(table.annotators)
    out = pd.DataFrame({
        "n_labels": np.bincount(who, minlength=n_ann),
        "agreement_with_others": _group_mean(who[usable], hits[usable], n_ann),
        "agreement_with_consensus": _with_consensus(table, consensus),
    }, index=table.annotators)
    pairwise = pairwise if pairwise is not None else cohen_kappa_pairwise(table)
    out["mean_pairwise_kappa"] = _mean_kappa(pairwise).reindex(out.index)
    return out


def _leave_one_out_outcomes(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per (item, label): does a vote for it agree / disagree with the others' unique majority?

    Leaving one vote for ``l`` out leaves ``n_l - 1`` for ``l`` against ``M_l``, the
    largest count among the other labels (held by ``U_l`` labels). It agrees if
    ``n_l - 1 > M_l``; it disagrees if ``M_l > n_l - 1`` and ``U_l == 1``; a tie
    among the others, or no other vote, counts as neither.
    """
    c = counts.astype(np.int32)
    ordered = np.sort(c, axis=1)
    s0 = ordered[:, -1:]
    s1 = ordered[:, -2:-1] if c.shape[1] > 1 else np.zeros_like(s0)
    m = np.where(c == s0, s1, s0)
    n_at = np.where(m == s0, (c == s0).sum(axis=1, keepdims=True), (c == s1).sum(axis=1, keepdims=True))
    u = n_at - (c == m)
    own = c - 1
    return own > m, (m > own) & (u == 1)


def _group_mean(groups: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    count = np.bincount(groups, minlength=n_groups)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.bincount(groups, weights=values.astype(np.float64), minlength=n_groups) / count


def _with_consensus(table: CountTable, consensus: pd.Series | None) -> np.ndarray:
    if consensus is None:
        return np.full(len(table.annotators), np.nan)
    per_item = pd.Index(table.labels).get_indexer(consensus.reindex(table.items).astype(object))
    target = per_item[table.item_codes]
    known = target >= 0
    hits = target[known] == table.label_codes[known]
    return _group_mean(table.annotator_codes[known], hits, len(table.annotators))


def _mean_kappa(pairwise: pd.DataFrame) -> pd.Series:
    both = pd.concat([pairwise.rename(columns={"a": "who"}), pairwise.rename(columns={"b": "who"})])
    both = both[np.isfinite(both["kappa"].astype(float))]
    weighted = (both["kappa"] * both["n"]).groupby(both["who"]).sum()
    return weighted / both.groupby("who")["n"].sum()
