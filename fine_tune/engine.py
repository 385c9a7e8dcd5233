"""One training engine: every model of this package is trained by the Hugging Face ``Trainer``.

- A plain classifier: :mod:`fine_tune.train` (its ``Trainer`` subclass: class weights,
  atomic checkpoints, gradual unfreezing, early stopping as callbacks).
- Runs whose batches follow a plan (multi-task and continual learning,
  :mod:`fine_tune.multitask`, :mod:`fine_tune.continual`): :func:`fit_planned`, a ``Trainer``
  whose data loader hands it the planned batches in order, each from one task, each task's
  rows to its own head (sentence-transformers' multi-dataset batch samplers do the same inside
  the ``Trainer``); an extra loss term (EWC's penalty) in ``compute_loss``; the encoder's and
  the heads' gradients clipped apart in a callback.
- The learning-rate range test (:mod:`fine_tune.lr_finder`): the classifier's ``Trainer`` with
  an exponential ``LambdaLR`` schedule and a callback that records each step's loss and stops
  on divergence (:class:`LRRangeCallback`).

So mixed precision, gradient accumulation and the device (and, through accelerate, several
processes) come from one place, the ``Trainer`` and its ``TrainingArguments``, for all of them.
This module also holds what the planned runs share: each task's encoded data (:class:`Task`),
the run's set-up (:class:`Setup`), predictions, the progress ticker and the settings checks.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments
from transformers.trainer_callback import PrinterCallback

from curation.progress import Progress
from fine_tune._inputs import EncodedDataset, balanced_weights, check_frames, encode
from fine_tune._model import load_tokenizer
from fine_tune._runtime import Runtime
from fine_tune.config import ClassWeights, Precision, TrainConfig

__all__ = ["MAX_GRAD_NORM", "LRRangeCallback", "Setup", "Task", "Ticker", "arguments", "check_config",
           "check_option", "check_seeds", "check_tasks", "collate", "fit_planned", "predict",
           "prepare_tasks", "release", "setup_for", "to_device"]

#: Gradient-norm clipping, as the Hugging Face Trainer's default ``max_grad_norm``.
MAX_GRAD_NORM = 1.0


# --- checks -----------------------------------------------------------------------------------

def check_config(config: Any) -> TrainConfig:
    """The settings of a planned (multi-task or continual) run; ValueError for what it lacks."""
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}.")
    if config.lora:
        raise ValueError("TrainConfig.lora=True is not supported by multi-task and continual "
                         "training (they train the whole shared encoder); set lora=False.")
    if config.unfreeze_schedule:
        raise ValueError("TrainConfig.unfreeze_schedule is not supported by multi-task and "
                         "continual training; set unfreeze_schedule=() (freeze_layers works).")
    if config.resume_from_checkpoint:
        raise ValueError("TrainConfig.resume_from_checkpoint: multi-task and continual training "
                         "write no checkpoints to resume from; set resume_from_checkpoint=False.")
    return config


def check_seeds(seeds: Any) -> list[int]:
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise ValueError(f"seeds must be a list of integers such as (0, 1, 2); got {seeds!r}.") from None
    if not out or any(s < 0 for s in out) or len(set(out)) != len(out):
        raise ValueError(f"seeds must be distinct integers >= 0, at least one; got {seeds!r}.")
    return out


def check_option(name: str, value: Any, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}.")


def check_tasks(tasks: Any, *, need_test: bool, minimum: int = 1) -> dict[str, tuple[Any, Any]]:
    """``{name: (train, test)}`` checked: names, pairs, and a test frame where one is needed."""
    if not isinstance(tasks, Mapping) or len(tasks) < minimum:
        raise ValueError(f"tasks must be a dict {{name: (train_frame, test_frame)}} with at least "
                         f"{minimum} task(s); got {type(tasks).__name__} of "
                         f"{len(tasks) if hasattr(tasks, '__len__') else '?'}.")
    out: dict[str, tuple[Any, Any]] = {}
    for name, pair in tasks.items():
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"task names must be non-empty strings; got {name!r}.")
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"task {name!r} must be a (train_frame, test_frame) pair; got "
                             f"{type(pair).__name__}.")
        train, test = pair
        if need_test and (test is None or (isinstance(test, pd.DataFrame) and test.empty)):
            raise ValueError(f"task {name!r} has no test rows; pass a test frame with columns "
                             "text and label (or split one off with split_train_test).")
        out[name] = (train, test)
    return out


# --- data -------------------------------------------------------------------------------------

@dataclass
class Task:
    """One task's encoded data."""

    name: str
    labels: list[str]
    train: EncodedDataset
    test: EncodedDataset | None
    test_perm: np.ndarray | None
    test_truth: np.ndarray | None  # class indices, test frame order
    weights: torch.Tensor | None


