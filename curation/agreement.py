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

from curation._schema import ANNOTATOR, ITEM, LABEL

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

#: Coefficients that :func:`bootstrap_ci` can resample.
COEFFICIENTS = ("percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1")


@dataclass(frozen=True)
class CountTable:
    """Item x label vote counts built once from a long frame.

    Attributes
    ----------
    counts : ndarray of shape (n_items, n_labels), int
    items : Index of item ids (row order)
    labels : list of labels (column order)
    """

    counts: np.ndarray
    items: pd.Index
    labels: list[str]


def count_table(df: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> CountTable:
    """Build the item x label count table of a long frame.

    ``labels`` fixes the column order (and adds unused labels, which matter for
    Gwet's AC1); by default the frame's ``attrs["label_set"]`` or the sorted
    observed labels.

    >>> df = pd.DataFrame({"item_id": ["a", "a", "b"], "annotator_id": ["x", "y", "x"],
    ...                    "label": ["pos", "neg", "pos"]})
    >>> count_table(df).counts.tolist()
    [[1, 1], [0, 1]]
    """
    if isinstance(df, CountTable):
        return df
    labels = _resolve_labels(df, labels)
    item_codes, items = pd.factorize(df[ITEM], sort=False)
    label_codes = pd.Categorical(df[LABEL], categories=labels).codes
    if (label_codes < 0).any():
        unknown = sorted(set(df[LABEL]) - set(labels))
        raise ValueError(f"labels {unknown} are not in labels={list(labels)}; add them.")
    flat = np.bincount(item_codes * len(labels) + label_codes, minlength=len(items) * len(labels))
    return CountTable(flat.reshape(len(items), len(labels)), pd.Index(items, name=ITEM), list(labels))


def _resolve_labels(df: pd.DataFrame, labels: Sequence[str] | None) -> list[str]:
    if labels is not None:
        return [str(x) for x in labels]
    declared = df.attrs.get("label_set")
    observed = set(df[LABEL].unique())
    if declared and observed <= set(declared):
        return list(declared)
    return sorted(observed)


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
    df: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None
) -> dict[str, float]:
    """Every coefficient of :data:`COEFFICIENTS` at once (one pass over the count table)."""
    table = count_table(df, labels=labels)
    matrix, layout = _stack(_item_stats(table.counts))
    values = _coefficients(matrix.sum(axis=0), layout, len(table.labels))
    return {k: float(v) for k, v in values.items()}


# --------------------------------------------------------------------------- public coefficients


