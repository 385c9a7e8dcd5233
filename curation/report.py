"""The agreement report: every coefficient, intervals, consensus and a verdict against the target.

One call, :func:`agreement_report`, feeds both the CLI and the app's Agreement page.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from curation.aggregation import make_aggregator
from curation.agreement import (
    COEFFICIENTS,
    CountTable,
    agreement_coefficients,
    annotator_agreement,
    bootstrap_ci,
    cohen_kappa_pairwise,
    count_table,
    item_agreement,
    per_class_agreement,
)
from curation.schema import TEXT

__all__ = ["AgreementReport", "JUDGES", "MIN_ITEMS", "MIN_OVERLAP", "SKEW_THRESHOLD",
           "TOP_ANNOTATORS", "agreement_report", "choose_coefficient"]

#: Coefficients the verdict can be judged by ("auto" picks one, see :func:`choose_coefficient`).
JUDGES = ("auto",) + COEFFICIENTS
#: A label holding at least this share of annotations makes kappa-type coefficients unreliable.
SKEW_THRESHOLD = 0.80

#: A pair's Cohen's kappa counts in the summaries only when the two share at least this many
#: items: its standard error is about sqrt(p_o (1 - p_o) / n) / (1 - p_e), 0.13 at n = 20 for
#: p_o = 0.8 and three balanced labels (p_e = 1/3), 0.19 at n = 10 and 0.4 at n = 2; below 20 a
#: pair's kappa says little. Settable (``min_overlap``) where a project has other needs.
MIN_OVERLAP = 20
#: An annotator is named (lowest agreement, outlier) only with at least this many labels: the
#: share of agreement of n labels has a standard error of up to 0.5 / sqrt(n), 0.11 at 20.
MIN_ITEMS = 20
#: How many annotators (most labels first) a page or terminal lists and maps pair by pair.
TOP_ANNOTATORS = 20

COEFFICIENT_NAMES = {
    "percent_agreement": "percent agreement",
    "fleiss_kappa": "Fleiss' kappa",
    "krippendorff_alpha": "Krippendorff's alpha",
    "gwet_ac1": "Gwet's AC1",
}


@dataclass
class AgreementReport:
    """Everything the Agreement page and ``curation agreement`` show."""

    n_items: int
    n_annotators: int
    n_annotations: int
    labels: list[str]
    coefficients: dict[str, float]
    ci: dict[str, tuple[float, float]]
    target: float
    judged_by: str
    judged_reason: str
    meets_target: bool
    confidently_meets_target: bool
    pairwise: pd.DataFrame
    per_class: pd.DataFrame
    per_annotator: pd.DataFrame
    disagreements: pd.DataFrame
    consensus_method: str
    ci_level: float = 0.95
    n_boot: int = 1000
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def judged_value(self) -> float:
        return self.coefficients[self.judged_by]

    def verdict(self) -> str:
        """One sentence a person reads first."""
        name = COEFFICIENT_NAMES[self.judged_by]
        low, high = self.ci[self.judged_by]
        status = "meets" if self.meets_target else "is below"
        sure = " (the whole interval is above it)" if self.confidently_meets_target else ""
        return (f"{name} = {self.judged_value:.3f} (95% CI {low:.3f}-{high:.3f}) {status} "
                f"the {self.target:.2f} target{sure}.")

    # ---------------------------------------------------------- at any number of annotators
    def pair_summary(self, min_overlap: int = MIN_OVERLAP) -> dict[str, Any]:
        """The distribution of pairwise kappa over the pairs that share ``min_overlap`` items or
        more: ``n_pairs`` (all pairs sharing an item), ``n_used``, ``min_overlap`` and
        ``quantiles`` (min, 25%, median, 75%, max; empty when no pair is used)."""
        used = self.used_pairs(min_overlap)["kappa"]
        quantiles = ({} if used.empty else
                     {name: float(used.quantile(q)) for name, q in
                      (("min", 0.0), ("q25", 0.25), ("median", 0.5), ("q75", 0.75), ("max", 1.0))})
        return {"n_pairs": len(self.pairwise), "n_used": int(len(used)),
                "min_overlap": int(min_overlap), "quantiles": quantiles}

    def used_pairs(self, min_overlap: int = MIN_OVERLAP) -> pd.DataFrame:
        """The pairwise rows sharing ``min_overlap`` items or more, with a defined kappa."""
        if min_overlap < 1:
            raise ValueError(f"min_overlap={min_overlap} must be at least 1 shared item.")
        pairs = self.pairwise
        return pairs[(pairs["n"] >= min_overlap) & pairs["kappa"].notna()]

    def busiest(self, n: int) -> list[str]:
        """The ``n`` annotators with the most labels (ties by name)."""
        if n < 1:
            raise ValueError(f"n={n} must be at least 1 annotator.")
        table = self.per_annotator.rename_axis("annotator").reset_index()
        table = table.sort_values(["n_labels", "annotator"], ascending=[False, True], kind="stable")
        return table["annotator"].head(n).astype(str).tolist()

    def listed(self, n: int = TOP_ANNOTATORS, min_items: int = MIN_ITEMS) -> list[str]:
        """The annotators worth a row: the ``n`` busiest, then the outliers not among them."""
        return list(dict.fromkeys(self.busiest(n) + self.outliers(min_items).index.astype(str)
                                  .tolist()))

    def busiest_pairs(self, n: int) -> pd.DataFrame:
        """The pairwise rows among the ``n`` busiest annotators (what a heatmap can show)."""
        top = set(self.busiest(n))
        return self.pairwise[self.pairwise["a"].isin(top) & self.pairwise["b"].isin(top)]

    def outliers(self, min_items: int = MIN_ITEMS) -> pd.DataFrame:
        """Annotators with ``min_items`` labels or more whose agreement with the others'
        majority is below Tukey's lower fence (first quartile - 1.5 x IQR) of those
        annotators', lowest first: a rule on the spread of this crowd, not a fixed number."""
        enough = self._enough(min_items)
        share = enough["agreement_with_others"]
        if len(share) < 4:
            return enough.iloc[0:0]
        q1, q3 = share.quantile(0.25), share.quantile(0.75)
        return enough[share < q1 - 1.5 * (q3 - q1)].sort_values("agreement_with_others")

    def lowest(self, min_items: int = MIN_ITEMS) -> tuple[str, float] | None:
        """The annotator with ``min_items`` labels or more who agrees least with the others'
        majority, and that share; None when no one has enough labels."""
        enough = self._enough(min_items)
        if enough.empty:
            return None
        name = enough["agreement_with_others"].idxmin()
        return str(name), float(enough.at[name, "agreement_with_others"])

    def _enough(self, min_items: int) -> pd.DataFrame:
        if min_items < 1:
            raise ValueError(f"min_items={min_items} must be at least 1 label.")
        table = self.per_annotator
        return table[(table["n_labels"] >= min_items) & table["agreement_with_others"].notna()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (the CLI's ``--json``)."""
        pairs = [{"a": r.a, "b": r.b, "kappa": _num(r.kappa), "n": int(r.n),
                  "agreement": _num(r.agreement)} for r in self.pairwise.itertuples()]
        return {
            "n_items": self.n_items, "n_annotators": self.n_annotators,
            "n_annotations": self.n_annotations, "labels": self.labels,
            **{k: _num(v) for k, v in self.coefficients.items()},
            "cohen_kappa_pairwise": pairs,
            "ci": {k: [_num(lo), _num(hi)] for k, (lo, hi) in self.ci.items()},
            "ci_level": self.ci_level, "n_boot": self.n_boot, "seed": self.seed,
            "target": self.target, "judged_by": self.judged_by, "judged_reason": self.judged_reason,
            "meets_target": self.meets_target,
            "confidently_meets_target": self.confidently_meets_target,
            "verdict": self.verdict(), "notes": self.notes,
            "per_class": _records(self.per_class), "per_annotator": _records(self.per_annotator),
            "pair_summary": self.pair_summary(),
            "outliers": self.outliers().index.astype(str).tolist(),
            "consensus_method": self.consensus_method,
            "disagreements": _records(self.disagreements.drop(columns=[TEXT], errors="ignore")),
        }


def choose_coefficient(table_or_df, *, labels: Sequence[str] | None = None) -> tuple[str, str]:
    """Pick the coefficient the verdict is judged by, with the reason in words.

    Rules, in order: a label holding at least :data:`SKEW_THRESHOLD` of the
    annotations -> Gwet's AC1 (kappa and alpha collapse under such prevalence,
    the "kappa paradox"); items with different numbers of annotators ->
    Krippendorff's alpha (built for missing data); otherwise Fleiss' kappa.
    """
    table = count_table(table_or_df, labels=labels)
    totals = table.counts.sum(axis=0)
    top_share = totals.max() / totals.sum()
    if top_share >= SKEW_THRESHOLD:
        top = table.labels[int(totals.argmax())]
        return "gwet_ac1", (
            f"'{top}' holds {top_share:.0%} of the labels (>= {SKEW_THRESHOLD:.0%}); kappa and alpha "
            "are dragged down by such prevalence even when annotators agree, Gwet's AC1 is not.")
    per_item = table.counts.sum(axis=1)
    if per_item.min() != per_item.max():
        return "krippendorff_alpha", (
            f"items have {per_item.min()}-{per_item.max()} annotations each; Krippendorff's alpha "
            "handles missing annotations and corrects for small samples.")
    return "fleiss_kappa", (
        f"every item has {per_item.max()} annotations and no label dominates; Fleiss' kappa "
        "is the standard chance-corrected coefficient for this design.")


def agreement_report(
    frame: pd.DataFrame,
    *,
    target: float = 0.90,
    judge_by: str = "auto",
    labels: Sequence[str] | None = None,
    consensus: str = "majority",
    n_boot: int = 1000,
    seed: int = 0,
    top_k: int = 20,
) -> AgreementReport:
    """Compute the full agreement report of a long frame.

    Parameters
    ----------
    target : float
        The agreement the judged coefficient must reach (default 0.90).
    judge_by : {"auto", "percent_agreement", "fleiss_kappa", "krippendorff_alpha", "gwet_ac1"}
        Which coefficient the verdict uses; ``auto`` follows :func:`choose_coefficient`.
    consensus : {"majority", "dawid-skene"}
        Consensus used for each annotator's agreement with the consensus.
    n_boot, seed : int
        Bootstrap replicates over items and their seed.
    top_k : int
        How many most-disputed items to list.
    """
    _check_options(target, judge_by, top_k)
    table = count_table(frame, labels=labels)
    ci = bootstrap_ci(table, n_boot=n_boot, seed=seed)
    coefficients = agreement_coefficients(table)
    judged_by, reason = choose_coefficient(table) if judge_by == "auto" else (
        judge_by, "chosen by the user.")
    model = make_aggregator(consensus, labels=table.labels).fit(
        table if consensus == "majority" else frame)
    pairwise = cohen_kappa_pairwise(table)
    value, low = coefficients[judged_by], ci[judged_by][0]
    return AgreementReport(
        n_items=len(table.items), n_annotators=len(table.annotators),
        n_annotations=len(frame), labels=table.labels, coefficients=coefficients, ci=ci,
        target=target, judged_by=judged_by, judged_reason=reason,
        meets_target=bool(value >= target), confidently_meets_target=bool(low >= target),
        pairwise=pairwise, per_class=per_class_agreement(table),
        per_annotator=annotator_agreement(table, consensus=model.labels_, pairwise=pairwise),
        disagreements=_most_disputed(frame, table, top_k), consensus_method=consensus,
        n_boot=n_boot, seed=seed,
        notes=_notes(table, pairwise) + _dissent(coefficients, judged_by, target))


def _check_options(target: float, judge_by: str, top_k: int) -> None:
    if not 0 < target <= 1:
        raise ValueError(f"target={target} must be in (0, 1], e.g. 0.9 for 90%.")
    if judge_by not in JUDGES:
        raise ValueError(f"judge_by={judge_by!r} is not one of {', '.join(JUDGES)}.")
    if top_k < 0:
        raise ValueError(f"top_k={top_k} must be >= 0.")


def _most_disputed(frame: pd.DataFrame, table: CountTable, top_k: int) -> pd.DataFrame:
    per_item = item_agreement(table).reset_index()
    per_item = per_item[per_item["n_annotations"] >= 2].sort_values(
        ["agreement", "entropy", "n_annotations"], ascending=[True, False, False], kind="stable")
    top = per_item.head(top_k)
    rows = top.index.to_numpy()
    first_row = np.full(len(table.items), -1)
    first_row[table.item_codes[::-1]] = np.arange(len(table.item_codes))[::-1]
    return top.assign(votes=_vote_strings(table.counts[rows], table.labels),
                      text=frame[TEXT].to_numpy()[first_row[rows]]).reset_index(drop=True)


def _vote_strings(counts: np.ndarray, labels: list[str]) -> list[str]:
    out = []
    for row in counts:
        order = np.argsort(-row, kind="stable")
        out.append(", ".join(f"{labels[k]} {row[k]}" for k in order if row[k] > 0))
    return out


def _notes(table, pairwise: pd.DataFrame) -> list[str]:
    notes = []
    per_item = table.counts.sum(axis=1)
    single = int((per_item < 2).sum())
    if single:
        notes.append(f"{single} items have a single annotation: they count for no coefficient "
                     "but Gwet's AC1 label shares.")
    if len(pairwise) and pairwise["n"].median() < 20:
        notes.append(f"annotator pairs share a median of {pairwise['n'].median():.0f} items; "
                     "pairwise Cohen's kappas on so few items are noisy.")
    return notes


def _dissent(coefficients: dict[str, float], judged_by: str, target: float) -> list[str]:
    """Say so when another chance-corrected coefficient reaches the opposite verdict."""
    meets = coefficients[judged_by] >= target
    others = [k for k in ("fleiss_kappa", "krippendorff_alpha", "gwet_ac1")
              if k != judged_by and (coefficients[k] >= target) != meets]
    if not others:
        return []
    listed = ", ".join(f"{COEFFICIENT_NAMES[k]} = {coefficients[k]:.3f}" for k in others)
    return [f"{listed} {'would not meet' if meets else 'would meet'} the target: read the verdict "
            "with the reason for the choice of coefficient in mind."]


def _num(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) or math.isinf(value) else value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    frame = frame.reset_index()
    return [{k: (_num(v) if isinstance(v, (float, np.floating)) else
                 int(v) if isinstance(v, (np.integer,)) else v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]
