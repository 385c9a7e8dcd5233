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
from actions.export import curated
from actions.jobs import job_folder
from curation.flags import (
    REFIT_EVERY,
    FlagEvaluation,
    FlagReport,
    LearnedOrder,
    learn_order,
)
from curation.io import load_annotations
from curation.label_studio import completed_decisions, labeling_config, review_tasks
from curation.schema import has_pairs
from curation.store import Project
from curation.workspace import (
    evaluate_project_flags,
    flag_project,
    load_doubt,
    load_queue,
)
from fine_tune.jobs import (
    FLAGS_KIND,
    OOF_KIND,
    latest_job,
    latest_model_probs,
    start_flags_job,
    start_out_of_fold_job,
)

__all__ = ["REFIT_EVERY", "SIGNALS", "SORTS", "QueueBase", "QueueFilters", "QueueView", "decide",
           "decide_label", "fine_tuned_probs", "flag", "flag_kinds", "flags_job",
           "folds_job", "item_history",
           "measure_queue", "queue_base", "queue_key", "recent_decisions", "review_queue",
           "start_flags", "start_folds", "undo", "undo_last", "where_is", "label_studio_tasks",
           "import_label_studio"]

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


def _current_labels(project: Project, frame: pd.DataFrame) -> pd.Series:
    """``item_id -> label`` each item has now: consensus with the decisions applied."""
    return curated(project, frame).set_index("item_id")["label"]


def label_studio_tasks(project: Project) -> tuple[list[dict], str]:
    """The open items of the review queue as Label Studio tasks (with the suggested labels as
    predictions and the flag reasons in their data), and the labelling config to paste into a
    Label Studio project's Labeling Interface. Empty when nothing was flagged or all is decided."""
    frame = project.annotations()
    flags = project.latest_flags()
    queue = load_queue(project, flags=flags)
    decided = project.latest_decisions()["item_id"].tolist()
    tasks = review_tasks(frame, queue, _current_labels(project, frame),
                         flags=flags.drop(columns=["run_id"], errors="ignore"), decided=decided)
    return tasks, labeling_config(project.label_set(), pairs=has_pairs(frame))


def import_label_studio(project: Project, source: Any, *, name: str,
                        actor: str | None) -> list[int]:
    """Completed Label Studio tasks (its JSON export) in as decisions, each signed by the
    annotator who made it (a lead's act in team mode, and each annotator a member); all or
    nothing. Returns the new decision ids."""
    require(project, actor, "import review decisions")
    done = load_annotations(source, format="label-studio", name=name, file_type="json")
    decisions = completed_decisions(done, _current_labels(project, project.annotations()).to_dict(),
                                    source=f"Label Studio ({name})")
    return project.import_decisions(decisions, actor=actor, source=name)


def measure_queue(project: Project, *, actor: str | None, signal: str = "embedding",
                  probs: pd.DataFrame | None = None) -> FlagEvaluation:
    """The queue against the usual tools on the items with a known label (one flagging pass)."""
    require(project, actor, "measure the review queue")
    return evaluate_project_flags(project, model_signal=signal, model_probs=probs, actor=actor)


#: The orders a reviewer can sort the queue by.
SORTS = {"queue": "Queue order (most likely wrong first)",
         "confidence": "Least confident consensus first",
         "item_id": "Item id"}


@dataclass(frozen=True)
class QueueFilters:
    """What a reviewer narrows the queue to. Empty sequences and an empty search filter nothing.

    ``search`` keeps the items whose text or item id contains it (case-insensitive, taken
    literally: no pattern syntax). ``sort`` is one of :data:`SORTS`.
    """

    search: str = ""
    sort: str = "queue"
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


@dataclass(frozen=True)
class QueueBase:
    """What one flags run gives the queue, read once: the same until the next flags run
    (a page caches it by :func:`queue_key`)."""

    flags: pd.DataFrame
    queue: pd.DataFrame
    doubt: pd.DataFrame | None
    signal: str


def queue_key(project: Project) -> int | None:
    """Changes when a new flags run finishes (a cache key for :func:`queue_base`)."""
    return project.latest_flags_run_id()


def queue_base(project: Project, include_rest: bool = False) -> QueueBase:
    """The latest flags run's flags, queue (with the unflagged rest when ``include_rest``),
    doubt signs and model signal."""
    flags = project.latest_flags()
    params = (project.get_run(int(flags["run_id"].iloc[0]))["params"] or {}) if len(flags) else {}
    return QueueBase(flags, load_queue(project, flags=flags, include_rest=include_rest),
                     load_doubt(project, flags=flags), params.get("model_signal", "embedding"))


def review_queue(project: Project, frame: pd.DataFrame, consensus: pd.DataFrame,
                 filters: QueueFilters = QueueFilters(), *,
                 base: QueueBase | None = None) -> QueueView:
    """The latest flags run's queue, ordered (learned from decisions when ``filters.learn``)
    and narrowed by ``filters``. Tied items (no majority) are their own section. ``base``:
    :func:`queue_base` already read (with the same ``include_rest``)."""
    base = base or queue_base(project, filters.include_rest)
    flags, queue, signal = base.flags, base.queue, base.signal
    decisions = project.latest_decisions()
    latest = decisions.set_index("item_id")
    if queue.empty:
        return QueueView(queue, queue, flags, latest, None, signal=signal)
    learned = learn_order(queue, flags, decisions, doubt=base.doubt)
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
    if filters.search.strip():
        items = items[_matches(items["item_id"], frame, filters.search.strip())]
    return QueueView(queue, _sorted(items, consensus, filters.sort), flags, latest, learned, tied,
                     signal)


