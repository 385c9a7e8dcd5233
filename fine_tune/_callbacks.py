"""Trainer callbacks: progress and cancel, a log point each epoch, gradual unfreezing, and
keeping the best weights in memory when no checkpoints are written."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from transformers import EarlyStoppingCallback, TrainerCallback

__all__ = ["EarlyStopping", "GradualUnfreeze", "KeepBestInMemory", "LogEachEpoch", "ProgressAndCancel"]

logger = logging.getLogger(__name__)


class ProgressAndCancel(TrainerCallback):
    """Report ``progress(fraction, message)`` each step; stop when ``should_stop()`` is True.

    A cancelled run skips the evaluation and checkpoint of the epoch it stops in.
    """

    def __init__(self, progress: Callable[[float, str], None] | None,
                 should_stop: Callable[[], bool] | None) -> None:
        self.progress = progress
        self.should_stop = should_stop
        self.cancelled = False
        self.last_loss: float | None = None

    def _report(self, state: Any, text: str | None = None) -> None:
        if self.progress is None or not state.is_world_process_zero:
            return
        total = max(state.max_steps, 1)
        if text is None:
            loss = f", loss {self.last_loss:.4f}" if self.last_loss is not None else ""
            text = (f"epoch {state.epoch or 0:.2f}: step {state.global_step}/{total}{loss}")
        self.progress(min(state.global_step / total, 1.0), text)

    def on_train_begin(self, args, state, control, **kwargs):
        self._report(state, f"training: {state.max_steps} steps")

    def on_step_end(self, args, state, control, **kwargs):
        if self.should_stop is not None and self.should_stop():
            self.cancelled = True
            control.should_training_stop = True
            logger.info("training cancelled at step %d", state.global_step)
        self._report(state)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.last_loss = float(logs["loss"])

    def on_epoch_end(self, args, state, control, **kwargs):
        if self.cancelled:
            control.should_evaluate = False
            control.should_save = False


class LogEachEpoch(TrainerCallback):
    """Log the training loss at the end of every epoch (so each epoch has a closing point)."""

    def on_epoch_end(self, args, state, control, **kwargs):
        control.should_log = True


class GradualUnfreeze(TrainerCallback):
    """At each epoch's start, unfreeze the layers that ``schedule`` says are due.

    Parameters
    ----------
    schedule : sequence of (int, int)
        ``(epoch, n)``: once ``epoch`` epochs are done, unfreeze ``n`` more layers.
    frozen : sequence of torch.nn.Module
        The frozen layers, lowest first; they are unfrozen from the top down.

    Notes
    -----
    Idempotent and cumulative, so a run resumed mid-way unfreezes everything due so far.
    The optimizer must already hold these layers' parameters (see
    ``fine_tune.train._Trainer.create_optimizer``).
    """

    def __init__(self, schedule: Sequence[tuple[int, int]], frozen: Sequence[Any]) -> None:
        self.schedule = list(schedule)
        self.frozen = list(frozen)
        self.unfrozen = 0

    def on_epoch_begin(self, args, state, control, **kwargs):
        done = math.floor((state.epoch or 0.0) + 1e-6)
        due = min(sum(n for epoch, n in self.schedule if epoch <= done), len(self.frozen))
        while self.unfrozen < due:
            layer = self.frozen[len(self.frozen) - 1 - self.unfrozen]
            for p in layer.parameters():
                p.requires_grad_(True)
            self.unfrozen += 1
            logger.info("epoch %d: unfroze encoder layer %d", done,
                        len(self.frozen) - self.unfrozen)


class KeepBestInMemory(TrainerCallback):
    """Keep a CPU copy of the weights at the best evaluation; load it when training ends.

    Stands in for ``load_best_model_at_end`` when no checkpoints are written.
    """

    def __init__(self, metric: str, greater_is_better: bool) -> None:
        self.metric = metric
        self.greater = greater_is_better
        self.best: float | None = None
        self.weights: dict[str, Any] | None = None

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        value = (metrics or {}).get(self.metric)
        if value is None or model is None or not np.isfinite(value):
            return
        better = np.greater if self.greater else np.less
        if self.best is None or better(value, self.best):
            self.best = float(value)
            self.weights = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if self.weights is not None and model is not None:
            model.load_state_dict(self.weights)
            logger.info("restored the weights of the best evaluation (%s=%.4g)", self.metric,
                        self.best)
        self.weights = None


class EarlyStopping(EarlyStoppingCallback):
    """``EarlyStoppingCallback`` without its start-up warning about
    ``load_best_model_at_end``: without checkpoints, :class:`KeepBestInMemory` keeps the best."""

    def on_train_begin(self, args, state, control, **kwargs):
        if not args.metric_for_best_model:
            raise ValueError("early stopping needs a metric; this is a bug in fine_tune.train.")
