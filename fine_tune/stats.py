"""Statistics of retrain-and-compare: accuracy, F1, a paired bootstrap, McNemar, ensembles.

Every function is pure: arrays in, numbers out. Predictions and true labels may be any
hashable values (label strings or class indices), compared with ``==``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "accuracy_and_macro_f1",
    "ensemble_predictions",
    "mcnemar_exact",
    "mean_and_spread",
    "paired_bootstrap_delta",
    "per_class_f1",
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