def percent_agreement(df: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> float:
    """Mean share of agreeing annotator pairs per item.

    ``P_o = mean_i sum_k n_ik (n_ik - 1) / (r_i (r_i - 1))`` over items with
    ``r_i >= 2`` annotations. With two annotators per item this is the plain
    share of items both labelled the same.

    >>> df = pd.DataFrame({"item_id": list("aabbcc"), "annotator_id": list("xyxyxy"),
    ...                    "label": ["p", "p", "p", "n", "n", "n"]})
    >>> round(percent_agreement(df), 4)
    0.6667
    """
    return agreement_coefficients(df, labels=labels)["percent_agreement"]


def fleiss_kappa(df: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> float:
    """Fleiss' kappa, generalised to items with different numbers of annotators.

    ``kappa = (P_o - P_e) / (1 - P_e)`` with ``P_o`` as in
    :func:`percent_agreement` and ``P_e = sum_k p_k^2``, ``p_k`` the share of
    label ``k`` among all annotations of items with ``r_i >= 2``. When every
    item has the same number of annotators this is exactly statsmodels'
    ``fleiss_kappa`` (which requires that design).

    >>> df = pd.DataFrame({"item_id": list("aabbcc"), "annotator_id": list("xyxyxy"),
    ...                    "label": ["p", "p", "p", "n", "n", "n"]})
    >>> round(fleiss_kappa(df), 4)
    0.3333
    """
    return agreement_coefficients(df, labels=labels)["fleiss_kappa"]


def krippendorff_alpha(df: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> float:
    """Krippendorff's alpha for nominal data; missing annotations allowed.

    From the coincidence matrix over pairable items (``r_i >= 2``):
    ``alpha = 1 - (n - 1) (n - sum_c o_cc) / (n^2 - sum_c n_c^2)`` where
    ``o_cc = sum_i n_ic (n_ic - 1) / (r_i - 1)``, ``n_c = sum_i n_ic`` and
    ``n = sum_c n_c``. Equals ``krippendorff.alpha(..., level_of_measurement="nominal")``.

    >>> df = pd.DataFrame({"item_id": list("aabbcc"), "annotator_id": list("xyxyxy"),
    ...                    "label": ["p", "p", "p", "n", "n", "n"]})
    >>> round(krippendorff_alpha(df), 4)
    0.4444
    """
    return agreement_coefficients(df, labels=labels)["krippendorff_alpha"]


def gwet_ac1(df: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> float:
    """Gwet's AC1, robust to a dominant class (where kappa collapses).

    ``AC1 = (P_o - P_e) / (1 - P_e)`` with ``P_e = sum_k pi_k (1 - pi_k) / (q - 1)``,
    ``pi_k = mean_i n_ik / r_i`` over items with at least one annotation and ``q``
    the number of labels in the label set (Gwet 2014, missing ratings allowed).

    >>> df = pd.DataFrame({"item_id": list("aabbcc"), "annotator_id": list("xyxyxy"),
    ...                    "label": ["p", "p", "p", "n", "n", "n"]})
    >>> round(gwet_ac1(df), 4)
    0.3333
    """
    return agreement_coefficients(df, labels=labels)["gwet_ac1"]


def item_agreement(df: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Per item: number of annotations, pairwise agreement, vote entropy, majority share.

    ``agreement = sum_k n_ik (n_ik - 1) / (r_i (r_i - 1))`` (NaN for one annotation),
    ``entropy = -sum_k (n_ik / r_i) log2 (n_ik / r_i)``.
    """
    table = count_table(df, labels=labels)
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


def cohen_kappa_pairwise(df: pd.DataFrame, *, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Cohen's kappa for every annotator pair that shares at least one item.

    ``kappa = (p_o - p_e) / (1 - p_e)`` on the pair's shared items, with
    ``p_e = sum_k p_ak p_bk`` from each annotator's own label shares on those
    items; identical to scikit-learn's ``cohen_kappa_score`` (NaN where it is
    undefined, e.g. both annotators used a single, same label).

    Returns
    -------
    DataFrame with columns ``a, b, kappa, n, agreement`` (``a < b``), sorted by ``a, b``.

    >>> df = pd.DataFrame({"item_id": list("aabb"), "annotator_id": list("xyxy"),
    ...                    "label": ["p", "p", "n", "p"]})
    >>> cohen_kappa_pairwise(df)[["a", "b", "kappa", "n"]].values.tolist()
    [['x', 'y', 0.0, 2]]
    """
    labels = _resolve_labels(df, labels)
    k = len(labels)
    pairs = _shared_pairs(df, labels)
    if pairs is None:
        return pd.DataFrame(columns=["a", "b", "kappa", "n", "agreement"])
    pair_code, annotators, la, lb = pairs
    pair_ids, pair_index = np.unique(pair_code, return_inverse=True)
    confusion = np.bincount(pair_index * k * k + la * k + lb,
                            minlength=len(pair_ids) * k * k).reshape(-1, k, k).astype(np.float64)
    n = confusion.sum(axis=(1, 2))
    p_o = np.trace(confusion, axis1=1, axis2=2) / n
    p_e = (confusion.sum(axis=2) * confusion.sum(axis=1)).sum(axis=1) / n**2
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where(p_e < 1, (p_o - p_e) / (1 - p_e), np.nan)
    n_ann = len(annotators)
    return pd.DataFrame({"a": annotators[pair_ids // n_ann], "b": annotators[pair_ids % n_ann],
                         "kappa": kappa, "n": n.astype(int), "agreement": p_o})


def _shared_pairs(df: pd.DataFrame, labels: list[str]):
    """All (annotator a, annotator b, label a, label b) over shared items, a < b."""
    ann_codes, annotators = pd.factorize(df[ANNOTATOR], sort=True)
    item_codes = pd.factorize(df[ITEM])[0]
    lab = pd.Categorical(df[LABEL], categories=labels).codes.astype(np.int64)
    order = np.lexsort((ann_codes, item_codes))
    item_s, ann_s, lab_s = item_codes[order], ann_codes[order].astype(np.int64), lab[order]
    starts = np.flatnonzero(np.r_[True, item_s[1:] != item_s[:-1]])
    sizes = np.diff(np.r_[starts, len(item_s)])
    parts = [_pairs_for_size(s, starts[sizes == s]) for s in np.unique(sizes) if s >= 2]
    if not parts:
        return None
    first = np.concatenate([p[0] for p in parts])
    second = np.concatenate([p[1] for p in parts])
    n_ann = len(annotators)
    code = ann_s[first] * n_ann + ann_s[second]
    return code, np.asarray(annotators), lab_s[first], lab_s[second]


def _pairs_for_size(size: int, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    i, j = np.triu_indices(size, k=1)
    return (starts[:, None] + i).ravel(), (starts[:, None] + j).ravel()


# --------------------------------------------------------------------------- per class


def per_class_agreement(df: pd.DataFrame | CountTable, *, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Agreement on each label.

    ``specific_agreement_k = sum_i n_ik (n_ik - 1) / sum_i n_ik (r_i - 1)``: given
    one annotator chose ``k``, the chance another one did too (items with
    ``r_i >= 2``). ``kappa`` is Fleiss' kappa of the two-category table
    ``k`` versus not-``k``. ``share`` is the label's share of all annotations.
    """
    table = count_table(df, labels=labels)
    n = table.counts.astype(np.float64)
    r = n.sum(axis=1)
    pairable = r >= 2
    n_p, r_p = n[pairable], r[pairable]
    with np.errstate(divide="ignore", invalid="ignore"):
        specific = (n_p * (n_p - 1)).sum(axis=0) / (n_p * (r_p[:, None] - 1)).sum(axis=0)
    kappas = [_binary_fleiss(np.column_stack([n_p[:, k], r_p - n_p[:, k]])) for k in range(n.shape[1])]
    return pd.DataFrame({"label": table.labels, "n_annotations": n.sum(axis=0).astype(int),
                         "share": n.sum(axis=0) / n.sum(), "specific_agreement": specific,
                         "kappa": kappas}).set_index("label")


def _binary_fleiss(counts: np.ndarray) -> float:
    matrix, layout = _stack(_item_stats(counts))
    return float(_coefficients(matrix.sum(axis=0), layout, 2)["fleiss_kappa"])


# --------------------------------------------------------------------------- bootstrap


def bootstrap_ci(
    df: pd.DataFrame | CountTable,
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

    >>> df = pd.DataFrame({"item_id": list("aabbccdd"), "annotator_id": list("xyxyxyxy"),
    ...                    "label": list("ppnnppnp")})
    >>> ci = bootstrap_ci(df, n_boot=200, seed=1)
    >>> ci["percent_agreement"][0] <= 0.75 <= ci["percent_agreement"][1]
    True
    """
    if n_boot < 10:
        raise ValueError(f"n_boot={n_boot} is too small for an interval; use at least 10 (default 1000).")
    if not 0 < level < 1:
        raise ValueError(f"level={level} must lie strictly between 0 and 1, e.g. 0.95.")
    table = count_table(df, labels=labels)
    patterns, freq = np.unique(table.counts, axis=0, return_counts=True)
    matrix, layout = _stack(_item_stats(patterns))
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(int(freq.sum()), freq / freq.sum(), size=n_boot).astype(np.float64)
    values = _coefficients(weights @ matrix, layout, len(table.labels))
    tail = (1 - level) / 2 * 100
    return {k: _percentile_interval(v, tail) for k, v in values.items()}


def _percentile_interval(values: np.ndarray, tail: float) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if values.size == 0:
        return (float("nan"), float("nan"))
    low, high = np.percentile(values, [tail, 100 - tail])
    return (float(low), float(high))


# --------------------------------------------------------------------------- per annotator


def annotator_agreement(
    df: pd.DataFrame,
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
    (e.g. Dawid-Skene; NaN if none given); ``mean_pairwise_kappa``, their Cohen's
    kappas with every partner weighted by shared items.

    >>> df = pd.DataFrame({"item_id": list("aaabbb"), "annotator_id": list("xyzxyz"),
    ...                    "label": list("ppnppp")})
    >>> annotator_agreement(df)["agreement_with_others"].tolist()
    [1.0, 1.0, 0.5]
    """
    table = count_table(df, labels=labels)
    item_pos = table.items.get_indexer(df[ITEM])
    lab_pos = pd.Categorical(df[LABEL], categories=table.labels).codes
    others = table.counts[item_pos].astype(np.int64)
    others[np.arange(len(df)), lab_pos] -= 1
    top = others.max(axis=1)
    unique_top = (others == top[:, None]).sum(axis=1) == 1
    usable = (top > 0) & unique_top
    agree = pd.Series(np.where(usable, others.argmax(axis=1) == lab_pos, np.nan), index=df.index)
    out = pd.DataFrame({"n_labels": df.groupby(ANNOTATOR).size(),
                        "agreement_with_others": agree.groupby(df[ANNOTATOR]).mean()})
    out["agreement_with_consensus"] = _with_consensus(df, consensus)
    out["mean_pairwise_kappa"] = _mean_kappa(pairwise if pairwise is not None
                                             else cohen_kappa_pairwise(df, labels=table.labels))
    out.index.name = ANNOTATOR
    return out


def _with_consensus(df: pd.DataFrame, consensus: pd.Series | None) -> pd.Series:
    if consensus is None:
        return pd.Series(np.nan, index=pd.Index(df[ANNOTATOR].unique()))
    target = df[ITEM].map(consensus)
    known = target.notna()
    return (df.loc[known, LABEL] == target[known]).groupby(df.loc[known, ANNOTATOR]).mean()


def _mean_kappa(pairwise: pd.DataFrame) -> pd.Series:
    both = pd.concat([pairwise.rename(columns={"a": "who"}), pairwise.rename(columns={"b": "who"})])
    both = both[np.isfinite(both["kappa"].astype(float))]
    weighted = (both["kappa"] * both["n"]).groupby(both["who"]).sum()
    return weighted / both.groupby("who")["n"].sum()
