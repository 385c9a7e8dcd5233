"""Experiments on two labelled data sets: multi-task training and continual learning.

The app runs them as background jobs of the current project (:func:`start`), like a retrain:
the page stays usable, shows the progress, and a reload finds the result. The command line and
tests can still run them in their own process (:func:`run_multitask`, :func:`run_continual`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from curation.schema import text_columns

__all__ = ["distinct_names", "latest", "read_labelled_csv", "run_continual", "run_multitask",
           "split_train_test", "start", "train_config"]


def start(project, *, actor: str | None, experiment: str,
          data: dict[str, tuple[pd.DataFrame, pd.DataFrame]], config, seeds: Sequence[int],
          options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Start an experiment as a background job of ``project`` (a lead's act in team mode)."""
    from actions.access import require
    from actions.jobs import job_folder
    from fine_tune.jobs import start_experiment_job

    require(project, actor, "run an experiment")
    distinct_names(list(data), "data sets" if experiment == "continual" else "tasks")
    return start_experiment_job(project, job_folder(project, "experiment"), experiment=experiment,
                                data=data, config=config.to_dict(), seeds=seeds, options=options,
                                actor=actor)


def latest(project, experiment: str | None = None) -> dict[str, Any] | None:
    """The status of the project's newest experiment job (its report once done), or None;
    with ``experiment`` ("multitask" or "continual"), None when the newest is the other kind.
    The status carries ``experiment``."""
    from fine_tune.jobs import EXPERIMENT_KIND, latest_job

    status = latest_job(project, kind=EXPERIMENT_KIND)
    if status is None:
        return None
    # which experiment: from the run's settings in the database (a queued job's folder may be
    # on another host until it ends)
    status["experiment"] = (project.get_run(status["run_id"])["params"] or {}).get("experiment")
    return status if experiment in (None, status["experiment"]) else None


def read_labelled_csv(source: Any, name: str) -> pd.DataFrame:
    """A checked ``text, label`` frame from a CSV (a path or an upload), with ``text_pair``
    when the file has one (sentence pairs); ``ValueError`` names the file and the fix."""
    from fine_tune.compare import check_labelled

    try:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False)
    except Exception as err:  # any parse failure is the file's fault: say so
        raise ValueError(f"{name}: could not read it as CSV ({err}).") from None
    checked = check_labelled(frame, name)
    return checked[[*text_columns(checked), "label"]]


def split_train_test(frame: pd.DataFrame, test: float | int, *, seed: int, name: str):
    """A stratified, seeded ``(train, test)`` split (``test``: a share or a row count)."""
    from fine_tune.multitask import split_train_test as split

    return split(frame, test, seed=seed, name=name)


def train_config(*, model: str | None, epochs: int, learning_rate: float, batch_size: int,
                 max_length: int):
    """The training settings of an experiment (no early stopping, no checkpoints)."""
    from fine_tune.config import TrainConfig

    return TrainConfig(model=model, epochs=epochs, learning_rate=learning_rate,
                       batch_size=batch_size, max_length=max_length, early_stopping_patience=0,
                       save_checkpoints=False)


def distinct_names(names: Sequence[str], what: str) -> None:
    if len(set(names)) < len(names):
        raise ValueError(f"Both {what} are named {names[0]!r}; give them different names.")


def run_multitask(tasks: dict[str, tuple[pd.DataFrame, pd.DataFrame]], config, *,
                  seeds: Sequence[int], schedule: str,
                  progress: Callable[[float, str], None] | None = None):
    """One shared encoder on both tasks against one model per task (same batches)."""
    from fine_tune.multitask import compare_multitask

    distinct_names(list(tasks), "tasks")
    return compare_multitask(tasks, config, seeds=list(seeds), schedule=schedule, progress=progress)


def run_continual(a: tuple[pd.DataFrame, pd.DataFrame], b: tuple[pd.DataFrame, pd.DataFrame],
                  config, *, names: tuple[str, str], seeds: Sequence[int], ewc_lambda: float,
                  fisher_samples: int, progress: Callable[[float, str], None] | None = None):
    """Train on A then on B: forgetting of A, plain fine-tuning against EWC."""
    from fine_tune.continual import compare_continual

    distinct_names(list(names), "data sets")
    return compare_continual(a, b, config, seeds=list(seeds), ewc_lambda=float(ewc_lambda),
                             names=names, fisher_samples=fisher_samples, progress=progress)
