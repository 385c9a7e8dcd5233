"""Retrain and compare as a background job: the data it will use, its settings, starting,
resuming, cancelling and reading a job, and what its kept models show.

A job's folder is named here (``$CURATION_HOME/jobs/<project>-<kind>-<time>``) and read only
here: pages get the status, the report as a dict, the kept models' predictions and the report
files, never a path to build on.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from actions.access import require
from curation.schema import text_columns
from curation.store import Project
from curation.workspace import curation_home
from fine_tune.compare import CompareReport
from fine_tune.config import ClassWeights, Precision
from fine_tune.data import project_compare_data
from fine_tune.jobs import (
    ACTIVE,
    RUN_KIND,
    cancel_job,
    latest_job,
    latest_saved_models,
    resume_job,
    start_compare_job,
)
from fine_tune.queue import artifact_location, uses_queue
from fine_tune.queue import run_worker as _serve
from fine_tune.verdict import size_notes

__all__ = ["ACTIVE", "ClassWeights", "CompareReport", "Misclassified", "Precision", "advice_for", "attention",
           "attention_chart", "cancel", "check_rules", "compare_data", "compare_runs", "job_folder",
           "latest_compare", "latest_lr_range", "latest_lr_search", "misclassified", "parse_schedule", "report_files",
           "report_of", "resume", "run_worker", "runs_on_workers", "saved_models", "settings_for", "size_notes",
           "start_compare",
           "start_lr_range", "start_lr_search"]


def parse_schedule(text: str) -> tuple[tuple[int, int], ...]:
    """``"1:2, 3:2"`` -> ``((1, 2), (3, 2))``: at epoch 1 unfreeze 2 more layers, at 3 two
    more. ``ValueError`` saying how to write it."""
    pairs = []
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        epoch, sep, layers = part.partition(":")
        if not sep or not epoch.strip().isdigit() or not layers.strip().isdigit():
            raise ValueError(f"unfreeze schedule {text!r}: write EPOCH:LAYERS pairs separated by "
                             "commas, e.g. 1:2, 3:2 (at epoch 1 unfreeze 2 layers, at 3 two more).")
        pairs.append((int(epoch), int(layers)))
    return tuple(pairs)


def job_folder(project: Project, kind: str = "") -> Path:
    """A new job folder for ``project`` (never a user's path): under the artifact root when it
    is a folder (``$CURATION_ARTIFACTS``, shared by the hosts that run workers), else under
    ``$CURATION_HOME/jobs`` (with a URL root the job is uploaded from there)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = "-".join(p for p in (Path(project.url).stem, kind, stamp) if p)
    shared = artifact_location(name)
    return Path(shared) if shared and "://" not in shared else curation_home() / "jobs" / name


def compare_data(project: Project) -> tuple[dict[str, Any], pd.DataFrame, dict[str, int]]:
    """What a compare would train and test on: the sizes (``info``), the after side's
    ``text, label`` rows and the test set's label counts. ``ValueError`` for an empty project."""
    data = project_compare_data(project)
    return (data.info, data.after[[*text_columns(data.after), "label"]],
            data.test["label"].value_counts().to_dict())


def settings_for(rows: pd.DataFrame) -> dict[str, Any]:
    """The settings the advice gives these ``text, label`` rows, each with where it came from."""
    from fine_tune.settings import resolve_settings

    return resolve_settings(rows).to_dict()


def advice_for(rows: pd.DataFrame) -> dict[str, Any]:
    """The whole advice for ``text, label`` rows: measured traits and recommendations."""
    from fine_tune.advice import advise

    return advise(rows).to_dict()


def check_rules(content: Any, *, name: str) -> Any:
    """Uploaded post-processing rules, checked (``ValueError`` naming the file and the fix)."""
    from fine_tune.rules import load_rules

    load_rules(content, name=name)
    return content


def start_compare(project: Project, *, actor: str | None, config: Mapping[str, Any] | None = None,
                  seeds: tuple[int, ...] = (0, 1, 2), rules: Any = None) -> dict[str, Any]:
    """Start retrain-and-compare in the background (a lead's act in team mode)."""
    require(project, actor, "retrain and compare")
    return start_compare_job(project, job_folder(project), config=dict(config or {}), seeds=seeds,
                             actor=actor, rules=rules)


def start_lr_range(project: Project, *, actor: str | None,
                   config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Start a learning-rate range test on the curated training rows (a lead's act)."""
    from fine_tune.jobs import start_lr_range_job

    require(project, actor, "retrain and compare")
    return start_lr_range_job(project, job_folder(project, "lr"), config=config, actor=actor)


def latest_lr_range(project: Project) -> dict[str, Any] | None:
    """The newest learning-rate range test's status (``report``: lrs, losses, smoothed,
    suggested_lr, ... once done), or None."""
    from fine_tune.jobs import LR_KIND

    return latest_job(project, kind=LR_KIND)


def start_lr_search(project: Project, *, actor: str | None, center: float,
                    config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Try ``center`` / 3, ``center`` and ``center`` x 3 on a validation split of the curated
    rows, in the background (a lead's act)."""
    from fine_tune.jobs import start_lr_search_job

    require(project, actor, "retrain and compare")
    return start_lr_search_job(project, job_folder(project, "search"), center=center,
                               config=config, actor=actor)


def latest_lr_search(project: Project) -> dict[str, Any] | None:
    """The newest learning-rate search's status (``report``: runs, best_learning_rate), or None."""
    from fine_tune.jobs import SEARCH_KIND

    return latest_job(project, kind=SEARCH_KIND)


def latest_compare(project: Project) -> dict[str, Any] | None:
    """The status of the newest retrain-and-compare job (its report once done), or None."""
    return latest_job(project)


def report_of(status: Mapping[str, Any] | None) -> CompareReport | None:
    """The finished job's report as the typed :class:`fine_tune.compare.CompareReport` (what
    ``compare`` returns in-process), or None before it is done; ``ValueError`` for a damaged
    ``report.json``."""
    data = (status or {}).get("report")
    return CompareReport.from_dict(data) if data else None


def resume(project: Project, status: Mapping[str, Any], *, actor: str | None) -> dict[str, Any]:
    """Start a failed or cancelled job again on its folder and settings (a lead's act)."""
    require(project, actor, "resume a training job")
    return resume_job(project, status["folder"], actor=actor)


def cancel(project: Project, status: Mapping[str, Any], *, actor: str | None) -> None:
    """Ask a running job to stop after its current step (a lead's act)."""
    require(project, actor, "cancel a training job")
    cancel_job(project, status["folder"], actor=actor)


def compare_runs(project: Project) -> pd.DataFrame:
    """Every retrain-and-compare run, oldest first: run, status, started, verdict, why."""
    runs = project.runs()
    runs = runs[runs["kind"] == RUN_KIND] if len(runs) else runs
    results = [r or {} for r in runs["result"]] if len(runs) else []
    return pd.DataFrame({"run": runs["run_id"] if len(runs) else [],
                         "status": runs["status"] if len(runs) else [],
                         "started": runs["created_at"] if len(runs) else [],
                         "verdict": [r.get("verdict", "") for r in results],
                         "why": [r.get("verdict_reason", r.get("error", "")) for r in results]})


def report_files(status: Mapping[str, Any]) -> list[tuple[str, bytes, str]]:
    """The job's report as files to download, and the model cards of the models it kept:
    ``(name, content, mime type)``."""
    out = []
    folder = Path(status["folder"])
    for name, mime in (("report.md", "text/markdown"), ("report.html", "text/html")):
        path = folder / name
        if path.is_file():
            out.append((name, path.read_bytes(), mime))
    for side in ("before", "after"):
        card = folder / "models" / side / "README.md"
        if card.is_file():
            out.append((f"model_card_{side}.md", card.read_bytes(), "text/markdown"))
    return out


def saved_models(project: Project, *, problems: list[str] | None = None) -> dict[str, Any] | None:
    """The newest finished job's kept models: ``{"run_id", "models": {side: folder}}`` or None
    (why a job's files are not on this host appended to ``problems`` when given)."""
    found = latest_saved_models(project, problems=problems)
    return None if found is None else {"run_id": found["run_id"], "models": found["models"]}


@dataclass(frozen=True)
class Misclassified:
    """The test items a job's kept after model got wrong (``item_id, text, label, predicted``);
    ``wrong`` is None when there is nothing to read, and ``why_none`` says why."""

    wrong: pd.DataFrame | None
    n_test: int = 0
    model: str | None = None         # the after model's folder, for :func:`attention`
    why_none: str = ""


def misclassified(status: Mapping[str, Any]) -> Misclassified:
    """What the job's kept after model (seed 0) got wrong on the test set."""
    after = (status.get("models") or {}).get("after")
    if after is None and status.get("files_error"):  # the page's warning gives the reason
        return Misclassified(None, why_none="This run's models are not on this host: its files "
                             "could not be copied here.")
    if after is None:
        return Misclassified(None, why_none="This run kept no after model (it is older than the "
                             "attention view, or did not finish).")
    path = Path(after) / "predictions.csv"
    if not path.is_file():
        return Misclassified(None, model=after, why_none=f"The after model has no test "
                             f"predictions ({path.name} is missing).")
    pred = pd.read_csv(path, keep_default_na=False, dtype={"item_id": str, "label": str,
                                                           "predicted": str})
    wrong = pred[pred["label"] != pred["predicted"]].reset_index(drop=True)
    return Misclassified(wrong, len(pred), after)


def attention(model: str, text: str, *, max_length: int = 128, text_pair: str | None = None):
    """What a kept model attends to for ``text`` (and a pair's ``text_pair``)
    (:class:`fine_tune.attention.Attention`)."""
    from fine_tune.attention import attention_for

    return attention_for(model, text, max_length=max_length, text_pair=text_pair)


def attention_chart(att, layer: int | None = None, head: int | None = None):
    from fine_tune.attention import attention_chart as chart

    return chart(att, layer, head)


def run_worker(url: str, *, queues: list[str] | None = None, once: bool = False,
               concurrency: int = 1) -> None:
    """Serve the job queue of the PostgreSQL project at ``url`` on this host (``curation
    worker``): run its jobs from ``queues`` (``gpu``, ``cpu``; default both) until stopped, or,
    with ``once``, until the queue is empty. The jobs were started (and are cancelled) by people
    with the role for it; the worker acts with the database rights of ``url``."""
    _serve(url, queues=queues, once=once, concurrency=concurrency)


def runs_on_workers(project: Project) -> bool:
    """Whether the project's jobs (flagging and augmentation too) run on queue workers (a
    PostgreSQL project, unless ``$CURATION_JOBS=local``) rather than on this host, where
    flagging and augmentation run in the page."""
    return uses_queue(project)
