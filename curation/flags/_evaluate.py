"""How well does the review order find wrong labels, next to the tools people already use?

Given the true label of some items (gold, or adjudicated), every ordering is scored on the
same items, from the same flagging pass (the same embeddings and out-of-fold probabilities):

- the project's review queue (its priority; the items it did not flag come after, by their
  pooled doubt, as the Review page's "go on past the flagged items" shows them),
- random order (the expectation, not one shuffle),
- minority-vote share (1 - the majority's vote share),
- Dawid-Skene (1 - its posterior of the current label),
- cleanlab ``find_label_issues`` (the items it flags first, each set ranked by self-confidence),
- cleanlab CROWDLAB (1 - its consensus quality score).

An item is *wrong* when its current label (the majority vote) differs from the truth. Items
whose vote ties have no majority to be wrong: they are reported on their own, and left out of
the ranking figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from curation.flags._base import label_issue_positions
from curation.io import DEFAULT_MAX_BYTES, read_table
from curation.messages import format_list
from curation.schema import GOLD, ITEM, LABEL

__all__ = ["FlagEvaluation", "TRUTH_COLUMNS", "baseline_scores", "calibration_figures",
           "consensus_posteriors", "evaluate_flags", "ranking_figures", "read_truth", "truth_from_frame"]

#: Names a truth file's label column may have (the first present is used).
TRUTH_COLUMNS = ("label", "gold", "truth", "true_label")
#: The precision a reviewer's queue should hold: recall is read where it is still reached.
TARGET_PRECISION = 0.7
#: Shuffles averaged for the random order's recall at the target precision.
RANDOM_SHUFFLES = 200


# --------------------------------------------------------------------------- truth
def read_truth(path: str | Path, *, labels: Sequence[str] | None = None,
               encoding: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES) -> pd.Series:
    """``item_id -> true label`` from a CSV/TSV/JSONL/Parquet file with ``item_id`` and a label
    column (one of :data:`TRUTH_COLUMNS`), read with the annotation files' guards
    (:func:`curation.io.read_table`). Errors name the row and the fix."""
    path = Path(path)
    frame = read_table(path, encoding=encoding, max_bytes=max_bytes, name=path.name)
    column = next((c for c in TRUTH_COLUMNS if c in frame.columns), None)
    if ITEM not in frame.columns or column is None:
        raise ValueError(f"the truth file {path.name} needs the columns item_id and one of "
                         f"{', '.join(TRUTH_COLUMNS)}; it has {format_list(map(str, frame.columns))}.")
    return _check_truth(frame[ITEM], frame[column], labels=labels, where=f"{path.name}, column "
                        f"{column!r}")


def truth_from_frame(frame: pd.DataFrame) -> pd.Series:
    """The ``gold`` labels of a long annotation frame, one per item (empty when it has none)."""
    if GOLD not in frame.columns:
        return pd.Series(dtype=object, name="truth")
    known = frame.dropna(subset=[GOLD])
    known = known[known[GOLD].astype(str).str.strip() != ""]
    return _check_truth(known[ITEM], known[GOLD], labels=None, where="the gold column")


def _check_truth(ids: pd.Series, values: pd.Series, *, labels: Sequence[str] | None,
                 where: str) -> pd.Series:
    ids = ids.astype(str).str.strip().reset_index(drop=True)
    values = values.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v))
                        else str(v).strip()).reset_index(drop=True)
    blank = (ids == "") | (values == "")
    if blank.any():
        row = int(np.flatnonzero(blank.to_numpy())[0])
        raise ValueError(f"{where}: row {row + 2} has no item_id or no label; fill it in or "
                         "delete the row.")
    if labels is not None:
        unknown = ~values.isin(list(labels))
        if unknown.any():
            row = int(np.flatnonzero(unknown.to_numpy())[0])
            raise ValueError(f"{where}: row {row + 2} (item {ids[row]!r}) has the label "
                             f"{values[row]!r}, which the annotations do not use; the labels are "
                             f"{format_list(labels)}. Fix the spelling or add the label to the "
                             "project.")
    pairs = pd.DataFrame({ITEM: ids, LABEL: values})
    conflicting = pairs.drop_duplicates().duplicated(ITEM, keep=False)
    if conflicting.any():
        item = pairs.drop_duplicates()[conflicting][ITEM].iloc[0]
        raise ValueError(f"{where}: item {item!r} has more than one true label; keep one row per "
                         "item.")
    return pairs.drop_duplicates(ITEM).set_index(ITEM)[LABEL].rename("truth")


# --------------------------------------------------------------------------- figures
def ranking_figures(scores: pd.Series, wrong: pd.Series, ks: Sequence[int]) -> dict:
    """Precision and recall at each K, AUC, and the recall reached at precision >= 0.7.

    ``scores`` (higher = more likely wrong) and ``wrong`` (bool) share one index. The order is
    by score, highest first, equal scores by item id: what a reviewer going down the list sees.
    """
    from sklearn.metrics import roc_auc_score

    frame = pd.DataFrame({"score": scores.astype(float).fillna(0.0), "wrong": wrong.astype(bool)})
    frame = frame.rename_axis("_id").reset_index().sort_values(
        ["score", "_id"], ascending=[False, True], kind="stable")
    hits = np.cumsum(frame["wrong"].to_numpy())
    n_wrong = int(hits[-1]) if len(hits) else 0
    out: dict = {"at": {}}
    for k in ks:
        k = min(int(k), len(frame))
        if k <= 0:
            continue
        found = int(hits[k - 1])
        out["at"][k] = {"precision": found / k, "recall": found / n_wrong if n_wrong else None,
                        "found": found}
    both = frame["wrong"].nunique() == 2
    out["auc"] = float(roc_auc_score(frame["wrong"], frame["score"])) if both else None
    out["recall_at_precision"] = _recall_at_precision(hits, n_wrong)
    return out


def _recall_at_precision(hits: np.ndarray, n_wrong: int, precision: float = TARGET_PRECISION) -> float:
    if not n_wrong:
        return 0.0
    ok = hits / np.arange(1, len(hits) + 1) >= precision
    return float(hits[ok].max() / n_wrong) if ok.any() else 0.0


def _random_figures(n: int, n_wrong: int, ks: Sequence[int], seed: int) -> dict:
    """The random order's expected figures (recall at the target precision: mean of shuffles)."""
    rng = np.random.default_rng(seed)
    base = np.zeros(n, dtype=bool)
    base[:n_wrong] = True
    reach = np.mean([_recall_at_precision(np.cumsum(rng.permutation(base)), n_wrong)
                     for _ in range(RANDOM_SHUFFLES)]) if n_wrong else 0.0
    at = {}
    for k in ks:
        k = min(int(k), n)
        if k > 0:
            at[k] = {"precision": n_wrong / n, "recall": k / n if n_wrong else None,
                     "found": k * n_wrong / n}
    return {"at": at, "auc": 0.5 if 0 < n_wrong < n else None, "recall_at_precision": float(reach)}


