"""Multi-task fine-tuning: one shared encoder, one linear head per task, against one model per task.

:func:`train_multitask` trains a :class:`MultiHeadModel` (the configured backbone as a bare
encoder, :func:`fine_tune._model.load_encoder`, plus one ``nn.Linear`` per task on the pooled
representation) on several tasks at once; :func:`train_single_task` trains the same architecture
on one task with the same budget; :func:`compare_multitask` does both over a few seeds and
reports, per task, accuracy and macro-F1 of each side and a paired bootstrap interval of the
difference.

Training runs on the Hugging Face ``Trainer`` (:func:`fine_tune.engine.fit_planned`), fed the
planned batches in order, each to its task's head: AdamW (no weight decay on biases and LayerNorm
weights), a linear warm-up over ``warmup_ratio`` of the updates then linear decay to 0,
gradient-norm clipping at 1.0 (the encoder and the heads clipped apart), texts truncated to
``max_length`` and padded per batch, bf16/fp16 on a GPU when
:meth:`~fine_tune.config.TrainConfig.resolved_precision` says so, ``gradient_accumulation``
batches per update. There is no validation set, so the early-stopping and checkpoint settings
of the config are not used.

Batches and the budget
----------------------
Every batch holds rows of one task only. Each epoch, each task's training rows are shuffled with
a generator seeded by ``(seed, task name, epoch)`` and cut into batches of ``batch_size``
(``ceil(n_rows / batch_size)`` batches; with a fractional ``epochs`` the last epoch keeps the
first ``round(fraction * batches)`` of them, at least one). The multi-task model then goes
through the tasks' batches of that epoch

- ``"proportional"`` (default): in a random order (seeded by ``(seed, epoch)``), so each task
  takes a share of the updates proportional to its number of batches, spread over the epoch;
- ``"round_robin"``: one batch of each task in turn, in the order of ``tasks``; a task that runs
  out drops out of the rotation for the rest of the epoch.

**Same budget.** A single-task model of task ``t`` gets exactly the batches of ``t`` the
multi-task model gets: the same rows, in the same batches, in the same order, for the same
number of epochs (the batches depend only on ``seed``, the task name and the epoch). So both
sides see every training example of ``t`` equally often (``epochs`` times), and make one
forward/backward pass per batch of ``t``. Each run's learning-rate schedule spans its own
updates, so every model gets a full warm-up and decay. What differs is only what sharing is
about: the multi-task encoder also gets the other tasks' updates in between. Each head starts
from the same weights on both sides (drawn with a generator seeded by ``seed`` and the task
name). :attr:`MultiTaskRun.seen` counts how often each training row was seen, so the budget can
be checked.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from curation.messages import markdown_text
from fine_tune._model import freeze, load_encoder, model_name
from fine_tune.config import TrainConfig
from fine_tune.engine import (
    Setup,
    Task,
    Ticker,
    check_config,
    check_option,
    check_seeds,
    check_tasks,
    fit_planned,
    predict,
    prepare_tasks,
    release,
    setup_for,
)
from fine_tune.stats import (
    accuracy_and_macro_f1,
    mean_and_spread,
    paired_bootstrap_delta,
)

__all__ = ["POOLINGS", "SCHEDULES", "MultiHeadModel", "MultiTaskComparison", "MultiTaskRun",
           "TaskComparison", "batch_plan", "build_model", "compare_multitask",
           "split_train_test", "train_multitask", "train_single_task"]

#: How batches of the tasks are interleaved in multi-task training.
SCHEDULES = ("proportional", "round_robin")
#: How a text's token vectors become one vector for the heads.
POOLINGS = ("mean", "cls")

Progress = Callable[[float, str], None]
#: ``{task name: (train frame, test frame)}``.
Tasks = Mapping[str, tuple[pd.DataFrame, pd.DataFrame | None]]

BUDGET = ("Each single-task model sees exactly the batches of its task that the multi-task model "
          "sees: the same training rows, in the same batches and order, for the same number of "
          "epochs (every row seen `epochs` times, one forward/backward pass per batch); each run's "
          "learning-rate schedule spans its own updates.")


# --- the model ------------------------------------------------------------------------------

def _name_seed(seed: int, name: str) -> int:
    return (int(seed) * 1_000_003 + zlib.crc32(name.encode("utf-8"))) % 2**63


class MultiHeadModel(torch.nn.Module):
    """A shared encoder with one linear classification head per task.

    Parameters
    ----------
    encoder : torch.nn.Module
        A bare transformer (``AutoModel``) whose output has ``last_hidden_state``.
    heads : mapping of str to int
        Task name -> number of classes, in task order.
    pooling : {"mean", "cls"}
        ``"mean"``: the mean of the token vectors (padding left out), what sentence-transformers
        models such as the bundled MiniLM are trained for; ``"cls"``: the first token's vector.
    dropout : float, optional
        Dropout on the pooled vector before each head; defaults to the encoder's
        ``hidden_dropout_prob`` (0.1 for BERT).
    seed : int
        Seeds each head's initial weights together with its task name (normal with the
        encoder's ``initializer_range``, zero bias), so a task's head starts the same in any
        model built with the same seed.

    Attributes
    ----------
    encoder : torch.nn.Module
    heads : torch.nn.ModuleList
        One ``Linear(hidden_size, n_classes)`` per task, in the order of :attr:`task_names`.
    task_names : list of str
    """

    def __init__(self, encoder: torch.nn.Module, heads: Mapping[str, int], *,
                 pooling: str = "mean", dropout: float | None = None, seed: int = 0) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(map(repr, POOLINGS))}; got {pooling!r}.")
        if not heads:
            raise ValueError("heads is empty: give at least one task name and its number of classes.")
        self.encoder = encoder
        self.pooling = pooling
        self.task_names = [str(name) for name in heads]
        cfg = getattr(encoder, "config", None)
        hidden = int(getattr(cfg, "hidden_size", 0) or 0)
        if hidden < 1:
            raise ValueError(f"cannot tell the hidden size of a {type(encoder).__name__} "
                             "(no config.hidden_size); use a transformers encoder (AutoModel).")
        if dropout is None:
            dropout = float(getattr(cfg, "hidden_dropout_prob", 0.1) or 0.0)
        self.dropout = torch.nn.Dropout(dropout)
        std = float(getattr(cfg, "initializer_range", 0.02) or 0.02)
        self.heads = torch.nn.ModuleList()
        for name, n in heads.items():
            if int(n) < 2:
                raise ValueError(f"task {name!r} has {n} classes; a head needs at least 2.")
            head = torch.nn.Linear(hidden, int(n))
            gen = torch.Generator().manual_seed(_name_seed(seed, str(name)))
            with torch.no_grad():
                head.weight.copy_(torch.randn(head.weight.shape, generator=gen) * std)
                head.bias.zero_()
            self.heads.append(head)

    def head(self, task: str) -> torch.nn.Linear:
        """The head of ``task``."""
        return self.heads[self._index(task)]

    def _index(self, task: str) -> int:
        try:
            return self.task_names.index(task)
        except ValueError:
            raise ValueError(f"no head for task {task!r}; the tasks are "
                             f"{', '.join(map(repr, self.task_names))}.") from None

    def pool(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
             **extra: torch.Tensor) -> torch.Tensor:
        """The pooled representation, shape ``(batch, hidden_size)``."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra)
        hidden = out.last_hidden_state
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def forward(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                **extra: torch.Tensor) -> torch.Tensor:
        """Logits of ``task``'s head, shape ``(batch, n_classes)``."""
        return self.heads[self._index(task)](self.dropout(self.pool(input_ids, attention_mask, **extra)))


