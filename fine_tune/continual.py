r"""Continual learning: train on data set A, then on B; how much of A is forgotten, with and without EWC.

Setting (task-incremental): one shared encoder and a separate linear head per data set (a
:class:`~fine_tune.multitask.MultiHeadModel` with heads A and B). Phase 1 trains the encoder and
head A on A's training rows; phase 2 trains the encoder and head B on B's training rows, head A
untouched. A's test set is scored with head A after phase 1 (``acc_A_after_A``) and after
phase 2 (``acc_A_after_B``); B's with head B after phase 2 (``acc_B``).
``forgetting = acc_A_after_A - acc_A_after_B``. Separate heads are the standard task-incremental
set-up and work whether or not the label sets match; what can be forgotten is then only what the
shared encoder loses, which is what elastic weight consolidation protects.

**Elastic weight consolidation** (Kirkpatrick et al. 2017, PNAS 114(13)). After phase 1 the
diagonal of the Fisher information of the encoder's trainable parameters is estimated on A's
training rows (:func:`fisher_diagonal`; up to ``fisher_samples`` rows),

.. math::

    F_i = \frac{1}{N}\sum_{n=1}^{N} \sum_{y} p_\theta(y \mid x_n)
          \left(\frac{\partial \log p_\theta(y \mid x_n)}{\partial \theta_i}\right)^2
          \Bigg|_{\theta = \theta^*},

the exact expectation over the model's own predictive distribution (the true Fisher, not the
"empirical" one with the observed labels; Kunstner et al. 2019), with dropout off. Phase 2 then
minimises B's mean cross-entropy plus

.. math::

    \frac{\lambda}{2} \sum_i F_i\, (\theta_i - \theta^*_i)^2

(:func:`ewc_penalty`), where :math:`\theta^*` are the encoder's weights after phase 1.

**The default** ``ewc_lambda`` (:data:`DEFAULT_EWC_LAMBDA` = 1e4). :math:`F` is a per-example
average, so :math:`\tfrac12 \Delta^\top F \Delta` approximates the rise of A's *mean* loss
when the weights move by :math:`\Delta`, and the Laplace (Bayesian) weighting of it against B's
mean loss is :math:`\lambda \approx N_A / N_B`, about 1 for data sets of similar size. That
hardly constrains a fine-tuned transformer: the Fisher of a transformer's weights is tiny per
weight, and the quadratic approximation only holds very near :math:`\theta^*`; EWC is used with
:math:`\lambda` orders of magnitude larger (Kirkpatrick et al. used hundreds to thousands on
MNIST-sized networks). So the default is set by a measurement instead: with the bundled MiniLM
(A = financial-phrasebank, B = amazon-crowd "negative", 300 training rows each, 2 epochs,
learning rate 1e-4, max length 64, Fisher on 100 rows, seed 0), plain fine-tuning on B moved
the encoder by a Fisher-weighted squared distance :math:`\sum_i F_i \Delta_i^2 = 4.5\times
10^{-5}` at a mean training loss on B of 0.30, so the penalty equals B's loss at plain
fine-tuning's drift for :math:`\lambda \approx 2 \cdot 0.30 / 4.5\times10^{-5} \approx
1.3\times10^4`. Sweeping :math:`\lambda` by factors of 10 from the same weights after A:
1e3 cut that distance 1.7-fold, **1e4 4.3-fold** (B's mean loss, penalty included, 0.36),
1e5 30-fold (0.43) and 1e6 190-fold (0.67: B barely trains). 1e4 is the order at which the
penalty and B's loss are of the same size, so the encoder is held near A's solution without
B's training being frozen. It depends on the data, the model and the learning rate: sweep
``ewc_lambda`` by factors of 10 (``benchmarks/continual_ewc.py --ewc-lambda``) for other
pairs of data sets.

:func:`compare_continual` trains phase 1 once per seed and runs phase 2 twice from the same
weights (plain and EWC, with the same batches and dropout seed), so the two differ only by the
penalty, and ``acc_A_after_A`` is shared.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch

from curation.messages import markdown_text
from fine_tune._model import model_name
from fine_tune.config import TrainConfig
from fine_tune.engine import (
    Setup,
    Task,
    Ticker,
    check_config,
    check_option,
    check_seeds,
    check_tasks,
    collate,
    fit_planned,
    predict,
    prepare_tasks,
    release,
    setup_for,
    to_device,
)
from fine_tune.multitask import POOLINGS, MultiHeadModel, batch_plan, build_model
from fine_tune.stats import (
    accuracy_and_macro_f1,
    mean_and_spread,
    paired_bootstrap_delta,
)

__all__ = ["DEFAULT_EWC_LAMBDA", "DEFAULT_FISHER_SAMPLES", "ContinualComparison", "ContinualRun",
           "compare_continual", "ewc_penalty", "fisher_diagonal", "train_continual"]

#: Default strength of the EWC penalty (see the module docstring for why).
DEFAULT_EWC_LAMBDA = 1e4
#: Default number of A's training rows the Fisher information is estimated on.
DEFAULT_FISHER_SAMPLES = 100
#: Metrics of one run, as named in reports.
METRICS = ("acc_A_after_A", "acc_A_after_B", "acc_B", "forgetting")

Progress = Callable[[float, str], None]
Pair = tuple[pd.DataFrame, pd.DataFrame]


# --- EWC --------------------------------------------------------------------------------------

def _trainable(module: torch.nn.Module) -> list[tuple[str, torch.nn.Parameter]]:
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad]


def ewc_penalty(module: torch.nn.Module, fisher: Mapping[str, torch.Tensor],
                anchor: Mapping[str, torch.Tensor], ewc_lambda: float) -> torch.Tensor:
    """The EWC penalty :math:`\\frac{\\lambda}{2}\\sum_i F_i (\\theta_i - \\theta^*_i)^2`.

    Parameters
    ----------
    module : torch.nn.Module
        The module whose current parameters are :math:`\\theta` (the encoder).
    fisher : mapping of str to torch.Tensor
        Diagonal Fisher information per parameter name of ``module`` (:func:`fisher_diagonal`).
    anchor : mapping of str to torch.Tensor
        The weights :math:`\\theta^*` to stay close to, per parameter name.
    ewc_lambda : float
        :math:`\\lambda \\ge 0`.

    Returns
    -------
    torch.Tensor
        A scalar, differentiable with respect to ``module``'s parameters.

    Raises
    ------
    ValueError
        A negative or non-finite ``ewc_lambda``, or a name of ``fisher`` that ``module`` or
        ``anchor`` lacks, or a shape that differs.
    """
    _check_lambda(ewc_lambda)
    params = dict(module.named_parameters())
    total: torch.Tensor | None = None
    for name, f in fisher.items():
        if name not in params or name not in anchor:
            raise ValueError(f"fisher has parameter {name!r}, which the module or the anchor lacks; "
                             "estimate the Fisher information on the same module.")
        p = params[name]
        if f.shape != p.shape or anchor[name].shape != p.shape:
            raise ValueError(f"parameter {name!r} has shape {tuple(p.shape)}, but its Fisher "
                             f"information {tuple(f.shape)} and anchor {tuple(anchor[name].shape)}; "
                             "estimate them on the same model.")
        term = (f.to(p.device) * (p.float() - anchor[name].to(p.device)) ** 2).sum()
        total = term if total is None else total + term
    if total is None:
        return torch.zeros(())
    return 0.5 * float(ewc_lambda) * total


def _check_lambda(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value < 0:
        raise ValueError(f"ewc_lambda must be a finite number >= 0 (0: plain fine-tuning; default "
                         f"{DEFAULT_EWC_LAMBDA:g}); got {value!r}.")
    return float(value)


def _fisher(model: MultiHeadModel, task: Task, setup: Setup, rows: np.ndarray,
            ticker: Ticker | None = None) -> dict[str, torch.Tensor]:
    named = _trainable(model.encoder)
    params = [p for _, p in named]
    out = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in named}
    model.to(setup.device).eval()  # dropout off: the Fisher of the deterministic model
    for k, i in enumerate(rows):
        batch = to_device(collate(task, np.array([i]), setup), setup.device)
        batch.pop("labels")
        logp = torch.log_softmax(model(task.name, **batch).float(), dim=-1)[0]
        probs = logp.detach().exp()
        for y in range(logp.shape[0]):
            grads = torch.autograd.grad(logp[y], params, retain_graph=y + 1 < logp.shape[0],
                                        allow_unused=True)
            for (n, _), g in zip(named, grads):
                if g is not None:
                    out[n].add_(probs[y] * g.float() ** 2)
        if ticker is not None:
            ticker.step(f"Fisher information: row {k + 1}/{len(rows)}")
    for f in out.values():
        f.div_(max(len(rows), 1))
    model.train()
    return out


def _fisher_rows(n: int, max_samples: int | None, seed: int) -> np.ndarray:
    if max_samples is None or max_samples >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng([int(seed), 0x46495348]).choice(n, max_samples, replace=False))


def _check_samples(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"fisher_samples must be a positive integer or None (all training rows); "
                         f"got {value!r}.")
    return int(value)


def fisher_diagonal(model: MultiHeadModel, task: str, frame: pd.DataFrame, *,
                    config: TrainConfig | None = None, labels: Sequence[str] | None = None,
                    max_samples: int | None = DEFAULT_FISHER_SAMPLES,
                    seed: int = 0) -> dict[str, torch.Tensor]:
    """Diagonal Fisher information of the encoder's trainable parameters on ``frame``.

    :math:`F_i = \\frac1N \\sum_n \\sum_y p(y\\mid x_n)\\,(\\partial_i \\log p(y\\mid x_n))^2`
    through ``task``'s head, dropout off; one forward and one backward pass per class per row.

    Parameters
    ----------
    model : MultiHeadModel
    task : str
        The head to go through.
    frame : pandas.DataFrame
        Columns ``text`` (and ``label``, only checked against ``labels``).
    config : TrainConfig, optional
        The tokenizer (``model``), ``max_length`` and device; the model's own backbone should
        be named here (default: the bundled MiniLM).
    labels : sequence of str, optional
        The head's classes (default: the sorted labels of ``frame``).
    max_samples : int or None
        Rows used at most (a seeded random subset); None uses every row.
    seed : int
        Seeds the subset.

    Returns
    -------
    dict of str to torch.Tensor
        Per parameter name of ``model.encoder`` (the trainable ones), a float32 tensor of the
        parameter's shape, all entries >= 0.
    """
    from fine_tune._inputs import check_frames, encode

    config = check_config(config)
    setup = setup_for(config)
    try:
        order = check_frames(frame, None, None, labels)
    except ValueError as err:
        raise ValueError(f"data set {task!r}: {err}") from None
    n_out = model.head(task).out_features
    if len(order) != n_out:
        raise ValueError(f"the head of {task!r} has {n_out} classes but the labels are {order!r}; "
                         "pass labels=[...] in the head's class order.")
    train, _ = encode(frame, setup.tokenizer, order, setup.max_length)
    prepared = Task(task, order, train, None, None, None, None)
    rows = _fisher_rows(len(train), _check_samples(max_samples), seed)
    return _fisher(model, prepared, setup, rows)


# --- one run ----------------------------------------------------------------------------------

@dataclass
class ContinualRun:
    """One seed of A-then-B training with one ``ewc_lambda`` (0: plain fine-tuning).

    Attributes
    ----------
    names : (str, str)
        The names of A and B (their heads).
    labels : dict of str to list of str
        Each head's class order.
    seed : int
    ewc_lambda : float
    acc_a_after_a, acc_a_after_b, acc_b : float
        Accuracy on A's test set after phase 1 and after phase 2, and on B's after phase 2.
    macro_f1_a_after_a, macro_f1_a_after_b, macro_f1_b : float
    pred_a_after_a, pred_a_after_b, pred_b : numpy.ndarray
        Predicted class indices, in the test frames' order.
    encoder_drift : float
        :math:`\\lVert\\theta - \\theta^*\\rVert_2` of the encoder's trainable weights at the end
        of phase 2.
    fisher_distance : float or None
        :math:`\\sum_i F_i (\\theta_i - \\theta^*_i)^2` at the end of phase 2 (None when no
        Fisher information was estimated).
    examples_seen : dict of str to int
        Training examples seen in each phase.
    seconds : dict of str to float
        Time of phase 1 (``"A"``), of the Fisher estimate (``"fisher"``) and of phase 2 (``"B"``).
    device : str
    config : TrainConfig
    model : MultiHeadModel or None
    fisher, anchor : dict or None
        The Fisher information and :math:`\\theta^*` (kept with the model).
    """

    names: tuple[str, str]
    labels: dict[str, list[str]]
    seed: int
    ewc_lambda: float
    acc_a_after_a: float
    acc_a_after_b: float
    acc_b: float
    macro_f1_a_after_a: float
    macro_f1_a_after_b: float
    macro_f1_b: float
    pred_a_after_a: np.ndarray
    pred_a_after_b: np.ndarray
    pred_b: np.ndarray
    encoder_drift: float
    fisher_distance: float | None
    examples_seen: dict[str, int]
    seconds: dict[str, float]
    device: str
    config: TrainConfig
    model: MultiHeadModel | None = None
    fisher: dict[str, torch.Tensor] | None = None
    anchor: dict[str, torch.Tensor] | None = None

    @property
    def forgetting(self) -> float:
        """``acc_A_after_A - acc_A_after_B``."""
        return self.acc_a_after_a - self.acc_a_after_b

    def metrics(self) -> dict[str, float]:
        """``{"acc_A_after_A", "acc_A_after_B", "acc_B", "forgetting"}``."""
        return {"acc_A_after_A": self.acc_a_after_a, "acc_A_after_B": self.acc_a_after_b,
                "acc_B": self.acc_b, "forgetting": self.forgetting}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record of the run (no predictions, model or tensors)."""
        return {"seed": self.seed, "ewc_lambda": self.ewc_lambda, **self.metrics(),
                "macro_f1_A_after_A": self.macro_f1_a_after_a,
                "macro_f1_A_after_B": self.macro_f1_a_after_b, "macro_f1_B": self.macro_f1_b,
                "encoder_drift": self.encoder_drift, "fisher_distance": self.fisher_distance,
                "examples_seen": dict(self.examples_seen), "seconds": dict(self.seconds)}