# --------------------------------------------------------------------------- the orderings
def baseline_scores(context, queue: pd.DataFrame, rest: pd.DataFrame | None = None
                    ) -> tuple[dict[str, pd.Series], dict[str, str]]:
    """Every ordering's score per item of ``context`` (higher = look first), and why any is missing.

    The review queue's order is the flagged items by priority, then (``rest``) the items no
    flagger raised, by their pooled doubt: what a reviewer who goes on past the flags sees.
    """
    items = context.items
    scores: dict[str, pd.Series] = {}
    missing: dict[str, str] = {}
    priority = queue.set_index(ITEM)["priority"] if len(queue) else pd.Series(dtype=float)
    after = (rest.set_index(ITEM)["priority"] if rest is not None and len(rest)
             else pd.Series(dtype=float))
    scores["review queue"] = (1.0 + priority.reindex(items)).fillna(
        after.reindex(items)).fillna(0.0).astype(float)
    multi = context.has("annotators")
    if multi:
        scores["minority-vote share"] = pd.Series(1 - context.majority.confidence_.to_numpy(),
                                                  index=items)
        scores["Dawid-Skene posterior"] = pd.Series(1 - context.given_posterior, index=items)
    else:
        for name in ("minority-vote share", "Dawid-Skene posterior"):
            missing[name] = "needs items with two or more annotations"
    if context.pred_probs is None:
        for name in ("cleanlab find_label_issues", "CROWDLAB (cleanlab)"):
            missing[name] = "needs embeddings (the CLI's --no-model leaves them out)"
        return scores, missing
    probs, given = context.pred_probs, context.given_codes
    self_confidence = probs[np.arange(len(items)), given]
    flagged = np.zeros(len(items), dtype=bool)
    present = np.bincount(given, minlength=probs.shape[1]) > 0
    if present.sum() >= 2:
        flagged[label_issue_positions(given, probs, filter_by="prune_by_noise_rate")] = True
    scores["cleanlab find_label_issues"] = pd.Series(flagged + (1 - self_confidence), index=items)
    if multi:
        scores["CROWDLAB (cleanlab)"] = pd.Series(
            1 - context.crowdlab["consensus_quality_score"].to_numpy(), index=items)
    else:
        missing["CROWDLAB (cleanlab)"] = "needs items with two or more annotations"
    return scores, missing


