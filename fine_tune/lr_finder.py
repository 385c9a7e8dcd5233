"""Learning-rate range test (Smith 2017; the fastai "LR finder").

:func:`lr_range_test` trains a fresh model (same backbone, freezing and LoRA settings as the
:class:`~fine_tune.config.TrainConfig`) for ``num_steps`` mini-batches while the learning
rate grows exponentially from ``start_lr`` to ``end_lr``, records the loss, smooths it with
a bias-corrected exponential moving average and stops once the smoothed loss exceeds
``diverge_factor`` times its best. The suggestion is the learning rate where the smoothed
loss falls fastest (steepest negative slope against log learning rate) before its minimum.

It runs on the Hugging Face ``Trainer``, as every training of this package
(:mod:`fine_tune.engine`): the same model, data collator, shuffling, device and mixed precision
as :func:`fine_tune.train.train_classifier`, with the learning rate set by a ``LambdaLR``
schedule (``start_lr * ratio**step``) and :class:`fine_tune.engine.LRRangeCallback` recording
each step's loss and stopping on divergence. One mini-batch per step (no gradient accumulation)
and no gradient clipping, so each recorded loss belongs to one learning rate.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fine_tune.config import ClassWeights, TrainConfig

__all__ = ["LRFinderResult", "lr_range_test", "smooth_losses", "suggest_lr"]

logger = logging.getLogger(__name__)


@dataclass
class LRFinderResult:
    """The losses of a learning-rate range test and the learning rates it suggests.

    Attributes
    ----------
    lrs : numpy.ndarray
        Learning rate of each step taken.
    losses : numpy.ndarray
        Raw mini-batch loss of each step.
    smoothed : numpy.ndarray
        Bias-corrected exponential moving average of ``losses``.
    suggested_lr : float
        ``steepest_lr`` when there is one, else ``min_loss_lr``.
    steepest_lr : float or None
        Learning rate of the steepest fall of the smoothed loss before its minimum (None
        when the minimum comes within the first 3 steps).
    min_loss_lr : float
        One tenth of the learning rate at the lowest smoothed loss (the "minimum / 10" rule).
    stopped_early : bool
        True when the loss diverged (or became NaN) before ``num_steps``.
    """

    lrs: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    suggested_lr: float
    steepest_lr: float | None
    min_loss_lr: float
    stopped_early: bool

    def to_frame(self) -> pd.DataFrame:
        """Columns ``lr``, ``loss``, ``smoothed``: one row per step."""
        return pd.DataFrame({"lr": self.lrs, "loss": self.losses, "smoothed": self.smoothed})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy (NaN as None)."""
        def floats(a: np.ndarray) -> list[float | None]:
            return [float(v) if np.isfinite(v) else None for v in a]

        return {"lrs": floats(self.lrs), "losses": floats(self.losses),
                "smoothed": floats(self.smoothed), "suggested_lr": self.suggested_lr,
                "steepest_lr": self.steepest_lr, "min_loss_lr": self.min_loss_lr,
                "stopped_early": self.stopped_early}


def smooth_losses(losses: Sequence[float], smooth: float = 0.98) -> np.ndarray:
    """Exponential moving average with bias correction: ``avg_i / (1 - smooth**(i+1))``.

    Examples
    --------
    >>> smooth_losses([1.0, 1.0, 1.0], 0.9).round(6).tolist()
    [1.0, 1.0, 1.0]
    >>> smooth_losses([2.0, 0.0], 0.5).round(6).tolist()
    [2.0, 0.666667]
    """
    out = np.empty(len(losses))
    avg = 0.0
    for i, loss in enumerate(losses):
        avg = smooth * avg + (1 - smooth) * float(loss)
        out[i] = avg / (1 - smooth ** (i + 1))
    return out


def _diverged(losses: Sequence[float], smooth: float, diverge_factor: float) -> bool:
    """Whether the test stops after ``losses``: the smoothed loss is not finite, or exceeds
    ``diverge_factor`` times its lowest value so far."""
    smoothed = smooth_losses(losses, smooth)
    return not np.isfinite(smoothed[-1]) or (
        len(smoothed) > 1 and smoothed[-1] > diverge_factor * smoothed.min())


def suggest_lr(lrs: Sequence[float], smoothed: Sequence[float]) -> tuple[float | None, float]:
    """``(steepest_lr, min_loss_lr)`` from a smoothed loss curve.

    ``steepest_lr`` is where ``d smoothed / d log(lr)`` is most negative before the minimum
    (None with fewer than 3 points up to it); ``min_loss_lr`` is the minimum's lr / 10.

    Examples
    --------
    >>> lrs = np.logspace(-5, -1, 9)
    >>> loss = np.array([1.0, 0.99, 0.95, 0.7, 0.4, 0.3, 0.28, 0.5, 2.0])
    >>> steep, low = suggest_lr(lrs, loss)
    >>> float(steep) == float(lrs[3]), float(low) == float(lrs[6] / 10)
    (True, True)
    """
    lrs, smoothed = np.asarray(lrs, float), np.asarray(smoothed, float)
    finite = np.isfinite(smoothed)
    lowest = int(np.argmin(np.where(finite, smoothed, np.inf)))
    min_loss_lr = float(lrs[lowest] / 10)
    if lowest < 2:
        return None, min_loss_lr
    slope = np.gradient(smoothed[: lowest + 1], np.log(lrs[: lowest + 1]))
    return float(lrs[int(np.argmin(slope))]), min_loss_lr