def _score(task: Task, pred: np.ndarray) -> tuple[float, float]:
    return accuracy_and_macro_f1(task.test_truth, pred, labels=range(len(task.labels)))


def _distances(model: MultiHeadModel, anchor: Mapping[str, torch.Tensor],
               fisher: Mapping[str, torch.Tensor] | None) -> tuple[float, float | None]:
    sq, weighted = 0.0, 0.0
    with torch.no_grad():
        for name, p in _trainable(model.encoder):
            d = (p.float() - anchor[name].to(p.device)) ** 2
            sq += float(d.sum())
            if fisher is not None:
                weighted += float((fisher[name].to(p.device) * d).sum())
    return math.sqrt(sq), (weighted if fisher is not None else None)


def _seed_runs(a: Task, b: Task, setup: Setup, seed: int, lambdas: Sequence[float],
               fisher_samples: int | None, pooling: str, ticker: Ticker, *,
               keep_model: bool) -> list[ContinualRun]:
    """Phase 1 once, then phase 2 once per ``lambdas`` entry from the same weights."""
    config = dataclasses.replace(setup.config, seed=seed)
    model = build_model(config, {a.name: len(a.labels), b.name: len(b.labels)}, seed=seed,
                        pooling=pooling)
    encoder = _trainable(model.encoder)

    def plan(task: Task) -> list:
        return batch_plan({task.name: len(task.train)}, batch_size=config.batch_size,
                          epochs=config.epochs, seed=seed)

    fit_a = fit_planned(model, {a.name: a}, plan(a), setup, seed, ticker, label=f"seed {seed}, phase 1 ({a.name})",
                 trainable=encoder + _trainable(model.head(a.name)))
    pred_a1, _ = predict(model, a, setup)
    acc_a1, f1_a1 = _score(a, pred_a1)
    snapshot = {k: v.detach().clone() for k, v in model.state_dict().items()}
    anchor = {n: p.detach().clone().float() for n, p in encoder}
    fisher, fisher_seconds = None, 0.0
    if any(lam > 0 for lam in lambdas):
        start = time.perf_counter()
        fisher = _fisher(model, a, setup, _fisher_rows(len(a.train), fisher_samples, seed), ticker)
        fisher_seconds = time.perf_counter() - start
    runs = []
    for lam in lambdas:
        model.load_state_dict(snapshot)
        penalty = (lambda lam=lam: ewc_penalty(model.encoder, fisher, anchor, lam)) if lam > 0 else None
        label = f"seed {seed}, phase 2 ({b.name}, " + (f"EWC λ={lam:g})" if lam > 0 else "plain)")
        fit_b = fit_planned(model, {b.name: b}, plan(b), setup, seed, ticker, label=label,
                     trainable=_trainable(model.encoder) + _trainable(model.head(b.name)),
                     penalty=penalty)
        pred_a2, _ = predict(model, a, setup)
        pred_b, _ = predict(model, b, setup)
        (acc_a2, f1_a2), (acc_b, f1_b) = _score(a, pred_a2), _score(b, pred_b)
        drift, weighted = _distances(model, anchor, fisher)
        keep = keep_model and lam == lambdas[-1]
        runs.append(ContinualRun(
            names=(a.name, b.name), labels={a.name: list(a.labels), b.name: list(b.labels)},
            seed=seed, ewc_lambda=float(lam), acc_a_after_a=acc_a1, acc_a_after_b=acc_a2,
            acc_b=acc_b, macro_f1_a_after_a=f1_a1, macro_f1_a_after_b=f1_a2, macro_f1_b=f1_b,
            pred_a_after_a=pred_a1, pred_a_after_b=pred_a2, pred_b=pred_b, encoder_drift=drift,
            fisher_distance=weighted,
            examples_seen={a.name: int(fit_a["seen"][a.name].sum()),
                           b.name: int(fit_b["seen"][b.name].sum())},
            seconds={"A": fit_a["train_seconds"], "fisher": fisher_seconds if lam > 0 else 0.0,
                     "B": fit_b["train_seconds"]},
            device=str(setup.device), config=config, model=model if keep else None,
            fisher=fisher if keep else None, anchor=anchor if keep else None))
    if not keep_model:
        del model, snapshot
        release(setup)
    return runs