def calibration_figures(confidence: pd.Series, right: pd.Series, n_bins: int = 10) -> dict:
    """How well a consensus posterior's confidence matches how often its label is right.

    ``ece``: expected calibration error over ``n_bins`` equal-width bins (the gap between mean
    confidence and accuracy, weighted by the bin's share); ``sure``: the items at confidence
    >= 0.99 and the share of them that are right (an over-confident posterior has many such
    items and fewer right than 0.99).
    """
    conf = confidence.astype(float).clip(0, 1).to_numpy()
    ok = right.astype(bool).to_numpy()
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = sum(abs(ok[bins == b].mean() - conf[bins == b].mean()) * (bins == b).mean()
              for b in range(n_bins) if (bins == b).any())
    sure = conf >= 0.99
    return {"ece": float(ece), "mean_confidence": float(conf.mean()), "accuracy": float(ok.mean()),
            "n_sure": int(sure.sum()), "sure_accuracy": float(ok[sure].mean()) if sure.any() else None}


def consensus_posteriors(context) -> dict[str, pd.Series]:
    """Each consensus's confidence that the label an item carries now is right."""
    items = context.items
    out = {"majority vote share": pd.Series(context.majority.confidence_.to_numpy(), index=items)}
    if context.has("annotators"):
        out["Dawid-Skene posterior"] = pd.Series(context.given_posterior, index=items)
        if context.pred_probs is not None:
            out["CROWDLAB consensus quality"] = pd.Series(
                context.crowdlab["consensus_quality_score"].to_numpy(), index=items)
    return out