def build_model(config: TrainConfig, heads: Mapping[str, int], *, seed: int | None = None,
                pooling: str = "mean") -> MultiHeadModel:
    """The configured backbone (loaded offline) with one head per task, freezing applied.

    Parameters
    ----------
    config : TrainConfig
        ``model`` names the backbone; ``freeze_embeddings`` and ``freeze_layers`` are applied.
    heads : mapping of str to int
        Task name -> number of classes.
    seed : int, optional
        Seeds the heads' initial weights (default ``config.seed``).
    pooling : {"mean", "cls"}

    Raises
    ------
    ValueError
        When the backbone cannot be loaded offline, or the settings do not fit it.
    """
    check_config(config)
    model = MultiHeadModel(load_encoder(config), heads, pooling=pooling,
                           seed=config.seed if seed is None else seed)
    freeze(model.encoder, config)
    return model


# --- checks -----------------------------------------------------------------------------------


# --- data -----------------------------------------------------------------------------------

def split_train_test(frame: pd.DataFrame, test_size: float | int = 0.2, *, seed: int = 0,
                     name: str = "data") -> tuple[pd.DataFrame, pd.DataFrame]:
    """A stratified, seeded train/test split of one labelled frame.

    Parameters
    ----------
    frame : pandas.DataFrame
        Columns ``text`` and ``label``.
    test_size : float or int
        Share of the rows (in (0, 1)) or number of rows for the test set.
    seed : int
        Seeds the split.
    name : str
        What to call the frame in error messages (e.g. the file name).

    Returns
    -------
    (train, test)
        Both with a fresh index.

    Raises
    ------
    ValueError
        Missing columns, a label with a single row (it cannot be on both sides), or a test
        size that leaves a side empty.
    """
    from sklearn.model_selection import train_test_split

    missing = [c for c in ("text", "label") if c not in getattr(frame, "columns", [])]
    if missing:
        raise ValueError(f"{name}: no column(s) {missing}; the file needs columns text and label.")
    if isinstance(test_size, float) and not 0 < test_size < 1:
        raise ValueError(f"{name}: test share must be in (0, 1), e.g. 0.2; got {test_size}.")
    counts = frame["label"].astype(str).value_counts()
    lonely = counts[counts < 2]
    if not lonely.empty:
        raise ValueError(f"{name}: label(s) {', '.join(map(repr, lonely.index))} have a single row, "
                         "so a stratified split cannot put them in both train and test; add rows "
                         "or drop those labels.")
    try:
        train, test = train_test_split(frame, test_size=test_size, random_state=seed,
                                       stratify=frame["label"].astype(str))
    except ValueError as err:
        raise ValueError(f"{name}: cannot split {len(frame)} rows with {len(counts)} labels into "
                         f"train and test with test size {test_size} ({err}); use a test share "
                         "that leaves at least one row of each label on both sides.") from err
    return train.reset_index(drop=True), test.reset_index(drop=True)