def _matches(ids: pd.Series, frame: pd.DataFrame, needle: str) -> pd.Series:
    """Which of ``ids`` have ``needle`` in their id or text (case-insensitive, literal)."""
    first = frame.drop_duplicates("item_id").set_index("item_id")
    texts = first["text"] if "text_pair" not in first.columns else first["text"] + "\n" + first["text_pair"]
    needle = needle.casefold()
    in_text = ids.map(texts).fillna("").astype(str).str.casefold().str.contains(needle, regex=False)
    return in_text | ids.astype(str).str.casefold().str.contains(needle, regex=False)


def _sorted(items: pd.DataFrame, consensus: pd.DataFrame, sort: str) -> pd.DataFrame:
    if sort not in SORTS:
        raise ValueError(f"unknown sort {sort!r}; pick one of {list(SORTS)}.")
    if sort == "item_id":
        return items.sort_values("item_id", kind="stable")
    if sort == "confidence":
        confidence = items["item_id"].map(consensus["confidence"])
        return items.iloc[confidence.argsort(kind="stable")]
    return items


def where_is(view: QueueView, item: str, frame: pd.DataFrame) -> str | None:
    """None when ``item`` is in the view; otherwise why it is not, and what shows it."""
    if item in set(view.items["item_id"]):
        return None
    if item not in set(frame["item_id"]):
        return f"there is no item {item!r} in this project."
    if item not in set(view.queue["item_id"]):
        return (f"item {item!r} is not in the review queue: no flagger raised it. Turn on "
                "'Go on past the flagged items' to reach the rest.")
    if item in view.latest.index:
        return (f"item {item!r} is decided; turn on 'Show decided items' to see it (or undo its "
                "decision in 'My recent decisions').")
    if item in view.tied:
        return f"item {item!r} has no majority: it is in the section 'No majority: decide'."
    return f"item {item!r} is in the queue but hidden by the filters or the search: clear them."


def flag_kinds(project: Project, base: QueueBase | None = None) -> list[str]:
    """The flag kinds of the latest flags run, sorted (for a filter)."""
    flags = (base or queue_base(project)).flags
    return sorted(flags["kind"].unique()) if len(flags) else []


def decide(project: Project, item: str, *, actor: str | None, action: str, note: str = "",
           new_label: str | None = None, current: str | None = None) -> None:
    """Record one decision (``set_label``, ``keep``, ``drop``, ``ambiguous``, ``note``, ``undo``)
    under the acting reviewer's name, at once and in the audit log (a member's act in team mode).
    ``current``: the label the reviewer saw (the consensus), logged as ``old_label``."""
    _require_signer(project, actor)
    project.record_decision(item, actor=actor, action=action, note=note,
                            new_label=new_label if action == "set_label" else None,
                            current_label=current)


def _require_signer(project: Project, actor: str | None, *, what: str = "decision") -> None:
    """A decision or an undo needs a name, and in team mode a member's (``ValueError`` saying
    where to give it; the role check's ``AccessError`` otherwise)."""
    if not actor:
        raise ValueError(f"Sign in first (see the sidebar): every {what} is signed."
                         if project.team_mode else
                         f"Enter your name in the sidebar first: every {what} is signed.")
    require(project, actor, "decide")


def decide_label(project: Project, item: str, label: str, *, actor: str | None,
                 current: str | None, note: str = "") -> str:
    """One key or click names the item's label: ``keep`` when it is the label the item carries
    now (``current``), else ``set_label``. Returns the action recorded."""
    action = "keep" if label == current else "set_label"
    decide(project, item, actor=actor, action=action, note=note, new_label=label, current=current)
    return action


def recent_decisions(project: Project, actor: str | None, limit: int = 10) -> pd.DataFrame:
    """``actor``'s decisions still in force, newest first (each can be undone by them)."""
    if not actor:
        return project.recent_decisions("", 0)
    return project.recent_decisions(actor, limit)


def undo(project: Project, item: str, decision_id: int, *, actor: str | None) -> None:
    """Undo decision ``decision_id`` on ``item``, only while it is still the item's latest
    (``ValueError`` otherwise: someone decided after it, and their decision stays)."""
    _require_signer(project, actor, what="undo")
    project.record_decision(item, actor=actor, action="undo", undo_of=int(decision_id))


def undo_last(project: Project, *, actor: str | None) -> str:
    """Undo ``actor``'s newest decision still in force, wherever its item is; returns the item
    (``ValueError`` when they have none)."""
    _require_signer(project, actor, what="undo")
    last = recent_decisions(project, actor, 1)
    if last.empty:
        raise ValueError("You have no decision left to undo.")
    item = str(last["item_id"].iloc[0])
    undo(project, item, int(last["decision_id"].iloc[0]), actor=actor)
    return item


def item_history(project: Project, item: str) -> pd.DataFrame:
    """Every decision on ``item``, oldest first (undos included)."""
    history = project.decisions()
    return history[history["item_id"] == item][["decision_id", "created_at", "reviewer", "action",
                                                "old_label", "new_label", "note"]]


def start_flags(project: Project, *, actor: str | None, signal: str = "embedding",
                force: bool = False) -> dict[str, Any]:
    """Queue flagging for a worker (a member's act, as flagging in the page is)."""
    require(project, actor, "build the review queue")
    return start_flags_job(project, job_folder(project, "flags"), signal=signal, force=force,
                           actor=actor)


def flags_job(project: Project) -> dict[str, Any] | None:
    """The status of the project's newest flagging job, or None."""
    return latest_job(project, kind=FLAGS_KIND)


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


