"""Flag items that need a person's look: disagreement, unsure consensus, label issues,
near-duplicates with conflicting labels and boundary cases, in one review order.

>>> sorted(FLAGGERS)
['boundary', 'crowdlab', 'disagreement', 'label_issue', 'low_confidence', 'near_duplicate']
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curation.flags._base import (
    FLAG_COLUMNS,
    FLAGGERS,
    FlagContext,
    Flagger,
    empty_flags,
    register_flagger,
)
from curation.flags._evaluate import (
    FlagEvaluation,
    evaluate_flags,
    read_truth,
    truth_from_frame,
)
from curation.flags._flaggers import (
    BoundaryFlagger,
    CrowdlabFlagger,
    DisagreementFlagger,
    LabelIssueFlagger,
    LowConfidenceFlagger,
    NearDuplicateFlagger,
)
from curation.flags._learn import REFIT_EVERY, LearnedOrder, learn_order, order_features
from curation.flags._model import MODEL_SIGNALS, read_model_probs
from curation.flags._queue import (
    DOUBT_KINDS,
    KIND_WEIGHTS,
    REST_REASON,
    by_priority,
    review_queue,
    unflagged_order,
)
from curation.guidelines import Guideline

__all__ = [
    "FLAG_COLUMNS", "FLAGGERS", "KIND_WEIGHTS", "MODEL_SIGNALS", "REFIT_EVERY", "REST_REASON",
    "BoundaryFlagger", "CrowdlabFlagger", "DisagreementFlagger", "FlagContext", "FlagEvaluation",
    "FlagReport", "Flagger", "LabelIssueFlagger", "LearnedOrder", "LowConfidenceFlagger",
    "NearDuplicateFlagger", "by_priority", "evaluate_flags", "flag_items", "learn_order",
    "order_features", "read_model_probs", "read_truth", "register_flagger", "review_queue", "truth_from_frame",
    "unflagged_order",
]

logger = logging.getLogger(__name__)


@dataclass
class FlagReport:
    """Every flag (``flags``), the combined review order (``queue``), the items no flagger
    raised ranked by their doubt (``rest``: ``item_id, priority``) and what was skipped."""

    flags: pd.DataFrame
    queue: pd.DataFrame
    rest: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["item_id", "priority"]))
    skipped: dict[str, str] = field(default_factory=dict)
    context: FlagContext | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {k: int(v) for k, v in self.flags["kind"].value_counts().items()}


def flag_items(
    frame: pd.DataFrame,
    *,
    labels: Sequence[str] | None = None,
    embeddings: np.ndarray | None = None,
    guideline: Guideline | None = None,
    flaggers: Sequence[Flagger | str] | None = None,
    seed: int = 0,
    n_folds: int = 5,
    model_probs: pd.DataFrame | None = None,
    model_signal: str = "embedding",
    progress: Callable[[float, str], None] | None = None,
) -> FlagReport:
    """Run flaggers (default: every registered one) and order the flagged items for review.

    Parameters
    ----------
    frame : DataFrame
        The long annotation frame.
    labels : sequence of str, optional
        The label set, in order (a project's ``Project.label_set()``, a file's
        :func:`curation.io.declared_labels`). The guideline's labels come first when they cover
        the frame's; without either, the labels seen, sorted.
    embeddings : ndarray, optional
        One L2-normalised row per item (first-appearance order); enables the model-based
        flaggers and embedding near-duplicates.
    guideline : Guideline, optional
        Links each flag to the rule that settles its confused label pair.
    flaggers : sequence of Flagger or kind names, optional
        Which flaggers to run, with their settings.
    model_probs, model_signal :
        Out-of-fold probabilities of a fine-tuned classifier (``python -m fine_tune
        out-of-fold``) and whether the model-based flaggers read them alone (``"fine-tuned"``)
        or averaged with the embedding model's (``"ensemble"``); see :class:`FlagContext`.
    progress : callable(fraction, message), optional
        Called before each flagger runs.
    """
    context = FlagContext(frame, labels=labels, embeddings=embeddings, guideline=guideline,
                          seed=seed, n_folds=n_folds, model_probs=model_probs,
                          model_signal=model_signal)
    chosen = [_instantiate(f) for f in (flaggers if flaggers is not None else list(FLAGGERS))]
    frames, skipped, timings = [], {}, {}
    for step, flagger in enumerate(chosen):
        if progress:
            progress(step / len(chosen), f"{flagger.kind}...")
        missing = flagger.missing(context)
        if missing:
            skipped[flagger.kind] = f"needs {', '.join(missing)}"
            logger.info("skipping %s: needs %s", flagger.kind, ", ".join(missing))
            continue
        start = time.perf_counter()
        frames.append(flagger.flag(context))
        timings[flagger.kind] = time.perf_counter() - start
    if progress:
        progress(1.0, "done")
    flags = pd.concat([f for f in frames if not f.empty] or [empty_flags()], ignore_index=True)
    start = time.perf_counter()
    doubt = context.doubt() if any(f.kind in DOUBT_KINDS for f in chosen) else None
    queue = review_queue(flags, doubt=doubt)
    rest = (unflagged_order(doubt, queue["item_id"]) if doubt is not None
            else pd.DataFrame(columns=["item_id", "priority"]))
    timings["queue"] = time.perf_counter() - start
    return FlagReport(flags=flags, queue=queue, rest=rest, skipped=skipped, context=context,
                      timings=timings)


def _instantiate(flagger: Flagger | str) -> Flagger:
    if isinstance(flagger, Flagger):
        return flagger
    if flagger not in FLAGGERS:
        raise ValueError(f"unknown flagger {flagger!r}; choose from {', '.join(sorted(FLAGGERS))}.")
    return FLAGGERS[flagger]()