# --- the batch plan -------------------------------------------------------------------------

def _task_epochs(n_rows: int, batch_size: int, epochs: float, seed: int,
                 name: str) -> list[list[np.ndarray]]:
    per_epoch = math.ceil(n_rows / batch_size)
    full, frac = int(math.floor(epochs)), float(epochs) - math.floor(epochs)
    out = []
    for epoch in range(math.ceil(epochs)):
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode("utf-8")), epoch])
        perm = rng.permutation(n_rows)
        batches = [perm[i:i + batch_size] for i in range(0, n_rows, batch_size)]
        if epoch == full and frac > 0:  # the partial last epoch
            batches = batches[:max(1, round(frac * per_epoch))]
        out.append(batches)
    return out


def batch_plan(rows: Mapping[str, int], *, batch_size: int, epochs: float, seed: int,
               schedule: str = "proportional") -> list[tuple[str, np.ndarray]]:
    """The order of training batches: ``(task name, row indices)`` pairs.

    Each task's batches depend only on its row count, ``batch_size``, ``epochs``, ``seed`` and
    its name (see the module docstring), so the plan of one task alone lists exactly that
    task's batches of a plan of several tasks, in the same order.

    Parameters
    ----------
    rows : mapping of str to int
        Task name -> number of training rows.
    batch_size : int
    epochs : float
        Passes over each task's rows (a fraction ends the last pass early).
    seed : int
    schedule : {"proportional", "round_robin"}
        How the tasks' batches of an epoch are interleaved.

    Returns
    -------
    list of (str, numpy.ndarray)

    Examples
    --------
    >>> plan = batch_plan({"a": 5, "b": 2}, batch_size=2, epochs=2, seed=0, schedule="round_robin")
    >>> [name for name, _ in plan]
    ['a', 'b', 'a', 'a', 'a', 'b', 'a', 'a']
    >>> sorted(np.concatenate([i for name, i in plan if name == "a"]).tolist())
    [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    """
    check_option("schedule", schedule, SCHEDULES)
    names = list(rows)
    per_task = {name: _task_epochs(int(rows[name]), batch_size, epochs, seed, name) for name in names}
    plan: list[tuple[str, np.ndarray]] = []
    for epoch in range(math.ceil(epochs)):
        queues = {name: list(per_task[name][epoch]) for name in names}
        if schedule == "round_robin":
            while any(queues.values()):
                for name in names:
                    if queues[name]:
                        plan.append((name, queues[name].pop(0)))
        else:
            order = np.repeat(np.arange(len(names)), [len(queues[n]) for n in names])
            order = np.random.default_rng([int(seed), 0x6D697800, epoch]).permutation(order)
            for k in order:
                name = names[int(k)]
                plan.append((name, queues[name].pop(0)))
    return plan