@dataclass
class Setup:
    """Where and how the runs train; the tokenizer and the collator."""

    config: TrainConfig
    run: Runtime
    tokenizer: Any
    collator: Any
    max_length: int

    @property
    def device(self) -> torch.device:
        return self.run.device


def setup_for(config: TrainConfig) -> Setup:
    from transformers import DataCollatorWithPadding

    run = Runtime.plan(config)
    if run.world_size > 1:
        raise ValueError(
            f"multi-task and continual runs train in one process: their batches are planned "
            f"across tasks in order, which {run.world_size} processes would each draw apart. "
            "Start them without torchrun / accelerate launch (one process, one GPU); "
            "train and compare run on several processes.")
    tokenizer = load_tokenizer(config)
    max_length = min(config.max_length, int(getattr(tokenizer, "model_max_length", 10**6) or 10**6))
    amp = run.precision in (Precision.BF16, Precision.FP16) and run.kind == "cuda"
    collator = DataCollatorWithPadding(tokenizer, pad_to_multiple_of=8 if amp else None)
    return Setup(config, run, tokenizer, collator, max_length)


def _prepare(name: str, train: Any, test: Any, setup: Setup) -> Task:
    try:
        order = check_frames(train, None, test, None)
    except ValueError as err:
        raise ValueError(f"task {name!r}: {err}") from None
    train_ds, _ = encode(train, setup.tokenizer, order, setup.max_length)
    test_ds = perm = truth = None
    if test is not None and not test.empty:
        test_ds, perm = encode(test, setup.tokenizer, order, setup.max_length, sort_by_length=True)
        truth = test["label"].astype(str).map({c: i for i, c in enumerate(order)}).to_numpy()
    weights = None
    if setup.config.class_weights is ClassWeights.BALANCED:
        codes = np.array([f["labels"] for f in train_ds.features])
        weights = torch.tensor(balanced_weights(codes, len(order)), dtype=torch.float32)
    return Task(name, order, train_ds, test_ds, perm, truth, weights)


def prepare_tasks(tasks: Mapping[str, tuple[Any, Any]], setup: Setup) -> dict[str, Task]:
    """Each task's frames checked (errors name the task) and encoded."""
    return {name: _prepare(name, train, test, setup) for name, (train, test) in tasks.items()}


