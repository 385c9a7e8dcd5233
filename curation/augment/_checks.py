"""Checks on every candidate: meaning, label, novelty, polarity, protected words.

:func:`check_candidates` computes every check for every candidate and keeps all
the reasons a candidate fails, so a person can see why it was rejected.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from curation.augment._base import Candidate
from curation.augment._polarity import PolarityGuard
from curation.augment._text import Protector
from curation.splits import normalise_text

__all__ = ["CANDIDATE_COLUMNS", "CheckSettings", "LabelModel", "check_candidates"]

CANDIDATE_COLUMNS = ("source_id", "source_text", "text", "label", "method", "changes",
                     "similarity", "label_prob", "source_label_prob", "predicted_label", "nearest_id",
                     "nearest_similarity", "passed", "reason")


@dataclass(frozen=True)
class CheckSettings:
    """Thresholds of the checks.

    min_similarity : cosine between the candidate's and the source's sentence
        embeddings (meaning kept).
    min_label_prob : the label model's probability for the source's label.
    label_tolerance : where the model already gives the source itself less than
        ``min_label_prob`` (a hard or mislabelled-looking source), the candidate
        passes when its probability is at most this much below the source's: the
        rewrite must not carry the label less than the original did.
    max_neighbour_similarity : a candidate at least this close (cosine) to an
        existing text other than its source is a near-duplicate of it.
    polarity : run the polarity guard.
    protect : reject candidates that lost a protected word (numbers, names,
        negations, protected terms) of their source.
    """

    min_similarity: float = 0.80
    min_label_prob: float = 0.50
    label_tolerance: float = 0.05
    max_neighbour_similarity: float = 0.97
    polarity: bool = True
    protect: bool = True

    def __post_init__(self) -> None:
        for name in ("min_similarity", "min_label_prob", "label_tolerance",
                     "max_neighbour_similarity"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 <= value <= 1:
                raise ValueError(f"{name} must be a number in [0, 1]; got {value!r}.")

    def as_dict(self) -> dict:
        return asdict(self)


class LabelModel:
    """A logistic regression over sentence embeddings of the curated data (estimator style).

    >>> x = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    >>> m = LabelModel().fit(x, ["a", "a", "b", "b"])
    >>> m.classes_.tolist(), bool(m.proba_of(np.array([[1.0, 0]]), ["a"])[0] > 0.5)
    (['a', 'b'], True)
    """

    def __init__(self, *, c: float = 1.0, seed: int = 0) -> None:
        self.c, self.seed = c, seed

    def fit(self, embeddings: np.ndarray, labels: Sequence[str]) -> LabelModel:
        labels = np.asarray(labels, dtype=object)
        self.classes_ = np.array(sorted(set(labels.tolist())), dtype=object)
        if len(self.classes_) < 2:
            raise ValueError(f"the label check needs at least two labels in the curated data; "
                             f"found only {self.classes_.tolist()}. Turn it off with "
                             "min_label_prob=0.")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=ConvergenceWarning)
            self.model_ = LogisticRegression(C=self.c, max_iter=1000, random_state=self.seed)
            self.model_.fit(embeddings, labels)
        return self

    def predict_proba(self, embeddings: np.ndarray) -> np.ndarray:
        return self.model_.predict_proba(embeddings)

    def proba_of(self, embeddings: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """Probability of each row's own label (0 for a label the model never saw)."""
        probs = self.predict_proba(embeddings)
        column = {c: k for k, c in enumerate(self.model_.classes_)}
        return np.array([probs[i, column[lab]] if lab in column else 0.0
                         for i, lab in enumerate(labels)])


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def _nearest_other(cands: np.ndarray, existing: np.ndarray, source_pos: np.ndarray,
                   chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Per candidate, the most similar existing row other than its source, and the cosine."""
    best = np.full(len(cands), -1, dtype=np.int64)
    sims = np.full(len(cands), -1.0, dtype=np.float32)
    for start in range(0, len(cands), chunk):
        block = cands[start:start + chunk] @ existing.T
        rows = np.arange(block.shape[0])
        own = source_pos[start:start + chunk]
        block[rows[own >= 0], own[own >= 0]] = -np.inf
        best[start:start + chunk] = block.argmax(axis=1)
        sims[start:start + chunk] = block[rows, best[start:start + chunk]]
    return best, sims


def _novelty_reasons(cands: Sequence[Candidate], existing_ids: Sequence[str],
                     existing_keys: Sequence[str], candidate_keys: Sequence[str],
                     nearest: np.ndarray, nearest_sim: np.ndarray,
                     limit: float) -> list[list[str]]:
    known = {}
    for item, key in zip(existing_ids, existing_keys):
        known.setdefault(key, item)
    seen: set[str] = set()
    out = []
    for k, cand in enumerate(cands):
        key, reasons = candidate_keys[k], []
        if normalise_text(cand.text) == normalise_text(cand.source_text):
            reasons.append("not new: the same as its source once case and punctuation are ignored")
        elif key in known:
            reasons.append(f"not new: the same text as item {known[key]}")
        elif key in seen:
            reasons.append("not new: the same text as another candidate")
        elif nearest_sim[k] >= limit:
            reasons.append(f"not new: near-duplicate of item {existing_ids[nearest[k]]} "
                           f"(cosine {nearest_sim[k]:.2f} >= {limit:.2f})")
        seen.add(key)
        out.append(reasons)
    return out


def _guard_reasons(cand: Candidate, guard: PolarityGuard | None,
                   protector: Protector | None) -> list[str]:
    reasons = []
    if guard is not None:
        opposed = [f"'{a}' -> '{b}'" for a, b in cand.changes if guard.opposed(a, b)]
        if opposed:
            reasons.append(f"polarity: {', '.join(opposed)} points the other way")
        else:
            flipped = guard.flipped(cand.source_text, cand.text)
            if flipped:
                reasons.append(f"polarity: {flipped}")
    if protector is not None:
        # a term the augmenter swapped on purpose ("Net sales" opening a sentence) is not a loss
        swapped = {w.lower() for old, _ in cand.changes for w in old.split()}
        lost = [w for w in protector.lost(cand.source_text, cand.text) if w not in swapped]
        if lost:
            reasons.append("changed protected words: " + ", ".join(f"'{w}'" for w in lost))
        gained = protector.gained(cand.source_text, cand.text)
        if gained:
            reasons.append("adds negations or numbers: " + ", ".join(f"'{w}'" for w in gained))
    return reasons


def _label_reason(prob: float, source: float, label: str, predicted: str,
                  settings: CheckSettings) -> list[str]:
    if prob >= settings.min_label_prob:
        return []
    if source < settings.min_label_prob and prob >= source - settings.label_tolerance:
        return []  # the source itself is as doubtful: the rewrite carries its label as well
    floor = (f"(< {settings.min_label_prob:.2f})" if source >= settings.min_label_prob else
             f"(< {settings.min_label_prob:.2f}, and below its source's {source:.2f})")
    return [f"label not kept: the model gives '{label}' {prob:.2f} {floor} and predicts "
            f"'{predicted}'"]


def check_candidates(candidates: Sequence[Candidate], *, labels: Mapping[str, str],
                     candidate_embeddings: np.ndarray, existing_ids: Sequence[str],
                     existing_texts: Sequence[str], existing_embeddings: np.ndarray,
                     label_model: LabelModel | None, settings: CheckSettings = CheckSettings(),
                     protector: Protector | None = None,
                     guard: PolarityGuard | None = None,
                     similarity: np.ndarray | None = None,
                     existing_keys: Sequence[str] | None = None,
                     candidate_keys: Sequence[str] | None = None) -> pd.DataFrame:
    """Run every check on every candidate; one row per candidate (:data:`CANDIDATE_COLUMNS`).

    ``labels`` maps a source id to its curated label; ``existing_*`` describe every
    curated text (sources included), in one order. ``passed`` is True when no
    check failed; ``reason`` joins the failures with "; " (or says it passed).

    For sentence pairs, where a candidate changes one side of its source: ``similarity`` is
    each candidate's cosine to the side it rewrites (else the embeddings' cosine to the
    source), and ``existing_keys`` / ``candidate_keys`` the whole items as compared for
    "not new" (:func:`curation.splits.text_keys`; else the normalised texts); the embeddings
    are then the pairs' (:func:`curation.embeddings.embed_items`).
    """
    if len(candidates) == 0:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in CANDIDATE_COLUMNS})
    position = {item: k for k, item in enumerate(existing_ids)}
    source_pos = np.array([position.get(c.source_id, -1) for c in candidates])
    cand_unit, existing_unit = _unit(candidate_embeddings), _unit(existing_embeddings)
    if similarity is None:
        similarity = np.array([float(cand_unit[k] @ existing_unit[p]) if p >= 0 else np.nan
                               for k, p in enumerate(source_pos)])
    similarity = np.asarray(similarity, dtype=float)
    nearest, nearest_sim = _nearest_other(cand_unit, existing_unit, source_pos)
    wanted = [labels[c.source_id] for c in candidates]
    if label_model is not None and settings.min_label_prob > 0:
        label_prob = label_model.proba_of(candidate_embeddings, wanted)
        known = source_pos >= 0
        source_prob = np.full(len(candidates), np.nan)
        source_prob[known] = label_model.proba_of(existing_embeddings[source_pos[known]],
                                                  np.asarray(wanted, dtype=object)[known])
        predicted = label_model.model_.classes_[label_model.predict_proba(candidate_embeddings)
                                                .argmax(axis=1)]
    else:
        label_prob, predicted = np.full(len(candidates), np.nan), np.full(len(candidates), None)
        source_prob = label_prob
    if existing_keys is None:
        existing_keys = [normalise_text(t) for t in existing_texts]
    if candidate_keys is None:
        candidate_keys = [normalise_text(c.text) for c in candidates]
    novelty = _novelty_reasons(candidates, existing_ids, existing_keys, candidate_keys, nearest,
                               nearest_sim, settings.max_neighbour_similarity)
    guard = guard if guard is not None or not settings.polarity else PolarityGuard()
    protector = (protector or Protector()) if settings.protect else None
    reasons = []
    for k, cand in enumerate(candidates):
        why = []
        if not similarity[k] >= settings.min_similarity:
            why.append(f"meaning drifts: similarity {similarity[k]:.2f} < {settings.min_similarity:.2f}")
        if label_model is not None and settings.min_label_prob > 0:
            why += _label_reason(label_prob[k], source_prob[k], wanted[k], predicted[k], settings)
        why += novelty[k] + _guard_reasons(cand, guard if settings.polarity else None, protector)
        reasons.append(why)
    return pd.DataFrame({
        "source_id": [c.source_id for c in candidates],
        "source_text": [c.source_text for c in candidates],
        "text": [c.text for c in candidates], "label": wanted,
        "method": [c.method for c in candidates],
        "changes": ["; ".join(f"{a} -> {b}" for a, b in c.changes) for c in candidates],
        "similarity": similarity.round(4), "label_prob": np.round(label_prob.astype(float), 4),
        "source_label_prob": np.round(np.asarray(source_prob, dtype=float), 4),
        "predicted_label": predicted,
        "nearest_id": [existing_ids[j] for j in nearest],
        "nearest_similarity": nearest_sim.astype(float).round(4),
        "passed": [not why for why in reasons],
        "reason": ["; ".join(why) if why else "passes every check" for why in reasons],
    })