# --- the training loop ----------------------------------------------------------------------


# --- one run --------------------------------------------------------------------------------

@dataclass
class MultiTaskRun:
    """One training run: a multi-task model, or a single-task one (one task).

    Attributes
    ----------
    tasks : list of str
        The tasks the model has heads for, in order.
    labels : dict of str to list of str
        Each task's class order (index ``i`` of its predictions is ``labels[task][i]``).
    test_pred, test_proba : dict
        Each task's predicted class indices ``(n_test,)`` and probabilities
        ``(n_test, n_classes)``, in the test frame's order (None without a test frame).
    test_truth : dict
        Each task's true class indices (None without a test frame).
    seen : dict of str to numpy.ndarray
        How many times each training row of each task went through the model.
    batches : dict of str to int
        Training batches (forward/backward passes) per task.
    optimizer_steps : int
        Parameter updates in all.
    train_seconds : float
    device : str
    seed : int
    schedule : str
    config : TrainConfig
    model : MultiHeadModel or None
        The trained model (None when not kept).
    """

    tasks: list[str]
    labels: dict[str, list[str]]
    test_pred: dict[str, np.ndarray | None]
    test_proba: dict[str, np.ndarray | None]
    test_truth: dict[str, np.ndarray | None]
    seen: dict[str, np.ndarray]
    batches: dict[str, int]
    optimizer_steps: int
    train_seconds: float
    device: str
    seed: int
    schedule: str
    config: TrainConfig
    model: MultiHeadModel | None = None

    @property
    def examples_seen(self) -> dict[str, int]:
        """Training examples seen per task (rows x times seen)."""
        return {name: int(counts.sum()) for name, counts in self.seen.items()}

    def scores(self) -> dict[str, dict[str, float]]:
        """Accuracy and macro-F1 per task on its test rows (tasks without a test frame left out)."""
        out = {}
        for name in self.tasks:
            pred, truth = self.test_pred.get(name), self.test_truth.get(name)
            if pred is None or truth is None:
                continue
            acc, f1 = accuracy_and_macro_f1(truth, pred, labels=range(len(self.labels[name])))
            out[name] = {"accuracy": acc, "macro_f1": f1}
        return out


def _run(prepared: Mapping[str, Task], setup: Setup, seed: int, schedule: str, pooling: str,
         ticker: Ticker, *, label: str, keep_model: bool) -> MultiTaskRun:
    config = dataclasses.replace(setup.config, seed=seed)
    model = build_model(config, {n: len(t.labels) for n, t in prepared.items()}, seed=seed,
                        pooling=pooling)
    plan = batch_plan({n: len(t.train) for n, t in prepared.items()},
                      batch_size=config.batch_size, epochs=config.epochs, seed=seed,
                      schedule=schedule)
    fit = fit_planned(model, prepared, plan, setup, seed, ticker, label=label)
    pred, proba = {}, {}
    for name, task in prepared.items():
        pred[name], proba[name] = predict(model, task, setup) if task.test is not None else (None, None)
    run = MultiTaskRun(
        tasks=list(prepared), labels={n: list(t.labels) for n, t in prepared.items()},
        test_pred=pred, test_proba=proba, test_truth={n: t.test_truth for n, t in prepared.items()},
        seen=fit["seen"], batches=fit["batches"], optimizer_steps=fit["optimizer_steps"],
        train_seconds=fit["train_seconds"], device=str(setup.device), seed=seed,
        schedule=schedule, config=config, model=model if keep_model else None)
    if not keep_model:
        del model
        release(setup)
    return run