def _check(start_lr: float, end_lr: float, num_steps: int, smooth: float,
           diverge_factor: float) -> None:
    if not (isinstance(start_lr, (int, float)) and isinstance(end_lr, (int, float))
            and 0 < start_lr < end_lr):
        raise ValueError(f"need 0 < start_lr < end_lr; got start_lr={start_lr!r}, "
                         f"end_lr={end_lr!r}. Typical: 1e-7 and 1e-2.")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 3:
        raise ValueError(f"num_steps must be an integer >= 3, got {num_steps!r}; 100 is typical.")
    if not (isinstance(smooth, (int, float)) and 0 <= smooth < 1):
        raise ValueError(f"smooth must be in [0, 1), got {smooth!r}; 0.98 is typical.")
    if not (isinstance(diverge_factor, (int, float)) and diverge_factor > 1):
        raise ValueError(f"diverge_factor must be > 1, got {diverge_factor!r}; 4 is typical.")


def lr_range_test(train: pd.DataFrame, *, config: TrainConfig, start_lr: float = 1e-7,
                  end_lr: float = 1e-2, num_steps: int = 100, smooth: float = 0.98,
                  diverge_factor: float = 4.0,
                  labels: Sequence[str] | None = None) -> LRFinderResult:
    """Run a learning-rate range test on ``train`` with a fresh model.

    Parameters
    ----------
    train : pandas.DataFrame
        Columns ``text`` and ``label``; batches cycle through it (shuffled, seeded).
    config : TrainConfig
        Backbone, ``max_length``, ``batch_size``, ``weight_decay``, class weights, precision,
        freezing (no gradual unfreezing) and LoRA settings; ``learning_rate`` is ignored.
    start_lr, end_lr : float
        The learning rate grows exponentially from ``start_lr`` to ``end_lr``.
    num_steps : int
        Mini-batches (optimizer steps) at most.
    smooth : float
        Weight of the past in the moving average of the loss.
    diverge_factor : float
        Stop when the smoothed loss exceeds this many times its lowest value.
    labels : sequence of str, optional
        Class order (default: the sorted training labels).

    Returns
    -------
    LRFinderResult
    """
    from fine_tune._inputs import check_frames

    _check(start_lr, end_lr, num_steps, smooth, diverge_factor)
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}.")
    order = check_frames(train, None, None, labels)
    lrs, losses = _run(train, config, order, start_lr, end_lr, num_steps, smooth, diverge_factor)
    smoothed = smooth_losses(losses, smooth)
    steepest, min_loss_lr = suggest_lr(lrs, smoothed)
    suggested = float(np.clip(steepest if steepest is not None else min_loss_lr, start_lr, end_lr))
    logger.info("LR range test: %d steps, suggested lr %.3g", len(lrs), suggested)
    return LRFinderResult(np.asarray(lrs), np.asarray(losses), smoothed, suggested, steepest,
                          min_loss_lr, stopped_early=len(lrs) < num_steps)


def _run(train, config, order, start_lr, end_lr, num_steps, smooth, diverge_factor):
    import tempfile

    import torch
    from transformers import DataCollatorWithPadding, set_seed
    from transformers.trainer_callback import PrinterCallback

    from fine_tune._inputs import balanced_weights, encode
    from fine_tune._model import load_tokenizer, prepare_model
    from fine_tune._runtime import Runtime
    from fine_tune.engine import LRRangeCallback, arguments
    from fine_tune.train import _Trainer

    run = Runtime.plan(config)
    set_seed(config.seed)
    tokenizer = load_tokenizer(config)
    model, _ = prepare_model(config, order)
    max_length = min(config.max_length, int(getattr(tokenizer, "model_max_length", 10**6)))
    dataset, _ = encode(train, tokenizer, order, max_length)
    weights = None
    if config.class_weights is ClassWeights.BALANCED:
        codes = np.array([f["labels"] for f in dataset.features])
        weights = torch.tensor(balanced_weights(codes, len(order)), dtype=torch.float32)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=start_lr, weight_decay=config.weight_decay)
    ratio = (end_lr / start_lr) ** (1 / (num_steps - 1))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: ratio ** step)
    recorder = LRRangeCallback(start_lr, ratio,
                               stop=lambda losses: _diverged(losses, smooth, diverge_factor))

    class RangeTrainer(_Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                       num_items_in_batch=num_items_in_batch)
            if model.training:
                recorder.add_loss(float((out[0] if return_outputs else out).detach()))
            return out

    with tempfile.TemporaryDirectory(prefix="lr-range-") as folder:
        args = arguments(config, run, folder, config.seed, accumulation=1, max_steps=num_steps,
                         per_device_train_batch_size=config.batch_size, max_grad_norm=0.0,
                         learning_rate=start_lr)
        trainer = RangeTrainer(model=model, args=args, train_dataset=dataset,
                               data_collator=DataCollatorWithPadding(tokenizer),
                               class_weights=weights, optimizers=(optimizer, schedule),
                               callbacks=[recorder])
        trainer.remove_callback(PrinterCallback)  # the result holds what there is to say
        trainer.train()
    del model, optimizer, trainer
    if run.kind == "cuda":
        torch.cuda.empty_cache()
    return recorder.lrs, recorder.losses
