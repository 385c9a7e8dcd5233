"""Review: build the queue, read it through filters, decide, undo, and the fine-tuned signal.

:func:`review_queue` gives a page everything it shows of the queue in one :class:`QueueView`:
the order (learned from the reviewers' decisions when asked), the two sections (likely wrong
labels, and ties with no majority to be wrong), the filters applied, and the counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from actions.access import require
from actions.jobs import job_folder
from curation.flags import (
    REFIT_EVERY,
    FlagEvaluation,
    FlagReport,
    LearnedOrder,
    learn_order,
)
from curation.store import Project
from curation.workspace import (
    evaluate_project_flags,
    flag_project,
    load_doubt,
    load_queue,
)
from fine_tune.jobs import (
    OOF_KIND,
    latest_job,
    latest_model_probs,
    start_out_of_fold_job,
)

__all__ = ["REFIT_EVERY", "SIGNALS", "QueueFilters", "QueueView", "decide", "fine_tuned_probs",
           "flag", "flag_kinds", "folds_job", "item_history", "measure_queue", "review_queue", "start_folds"]

#: The model signals the model-based flaggers can read, and what each costs.
SIGNALS = {"embedding": "Embeddings + logistic regression (seconds)",
           "fine-tuned": "Fine-tuned classifier, 5 folds (minutes)",
           "ensemble": "Both, averaged"}


def flag(project: Project, *, actor: str | None, signal: str = "embedding",
         probs: pd.DataFrame | None = None,
         progress: Callable[[float, str], None] | None = None) -> FlagReport:
    """Embed (cached), run every flagger and store the flags: the queue (a member's act)."""
    require(project, actor, "build the review queue")
    return flag_project(project, model_signal=signal, model_probs=probs, progress=progress,
                        actor=actor)


def measure_queue(project: Project, *, actor: str | None, signal: str = "embedding",
                  probs: pd.DataFrame | None = None) -> FlagEvaluation:
    """The queue against the usual tools on the items with a known label (one flagging pass)."""
    require(project, actor, "measure the review queue")
    return evaluate_project_flags(project, model_signal=signal, model_probs=probs, actor=actor)


@dataclass(frozen=True)
class QueueFilters:
    """What a reviewer narrows the queue to. Empty sequences filter nothing."""

    kinds: Sequence[str] = ()
    labels: Sequence[str] = ()
    annotators: Sequence[str] = ()
    show_decided: bool = False
    section: str = "ranked"          # "ranked" (likely wrong labels) or "ties" (no majority)
    include_rest: bool = False       # go on past the flagged items, by doubt
    learn: bool = True               # re-rank by the reviewers' decisions


@dataclass
class QueueView:
    """The queue as a page shows it (see :func:`review_queue`)."""

    queue: pd.DataFrame              # every queued item, in the order in force
    items: pd.DataFrame              # the rows left after the filters, in that order
    flags: pd.DataFrame              # the latest flags run's flags
    latest: pd.DataFrame             # the effective latest decision per item, by item_id
    learned: LearnedOrder | None     # what the queue learned (None before any flags)
    tied: set = field(default_factory=set)
    signal: str = "embedding"        # the model signal the shown flags were made with

    @property
    def empty(self) -> bool:
        """No flags run yet (nothing to review at all)."""
        return self.queue.empty

    @property
    def n_tied(self) -> int:
        return int(self.queue["item_id"].isin(self.tied).sum())

    @property
    def n_done(self) -> int:
        return int(self.queue["item_id"].isin(self.latest.index).sum())

    @property
    def n_flagged(self) -> int:
        return int((self.queue["kinds"] != "").sum())

    def ids(self) -> list[str]:
        return self.items["item_id"].tolist()

    def row(self, item: str) -> pd.Series:
        return self.items.set_index("item_id").loc[item]

    def reasons(self, item: str) -> pd.DataFrame:
        return self.flags.loc[self.flags["item_id"] == item, ["kind", "score", "reason"]]


def review_queue(project: Project, frame: pd.DataFrame, consensus: pd.DataFrame,
                 filters: QueueFilters = QueueFilters()) -> QueueView:
    """The latest flags run's queue, ordered (learned from decisions when ``filters.learn``)
    and narrowed by ``filters``. Tied items (no majority) are their own section."""
    flags = project.latest_flags()
    params = (project.get_run(int(flags["run_id"].iloc[0]))["params"] or {}) if len(flags) else {}
    queue = load_queue(project, flags=flags, include_rest=filters.include_rest)
    decisions = project.latest_decisions()
    latest = decisions.set_index("item_id")
    signal = params.get("model_signal", "embedding")
    if queue.empty:
        return QueueView(queue, queue, flags, latest, None, signal=signal)
    learned = learn_order(queue, flags, decisions, doubt=load_doubt(project, flags=flags))
    if filters.learn:
        queue = learned.queue
    tied = set(consensus.index[consensus["method"] != "majority"])
    in_tie = queue["item_id"].isin(tied)
    items = queue[in_tie == (filters.section == "ties" and bool(in_tie.any()))]
    if filters.kinds:
        items = items[items["item_id"].isin(flags.loc[flags["kind"].isin(filters.kinds), "item_id"])]
    if filters.labels:
        items = items[items["item_id"].map(consensus["label"]).isin(filters.labels)]
    if filters.annotators:
        by = frame.loc[frame["annotator_id"].isin(filters.annotators), "item_id"]
        items = items[items["item_id"].isin(by)]
    if not filters.show_decided:
        items = items[~items["item_id"].isin(latest.index)]
    return QueueView(queue, items, flags, latest, learned, tied, signal)


def flag_kinds(project: Project) -> list[str]:
    """The flag kinds of the latest flags run, sorted (for a filter)."""
    flags = project.latest_flags()
    return sorted(flags["kind"].unique()) if len(flags) else []


def decide(project: Project, item: str, *, actor: str | None, action: str, note: str = "",
           new_label: str | None = None) -> None:
    """Record one decision (``set_label``, ``keep``, ``drop``, ``ambiguous``, ``note``, ``undo``)
    under the acting reviewer's name, at once and in the audit log (a member's act in team mode)."""
    if not actor:
        raise ValueError("Sign in first (see the sidebar): every decision is signed."
                         if project.team_mode else
                         "Enter your name in the sidebar first: every decision is signed.")
    require(project, actor, "decide")
    project.record_decision(item, actor=actor, action=action, note=note,
                            new_label=new_label if action == "set_label" else None)


def item_history(project: Project, item: str) -> pd.DataFrame:
    """Every decision on ``item``, oldest first (undos included)."""
    history = project.decisions()
    return history[history["item_id"] == item][["decision_id", "created_at", "reviewer", "action",
                                                "old_label", "new_label", "note"]]


def folds_job(project: Project) -> dict[str, Any] | None:
    """The status of the project's newest fine-tuned out-of-fold job, or None."""
    return latest_job(project, kind=OOF_KIND)


def fine_tuned_probs(project: Project) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """The newest finished out-of-fold probabilities and what they are, or None
    (``ValueError`` for a damaged probabilities file)."""
    return latest_model_probs(project)


def start_folds(project: Project, *, actor: str | None) -> dict[str, Any]:
    """Fine-tune 5 folds in the background for the queue's model signal (a lead's act)."""
    require(project, actor, "fine-tune the review queue's model")
    return start_out_of_fold_job(project, job_folder(project, "folds"), actor=actor)


