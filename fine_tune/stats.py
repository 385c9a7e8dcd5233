"""Statistics of retrain-and-compare: accuracy, F1, a paired bootstrap, McNemar, ensembles.

Every function is pure: arrays in, numbers out. Predictions and true labels may be any
hashable values (label strings or class indices), compared with ``==``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from curation.splits import MCNEMAR_MIN_DISCORDANT, smallest_detectable_change

__all__ = [
    "MCNEMAR_MIN_DISCORDANT",
    "accuracy_and_macro_f1",
    "ensemble_predictions",
    "mcnemar_exact",
    "mean_and_spread",
    "paired_bootstrap_delta",
    "per_class_f1",
    "seed_item_change",
    "smallest_detectable_change",
]


#: Bootstrap replicates drawn at once are bounded so one chunk holds at most this many indices.
_CHUNK_CELLS = 2_000_000


def _vector(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional (one value per test item); "
                         f"got shape {arr.shape}.")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: pass at least one test item.")
    return arr


def _same_length(y_true: np.ndarray, y_pred: np.ndarray, name: str = "y_pred") -> None:
    if y_pred.shape[-1] != len(y_true):
        raise ValueError(f"{name} has {y_pred.shape[-1]} items but y_true has {len(y_true)}; "
                         "pass one prediction per test item, in the same order.")


def _f1_scores(y_true: np.ndarray, y_pred: np.ndarray, labels: Sequence[Any]) -> np.ndarray:
    """F1 of each label in ``labels``; 0 where precision and recall are both undefined or 0."""
    scores = []
    for label in labels:
        t, p = y_true == label, y_pred == label
        tp = np.sum(t & p)
        denom = np.sum(t) + np.sum(p)
        scores.append(2.0 * tp / denom if denom else 0.0)
    return np.asarray(scores, dtype=float)


def accuracy_and_macro_f1(y_true: Sequence[Any], y_pred: Sequence[Any], *,
                          labels: Sequence[Any] | None = None) -> tuple[float, float]:
    """Accuracy and macro-averaged F1 of one set of predictions.

    .. math::

        \\text{acc} = \\frac{1}{n}\\sum_i [\\hat y_i = y_i], \\qquad
        F_1^{(k)} = \\frac{2\\,TP_k}{2\\,TP_k + FP_k + FN_k}, \\qquad
        \\text{macro-}F_1 = \\frac{1}{K}\\sum_k F_1^{(k)}

    Parameters
    ----------
    y_true, y_pred : sequence
        True and predicted labels, one per item.
    labels : sequence, optional
        Labels the macro average runs over (default: every label in ``y_true`` or
        ``y_pred``). A label never seen in either counts with F1 = 0.

    Returns
    -------
    (float, float)
        Accuracy and macro-F1.

    Examples
    --------
    >>> accuracy_and_macro_f1(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    (0.75, 0.7333333333333334)
    """
    t = _vector(y_true, "y_true")
    p = _vector(y_pred, "y_pred")
    _same_length(t, p)
    labels = list(labels) if labels is not None else sorted(set(t.tolist()) | set(p.tolist()))
    return float(np.mean(t == p)), float(np.mean(_f1_scores(t, p, labels)))


def per_class_f1(y_true: Sequence[Any], y_pred: Sequence[Any], *,
                 labels: Sequence[Any]) -> dict[Any, float]:
    """F1 of each class: :math:`F_1^{(k)} = 2\\,TP_k / (2\\,TP_k + FP_k + FN_k)`.

    A class with no true and no predicted items gets 0.

    Parameters
    ----------
    y_true, y_pred : sequence
        True and predicted labels, one per item.
    labels : sequence
        The classes, in the order of the returned dict.

    Returns
    -------
    dict
        ``{label: F1}``.

    Examples
    --------
    >>> per_class_f1(["a", "a", "b", "b"], ["a", "b", "b", "b"], labels=["a", "b", "c"])
    {'a': 0.6666666666666666, 'b': 0.8, 'c': 0.0}
    """
    t = _vector(y_true, "y_true")
    p = _vector(y_pred, "y_pred")
    _same_length(t, p)
    return {label: float(f) for label, f in zip(labels, _f1_scores(t, p, list(labels)))}


def _correctness(y_true: np.ndarray, pred: Any, name: str) -> np.ndarray:
    """``(n_seeds, n_items)`` matrix of 1.0 where a prediction is right."""
    arr = np.asarray(pred)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be 1-D (one run) or 2-D (n_seeds x n_items); "
                         f"got shape {np.asarray(pred).shape}.")
    _same_length(y_true, arr, name)
    return (arr == y_true[None, :]).astype(float)


def _check_bootstrap_options(n_boot: int, alpha: float) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer; got {n_boot!r}.")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), e.g. 0.05 for a 95% interval; got {alpha!r}.")


def _bootstrap_means(d: np.ndarray, *, n_boot: int, seed: int) -> np.ndarray:
    """Means of ``d`` over ``n_boot`` resamples of its entries with replacement, in chunks."""
    rng = np.random.default_rng(seed)
    n = len(d)
    chunk = max(1, _CHUNK_CELLS // n)
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        idx = rng.integers(0, n, size=(size, n))
        out[start:start + size] = d[idx].mean(axis=1)
    return out


def paired_bootstrap_delta(y_true: Sequence[Any], pred_before: Any, pred_after: Any, *,
                           n_boot: int = 2000, seed: int = 0,
                           alpha: float = 0.05) -> tuple[float, tuple[float, float]]:
    """Change in accuracy from ``pred_before`` to ``pred_after``, with a paired bootstrap interval.

    With :math:`S` seeds (rows) and correctness :math:`r_{si} = [\\hat y_{si} = y_i]`,

    .. math::

        \\Delta = \\frac{1}{S}\\sum_s (\\text{acc}^{after}_s - \\text{acc}^{before}_s)
               = \\frac{1}{n}\\sum_i d_i, \\qquad
        d_i = \\bar r^{after}_{\\cdot i} - \\bar r^{before}_{\\cdot i}.

    Each bootstrap replicate resamples the test items with replacement (the same items for
    every seed and both sides, so the pairing is kept) and recomputes :math:`\\Delta`; the
    interval is the :math:`\\alpha/2` and :math:`1-\\alpha/2` percentiles of the replicates.

    Parameters
    ----------
    y_true : sequence
        True labels, one per test item.
    pred_before, pred_after : array-like
        Predictions, 1-D (one run) or 2-D ``(n_seeds, n_items)``; both sides the same shape.
    n_boot : int, default 2000
        Bootstrap replicates.
    seed : int, default 0
        Seed of the resampling.
    alpha : float, default 0.05
        One minus the interval's coverage.

    Returns
    -------
    (float, (float, float))
        :math:`\\Delta` and its percentile interval ``(low, high)``.

    Examples
    --------
    >>> y = ["a", "b", "a", "b"]
    >>> paired_bootstrap_delta(y, ["a", "a", "a", "a"], ["a", "a", "a", "a"])
    (0.0, (0.0, 0.0))
    >>> delta, (low, high) = paired_bootstrap_delta(y, [["a", "a", "a", "a"], ["b", "b", "b", "b"]],
    ...                                             [y, y])
    >>> delta
    0.5
    """
    _check_bootstrap_options(n_boot, alpha)
    t = _vector(y_true, "y_true")
    before = _correctness(t, pred_before, "pred_before")
    after = _correctness(t, pred_after, "pred_after")
    if before.shape != after.shape:
        raise ValueError(f"pred_before has shape {before.shape} and pred_after {after.shape}; "
                         "pass the same seeds (rows) and test items (columns) for both sides.")
    d = after.mean(axis=0) - before.mean(axis=0)
    if not d.any():
        return 0.0, (0.0, 0.0)
    reps = _bootstrap_means(d, n_boot=n_boot, seed=seed)
    low, high = np.quantile(reps, [alpha / 2, 1 - alpha / 2])
    return float(d.mean()), (float(low), float(high))


def mcnemar_exact(y_true: Sequence[Any], pred_before: Sequence[Any],
                  pred_after: Sequence[Any]) -> dict[str, float | int]:
    """McNemar's exact test of paired predictions on the same items.

    ``b`` counts items before got right and after got wrong, ``c`` the reverse. Under the
    null hypothesis of no difference, :math:`b \\sim \\text{Binomial}(b + c, 1/2)`, and

    .. math::

        p = \\min\\left(1,\\; 2 \\sum_{k=0}^{\\min(b, c)} \\binom{b+c}{k} 2^{-(b+c)}\\right),

    computed with ``statsmodels.stats.contingency_tables.mcnemar(table, exact=True)``;
    ``p = 1`` when ``b + c = 0``.

    Parameters
    ----------
    y_true, pred_before, pred_after : sequence
        True labels and each side's predictions, one per item (1-D).

    Returns
    -------
    dict
        ``{"b": int, "c": int, "p_value": float}``.

    Examples
    --------
    >>> y = list("aaaaaaaaaa")
    >>> mcnemar_exact(y, list("abbbbbbbbb"), list("baaaaaaaaa"))
    {'b': 1, 'c': 9, 'p_value': 0.021484375}
    """
    from statsmodels.stats.contingency_tables import mcnemar

    t = _vector(y_true, "y_true")
    before = _vector(pred_before, "pred_before")
    after = _vector(pred_after, "pred_after")
    _same_length(t, before, "pred_before")
    _same_length(t, after, "pred_after")
    right_b, right_a = before == t, after == t
    b = int(np.sum(right_b & ~right_a))
    c = int(np.sum(~right_b & right_a))
    if b + c == 0:
        return {"b": 0, "c": 0, "p_value": 1.0}
    table = [[int(np.sum(right_b & right_a)), b], [c, int(np.sum(~right_b & ~right_a))]]
    p = float(mcnemar(table, exact=True).pvalue)
    return {"b": b, "c": c, "p_value": min(1.0, p)}


def ensemble_predictions(probas: Sequence[Any]) -> np.ndarray:
    """Class index of the highest mean probability over runs (seeds).

    .. math::

        \\hat y_i = \\arg\\max_k \\frac{1}{S}\\sum_s P_{sik}

    Parameters
    ----------
    probas : sequence of array-like
        One ``(n_items, n_classes)`` probability matrix per run (seed).

    Returns
    -------
    numpy.ndarray
        ``(n_items,)`` class indices; ties go to the lower index.

    Examples
    --------
    >>> ensemble_predictions([[[0.6, 0.4], [0.2, 0.8]], [[0.3, 0.7], [0.4, 0.6]]])
    array([1, 1])
    """
    if len(probas) == 0:
        raise ValueError("probas is empty: pass one probability matrix per finished run.")
    mats = [np.asarray(p, dtype=float) for p in probas]
    shapes = {m.shape for m in mats}
    if len(shapes) != 1 or mats[0].ndim != 2:
        raise ValueError(f"every probability matrix must be 2-D (n_items, n_classes) with the same "
                         f"shape; got shapes {[m.shape for m in mats]}.")
    return np.mean(mats, axis=0).argmax(axis=1)


def mean_and_spread(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample standard deviation, minimum and maximum of a few numbers (e.g. over seeds).

    .. math::

        \\bar x = \\frac{1}{n}\\sum_i x_i, \\qquad
        s = \\sqrt{\\frac{1}{n-1}\\sum_i (x_i - \\bar x)^2} \\; (s = 0 \\text{ when } n = 1)

    Parameters
    ----------
    values : sequence of float

    Returns
    -------
    dict
        ``{"mean", "std", "min", "max"}``.

    Examples
    --------
    >>> mean_and_spread([0.8, 0.9, 1.0])
    {'mean': 0.9, 'std': 0.09999999999999998, 'min': 0.8, 'max': 1.0}
    >>> mean_and_spread([0.5])
    {'mean': 0.5, 'std': 0.0, 'min': 0.5, 'max': 0.5}
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"values must be a non-empty list of numbers; got {values!r}.")
    std = float(np.std(arr, ddof=1)) if arr.size > 1 else 0.0
    return {"mean": float(arr.mean()), "std": std, "min": float(arr.min()), "max": float(arr.max())}


# --- a change judged over seeds and test items ----------------------------------------------

def _runs_matrix(y_true: np.ndarray, pred: Any, name: str) -> np.ndarray:
    arr = np.asarray(pred)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be 2-D (n_seeds x n_items), one row per training run; "
                         f"got shape {arr.shape}.")
    _same_length(y_true, arr, name)
    return arr


def _macro_f1_rows(y_true: np.ndarray, pred: np.ndarray, labels: Sequence[Any],
                   idx: np.ndarray | None = None) -> np.ndarray:
    """Macro-F1 of each run (row) of ``pred``; over the items ``idx`` (with repeats) if given."""
    t = y_true if idx is None else y_true[idx]
    p = pred if idx is None else pred[:, idx]
    f1 = np.zeros(p.shape[0])
    for label in labels:
        is_t, is_p = (t == label)[None, :], p == label
        tp = np.sum(is_t & is_p, axis=1)
        denom = np.sum(is_t) + np.sum(is_p, axis=1)
        f1 += np.divide(2.0 * tp, denom, out=np.zeros(p.shape[0]), where=denom > 0)
    return f1 / len(labels)


def _item_variance(y_true: np.ndarray, before: np.ndarray, after: np.ndarray, metric: str,
                   labels: Sequence[Any], n_boot: int, seed: int) -> float:
    """Variance of the change that comes from which test items were drawn.

    Accuracy is a mean over items, so the variance is exact: ``var(d_i) / n`` with ``d_i`` the
    change of item ``i`` (mean over the runs of each side). Macro-F1 is not a mean over items:
    its variance is the variance of the change over ``n_boot`` resamples of the items.
    """
    n = len(y_true)
    if metric == "accuracy":
        d = (after == y_true).mean(axis=0) - (before == y_true).mean(axis=0)
        return float(np.var(d, ddof=1) / n) if n > 1 else 0.0
    rng = np.random.default_rng(seed)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, size=n)
        reps[b] = (_macro_f1_rows(y_true, after, labels, idx).mean()
                   - _macro_f1_rows(y_true, before, labels, idx).mean())
    return float(np.var(reps, ddof=1))


def _welch_df(parts: Sequence[tuple[float, float]]) -> float:
    """Welch-Satterthwaite degrees of freedom of a sum of variance estimates ``(v, df)``."""
    total = sum(v for v, _ in parts)
    denom = sum(v * v / df for v, df in parts if df > 0 and v > 0)
    return float(total * total / denom) if denom > 0 else math.inf


def seed_item_change(y_true: Sequence[Any], pred_before: Any, pred_after: Any, *,
                     metric: str = "accuracy", labels: Sequence[Any] | None = None,
                     alpha: float = 0.05, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The change in a metric from ``before`` to ``after``, with an interval over seeds and items.

    A retrain-and-compare result varies for two reasons: which test items were drawn, and
    training randomness (initialisation, order, dropout), seen as the spread between seeds.
    A bootstrap or McNemar test over test items alone treats one training run as if it were
    the model; this interval adds the seed-to-seed variance of each side.

    With :math:`m^{x}_s` the metric of run (seed) :math:`s` of side :math:`x` on the test set,
    :math:`S_x` runs per side and :math:`n` test items,

    .. math::

        \\Delta = \\bar m^{after} - \\bar m^{before}, \\qquad
        \\widehat{\\operatorname{Var}}(\\Delta) = v_{items}
            + \\frac{s^2_{before}}{S_{before}} + \\frac{s^2_{after}}{S_{after}}

    where :math:`s^2_x` is the sample variance of :math:`m^x_s` over seeds and :math:`v_{items}`
    the variance from the test items (exact for accuracy, ``var(d_i) / n`` with :math:`d_i`
    the item's change averaged over runs; a bootstrap over items for macro-F1). The interval
    is :math:`\\Delta \\pm t_{1-\\alpha/2,\\,\\nu} \\sqrt{\\widehat{\\operatorname{Var}}}` with
    Welch-Satterthwaite degrees of freedom :math:`\\nu` (``n - 1`` for the items, ``S_x - 1``
    for each side's seeds): with three seeds the seed variance is known poorly, and the
    interval widens for it. The seed variances also hold some item-by-run noise that
    :math:`v_{items}` counts too, so the interval errs on the wide side.

    Parameters
    ----------
    y_true : sequence
        True labels, one per test item.
    pred_before, pred_after : array-like
        ``(n_seeds, n_items)`` predictions of each side's runs; at least two runs per side.
    metric : {"accuracy", "macro_f1"}
    labels : sequence, optional
        Labels of the macro average (default: every label seen).
    alpha : float, default 0.05
        One minus the interval's coverage (and the significance level of ``p_value``).
    n_boot, seed : int
        Bootstrap replicates and their seed (macro-F1 only).

    Returns
    -------
    dict
        ``delta``, ``ci`` (low, high), ``se``, ``df``, ``p_value`` (two-sided), and
        ``variance``: the three parts ``test_items``, ``seeds_before``, ``seeds_after``.

    Examples
    --------
    >>> y = [0] * 10
    >>> before = [[0] * 7 + [1] * 3, [0] * 6 + [1] * 4, [0] * 8 + [1] * 2]   # 0.7, 0.6, 0.8
    >>> after = [[0] * 9 + [1], [0] * 9 + [1], [0] * 10]                     # 0.9, 0.9, 1.0
    >>> r = seed_item_change(y, before, after)   # ten items are too few to call it
    >>> round(r["delta"], 3), [round(x, 3) for x in r["ci"]], round(r["df"], 1)
    (0.233, [-0.05, 0.516], 12.2)
    >>> {k: round(v, 5) for k, v in r["variance"].items()}
    {'test_items': 0.01247, 'seeds_before': 0.00333, 'seeds_after': 0.00111}
    """
    from scipy import stats as sps

    if metric not in ("accuracy", "macro_f1"):
        raise ValueError(f"metric must be 'accuracy' or 'macro_f1'; got {metric!r}.")
    _check_bootstrap_options(n_boot, alpha)
    t = _vector(y_true, "y_true")
    before = _runs_matrix(t, pred_before, "pred_before")
    after = _runs_matrix(t, pred_after, "pred_after")
    if min(len(before), len(after)) < 2:
        raise ValueError("each side needs at least two runs (seeds): one run cannot separate a "
                         "change from training noise.")
    labels = list(labels) if labels is not None else sorted(set(t.tolist()) | set(before.ravel().tolist())
                                                            | set(after.ravel().tolist()))
    if metric == "accuracy":
        m_before, m_after = (before == t).mean(axis=1), (after == t).mean(axis=1)
    else:
        m_before, m_after = _macro_f1_rows(t, before, labels), _macro_f1_rows(t, after, labels)
    parts = {"test_items": (_item_variance(t, before, after, metric, labels, n_boot, seed), len(t) - 1),
             "seeds_before": (float(np.var(m_before, ddof=1) / len(m_before)), len(m_before) - 1),
             "seeds_after": (float(np.var(m_after, ddof=1) / len(m_after)), len(m_after) - 1)}
    delta = float(m_after.mean() - m_before.mean())
    var = sum(v for v, _ in parts.values())
    df = _welch_df(list(parts.values()))
    se = math.sqrt(var)
    if se == 0:
        ci, p = (delta, delta), (1.0 if delta == 0 else 0.0)
    else:
        half = float(sps.t.ppf(1 - alpha / 2, df)) * se
        ci, p = (delta - half, delta + half), float(2 * sps.t.sf(abs(delta) / se, df))
    return {"metric": metric, "delta": delta, "ci": (float(ci[0]), float(ci[1])), "se": se,
            "df": df, "p_value": p, "alpha": alpha,
            "variance": {k: v for k, (v, _) in parts.items()},
            "n_seeds_before": int(len(m_before)), "n_seeds_after": int(len(m_after)),
            "n_items": int(len(t))}
