"""The built-in flaggers. Each is one class, registered by kind.

Scores are "how likely is this item's current label wrong or unclear", in
[0, 1], so that the review queue can combine them (see ``_queue.py``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from curation.flags._base import (
    FLAG_COLUMNS,
    FlagContext,
    Flagger,
    empty_flags,
    label_issue_positions,
    register_flagger,
)

__all__ = [
    "BoundaryFlagger",
    "CrowdlabFlagger",
    "DisagreementFlagger",
    "LabelIssueFlagger",
    "LowConfidenceFlagger",
    "NearDuplicateFlagger",
]

logger = logging.getLogger(__name__)


def _rows(context: FlagContext, kind: str, positions: np.ndarray, scores: np.ndarray,
          reasons: list[str], suggested: list[str | None], pairs: list[tuple]) -> pd.DataFrame:
    if len(positions) == 0:
        return empty_flags()
    return pd.DataFrame({
        "item_id": context.items[positions], "kind": kind, "score": np.round(scores, 6),
        "reason": reasons, "suggested_label": suggested,
        "rule_id": [context.rule_id(a, b) for a, b in pairs]}, columns=list(FLAG_COLUMNS))


def _top_two(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-probs, axis=1, kind="stable")
    return order[:, 0], order[:, 1]


@register_flagger
class DisagreementFlagger(Flagger):
    """Items whose annotators did not all agree; score = minority share of the votes."""

    kind = "disagreement"
    needs = ("annotators",)
    description = "annotators disagree (minority share of votes, vote entropy)"

    def __init__(self, *, min_minority_share: float = 0.01) -> None:
        self.min_minority_share = min_minority_share

    def flag(self, context: FlagContext) -> pd.DataFrame:
        counts = context.table.counts
        r = counts.sum(axis=1)
        minority = 1 - counts.max(axis=1) / np.maximum(r, 1)
        pos = np.flatnonzero((r >= 2) & (minority >= self.min_minority_share))
        first, second = _top_two(counts[pos].astype(float))
        labels = np.asarray(context.labels, dtype=object)
        majority = context.majority.labels_.to_numpy()[pos]
        reasons = [self._reason(context.votes_by_item.iloc[p]) for p in pos]
        return _rows(context, self.kind, pos, minority[pos], reasons, list(majority),
                     list(zip(labels[first], labels[second])))

    @staticmethod
    def _reason(votes: list[tuple[str, str]]) -> str:
        by_label: dict[str, list[str]] = {}
        for who, label in votes:
            by_label.setdefault(label, []).append(who)
        parts = sorted(by_label.items(), key=lambda kv: -len(kv[1]))
        said = "; ".join(f"{len(w)} of {len(votes)} said {lab} ({', '.join(w)})" for lab, w in parts)
        return f"Annotators disagree: {said}."


@register_flagger
class LowConfidenceFlagger(Flagger):
    """Items whose Dawid-Skene consensus posterior is below a threshold."""

    kind = "low_confidence"
    needs = ("annotators",)
    description = "Dawid-Skene consensus is unsure"

    def __init__(self, *, threshold: float = 0.9) -> None:
        self.threshold = threshold

    def flag(self, context: FlagContext) -> pd.DataFrame:
        probas = context.dawid_skene.probas_.reindex(context.items)[context.labels].to_numpy()
        top = probas.max(axis=1)
        pos = np.flatnonzero(top < self.threshold)
        first, second = _top_two(probas[pos])
        labels = np.asarray(context.labels, dtype=object)
        reasons = [f"Dawid-Skene (annotators weighted by estimated accuracy) is only "
                   f"{probas[p, a]:.0%} sure of {labels[a]} ({labels[b]} {probas[p, b]:.0%})."
                   for p, a, b in zip(pos, first, second)]
        return _rows(context, self.kind, pos, 1 - top[pos], reasons, list(labels[first]),
                     list(zip(labels[first], labels[second])))


@register_flagger
class LabelIssueFlagger(Flagger):
    """Confident learning (cleanlab ``find_label_issues``) on out-of-fold model probabilities."""

    kind = "label_issue"
    needs = ("model",)
    description = "a model trained on the other items disagrees with the label (cleanlab)"

    def __init__(self, *, filter_by: str = "prune_by_noise_rate") -> None:
        self.filter_by = filter_by

    def flag(self, context: FlagContext) -> pd.DataFrame:
        given, probs = context.given_codes, context.pred_probs
        pos = label_issue_positions(given, probs, filter_by=self.filter_by,
                                    return_indices_ranked_by="self_confidence").astype(int)
        labels = np.asarray(context.labels, dtype=object)
        best = probs[pos].argmax(axis=1)
        self_conf = probs[pos, given[pos]]
        reasons = [f"Labelled {labels[g]}, but a model trained on the other items' labels gives "
                   f"{labels[b]} {probs[p, b]:.2f} and {labels[g]} only {probs[p, g]:.2f}."
                   for p, g, b in zip(pos, given[pos], best)]
        return _rows(context, self.kind, pos, 1 - self_conf, reasons, list(labels[best]),
                     list(zip(labels[given[pos]], labels[best])))


@register_flagger
class CrowdlabFlagger(Flagger):
    """cleanlab's CROWDLAB consensus quality: annotators weighted by quality, plus the model."""

    kind = "crowdlab"
    needs = ("model", "annotators")
    description = "low consensus quality from annotators and model together (CROWDLAB)"

    def __init__(self, *, threshold: float = 0.5) -> None:
        self.threshold = threshold

    def flag(self, context: FlagContext) -> pd.DataFrame:
        quality = context.crowdlab
        score = 1 - quality["consensus_quality_score"].to_numpy()
        consensus = quality["consensus_label"].to_numpy()
        given = context.given_codes
        pos = np.flatnonzero((score > 1 - self.threshold) | (consensus != given))
        labels = np.asarray(context.labels, dtype=object)
        reasons = [f"CROWDLAB rates the consensus {labels[given[p]]} at "
                   f"{1 - score[p]:.2f}" + (f"; its best guess is {labels[consensus[p]]}."
                                            if consensus[p] != given[p] else ".") for p in pos]
        return _rows(context, self.kind, pos, score[pos], reasons, list(labels[consensus[pos]]),
                     list(zip(labels[given[pos]], labels[consensus[pos]])))


