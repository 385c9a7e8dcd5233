"""Out-of-fold class probabilities from a fine-tuned classifier: a stronger model signal for flagging.

The review queue's model-based flaggers (cleanlab's ``find_label_issues``, CROWDLAB, the
boundary flagger) need, for every item, class probabilities from a model that never saw its
label. The default is a logistic regression on sentence embeddings (seconds). This module
fine-tunes the classifier itself, ``k`` times: the items are split into ``k`` stratified,
seeded folds; each fold's probabilities come from a model trained on the other folds (minus a
stratified 10% validation share that drives early stopping), with the settings the
retrain-and-compare would use on these data (:func:`fine_tune.settings.resolve_settings`,
unless given). The labels trained on are the ones the flaggers judge: the majority vote, with
Dawid-Skene breaking ties (:attr:`curation.flags.FlagContext.given_labels`).

The result goes to ``curation flag --model-probs FILE --model-signal fine-tuned|ensemble``
(or the Review page), which keeps the import direction: ``curation`` never imports
``fine_tune``.

k trainings cost minutes on a CPU for a few hundred short texts (a GPU when there is one);
``benchmarks/flags_quality.py --model-signal`` measures what the signal adds.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from curation.schema import ITEM, text_columns

__all__ = ["OutOfFold", "current_labels", "fine_tuned_probabilities", "held_out_folds"]

logger = logging.getLogger(__name__)

#: Folds unless told: each model trains on 80% of the items.
DEFAULT_FOLDS = 5
#: Share of each fold's training items held out for early stopping.
VALIDATION_SHARE = 0.1

Progress = Callable[[float, str], None]


@dataclass
class OutOfFold:
    """Each item's class probabilities from the fold model that did not train on it.

    Attributes
    ----------
    probs : DataFrame
        Indexed by ``item_id``, one column per label, rows summing to 1 (empty when cancelled).
    folds : int
        How many models were trained.
    fold_agreement : list of float
        Per fold, the share of its held-out items whose predicted label is the label they
        carry (a noisy label set caps it: it is not an accuracy).
    settings : dict
        The resolved training settings (:meth:`fine_tune.settings.ResolvedSettings.to_dict`).
    seconds : float
        Wall time of the k trainings.
    device : str
        Where they trained.
    cancelled : bool
        ``should_stop`` ended it before every fold was done.
    """

    probs: pd.DataFrame
    folds: int
    fold_agreement: list[float] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    device: str = "cpu"
    cancelled: bool = False

    def summary(self) -> str:
        if self.cancelled:
            return f"cancelled after {len(self.fold_agreement)} of {self.folds} folds; nothing kept"
        agree = np.mean(self.fold_agreement) if self.fold_agreement else float("nan")
        return (f"{len(self.probs)} items, {self.folds} fine-tuned folds on {self.device} in "
                f"{self.seconds / 60:.1f} min; the held-out predictions match the current labels "
                f"for {agree:.1%} of the items")

    def to_csv(self, path) -> None:
        """``item_id`` and one column per label: what ``curation flag --model-probs`` reads."""
        self.probs.round(6).rename_axis(ITEM).reset_index().to_csv(path, index=False)


def current_labels(frame: pd.DataFrame, *, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """``item_id, text[, text_pair], label``: one row per item, with the label the flaggers judge.

    The majority vote, Dawid-Skene breaking ties, from the long annotation frame ``frame``
    (:attr:`curation.flags.FlagContext.given_labels`); a sentence pair keeps both texts.
    """
    from curation.flags import FlagContext

    context = FlagContext(frame, labels=labels)
    out = pd.DataFrame({ITEM: context.items.astype(str), "text": context.texts.to_numpy()})
    if "text_pair" in frame.columns:
        first = frame.drop_duplicates(ITEM).set_index(ITEM)["text_pair"]
        out["text_pair"] = first.reindex(context.items).to_numpy()
    out["label"] = context.given_labels.to_numpy()
    return out


def held_out_folds(labels: pd.Series, folds: int, seed: int) -> list[np.ndarray]:
    """The positions each of ``folds`` seeded stratified fold models holds out.

    Refuses (``ValueError``, with the fix) a single label, fewer than 2 folds, or fewer than
    4 items per fold: what :func:`fine_tuned_probabilities` and the background job check
    before any training starts.
    """
    from curation.splits import stratified_folds

    counts = labels.value_counts()
    if len(counts) < 2:
        raise ValueError(f"every item carries the label {counts.index[0]!r}: a classifier has "
                         "nothing to tell apart.")
    if folds < 2:
        raise ValueError(f"folds must be 2 or more (each model trains on the others); got {folds}.")
    if len(labels) < 4 * folds:
        raise ValueError(f"{len(labels)} items are too few for {folds} folds of training and "
                         f"validation: use at least {4 * folds} items, or fewer folds.")
    return [held for _, held in stratified_folds(labels.to_numpy(), n_folds=folds, seed=seed)]


def fine_tuned_probabilities(
    frame: pd.DataFrame,
    *,
    labels: Sequence[str] | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    config: Mapping[str, Any] | Any = None,
    progress: Progress | None = None,
    should_stop: Callable[[], bool] | None = None,
    trainer: Callable[..., Any] | None = None,
) -> OutOfFold:
    """Fine-tune ``folds`` classifiers and give every item the probabilities of the one that held it out.

    Parameters
    ----------
    frame : DataFrame
        ``item_id, text, label``, one row per item (:func:`current_labels` makes it from
        annotations).
    labels : sequence of str, optional
        The label set (column order of the result); default: the sorted labels of ``frame``.
        Every fold model has one output per label, so a label rare in a fold still gets a
        probability.
    folds, seed :
        Stratified folds, seeded (the seed also seeds every training).
    config : mapping or TrainConfig, optional
        Settings as in :func:`fine_tune.settings.resolve_settings`: the user's choices, the
        rest advised from the data (the retrain-and-compare's defaults).
    progress, should_stop :
        As in :func:`fine_tune.train.train_classifier`, over the whole run.
    trainer : callable, optional
        ``train_classifier`` (default) or one with its signature.
    """
    from fine_tune.compare import split_validation
    from fine_tune.settings import resolve_settings

    missing = [c for c in (ITEM, "text", "label") if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame needs the columns item_id, text and label; {', '.join(missing)} "
                         "missing.")
    frame = frame[[ITEM, *text_columns(frame), "label"]].astype(str).reset_index(drop=True)
    doubled = frame[ITEM][frame[ITEM].duplicated()]
    if len(doubled):
        raise ValueError(f"item {doubled.iloc[0]!r} has more than one row; give one row per item "
                         "(current_labels makes one from annotations).")
    order = list(labels) if labels is not None else sorted(frame["label"].unique())
    unknown = sorted(set(frame["label"]) - set(order))
    if unknown:
        raise ValueError(f"labels {unknown} are not in the label set {order}.")
    if trainer is None:
        from fine_tune.train import train_classifier as trainer
    held_out = held_out_folds(frame["label"], folds, seed)
    resolved = resolve_settings(frame[[*text_columns(frame), "label"]], config)
    train_config = dataclasses.replace(resolved.config, seed=seed, output_dir=None,
                                       resume_from_checkpoint=False, save_checkpoints=False)
    probs = np.full((len(frame), len(order)), np.nan)
    agreement, device, start = [], "cpu", time.perf_counter()
    for k, held in enumerate(held_out):
        if should_stop is not None and should_stop():
            break
        rest = frame.drop(index=held)
        train, validation = split_validation(rest, validation_size=VALIDATION_SHARE, seed=seed + k)
        step = None if progress is None else (
            lambda f, msg, k=k: progress((k + f) / len(held_out), f"fold {k + 1} of {len(held_out)}: {msg}"))
        result = trainer(train, validation, frame.loc[held], config=train_config, labels=order,
                         progress=step, should_stop=should_stop)
        if result.cancelled or result.test_proba is None:
            break
        columns = [order.index(label) for label in result.labels]
        probs[np.ix_(held, columns)] = result.test_proba
        agreement.append(float(np.mean(np.asarray(result.labels)[result.test_pred]
                                       == frame.loc[held, "label"].to_numpy())))
        device = result.device
    seconds = time.perf_counter() - start
    done = len(agreement) == len(held_out)
    table = (pd.DataFrame(probs, index=pd.Index(frame[ITEM], name=ITEM), columns=order) if done
             else pd.DataFrame(columns=order, index=pd.Index([], name=ITEM)))
    out = OutOfFold(probs=table, folds=len(held_out), fold_agreement=agreement,
                    settings=resolved.to_dict(), seconds=seconds, device=device, cancelled=not done)
    logger.info("out-of-fold probabilities: %s", out.summary())
    return out