def _plan_length(prepared: Mapping[str, Task], config: TrainConfig) -> int:
    return len(batch_plan({n: len(t.train) for n, t in prepared.items()},
                          batch_size=config.batch_size, epochs=config.epochs, seed=0,
                          schedule="round_robin"))


def train_multitask(tasks: Tasks, config: TrainConfig | None = None, seed: int | None = None, *,
                    schedule: str = "proportional", pooling: str = "mean",
                    progress: Progress | None = None, keep_model: bool = True) -> MultiTaskRun:
    """Train one shared encoder with a head per task on all tasks at once.

    Parameters
    ----------
    tasks : dict of str to (DataFrame, DataFrame or None)
        Task name -> (train, test) frames with columns ``text`` and ``label``. Each task has
        its own label set. Without a test frame the task gets no predictions.
    config : TrainConfig, optional
        The backbone, ``epochs``, ``batch_size``, ``learning_rate``, ``warmup_ratio``,
        ``weight_decay``, ``max_length``, ``gradient_accumulation``, ``class_weights``,
        ``precision``, ``device``, freezing, ``eval_batch_size`` (``lora`` and
        ``unfreeze_schedule`` are not supported; early stopping and checkpoints are not used).
    seed : int, optional
        Seeds the heads, the batches and dropout (default ``config.seed``).
    schedule : {"proportional", "round_robin"}
        How the tasks' batches are interleaved (see the module docstring).
    pooling : {"mean", "cls"}
        Sentence vector for the heads (see :class:`MultiHeadModel`).
    progress : callable, optional
        ``progress(fraction, message)`` after every batch.
    keep_model : bool
        Keep the trained model in the result (False frees it).

    Returns
    -------
    MultiTaskRun

    Raises
    ------
    ValueError
        Bad frames (named by task, column and row), unsupported settings, or a model that
        cannot be loaded offline.
    """
    config = check_config(config)
    check_option("schedule", schedule, SCHEDULES)
    check_option("pooling", pooling, POOLINGS)
    checked = check_tasks(tasks, need_test=False)
    seed = config.seed if seed is None else check_seeds([seed])[0]
    setup = setup_for(config)
    prepared = prepare_tasks(checked, setup)
    ticker = Ticker(progress, _plan_length(prepared, config))
    return _run(prepared, setup, seed, schedule, pooling, ticker, label="multi-task",
                keep_model=keep_model)


def train_single_task(name: str, train: pd.DataFrame, test: pd.DataFrame | None = None,
                      config: TrainConfig | None = None, seed: int | None = None, *,
                      pooling: str = "mean", progress: Progress | None = None,
                      keep_model: bool = True) -> MultiTaskRun:
    """Train the same architecture on one task, with the budget it gets in multi-task training.

    The model is a :class:`MultiHeadModel` with one head, trained by the same loop on exactly
    the batches of ``name`` that :func:`train_multitask` with the same ``seed``, ``epochs`` and
    ``batch_size`` gives that task (same rows, batches, order and epochs; see the module
    docstring), and its head starts from the same weights. Pass the same ``name`` as in the
    multi-task call: the batches are seeded by it.

    Parameters
    ----------
    name : str
        The task's name.
    train, test : pandas.DataFrame
        Columns ``text`` and ``label``.
    config, seed, pooling, progress, keep_model
        As in :func:`train_multitask`.

    Returns
    -------
    MultiTaskRun
    """
    return train_multitask({name: (train, test)}, config, seed, pooling=pooling,
                           progress=progress, keep_model=keep_model)


# --- the comparison -------------------------------------------------------------------------

