"""Retrain and compare: train on the data before and after curation, judge both on one test set.

:func:`compare` trains one model per side and seed (same settings, same seeds, same test
set), then reports the accuracy of each side over seeds, the paired change with a bootstrap
interval over test items, McNemar's exact test on the seeds' ensembles, per-class F1,
confusion matrices and each run's loss-curve diagnosis, with a plain-English verdict.

Runs go seed by seed (before, then after), so a cancelled comparison keeps paired results.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from curation._messages import format_list, suggest
from fine_tune.stats import (
    accuracy_and_macro_f1,
    ensemble_predictions,
    mcnemar_exact,
    mean_and_spread,
    paired_bootstrap_delta,
    per_class_f1,
)

__all__ = ["CompareReport", "SideSummary", "compare", "split_validation", "validate_frames"]

logger = logging.getLogger(__name__)

SIDES = ("before", "after")
#: One minus the coverage of the reported interval, and the significance level of McNemar.
ALPHA = 0.05

Progress = Callable[[float, str], None]


def _default_trainer() -> Callable[..., Any]:
    """The real trainer (imported lazily: it pulls in torch). Tests monkeypatch this hook."""
    from fine_tune.train import train_classifier

    return train_classifier


def _default_config() -> Any:
    from fine_tune.config import TrainConfig

    return TrainConfig()


@dataclass
class SideSummary:
    """One side's training data and results over the seeds that finished."""

    n_train: int
    class_counts: dict[str, int]
    accuracy: dict[str, float | None]
    macro_f1: dict[str, float | None]
    per_seed: list[dict[str, Any]] = field(default_factory=list)
    per_class_f1: dict[str, float] = field(default_factory=dict)
    confusion: list[list[int]] = field(default_factory=list)
    diagnosis: list[dict[str, Any]] = field(default_factory=list)
    histories: list[list[dict[str, Any]]] = field(default_factory=list)
    n_augmented: int = 0


