"""Out-of-fold class probabilities of a classifier over sentence embeddings."""

from __future__ import annotations

import logging
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

__all__ = ["out_of_fold_probabilities"]

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
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)  # a class rarer than the folds
        warnings.filterwarnings("ignore", category=ConvergenceWarning)
        for train, test in splitter.split(embeddings, labels):
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