def to_device(batch: Mapping[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in batch.items()}


def collate(task: Task, rows: np.ndarray, setup: Setup, dataset: EncodedDataset | None = None) -> dict:
    data = dataset if dataset is not None else task.train
    return setup.collator([data.features[int(i)] for i in rows])


class Ticker:
    """Turns steps of several runs into ``progress(fraction, message)`` calls."""

    def __init__(self, progress: Progress | None, total: int) -> None:
        self.progress, self.total, self.done = progress, max(int(total), 1), 0

    def step(self, message: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(min(self.done / self.total, 1.0), message)

    def say(self, message: str) -> None:
        if self.progress is not None:
            self.progress(min(self.done / self.total, 1.0), message)


# --- planned batches on the Trainer -------------------------------------------------------------

class _PlannedBatches(torch.utils.data.Dataset):
    """Item ``k`` is the ``k``-th planned batch, collated, with its task and rows."""

    def __init__(self, tasks: Mapping[str, Task], plan: Sequence[tuple[str, np.ndarray]],
                 setup: Setup) -> None:
        self.tasks, self.plan, self.setup = tasks, list(plan), setup

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, k: int) -> dict[str, Any]:
        name, rows = self.plan[k]
        batch = dict(collate(self.tasks[name], rows, self.setup))
        batch["task_name"], batch["rows"] = name, np.asarray(rows)
        return batch


def _one(items: list[dict[str, Any]]) -> dict[str, Any]:
    return items[0]


class _ClipApart(TrainerCallback):
    """Clip each parameter group's gradient norm on its own before every update (the encoder's
    and the heads': a large EWC penalty on the encoder then cannot starve a head)."""

    def __init__(self, trainer: Trainer, groups: Sequence[Sequence[torch.nn.Parameter]]) -> None:
        self.trainer, self.groups = trainer, [list(g) for g in groups if g]

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.trainer.accelerator.unscale_gradients()  # fp16: clip true gradients (no-op else)
        for group in self.groups:
            torch.nn.utils.clip_grad_norm_(group, MAX_GRAD_NORM)


class _PlannedTrainer(Trainer):
    """The ``Trainer`` on a plan of single-task batches: each batch goes to its task's head with
    its task's class weights, plus an optional penalty; counts what it saw."""

    loss_is_scaled_for_ga = False  # a per-batch mean: the Trainer divides by the accumulation

    def __init__(self, *args: Any, tasks: Mapping[str, Task], batches: _PlannedBatches,
                 penalty: Callable[[], torch.Tensor] | None, ticker: Ticker, label: str,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tasks, self.batches, self.penalty = tasks, batches, penalty
        self.ticker, self.label = ticker, label
        self.seen = {name: np.zeros(len(task.train), dtype=np.int64) for name, task in tasks.items()}
        self.per_task = dict.fromkeys(tasks, 0)
        self.loss_sum, self.n_batches = 0.0, 0

    def get_train_dataloader(self) -> torch.utils.data.DataLoader:
        loader = torch.utils.data.DataLoader(self.batches, batch_size=1, shuffle=False,
                                             collate_fn=_one, num_workers=0)
        return self.accelerator.prepare(loader)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = dict(inputs)
        name, rows = inputs.pop("task_name"), inputs.pop("rows")
        labels = inputs.pop("labels")
        logits = model(name, **inputs)
        weights = self.tasks[name].weights
        loss = torch.nn.functional.cross_entropy(
            logits.float(), labels, weight=None if weights is None else weights.to(logits.device))
        if self.penalty is not None:
            loss = loss + self.penalty()
        if model.training:
            np.add.at(self.seen[name], rows, 1)
            self.per_task[name] += 1
            self.n_batches += 1
            self.loss_sum += float(loss.detach())
            self.ticker.step(f"{self.label}: batch {self.n_batches}/{len(self.batches)} ({name}), "
                             f"loss {self.loss_sum / self.n_batches:.4f}")
        return (loss, {"logits": logits}) if return_outputs else loss


def arguments(config: TrainConfig, run: Runtime, output_dir: str, seed: int, *,
              accumulation: int, **extra: Any) -> TrainingArguments:
    """``TrainingArguments`` of a run that saves, evaluates and logs nothing itself: the device
    and mixed precision as :class:`~fine_tune._runtime.Runtime` planned them."""
    return TrainingArguments(
        output_dir=output_dir, seed=seed, data_seed=seed, report_to=[], disable_tqdm=True,
        save_strategy="no", eval_strategy="no", logging_strategy="no",
        gradient_accumulation_steps=accumulation, remove_unused_columns=False,
        dataloader_num_workers=0, bf16=run.precision is Precision.BF16,
        fp16=run.precision is Precision.FP16, use_cpu=run.use_cpu, **extra)


def fit_planned(model: torch.nn.Module, tasks: Mapping[str, Task],
                plan: Sequence[tuple[str, np.ndarray]], setup: Setup, seed: int, ticker: Ticker, *,
                label: str, trainable: Sequence[tuple[str, torch.nn.Parameter]] | None = None,
                penalty: Callable[[], torch.Tensor] | None = None) -> dict[str, Any]:
    """Train ``model`` (``model(task, **batch) -> logits``, with an ``encoder``) on ``plan`` with
    the ``Trainer``; returns the counts of what was seen and the time taken.

    AdamW (no weight decay on biases and LayerNorm weights), a linear warm-up over
    ``warmup_ratio`` of the updates then linear decay to 0, ``gradient_accumulation`` batches
    per update, the encoder's and the heads' gradients clipped to norm 1.0 apart, mixed
    precision as the config resolves it. ``trainable`` limits the parameters the optimizer
    updates (default: all that need gradients); ``penalty()`` is added to each batch's loss.
    """
    from transformers import get_linear_schedule_with_warmup

    config = setup.config
    named = [(n, p) for n, p in (trainable if trainable is not None else model.named_parameters())
             if p.requires_grad]
    in_encoder = {id(p) for p in model.encoder.parameters()}
    groups = ([p for _, p in named if id(p) in in_encoder],
              [p for _, p in named if id(p) not in in_encoder])
    updates = math.ceil(len(plan) / config.gradient_accumulation)
    decay = [p for _, p in named if p.ndim >= 2]
    no_decay = [p for _, p in named if p.ndim < 2]  # biases and LayerNorm weights
    optimizer = torch.optim.AdamW([g for g in ({"params": decay, "weight_decay": config.weight_decay},
                                               {"params": no_decay, "weight_decay": 0.0})
                                   if g["params"]], lr=config.learning_rate)
    scheduler = get_linear_schedule_with_warmup(
        optimizer, math.ceil(config.warmup_ratio * updates), updates)
    with tempfile.TemporaryDirectory(prefix="planned-") as folder:
        args = arguments(config, setup.run, folder, seed,
                         accumulation=config.gradient_accumulation, num_train_epochs=1,
                         per_device_train_batch_size=1, max_grad_norm=0.0,
                         learning_rate=config.learning_rate)
        trainer = _PlannedTrainer(model=model, args=args, tasks=tasks,
                                  batches=_PlannedBatches(tasks, plan, setup), penalty=penalty,
                                  ticker=ticker, label=label, optimizers=(optimizer, scheduler))
        trainer.add_callback(_ClipApart(trainer, groups))
        trainer.remove_callback(PrinterCallback)  # progress goes through the ticker
        start = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - start
    return {"seen": trainer.seen, "batches": trainer.per_task,
            "optimizer_steps": int(trainer.state.global_step), "train_seconds": seconds,
            "mean_loss": trainer.loss_sum / max(trainer.n_batches, 1)}


def _autocast(setup: Setup) -> contextlib.AbstractContextManager:
    precision = setup.run.precision
    if precision is Precision.BF16:
        return torch.autocast(device_type=setup.run.kind, dtype=torch.bfloat16)
    if precision is Precision.FP16:
        return torch.autocast(device_type=setup.run.kind, dtype=torch.float16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict(model: torch.nn.Module, task: Task, setup: Setup) -> tuple[np.ndarray, np.ndarray]:
    """Predicted class indices and probabilities of ``task``'s test rows, in test-frame order."""
    model.to(setup.device).eval()
    n = len(task.test)
    proba = np.empty((n, len(task.labels)))
    size = setup.config.eval_batch_size
    for start in range(0, n, size):
        rows = np.arange(start, min(start + size, n))
        batch = to_device(collate(task, rows, setup, task.test), setup.device)
        batch.pop("labels")
        with _autocast(setup):
            logits = model(task.name, **batch)
        proba[rows] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    out = np.empty_like(proba)
    out[task.test_perm] = proba
    return out.argmax(axis=1), out


def release(setup: Setup) -> None:
    import gc

    gc.collect()
    if setup.run.kind == "cuda":
        torch.cuda.empty_cache()


# --- the learning-rate range test ---------------------------------------------------------------

class LRRangeCallback(TrainerCallback):
    """Records each update's learning rate and loss (the mean over its accumulated batches) and
    stops training once ``stop(losses)`` says so (the range test's divergence rule,
    :func:`fine_tune.lr_finder.lr_range_test`). The learning rate of update ``k`` (from 0) is
    ``start_lr * ratio**k``."""

    def __init__(self, start_lr: float, ratio: float,
                 stop: Callable[[list[float]], bool]) -> None:
        self.start_lr, self.ratio, self.stop = start_lr, ratio, stop
        self.lrs: list[float] = []
        self.losses: list[float] = []
        self._pending: list[float] = []

    def add_loss(self, value: float) -> None:
        """One batch's loss (the trainer calls it from ``compute_loss``)."""
        self._pending.append(value)

    def on_step_end(self, args, state, control, **kwargs):
        if not self._pending:
            return control
        self.lrs.append(self.start_lr * self.ratio ** len(self.lrs))
        self.losses.append(float(np.mean(self._pending)))
        self._pending = []
        if self.stop(self.losses):
            control.should_training_stop = True
        return control