def _check_names(names: Any) -> tuple[str, str]:
    if (not isinstance(names, (tuple, list)) or len(names) != 2
            or not all(isinstance(n, str) and n.strip() for n in names) or names[0] == names[1]):
        raise ValueError(f"names must be two different non-empty strings such as ('A', 'B'); "
                         f"got {names!r}.")
    return str(names[0]), str(names[1])


def _prepare_pair(a: Any, b: Any, names: Any, setup_config: TrainConfig) -> tuple[Setup, Task, Task]:
    names = _check_names(names)
    checked = check_tasks({names[0]: a, names[1]: b}, need_test=True, minimum=2)
    setup = setup_for(setup_config)
    prepared = prepare_tasks(checked, setup)
    return setup, prepared[names[0]], prepared[names[1]]


def _ticks(a: Task, b: Task, config: TrainConfig, n_phase_b: int, fisher_rows: int) -> int:
    def n(task: Task) -> int:
        return len(batch_plan({task.name: len(task.train)}, batch_size=config.batch_size,
                              epochs=config.epochs, seed=0))

    return n(a) + fisher_rows + n_phase_b * n(b)


def train_continual(a: Pair, b: Pair, config: TrainConfig | None = None, seed: int | None = None, *,
                    ewc_lambda: float = DEFAULT_EWC_LAMBDA, names: Sequence[str] = ("A", "B"),
                    fisher_samples: int | None = DEFAULT_FISHER_SAMPLES, pooling: str = "mean",
                    progress: Progress | None = None, keep_model: bool = True) -> ContinualRun:
    """Train on A, then on B (with EWC when ``ewc_lambda > 0``); score A before and after, and B.

    Parameters
    ----------
    a, b : (DataFrame, DataFrame)
        (train, test) frames with columns ``text`` and ``label``; the label sets may differ.
    config : TrainConfig, optional
        Settings of both phases (each phase runs ``epochs`` over its data, with its own
        warm-up and decay); as in :func:`fine_tune.multitask.train_multitask`.
    seed : int, optional
        Default ``config.seed``.
    ewc_lambda : float
        :math:`\\lambda` of the EWC penalty; 0 is plain fine-tuning (no Fisher estimate).
    names : (str, str)
        Names of the two heads.
    fisher_samples : int or None
        A's training rows the Fisher information is estimated on (None: all).
    pooling : {"mean", "cls"}
    progress : callable, optional
        ``progress(fraction, message)`` after every batch and Fisher row.
    keep_model : bool
        Keep the model, the Fisher information and the anchor in the result.

    Returns
    -------
    ContinualRun

    Raises
    ------
    ValueError
        Bad frames (named by data set, column and row), settings, ``ewc_lambda`` or names.
    """
    config = check_config(config)
    lam = _check_lambda(ewc_lambda)
    fisher_samples = _check_samples(fisher_samples)
    check_option("pooling", pooling, POOLINGS)
    seed = config.seed if seed is None else check_seeds([seed])[0]
    setup, task_a, task_b = _prepare_pair(a, b, names, config)
    n_fisher = len(_fisher_rows(len(task_a.train), fisher_samples, seed)) if lam > 0 else 0
    ticker = Ticker(progress, _ticks(task_a, task_b, config, 1, n_fisher))
    return _seed_runs(task_a, task_b, setup, seed, [lam], fisher_samples, pooling, ticker,
                      keep_model=keep_model)[0]


