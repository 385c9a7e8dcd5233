"""Out-of-fold class probabilities of a classifier over sentence embeddings."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from curation.messages import format_list
from curation.schema import ITEM
from curation.splits import stratified_folds

__all__ = ["MODEL_SIGNALS", "check_model_probs", "mixed_probabilities", "out_of_fold_probabilities",
           "read_model_probs"]

logger = logging.getLogger(__name__)


def out_of_fold_probabilities(
    embeddings: np.ndarray, labels: np.ndarray, *, n_classes: int, n_folds: int = 5, seed: int = 0,
    c: float = 1.0,
) -> np.ndarray | None:
    """Class probabilities for every item from a model that never saw its label.

    A multinomial logistic regression on the embeddings, cross-validated over
    ``n_folds`` stratified, seeded folds: each item's probabilities come from the
    model trained on the other folds (what cleanlab's confident learning needs).
    Returns ``None`` when there are too few items for two folds.
    """
    counts = np.bincount(labels, minlength=n_classes)
    present = counts[counts > 0]
    folds = int(min(n_folds, present.max(initial=0)))
    if len(present) < 2 or folds < 2 or len(labels) < 2 * folds:
        logger.warning("too few labelled items (%s per class) for out-of-fold probabilities", counts)
        return None
    probs = np.zeros((len(labels), n_classes))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        for train, test in stratified_folds(labels, n_folds=folds, seed=seed):
            probs[test] = _fit_predict(embeddings[train], labels[train], embeddings[test], n_classes, c)
    return probs


def _fit_predict(x_train, y_train, x_test, n_classes: int, c: float) -> np.ndarray:
    out = np.zeros((len(x_test), n_classes))
    classes = np.unique(y_train)
    if len(classes) == 1:
        out[:, classes[0]] = 1.0
        return out
    model = LogisticRegression(C=c, max_iter=1000).fit(x_train, y_train)
    out[:, model.classes_] = model.predict_proba(x_test)
    return out


#: Where the flaggers' class probabilities come from: a logistic regression on the sentence
#: embeddings (seconds), out-of-fold probabilities of a fine-tuned classifier computed elsewhere
#: (``python -m fine_tune out-of-fold``; minutes on a CPU), or the mean of the two.
MODEL_SIGNALS = ("embedding", "fine-tuned", "ensemble")


def check_model_probs(probs: pd.DataFrame, items: Sequence[str], labels: Sequence[str], *,
                      source: str = "the model probabilities") -> np.ndarray:
    """Given class probabilities as an ``(items, labels)`` array, after checking every cell.

    ``probs`` is indexed by item id, one column per label (other columns are refused, so a
    label spelled differently is caught). Every item needs a row; each row must be finite,
    within [0, 1] and sum to 1 (within 0.01, then renormalised: CSV rounding).
    """
    if not isinstance(probs, pd.DataFrame):
        raise ValueError(f"{source} must be a table indexed by item_id with one column per label.")
    probs = probs.copy()
    probs.index = probs.index.astype(str)
    probs.columns = probs.columns.astype(str)
    extra = [c for c in probs.columns if c not in labels]
    absent = [label for label in labels if label not in probs.columns]
    if extra or absent:
        raise ValueError(f"{source} have the label columns {format_list(list(probs.columns))}; the "
                         f"annotations' labels are {format_list(list(labels))}"
                         + (f" ({format_list(absent)} missing)" if absent else "")
                         + ". Compute them again on these annotations.")
    doubled = probs.index[probs.index.duplicated()]
    if len(doubled):
        raise ValueError(f"{source} have more than one row for item {doubled[0]!r}.")
    missing = [i for i in items if i not in probs.index]
    if missing:
        raise ValueError(f"{source} have no row for {len(missing)} of the {len(items)} items "
                         f"(first: {missing[0]!r}); compute them again after adding items.")
    table = probs.reindex(list(items))[list(labels)]
    values = table.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values).all(axis=1) | (values < 0).any(axis=1) | (values > 1).any(axis=1)
    sums = values.sum(axis=1)
    bad |= np.abs(sums - 1) > 0.01
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{source}: item {table.index[row]!r} has the probabilities "
                         f"{table.iloc[row].tolist()}; each must be a number in [0, 1] and a row "
                         "must sum to 1.")
    return values / sums[:, None]


def read_model_probs(path: str | Path, *, max_bytes: int | None = None,
                     encoding: str | None = None) -> pd.DataFrame:
    """A probabilities file (``item_id`` and one column per label), indexed by item id."""
    from curation.io import DEFAULT_MAX_BYTES, read_table

    path = Path(path)
    frame = read_table(path, max_bytes=max_bytes or DEFAULT_MAX_BYTES, encoding=encoding)
    if ITEM not in frame.columns:
        raise ValueError(f"{path.name} needs an item_id column and one column of probabilities per "
                         f"label (python -m fine_tune out-of-fold writes one); it has "
                         f"{format_list(list(frame.columns))}.")
    frame[ITEM] = frame[ITEM].astype(str).str.strip()
    return frame.set_index(ITEM)


def mixed_probabilities(signal: str, *, embedding: np.ndarray | None,
                        given: np.ndarray | None) -> np.ndarray | None:
    """The probabilities a signal stands for: the embedding model's, the given ones, or their mean."""
    if signal == "embedding":
        return embedding
    if signal == "fine-tuned":
        return given
    if embedding is None:  # ensemble, with too few items for the embedding model's folds
        return given
    return (embedding + given) / 2