@register_flagger
class NearDuplicateFlagger(Flagger):
    """Near-duplicate texts (same normalised text, or embedding cosine >= threshold) labelled differently."""

    kind = "near_duplicate"
    needs = ()
    description = "near-duplicate texts with conflicting labels"

    def __init__(self, *, threshold: float = 0.95) -> None:
        self.threshold = threshold

    def flag(self, context: FlagContext) -> pd.DataFrame:
        first, second, similarity = context.duplicate_pairs(self.threshold)
        given = context.given_codes
        conflict = given[first] != given[second]
        first, second, similarity = first[conflict], second[conflict], similarity[conflict]
        if len(first) == 0:
            return empty_flags()
        labels = np.asarray(context.labels, dtype=object)
        frame = pd.DataFrame({"pos": np.r_[first, second], "other": np.r_[second, first],
                              "sim": np.r_[similarity, similarity]})
        frame = frame.sort_values(["sim", "other"], ascending=[False, True], kind="stable")
        frame = frame.drop_duplicates("pos")
        pos, other, sim = frame["pos"].to_numpy(), frame["other"].to_numpy(), frame["sim"].to_numpy()
        reasons = [f"Near-duplicate of item {context.items[o]} ({_similar(s)}), which is labelled "
                   f"{labels[given[o]]}, not {labels[given[p]]}." for p, o, s in zip(pos, other, sim)]
        return _rows(context, self.kind, pos, sim / 2, reasons, [None] * len(pos),
                     list(zip(labels[given[pos]], labels[given[other]])))


def _similar(cosine: float) -> str:
    return "same text once normalised" if cosine >= 1.0 else f"cosine {cosine:.2f}"


@register_flagger
class BoundaryFlagger(Flagger):
    """Items the model finds hard to place: small margin between its two most probable labels."""

    kind = "boundary"
    needs = ("model",)
    description = "the model is torn between two labels (small margin)"

    def __init__(self, *, margin: float = 0.15) -> None:
        self.margin = margin

    def flag(self, context: FlagContext) -> pd.DataFrame:
        probs = context.pred_probs
        first, second = _top_two(probs)
        rows = np.arange(len(probs))
        gap = probs[rows, first] - probs[rows, second]
        pos = np.flatnonzero(gap < self.margin)
        labels = np.asarray(context.labels, dtype=object)
        a, b = first[pos], second[pos]
        reasons = [f"The model is torn between {labels[x]} {probs[p, x]:.2f} and {labels[y]} "
                   f"{probs[p, y]:.2f}." for p, x, y in zip(pos, a, b)]
        return _rows(context, self.kind, pos, 1 - gap[pos], reasons, [None] * len(pos),
                     list(zip(labels[a], labels[b])))