# --- the comparison ---------------------------------------------------------------------------

@dataclass
class ContinualComparison:
    """Plain fine-tuning against EWC on A then B, over several seeds.

    Attributes
    ----------
    names : (str, str)
    labels : dict of str to list of str
    n_train, n_test : dict of str to int
    seeds : list of int
    ewc_lambda : float
    fisher_samples : int or None
    runs : dict of str to list of ContinualRun
        ``{"plain": [...], "ewc": [...]}``, one run per seed, in seed order.
    forgetting_reduction : float
        Mean over seeds of forgetting (plain) - forgetting (EWC). Phase 1 is shared, so this
        is acc_A_after_B (EWC) - acc_A_after_B (plain).
    forgetting_reduction_ci : (float, float)
        Paired bootstrap 95% interval over A's test items
        (:func:`fine_tune.stats.paired_bootstrap_delta` on the per-seed predictions).
    b_accuracy_change, b_accuracy_change_ci : float, (float, float)
        acc_B (EWC) - acc_B (plain), and its interval over B's test items: what EWC costs on B.
    config : TrainConfig
    n_boot : int
    device : str
    """

    names: tuple[str, str]
    labels: dict[str, list[str]]
    n_train: dict[str, int]
    n_test: dict[str, int]
    seeds: list[int]
    ewc_lambda: float
    fisher_samples: int | None
    runs: dict[str, list[ContinualRun]]
    forgetting_reduction: float
    forgetting_reduction_ci: tuple[float, float]
    b_accuracy_change: float
    b_accuracy_change_ci: tuple[float, float]
    config: TrainConfig
    n_boot: int
    device: str = "cpu"
    pooling: str = "mean"
    notes: list[str] = field(default_factory=list)

    def summary(self, method: str) -> dict[str, dict[str, float]]:
        """Mean, std, min and max over seeds of each metric of ``method`` ("plain" or "ewc")."""
        return {m: mean_and_spread([r.metrics()[m] for r in self.runs[method]]) for m in METRICS}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able report: settings, per-seed runs, summaries and the differences."""
        a, b = self.names
        return {"kind": "continual", "model": model_name(self.config),
                "A": {"name": a, "labels": self.labels[a], "n_train": self.n_train[a],
                      "n_test": self.n_test[a]},
                "B": {"name": b, "labels": self.labels[b], "n_train": self.n_train[b],
                      "n_test": self.n_test[b]},
                "seeds": list(self.seeds), "ewc_lambda": self.ewc_lambda,
                "fisher_samples": self.fisher_samples, "pooling": self.pooling,
                "n_boot": self.n_boot, "device": self.device,
                "plain": {"summary": self.summary("plain"),
                          "per_seed": [r.to_dict() for r in self.runs["plain"]]},
                "ewc": {"summary": self.summary("ewc"),
                        "per_seed": [r.to_dict() for r in self.runs["ewc"]]},
                "forgetting_reduction": self.forgetting_reduction,
                "forgetting_reduction_ci": list(self.forgetting_reduction_ci),
                "b_accuracy_change": self.b_accuracy_change,
                "b_accuracy_change_ci": list(self.b_accuracy_change_ci),
                "config": self.config.to_dict()}

    def to_markdown(self) -> str:
        """A short Markdown report: one table row per method, and the differences."""
        a_key, b_key = self.names
        a, b = markdown_text(a_key), markdown_text(b_key)  # the user's task names: shown as typed
        fmt = lambda s: f"{s['mean']:.3f} ± {s['std']:.3f}"  # noqa: E731
        lines = ["# Continual learning: plain fine-tuning vs EWC", "",
                 f"Model {markdown_text(model_name(self.config))}: trained on **{a}** "
                 f"({self.n_train[a_key]} rows), "
                 f"then on **{b}** ({self.n_train[b_key]} rows), separate heads; "
                 f"{self.config.epochs} epoch(s) per phase, {len(self.seeds)} seed(s), EWC λ = "
                 f"{self.ewc_lambda:g} (Fisher on "
                 f"{'all' if self.fisher_samples is None else f'up to {self.fisher_samples}'} rows of "
                 f"{a}), on {self.device}.", "",
                 f"| method | acc {a} after {a} | acc {a} after {b} | forgetting | acc {b} |",
                 "|---|---:|---:|---:|---:|"]
        for method in ("plain", "ewc"):
            s = self.summary(method)
            lines.append(f"| {method} | {fmt(s['acc_A_after_A'])} | {fmt(s['acc_A_after_B'])} "
                         f"| {fmt(s['forgetting'])} | {fmt(s['acc_B'])} |")
        lo, hi = self.forgetting_reduction_ci
        blo, bhi = self.b_accuracy_change_ci
        lines += ["", f"Forgetting reduced by EWC (plain − EWC): {self.forgetting_reduction:+.3f} "
                      f"(95% CI {lo:+.3f} to {hi:+.3f}, paired bootstrap over {self.n_test[a_key]} test "
                      f"items of {a}).",
                  f"Accuracy on {b}, EWC − plain: {self.b_accuracy_change:+.3f} "
                  f"(95% CI {blo:+.3f} to {bhi:+.3f}).", ""]
        lines += [f"- {markdown_text(note)}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def compare_continual(a: Pair, b: Pair, config: TrainConfig | None = None,
                      seeds: Sequence[int] = (0, 1, 2), ewc_lambda: float = DEFAULT_EWC_LAMBDA, *,
                      names: Sequence[str] = ("A", "B"),
                      fisher_samples: int | None = DEFAULT_FISHER_SAMPLES, pooling: str = "mean",
                      n_boot: int = 2000, progress: Progress | None = None) -> ContinualComparison:
    """Plain fine-tuning against EWC when training on A then B, over several seeds.

    Per seed, phase 1 (A) runs once; phase 2 (B) runs from the same weights twice, plain and
    with EWC, on the same batches with the same dropout seed.

    Parameters
    ----------
    a, b : (DataFrame, DataFrame)
        (train, test) frames with columns ``text`` and ``label``.
    config : TrainConfig, optional
    seeds : sequence of int
    ewc_lambda : float
        :math:`\\lambda > 0` of the EWC side (default :data:`DEFAULT_EWC_LAMBDA`).
    names, fisher_samples, pooling
        As in :func:`train_continual`.
    n_boot : int
        Bootstrap replicates of the differences.
    progress : callable, optional
        ``progress(fraction, message)`` after every batch and Fisher row.

    Returns
    -------
    ContinualComparison

    Raises
    ------
    ValueError
        Bad frames, seeds, settings, or ``ewc_lambda <= 0``.
    """
    config = check_config(config)
    lam = _check_lambda(ewc_lambda)
    if lam == 0:
        raise ValueError("ewc_lambda must be > 0 to compare EWC with plain fine-tuning (0 is plain "
                         f"fine-tuning); the default is {DEFAULT_EWC_LAMBDA:g}.")
    fisher_samples = _check_samples(fisher_samples)
    check_option("pooling", pooling, POOLINGS)
    seeds = check_seeds(seeds)
    setup, task_a, task_b = _prepare_pair(a, b, names, config)
    ticks = sum(_ticks(task_a, task_b, config, 2, len(_fisher_rows(len(task_a.train), fisher_samples, s)))
                for s in seeds)
    ticker = Ticker(progress, ticks)
    runs: dict[str, list[ContinualRun]] = {"plain": [], "ewc": []}
    for seed in seeds:
        plain, ewc = _seed_runs(task_a, task_b, setup, seed, [0.0, lam], fisher_samples, pooling,
                                ticker, keep_model=False)
        runs["plain"].append(plain)
        runs["ewc"].append(ewc)
    ticker.say("comparing")
    stack = lambda method, attr: np.vstack([getattr(r, attr) for r in runs[method]])  # noqa: E731
    reduction, ci = paired_bootstrap_delta(task_a.test_truth, stack("plain", "pred_a_after_b"),
                                           stack("ewc", "pred_a_after_b"), n_boot=n_boot, seed=0)
    change, b_ci = paired_bootstrap_delta(task_b.test_truth, stack("plain", "pred_b"),
                                          stack("ewc", "pred_b"), n_boot=n_boot, seed=0)
    names = (task_a.name, task_b.name)
    notes = [f"Forgetting = acc {names[0]} after {names[0]} − acc {names[0]} after {names[1]}; "
             "phase 1 is shared by both methods (same weights after it).",
             "Separate heads per data set (task-incremental); EWC penalises the encoder's drift "
             "weighted by its Fisher information on the first data set."]
    return ContinualComparison(
        names=names, labels={t.name: list(t.labels) for t in (task_a, task_b)},
        n_train={t.name: len(t.train) for t in (task_a, task_b)},
        n_test={t.name: len(t.test) for t in (task_a, task_b)}, seeds=seeds, ewc_lambda=lam,
        fisher_samples=fisher_samples, runs=runs, forgetting_reduction=reduction,
        forgetting_reduction_ci=ci, b_accuracy_change=change, b_accuracy_change_ci=b_ci,
        config=config, n_boot=n_boot, device=str(setup.device), pooling=pooling, notes=notes)