@dataclass
class FlagEvaluation:
    """The figures of every ordering on the items whose truth is known.

    ``rows``: ordering -> figures (:func:`ranking_figures`); ``ties``: the tied items' own
    account; ``n_items`` and ``n_wrong`` count the ranked (untied) items with truth.
    """

    n_items: int
    n_wrong: int
    ks: list[int]
    rows: dict[str, dict]
    ties: dict
    missing: dict[str, str] = field(default_factory=dict)
    n_unknown_truth: int = 0
    n_queue: int = 0
    truth_source: str = ""
    calibration: dict[str, dict] = field(default_factory=dict)

    def to_dict(self) -> dict:
        def fix(figures: dict) -> dict:
            return {**figures, "at": {str(k): v for k, v in figures["at"].items()}}

        return {"n_items": self.n_items, "n_wrong": self.n_wrong, "ks": self.ks,
                "orderings": {name: fix(f) for name, f in self.rows.items()},
                "ties": self.ties, "missing": self.missing, "n_queue": self.n_queue,
                "n_unknown_truth": self.n_unknown_truth, "truth_source": self.truth_source,
                "calibration": self.calibration}

    def table(self) -> pd.DataFrame:
        """One row per ordering: AUC, precision/recall at each K, recall at precision >= 0.7."""
        rows = []
        for name, figures in self.rows.items():
            row = {"ordering": name, "AUC": figures["auc"]}
            for k, at in figures["at"].items():
                row[f"precision@{k}"] = at["precision"]
                row[f"recall@{k}"] = at["recall"]
            row[f"recall at precision >= {TARGET_PRECISION}"] = figures["recall_at_precision"]
            rows.append(row)
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """What the figures say, in words."""
        if not self.n_wrong:
            return (f"Of the {self.n_items} items with a known true label, none has a wrong "
                    "majority label: there is nothing to rank, so no ordering can be judged here.")
        queue = self.rows["review queue"]
        others = {n: f for n, f in self.rows.items() if n not in ("review queue", "random order")}
        best = max(others, key=lambda n: others[n]["auc"] or 0.0) if others else None
        k = self.ks[0]
        text = (f"{self.n_wrong} of {self.n_items} items with a known true label have a wrong "
                f"majority label. The review queue's top {k}: precision {queue['at'][k]['precision']:.2f}, "
                f"recall {queue['at'][k]['recall']:.2f}; AUC {_fmt(queue['auc'])}")
        if best is not None:
            b = others[best]
            verdict = ("at least as good as" if (queue["auc"] or 0) >= (b["auc"] or 0) else "behind")
            text += (f"; the best other ordering, {best}, has AUC {_fmt(b['auc'])} and top-{k} "
                     f"precision {b['at'][k]['precision']:.2f}: the queue is {verdict} it on AUC")
        text += (f". Recall at precision >= {TARGET_PRECISION}: "
                 f"{queue['recall_at_precision']:.2f} for the queue.")
        if self.n_wrong < 30:
            text += (f" With {self.n_wrong} wrong labels these figures are rough (one item moves "
                     f"recall by {1 / self.n_wrong:.2f}).")
        return text


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def evaluate_flags(frame: pd.DataFrame, truth: pd.Series, *, report=None, embeddings: np.ndarray | None = None,
                   guideline=None, seed: int = 0, truth_source: str = "",
                   model_probs: pd.DataFrame | None = None,
                   model_signal: str = "embedding",
                   labels: Sequence[str] | None = None) -> FlagEvaluation:
    """Score the review queue and every baseline against ``truth`` (``item_id -> label``).

    ``report`` is a :class:`~curation.flags.FlagReport` with its context (from
    :func:`~curation.flags.flag_items`); without one, flagging runs here on ``embeddings``
    (and ``model_probs`` / ``model_signal``, as in ``flag_items``). The cleanlab and CROWDLAB
    baselines read the same model probabilities as the queue.
    """
    from curation.flags import flag_items

    if report is None or report.context is None:
        report = flag_items(frame, labels=labels, embeddings=embeddings, guideline=guideline,
                            seed=seed, model_probs=model_probs, model_signal=model_signal)
    context = report.context
    truth = truth.astype(str)
    truth.index = truth.index.astype(str)
    known = truth.index.isin(context.items)
    n_unknown = int((~known).sum())
    truth = truth[known]
    if truth.empty:
        raise ValueError("none of the truth file's item ids is in the annotations; check that the "
                         "item_id column holds the same ids.")
    unknown_labels = sorted(set(truth) - set(context.labels))
    if unknown_labels:
        raise ValueError(f"true labels {format_list(unknown_labels)} are not among the annotations' "
                         f"labels ({format_list(context.labels)}); fix the spelling.")
    majority = context.majority.labels_.reindex(truth.index)
    tied = majority.isna()
    ties = _ties_account(context, truth[tied])
    ranked = truth.index[~tied]
    wrong = (majority[~tied] != truth[~tied]).astype(bool)
    n, n_wrong = len(ranked), int(wrong.sum())
    ks = _ks(n, n_wrong)
    scores, missing = baseline_scores(context, report.queue, report.rest)
    rows = {"review queue": ranking_figures(scores.pop("review queue").reindex(ranked), wrong, ks),
            "random order": _random_figures(n, n_wrong, ks, seed)}
    for name, score in scores.items():
        rows[name] = ranking_figures(score.reindex(ranked), wrong, ks)
    calibration = {name: calibration_figures(conf.reindex(ranked), ~wrong)
                   for name, conf in consensus_posteriors(context).items()}
    return FlagEvaluation(n_items=n, n_wrong=n_wrong, ks=ks, rows=rows, ties=ties, missing=missing,
                          n_unknown_truth=n_unknown, n_queue=int(report.queue[ITEM].isin(ranked).sum()),
                          truth_source=truth_source, calibration=calibration)


def _ks(n: int, n_wrong: int) -> list[int]:
    """K = the number of wrong labels, 50, 100 and 10% of the items: distinct, within n."""
    wanted = [n_wrong, 50, 100, max(1, round(0.1 * n))]
    out: list[int] = []
    for k in wanted:
        k = min(k, n)
        if k > 0 and k not in out:
            out.append(k)
    return out


def _ties_account(context, truth: pd.Series) -> dict:
    """Items whose vote ties: how many, whether the truth is among the tied labels, and whether
    the label they carry now (the tie-break) is the true one."""
    if truth.empty:
        return {"n": 0, "truth_in_tie": 0, "tie_break_right": 0}
    ties = context.majority.ties_.reindex(truth.index)
    given = context.given_labels.reindex(truth.index)
    return {"n": int(len(truth)),
            "truth_in_tie": int(sum(t in tie for t, tie in zip(truth, ties))),
            "tie_break_right": int((given == truth).sum())}
