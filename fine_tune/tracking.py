"""Experiment tracking for training runs: MLflow (a local file store) and TensorBoard.

``TrainConfig(report_to=("mlflow", "tensorboard"), tracking_dir=...)`` adds, per run, the
callbacks :func:`tracking_callbacks` builds. They are given their stores explicitly (an
``MlflowClient`` with its own tracking URI, a ``SummaryWriter`` with its own folder), never
through the process-wide environment variables the Trainer's built-in integrations read, so two
runs in one process (a retrain-and-compare's seeds, the app's jobs) never write into each
other's run. Nothing leaves the machine: the MLflow store is a local SQLite file (MLflow 3 put
its plain-folder store in maintenance mode and refuses it by default).

- MLflow: experiment ``curation`` in ``tracking_dir/mlflow.db`` (artifacts, none by default, in
  ``tracking_dir/mlartifacts``); per run the settings as params, every logged loss and metric
  with its step, the run's name (``TrainConfig.run_name``: a retrain-and-compare names each run
  ``<side>-seed<seed>``), and FINISHED at the end. ``mlflow ui --backend-store-uri
  sqlite:///<tracking_dir>/mlflow.db`` shows them.
- TensorBoard: event files in ``tracking_dir/tensorboard/<run name>``;
  ``tensorboard --logdir <tracking_dir>/tensorboard``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

__all__ = ["EXPERIMENT", "MlflowLogger", "mlflow_uri", "tracking_callbacks"]

logger = logging.getLogger(__name__)

#: The MLflow experiment every run goes to.
EXPERIMENT = "curation"
_INSTALL = {"mlflow": "mlflow-skinny (pip install mlflow-skinny, or mlflow)",
            "tensorboard": "tensorboard (pip install tensorboard)"}


def mlflow_uri(tracking_dir: str | Path) -> str:
    """The MLflow tracking URI of a tracking folder's store (a SQLite file in it)."""
    return f"sqlite:///{(Path(tracking_dir).absolute() / 'mlflow.db').as_posix()}"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"


class MlflowLogger(TrainerCallback):
    """Logs one training run to MLflow through an ``MlflowClient`` of its own."""

    def __init__(self, tracking_dir: str | Path, run_name: str,
                 params: Mapping[str, Any]) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError as err:
            raise ValueError(f"report_to 'mlflow' needs {_INSTALL['mlflow']}.") from err
        self.client = MlflowClient(tracking_uri=mlflow_uri(tracking_dir))
        found = self.client.get_experiment_by_name(EXPERIMENT)
        artifacts = (Path(tracking_dir).absolute() / "mlartifacts").as_uri()
        experiment = (found.experiment_id if found else
                      self.client.create_experiment(EXPERIMENT, artifact_location=artifacts))
        run = self.client.create_run(experiment, run_name=run_name,
                                     tags={"source": "curation"})
        self.run_id = run.info.run_id
        for key, value in params.items():
            text = "" if value is None else str(value)
            self.client.log_param(self.run_id, key, text[:500])

    def on_log(self, args, state, control, logs=None, **kwargs):
        for key, value in (logs or {}).items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.client.log_metric(self.run_id, key, float(value), step=int(state.global_step))

    def on_train_end(self, args, state, control, **kwargs):
        self.client.set_terminated(self.run_id, "FINISHED")


def tracking_callbacks(report_to: tuple[str, ...], tracking_dir: str | None, run_name: str,
                       params: Mapping[str, Any]) -> list[TrainerCallback]:
    """The callbacks of ``report_to`` for one run (none when it is empty).

    ``ValueError`` naming the package to install when a tracker's library is missing.
    """
    if not report_to:
        return []
    if tracking_dir is None:
        raise ValueError("report_to needs tracking_dir: the folder the trackers write to.")
    folder = Path(tracking_dir)
    folder.mkdir(parents=True, exist_ok=True)
    out: list[TrainerCallback] = []
    if "mlflow" in report_to:
        out.append(MlflowLogger(folder, run_name, params))
    if "tensorboard" in report_to:
        try:
            from torch.utils.tensorboard import SummaryWriter
            from transformers.integrations import TensorBoardCallback
        except ImportError as err:
            raise ValueError(f"report_to 'tensorboard' needs {_INSTALL['tensorboard']}.") from err
        writer = SummaryWriter(log_dir=str(folder / "tensorboard" / _safe_name(run_name)))
        out.append(TensorBoardCallback(tb_writer=writer))
    logger.info("tracking run %r with %s in %s", run_name, ", ".join(report_to), folder)
    return out
