"""Agreement: the report a page or CLI shows, against the project's target."""

from __future__ import annotations

import pandas as pd

from curation.aggregation import METHODS as CONSENSUS_METHODS
from curation.report import (
    COEFFICIENT_NAMES,
    JUDGES,
    MIN_ITEMS,
    MIN_OVERLAP,
    TOP_ANNOTATORS,
    AgreementReport,
    agreement_report,
)

__all__ = ["COEFFICIENT_NAMES", "CONSENSUS_METHODS", "JUDGES", "MIN_ITEMS", "MIN_OVERLAP",
           "TOP_ANNOTATORS", "AgreementReport", "agreement"]


def agreement(frame: pd.DataFrame, *, labels: list[str] | None, target: float,
              judge_by: str = "auto", consensus: str = "majority",
              top_k: int = 25) -> AgreementReport:
    """Coefficients with bootstrap intervals, the verdict against ``target``, pairs, classes,
    annotators and the most disputed items (``ValueError`` for a frame it cannot judge)."""
    return agreement_report(frame, labels=labels, target=target, judge_by=judge_by,
                            consensus=consensus, top_k=top_k)