@dataclass
class CompareReport:
    """Everything the Retrain page, ``python -m fine_tune compare`` and the job files show."""

    labels: list[str]
    test_size: int
    seeds: list[int]
    config: dict[str, Any]
    before: SideSummary
    after: SideSummary
    delta: float | None
    delta_ci: tuple[float, float] | None
    mcnemar: dict[str, Any] | None
    macro_f1_delta: float | None
    verdict: str
    cancelled: bool = False
    n_boot: int = 2000
    validation_size: float = 0.1
    paired_seeds: list[int] = field(default_factory=list)
    #: Post-processing rules on each side's ensemble: ``{"source", "before": {...}, "after":
    #: {...}}`` with accuracy without/with the rules and every override (RuleSet.evaluate).
    rules: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict: the headline keys first, then every field."""
        head = {
            "verdict": self.verdict, "cancelled": self.cancelled,
            "accuracy_before": self.before.accuracy["mean"],
            "accuracy_after": self.after.accuracy["mean"],
            "delta": self.delta, "delta_ci": list(self.delta_ci) if self.delta_ci else None,
            "mcnemar_p": self.mcnemar["p_value"] if self.mcnemar else None,
            "macro_f1_before": self.before.macro_f1["mean"],
            "macro_f1_after": self.after.macro_f1["mean"],
            "macro_f1_delta": self.macro_f1_delta, "per_seed": self._per_seed_pairs()}
        rest = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        rest["before"], rest["after"] = dataclasses.asdict(self.before), dataclasses.asdict(self.after)
        return _jsonable({**head, **{k: v for k, v in rest.items() if k not in head}})

    def _per_seed_pairs(self) -> list[dict[str, Any]]:
        rows = {s: {"seed": s} for s in self.seeds}
        for side in SIDES:
            for run in getattr(self, side).per_seed:
                rows[run["seed"]].update({f"accuracy_{side}": run["accuracy"],
                                          f"macro_f1_{side}": run["macro_f1"]})
        keys = [f"{m}_{s}" for m in ("accuracy", "macro_f1") for s in SIDES]
        return [{"seed": r["seed"], **{k: r.get(k) for k in keys}} for r in rows.values()
                if len(r) > 1]

    def to_markdown(self) -> str:
        """The report as Markdown (see :func:`fine_tune.report.render_markdown`)."""
        from fine_tune.report import render_markdown

        return render_markdown(self)

    def to_html(self) -> str:
        """The report as one self-contained HTML page (see :func:`fine_tune.report.render_html`)."""
        from fine_tune.report import render_html

        return render_html(self)


def _jsonable(value: Any) -> Any:
    """Plain Python values: numpy scalars and arrays converted, NaN and infinities to None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if hasattr(value, "value") and hasattr(type(value), "__members__"):  # an Enum
        return _jsonable(value.value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


# --- validation -----------------------------------------------------------------------------

def _check_columns(frame: Any, name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame with columns text, label; "
                         f"got {type(frame).__name__}.")
    for col in ("text", "label"):
        if col not in frame.columns:
            raise ValueError(f"{name} has no column {col!r} (columns: {format_list(frame.columns)}); "
                             f"rename a column to {col!r}{suggest(col, list(frame.columns))}")
    if frame.empty:
        raise ValueError(f"{name} has no rows; pass at least one labelled text.")
    return frame.reset_index(drop=True)


def _check_blank(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    for col in ("text", "label"):
        values = frame[col]
        blank = values.isna() | values.astype(str).str.strip().eq("")
        if blank.any():
            raise ValueError(f"{name} has an empty {col} in rows {format_list(np.flatnonzero(blank))} "
                             f"(counting from 0); fill them in or drop those rows.")
    return frame.assign(text=frame["text"].astype(str), label=frame["label"].astype(str))


def _check_test_labels(test: pd.DataFrame, train_labels: set[str]) -> None:
    unknown = ~test["label"].isin(train_labels)
    if unknown.any():
        bad = sorted(set(test.loc[unknown, "label"]))
        raise ValueError(f"test labels {format_list(map(repr, bad))} (rows "
                         f"{format_list(np.flatnonzero(unknown))}) never occur in the training data, "
                         "so no model can predict them; drop those test rows or add training "
                         "examples of those labels.")


def _check_leakage(before: pd.DataFrame, after: pd.DataFrame, test: pd.DataFrame) -> None:
    from curation.splits import normalise_text

    seen = {side: set(frame["text"].map(normalise_text)) for side, frame in
            (("before", before), ("after", after))}
    keys = test["text"].map(normalise_text)
    leaked = keys.isin(seen["before"] | seen["after"])
    if leaked.any():
        rows = np.flatnonzero(leaked)
        where = [s for s in SIDES if keys[leaked].isin(seen[s]).any()]
        shown = format_list(f"{i} ({test['text'].iat[i][:40]!r})" for i in rows)
        raise ValueError(f"{len(rows)} test rows also appear in the {' and '.join(where)} training "
                         f"data (after normalising case, spaces and punctuation): test rows {shown}. "
                         "A model scored on texts it trained on looks better than it is: remove "
                         "them from training or from the test set.")


def validate_frames(before: pd.DataFrame, after: pd.DataFrame,
                    test: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Checked copies of the three frames (text and label as str) and the sorted label list.

    Raises ``ValueError`` for a missing column, an empty text or label, a test label no
    training side has, or a test text that also appears in training data.
    """
    frames = [_check_blank(_check_columns(f, n), n) for f, n in
              ((before, "before"), (after, "after"), (test, "test"))]
    before, after, test = frames
    train_labels = set(before["label"]) | set(after["label"])
    _check_test_labels(test, train_labels)
    _check_leakage(before, after, test)
    return before, after, test, sorted(train_labels | set(test["label"]))


# --- validation split -----------------------------------------------------------------------

def _augmented_mask(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Rows that are augmented, and rows that are the source of an augmented row."""
    if "augmented_from" not in frame.columns:
        none = pd.Series(False, index=frame.index)
        return none, none
    src = frame["augmented_from"]
    augmented = src.notna() & src.astype(str).str.strip().ne("")
    sources = set(src[augmented].astype(str).str.strip())
    key = frame["item_id"].astype(str) if "item_id" in frame.columns else frame["text"]
    return augmented, key.isin(sources) & ~augmented


def _n_validation(n_rows: int, n_pool: int, validation_size: float) -> int:
    return min(max(1, round(validation_size * n_rows)), n_pool // 2)


def split_validation(frame: pd.DataFrame, *, validation_size: float = 0.1,
                     seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Split a training frame into train and validation, stratified by label where possible.

    Augmented rows (non-empty ``augmented_from``), their sources (matched on ``item_id``, or
    on ``text`` without one) and any row whose normalised text equals an augmented text stay
    in train, so no augmented text has a twin in validation. A validation row whose
    normalised text also appears in train goes back to train. ``validation_size`` is the
    share of the whole frame, capped at half the rows that may go to validation; 0 gives no
    validation set (``None``).

    Examples
    --------
    >>> frame = pd.DataFrame({"item_id": ["1", "2", "3", "4", "5", "6", "1a"],
    ...                       "text": ["a", "b", "c", "d", "e", "f", "a!"],
    ...                       "label": ["x", "y", "x", "y", "x", "y", "x"],
    ...                       "augmented_from": [None, None, None, None, None, None, "1"]})
    >>> train, val = split_validation(frame, validation_size=0.3, seed=0)
    >>> len(train), len(val), {"1", "1a"} & set(val["item_id"])
    (5, 2, set())
    """
    from curation.splits import normalise_text
    from sklearn.model_selection import train_test_split

    if not 0 <= validation_size < 1:
        raise ValueError(f"validation_size must be in [0, 1), e.g. 0.1; got {validation_size!r}.")
    frame = frame.reset_index(drop=True)
    augmented, sources = _augmented_mask(frame)
    keys = frame["text"].astype(str).map(normalise_text)
    pinned = augmented | sources | keys.isin(set(keys[augmented]))
    pool = frame.index[~pinned]
    n_val = _n_validation(len(frame), len(pool), validation_size) if validation_size > 0 else 0
    if n_val == 0:
        return frame.reset_index(drop=True), None
    labels = frame.loc[pool, "label"]
    counts = labels.value_counts()
    stratify = labels if counts.min() >= 2 and len(counts) <= min(n_val, len(pool) - n_val) else None
    _, val_idx = train_test_split(pool, test_size=n_val, stratify=stratify, random_state=seed)
    train_keys = set(keys.drop(index=val_idx))
    val_idx = [i for i in val_idx if keys[i] not in train_keys]
    if not val_idx:
        return frame.reset_index(drop=True), None
    return (frame.drop(index=val_idx).reset_index(drop=True),
            frame.loc[sorted(val_idx)].reset_index(drop=True))


# --- one run --------------------------------------------------------------------------------

def _to_codes(pred: Any, result_labels: Sequence[str], labels: list[str], n: int) -> np.ndarray:
    """Predictions as indices into ``labels`` (from indices into the result's labels, or names)."""
    arr = np.asarray(pred)
    if arr.shape != (n,):
        raise ValueError(f"the trainer returned {arr.shape} test predictions for {n} test rows; "
                         "it must return one prediction per test row.")
    if arr.dtype.kind in "iu":
        if arr.size and (arr.min() < 0 or arr.max() >= len(result_labels)):
            raise ValueError(f"the trainer returned class indices outside 0..{len(result_labels) - 1} "
                             f"(its labels: {list(result_labels)}); return indices into its labels.")
        names = np.asarray(result_labels, dtype=object)[arr]
    else:
        names = arr.astype(str)
    index = {label: i for i, label in enumerate(labels)}
    unknown = sorted({str(x) for x in names if x not in index})
    if unknown:
        raise ValueError(f"the trainer predicted labels {format_list(unknown)} outside the label set "
                         f"{labels}; pass labels= to the trainer and keep its order.")
    return np.array([index[x] for x in names], dtype=int)


def _to_proba(result: Any, codes: np.ndarray, labels: list[str]) -> np.ndarray:
    """Test probabilities with columns in ``labels`` order (one-hot predictions when absent)."""
    proba = getattr(result, "test_proba", None)
    if proba is None:
        return np.eye(len(labels))[codes]
    proba = np.asarray(proba, dtype=float)
    own = list(getattr(result, "labels", labels) or labels)
    if own != labels:
        proba = proba[:, [own.index(label) for label in labels]]
    return proba


def _history_records(history: Any) -> list[dict[str, Any]]:
    if history is None:
        return []
    frame = history if isinstance(history, pd.DataFrame) else pd.DataFrame(history)
    return _jsonable(frame.to_dict("records"))


def _diagnosis_dict(diagnosis: Any) -> dict[str, Any]:
    if diagnosis is None:
        return {}
    if hasattr(diagnosis, "to_dict"):
        return _jsonable(diagnosis.to_dict())
    return _jsonable(dict(diagnosis))


@dataclass
class _Run:
    """What one finished training run contributed."""

    seed: int
    codes: np.ndarray
    proba: np.ndarray
    record: dict[str, Any]
    diagnosis: dict[str, Any]
    history: list[dict[str, Any]]


def _finish_run(result: Any, seed: int, test: pd.DataFrame, labels: list[str]) -> _Run:
    if getattr(result, "test_pred", None) is None:
        raise ValueError("the trainer returned no test predictions; pass the test frame to it.")
    own = list(getattr(result, "labels", None) or labels)
    codes = _to_codes(result.test_pred, own, labels, len(test))
    truth = test["label"].map({label: i for i, label in enumerate(labels)}).to_numpy()
    acc, f1 = accuracy_and_macro_f1(truth, codes, labels=range(len(labels)))
    record = {"seed": seed, "accuracy": acc, "macro_f1": f1,
              "train_seconds": getattr(result, "train_seconds", None),
              "samples_per_second": getattr(result, "train_samples_per_second", None),
              "best_epoch": getattr(result, "best_epoch", None),
              "peak_memory_mb": getattr(result, "peak_memory_mb", None),
              "device": getattr(result, "device", None)}
    return _Run(seed, codes, _to_proba(result, codes, labels), _jsonable(record),
                _diagnosis_dict(getattr(result, "diagnosis", None)),
                _history_records(getattr(result, "history", None)))


# --- summaries and verdict ------------------------------------------------------------------

def _confusion(truth: np.ndarray, pred: np.ndarray, k: int) -> list[list[int]]:
    matrix = np.zeros((k, k), dtype=int)
    np.add.at(matrix, (truth, pred), 1)
    return matrix.tolist()


def _spread(values: list[float]) -> dict[str, float | None]:
    return mean_and_spread(values) if values else {"mean": None, "std": None, "min": None, "max": None}


def _summarise(frame: pd.DataFrame, runs: list[_Run], truth: np.ndarray,
               labels: list[str]) -> SideSummary:
    counts = frame["label"].value_counts()
    summary = SideSummary(
        n_train=len(frame), class_counts={label: int(counts.get(label, 0)) for label in labels},
        accuracy=_spread([r.record["accuracy"] for r in runs]),
        macro_f1=_spread([r.record["macro_f1"] for r in runs]),
        per_seed=[r.record for r in runs], diagnosis=[r.diagnosis for r in runs],
        histories=[r.history for r in runs], n_augmented=int(_augmented_mask(frame)[0].sum()))
    if runs:
        pred = ensemble_predictions([r.proba for r in runs])
        f1 = per_class_f1(truth, pred, labels=range(len(labels)))
        summary.per_class_f1 = {labels[i]: v for i, v in f1.items()}
        summary.confusion = _confusion(truth, pred, len(labels))
    return summary


def _direction(before: float, after: float) -> str:
    if after > before:
        return f"rose from {before:.3f} to {after:.3f}"
    if after < before:
        return f"fell from {before:.3f} to {after:.3f}"
    return f"stayed at {before:.3f}"


def _conclusion(low: float, high: float, p: float) -> str:
    interval_clear = low > 0 or high < 0
    if interval_clear and p < ALPHA:
        return "the change is unlikely to be chance."
    if not interval_clear and p >= ALPHA:
        return "the interval includes 0: no evidence of a real change."
    if interval_clear:
        return ("the interval excludes 0 but McNemar's test on the seeds' ensemble does not "
                "confirm it: weak evidence, try more seeds or a larger test set.")
    return ("McNemar's test on the seeds' ensemble finds a change but the interval over seeds "
            "includes 0: weak evidence, try more seeds or a larger test set.")


def _verdict(acc_before: float, acc_after: float, delta: float, ci: tuple[float, float],
             p: float, n_seeds: int) -> str:
    low, high = ci
    what = f"mean accuracy over {n_seeds} seeds" if n_seeds > 1 else "accuracy"
    return (f"After curation, {what} {_direction(acc_before, acc_after)} ({delta:+.3f}, "
            f"{1 - ALPHA:.0%} CI {low:+.3f} to {high:+.3f}); McNemar's exact test p = {p:.3g}: "
            f"{_conclusion(low, high, p)}")


# --- compare --------------------------------------------------------------------------------

def _config_dict(config: Any) -> dict[str, Any]:
    if hasattr(config, "to_dict"):
        return _jsonable(config.to_dict())
    return _jsonable(dataclasses.asdict(config))


def _with_seed(config: Any, seed: int) -> Any:
    if not dataclasses.is_dataclass(config):
        raise ValueError(f"config must be a TrainConfig (a dataclass); got {type(config).__name__}.")
    return dataclasses.replace(config, seed=seed)


def _check_seeds(seeds: Sequence[int]) -> list[int]:
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct integers, e.g. (0, 1, 2); "
                         f"got {seeds!r}.")
    return seeds


def _run_progress(progress: Progress | None, done: int, total: int, side: str,
                  seed: int) -> Progress | None:
    if progress is None:
        return None

    def report(fraction: float, message: str) -> None:
        fraction = min(max(float(fraction), 0.0), 1.0)
        progress((done + fraction) / total, f"{side}, seed {seed}: {message}")

    return report


@dataclass
class _Plan:
    """The inputs of the runs and what finished."""

    frames: dict[str, pd.DataFrame]
    test: pd.DataFrame
    labels: list[str]
    seeds: list[int]
    config: Any
    validation_size: float
    runs: dict[str, list[_Run]] = field(default_factory=lambda: {s: [] for s in SIDES})
    cancelled: bool = False


def _train_all(plan: _Plan, trainer: Callable[..., Any], progress: Progress | None,
               should_stop: Callable[[], bool] | None) -> None:
    total, done = 2 * len(plan.seeds), 0
    for seed in plan.seeds:
        for side in SIDES:
            if should_stop is not None and should_stop():
                plan.cancelled = True
                return
            train, val = split_validation(plan.frames[side], validation_size=plan.validation_size,
                                          seed=seed)
            logger.info("training %s, seed %d: %d train rows, %d validation rows", side, seed,
                        len(train), 0 if val is None else len(val))
            result = trainer(train, val, plan.test, config=_with_seed(plan.config, seed),
                             labels=plan.labels, should_stop=should_stop,
                             progress=_run_progress(progress, done, total, side, seed))
            if getattr(result, "cancelled", False):
                plan.cancelled = True
                return
            plan.runs[side].append(_finish_run(result, seed, plan.test, plan.labels))
            done += 1
            if progress is not None:
                progress(done / total, f"{side}, seed {seed}: done")


def _headline(plan: _Plan, truth: np.ndarray, n_boot: int) -> dict[str, Any]:
    """Delta, interval, McNemar and verdict over the seeds both sides finished."""
    after_by_seed = {r.seed: r for r in plan.runs["after"]}
    pairs = [(r, after_by_seed[r.seed]) for r in plan.runs["before"] if r.seed in after_by_seed]
    if not pairs:
        return {"delta": None, "delta_ci": None, "mcnemar": None, "macro_f1_delta": None,
                "paired_seeds": [], "verdict": "No seed finished on both sides: nothing to compare yet."}
    before = np.stack([b.codes for b, _ in pairs])
    after = np.stack([a.codes for _, a in pairs])
    delta, ci = paired_bootstrap_delta(truth, before, after, n_boot=n_boot, seed=0, alpha=ALPHA)
    test = mcnemar_exact(truth, ensemble_predictions([b.proba for b, _ in pairs]),
                         ensemble_predictions([a.proba for _, a in pairs]))
    f1_delta = float(np.mean([a.record["macro_f1"] - b.record["macro_f1"] for b, a in pairs]))
    acc_b = float(np.mean([b.record["accuracy"] for b, _ in pairs]))
    acc_a = float(np.mean([a.record["accuracy"] for _, a in pairs]))
    return {"delta": delta, "delta_ci": ci, "mcnemar": test, "macro_f1_delta": f1_delta,
            "paired_seeds": [b.seed for b, _ in pairs],
            "verdict": _verdict(acc_b, acc_a, delta, ci, test["p_value"], len(pairs))}


def _rules_result(plan: _Plan, rules: Any) -> dict[str, Any] | None:
    """Each side's seed ensemble with and without the post-processing rules, on the test set."""
    if rules is None:
        return None
    out: dict[str, Any] = {"source": rules.source}
    texts, truth = plan.test["text"].tolist(), plan.test["label"].tolist()
    for side in SIDES:
        runs = plan.runs[side]
        if runs:
            pred = ensemble_predictions([r.proba for r in runs])
            out[side] = rules.evaluate(texts, [plan.labels[i] for i in pred], truth)
    return out


def _report(plan: _Plan, n_boot: int, rules: Any = None) -> CompareReport:
    truth = plan.test["label"].map({label: i for i, label in enumerate(plan.labels)}).to_numpy()
    sides = {s: _summarise(plan.frames[s], plan.runs[s], truth, plan.labels) for s in SIDES}
    head = _headline(plan, truth, n_boot)
    head["rules"] = _rules_result(plan, rules)
    if plan.cancelled:
        finished = sum(len(r) for r in plan.runs.values())
        head["verdict"] = (f"Cancelled after {finished} of {2 * len(plan.seeds)} training runs; "
                           f"partial result: {head['verdict']}")
    return CompareReport(labels=plan.labels, test_size=len(plan.test), seeds=plan.seeds,
                         config=_config_dict(plan.config), before=sides["before"],
                         after=sides["after"], cancelled=plan.cancelled, n_boot=n_boot,
                         validation_size=plan.validation_size, **head)


def compare(before: pd.DataFrame, after: pd.DataFrame, test: pd.DataFrame, *, config: Any = None,
            seeds: Sequence[int] = (0, 1, 2), validation_size: float = 0.1, n_boot: int = 2000,
            progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
            trainer: Callable[..., Any] | None = None, rules: Any = None) -> CompareReport:
    """Train on ``before`` and on ``after`` with the same settings and seeds; judge both on ``test``.

    Parameters
    ----------
    before, after : pandas.DataFrame
        Training rows (``text``, ``label``); ``after`` may carry ``augmented_from`` (and
        ``item_id``): augmented rows and their sources always stay in training.
    test : pandas.DataFrame
        The one fixed test set (``text``, ``label``); no test text may appear in training.
    config : TrainConfig, optional
        Training settings (default ``TrainConfig()``); each run gets ``seed`` replaced.
    seeds : sequence of int, default (0, 1, 2)
        One run per seed and side; each seed also seeds that run's validation split.
    validation_size : float, default 0.1
        Share of each side's rows held out for validation (see :func:`split_validation`).
    n_boot : int, default 2000
        Bootstrap replicates of the interval of the change in accuracy.
    progress : callable, optional
        ``progress(fraction, message)`` over all ``2 * len(seeds)`` runs.
    should_stop : callable, optional
        Polled between runs (and passed to the trainer); ``True`` cancels, keeping what finished.
    trainer : callable, optional
        ``trainer(train, validation, test, *, config, labels, progress, should_stop)`` returning
        a :class:`fine_tune.train.TrainResult`; default :func:`fine_tune.train.train_classifier`.
    rules : fine_tune.rules.RuleSet, optional
        Post-processing rules: the report then also gives each side's ensemble accuracy with and
        without them and lists every override on the test set (helped / hurt).

    Returns
    -------
    CompareReport
        Accuracy and macro-F1 per side (mean, std, min, max over seeds); the change in
        accuracy :math:`\\Delta = \\frac{1}{S}\\sum_s(\\text{acc}^{after}_s - \\text{acc}^{before}_s)`
        with a paired bootstrap interval over test items; McNemar's exact test, per-class F1
        and confusion matrices of each side's ensemble (argmax of the seeds' mean probability).
    """
    before, after, test, labels = validate_frames(before, after, test)
    if rules is not None:
        rules.check_labels(labels)
    seeds = _check_seeds(seeds)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, e.g. 2000; got {n_boot!r}.")
    if not 0 <= validation_size < 1:
        raise ValueError(f"validation_size must be in [0, 1), e.g. 0.1; got {validation_size!r}.")
    config = _default_config() if config is None else config
    trainer = _default_trainer() if trainer is None else trainer
    plan = _Plan(frames={"before": before, "after": after}, test=test, labels=labels, seeds=seeds,
                 config=config, validation_size=validation_size)
    _train_all(plan, trainer, progress, should_stop)
    report = _report(plan, n_boot, rules)
    logger.info("retrain-and-compare: %s", report.verdict)
    return report