@dataclass
class TaskComparison:
    """Multi-task against single-task training on one task.

    Attributes
    ----------
    name : str
    labels : list of str
    n_train, n_test : int
    per_seed : list of dict
        ``{"seed", "multi": {"accuracy", "macro_f1"}, "single": {...}, "examples_seen":
        {"multi", "single"}}`` per seed.
    delta_accuracy : float
        Mean over seeds of accuracy (multi) - accuracy (single).
    delta_ci : (float, float)
        Paired bootstrap 95% interval of ``delta_accuracy`` over test items
        (:func:`fine_tune.stats.paired_bootstrap_delta` on the per-seed predictions: each
        item's correctness is averaged over the seeds, items are resampled).
    """

    name: str
    labels: list[str]
    n_train: int
    n_test: int
    per_seed: list[dict[str, Any]]
    delta_accuracy: float
    delta_ci: tuple[float, float]

    def summary(self, side: str) -> dict[str, dict[str, float]]:
        """Mean, std, min and max over seeds of ``side``'s accuracy and macro-F1."""
        return {m: mean_and_spread([r[side][m] for r in self.per_seed]) for m in ("accuracy", "macro_f1")}

    @property
    def delta_macro_f1(self) -> float:
        """Mean over seeds of macro-F1 (multi) - macro-F1 (single)."""
        return float(np.mean([r["multi"]["macro_f1"] - r["single"]["macro_f1"] for r in self.per_seed]))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary."""
        return {"labels": list(self.labels), "n_train": self.n_train, "n_test": self.n_test,
                "multi": self.summary("multi"), "single": self.summary("single"),
                "delta_accuracy": self.delta_accuracy, "delta_accuracy_ci": list(self.delta_ci),
                "delta_macro_f1": self.delta_macro_f1, "per_seed": self.per_seed}


@dataclass
class MultiTaskComparison:
    """What :func:`compare_multitask` found.

    Attributes
    ----------
    tasks : dict of str to TaskComparison
    seeds : list of int
    schedule, pooling : str
    config : TrainConfig
        The settings (``seed`` is replaced by each seed).
    n_boot : int
    train_seconds : dict
        ``{"multi": [...], "single": [...]}``: training time per seed (single: all tasks' models).
    device : str
    """

    tasks: dict[str, TaskComparison]
    seeds: list[int]
    schedule: str
    pooling: str
    config: TrainConfig
    n_boot: int
    train_seconds: dict[str, list[float]] = field(default_factory=dict)
    device: str = "cpu"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able report: settings, the budget rule, and per task the summaries, the
        difference with its interval, and the per-seed scores."""
        return {"kind": "multitask", "model": model_name(self.config), "seeds": list(self.seeds),
                "schedule": self.schedule, "pooling": self.pooling, "budget": BUDGET,
                "n_boot": self.n_boot, "device": self.device,
                "train_seconds": {k: list(v) for k, v in self.train_seconds.items()},
                "config": self.config.to_dict(),
                "tasks": {name: t.to_dict() for name, t in self.tasks.items()}}

    def to_markdown(self) -> str:
        """A short Markdown report: one table row per task and side, and the differences."""
        fmt = lambda s: f"{s['mean']:.3f} ± {s['std']:.3f}"  # noqa: E731
        md = markdown_text  # task and model names are the user's: shown as typed
        lines = ["# Multi-task vs single-task training", "",
                 f"Model {md(model_name(self.config))}, {len(self.seeds)} seed(s) "
                 f"({', '.join(map(str, self.seeds))}), {self.config.epochs} epoch(s), batch size "
                 f"{self.config.batch_size}, max length {self.config.max_length}, schedule "
                 f"`{self.schedule}`, pooling `{self.pooling}`, on {self.device}.", "",
                 f"Budget: {BUDGET}", "",
                 "| task | side | train rows | test rows | accuracy | macro-F1 |",
                 "|---|---|---:|---:|---:|---:|"]
        for name, t in self.tasks.items():
            for side in ("multi", "single"):
                s = t.summary(side)
                lines.append(f"| {md(name)} | {side} | {t.n_train} | {t.n_test} | {fmt(s['accuracy'])} "
                             f"| {fmt(s['macro_f1'])} |")
        lines += ["", "| task | Δ accuracy (multi − single) | 95% CI (paired bootstrap) | Δ macro-F1 |",
                  "|---|---:|---|---:|"]
        for name, t in self.tasks.items():
            lo, hi = t.delta_ci
            lines.append(f"| {md(name)} | {t.delta_accuracy:+.3f} | {lo:+.3f} to {hi:+.3f} "
                         f"| {t.delta_macro_f1:+.3f} |")
        secs = {k: float(np.mean(v)) for k, v in self.train_seconds.items() if v}
        if secs:
            lines += ["", "Training time per seed: " + ", ".join(f"{md(k)} {v:.1f} s" for k, v in secs.items())
                      + "."]
        return "\n".join(lines) + "\n"


def compare_multitask(tasks: Tasks, config: TrainConfig | None = None,
                      seeds: Sequence[int] = (0, 1, 2), *, schedule: str = "proportional",
                      pooling: str = "mean", n_boot: int = 2000,
                      progress: Progress | None = None) -> MultiTaskComparison:
    """Multi-task training against one single-task model per task, over several seeds.

    For each seed: one :func:`train_multitask` model on all tasks, and one
    :func:`train_single_task` model per task with the same budget; each scored on each task's
    test rows.

    Parameters
    ----------
    tasks : dict of str to (DataFrame, DataFrame)
        At least two tasks, each with a non-empty test frame.
    config : TrainConfig, optional
    seeds : sequence of int
    schedule, pooling
        As in :func:`train_multitask`.
    n_boot : int
        Bootstrap replicates of the differences.
    progress : callable, optional
        ``progress(fraction, message)`` after every batch of every run.

    Returns
    -------
    MultiTaskComparison

    Raises
    ------
    ValueError
        Fewer than two tasks, a task without test rows, bad frames, seeds or settings.
    """
    config = check_config(config)
    check_option("schedule", schedule, SCHEDULES)
    check_option("pooling", pooling, POOLINGS)
    checked = check_tasks(tasks, need_test=True, minimum=2)
    seeds = check_seeds(seeds)
    setup = setup_for(config)
    prepared = prepare_tasks(checked, setup)
    ticker = Ticker(progress, 2 * len(seeds) * _plan_length(prepared, config))
    per_seed: dict[str, list[dict[str, Any]]] = {name: [] for name in prepared}
    preds: dict[str, dict[str, list[np.ndarray]]] = {n: {"multi": [], "single": []} for n in prepared}
    seconds: dict[str, list[float]] = {"multi": [], "single": []}
    for seed in seeds:
        multi = _run(prepared, setup, seed, schedule, pooling, ticker,
                     label=f"seed {seed}, multi-task", keep_model=False)
        seconds["multi"].append(multi.train_seconds)
        singles = {name: _run({name: task}, setup, seed, schedule, pooling, ticker,
                              label=f"seed {seed}, {name} alone", keep_model=False)
                   for name, task in prepared.items()}
        seconds["single"].append(sum(r.train_seconds for r in singles.values()))
        multi_scores = multi.scores()
        for name in prepared:
            single = singles[name]
            if not np.array_equal(single.seen[name], multi.seen[name]):  # the budget, checked
                raise RuntimeError(f"task {name!r}: the single-task model saw other examples than "
                                   "the multi-task model; the batch plan is broken.")
            per_seed[name].append({"seed": seed, "multi": multi_scores[name],
                                   "single": single.scores()[name],
                                   "examples_seen": {"multi": multi.examples_seen[name],
                                                     "single": single.examples_seen[name]}})
            preds[name]["multi"].append(multi.test_pred[name])
            preds[name]["single"].append(single.test_pred[name])
    ticker.say("comparing")
    out = {}
    for name, task in prepared.items():
        delta, ci = paired_bootstrap_delta(task.test_truth, np.vstack(preds[name]["single"]),
                                           np.vstack(preds[name]["multi"]), n_boot=n_boot, seed=0)
        out[name] = TaskComparison(name=name, labels=list(task.labels), n_train=len(task.train),
                                   n_test=len(task.test), per_seed=per_seed[name],
                                   delta_accuracy=delta, delta_ci=ci)
    return MultiTaskComparison(tasks=out, seeds=seeds, schedule=schedule, pooling=pooling,
                               config=config, n_boot=n_boot, train_seconds=seconds,
                               device=str(setup.device))
