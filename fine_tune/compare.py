"""Retrain and compare: train on the data before and after curation, judge both on one test set.

:func:`compare` resolves the training settings from the data unless given
(:mod:`fine_tune.settings`), says before training what the test set is too small to show,
trains one model per side and seed (same settings, same seeds, same test set; unchanged runs
come from a :class:`~fine_tune.run_cache.RunCache`), checks that each side learned
(:mod:`fine_tune.verdict`), and judges the change in accuracy with an interval over seeds
*and* test items (:func:`fine_tune.stats.seed_item_change`): ``better``, ``worse``,
``no_real_change`` or ``inconclusive``, with the reason in words. The item-only bootstrap,
McNemar's exact test, per-class F1, confusion matrices and each run's loss-curve diagnosis are
kept as supporting figures.

Runs go seed by seed (before, then after), so a cancelled comparison keeps paired results.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curation.messages import format_list, suggest
from curation.schema import text_columns
from fine_tune.config import jsonable
from fine_tune.stats import (
    accuracy_and_macro_f1,
    ensemble_predictions,
    mcnemar_exact,
    mean_and_spread,
    paired_bootstrap_delta,
    per_class_f1,
    seed_item_change,
)
from fine_tune.verdict import (
    DEFAULT_MIN_EFFECT,
    decide,
    learning_check,
    side_learning,
    size_notes,
)

__all__ = ["CompareReport", "SideSummary", "check_blank", "check_labelled", "compare",
           "split_validation", "train_summary", "validate_frames"]

logger = logging.getLogger(__name__)

SIDES = ("before", "after")
#: One minus the coverage of the reported interval, and the significance level of McNemar.
ALPHA = 0.05

Progress = Callable[[float, str], None]


def _default_trainer() -> Callable[..., Any]:
    """The real trainer (imported lazily: it pulls in torch). Tests monkeypatch this hook."""
    from fine_tune.train import train_classifier

    return train_classifier


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
    """Everything the Retrain page, ``python -m fine_tune compare`` and the job files show.

    ``verdict`` is one of :data:`fine_tune.verdict.VERDICTS` and ``verdict_reason`` says why in
    words. ``delta`` and ``delta_ci`` are the change in mean accuracy and its 95% interval over
    seeds and test items (``change`` holds the whole test, ``macro_f1_change`` the same for
    macro-F1); ``item_bootstrap`` and ``mcnemar`` are supporting figures over test items only.
    None of the tests is computed when a side did not learn (``learning``).
    """

    labels: list[str]
    test_size: int
    seeds: list[int]
    config: dict[str, Any]
    before: SideSummary
    after: SideSummary
    verdict: str
    verdict_reason: str
    delta: float | None = None
    delta_ci: tuple[float, float] | None = None
    p_value: float | None = None
    change: dict[str, Any] | None = None
    macro_f1_change: dict[str, Any] | None = None
    item_bootstrap: dict[str, Any] | None = None
    mcnemar: dict[str, Any] | None = None
    macro_f1_delta: float | None = None
    learning: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    size_notes: list[str] = field(default_factory=list)
    reused: list[dict[str, Any]] = field(default_factory=list)
    min_effect: float = DEFAULT_MIN_EFFECT
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
            "verdict": self.verdict, "verdict_reason": self.verdict_reason,
            "cancelled": self.cancelled,
            "accuracy_before": self.accuracy_before,
            "accuracy_after": self.accuracy_after,
            "delta": self.delta, "delta_ci": list(self.delta_ci) if self.delta_ci else None,
            "p_value": self.p_value,
            "mcnemar_p": self.mcnemar["p_value"] if self.mcnemar else None,
            "macro_f1_before": self.before.macro_f1["mean"],
            "macro_f1_after": self.after.macro_f1["mean"],
            "macro_f1_delta": self.macro_f1_delta, "per_seed": self.per_seed,
            "settings": self.settings}
        rest = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        rest["before"], rest["after"] = dataclasses.asdict(self.before), dataclasses.asdict(self.after)
        return jsonable({**head, **{k: v for k, v in rest.items() if k not in head}})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CompareReport:
        """The report again from :meth:`to_dict` (a job's ``report.json``), so pages read the
        same typed object the library returns. Fields a report from an older version lacks
        take their defaults (``verdict_reason`` None: such a report had only its sentence)."""
        if not isinstance(data, Mapping) or "before" not in data or "after" not in data:
            raise ValueError("not a retrain-and-compare report (no before and after sides); "
                             "read report.json of a finished job.")
        sides = {f.name for f in dataclasses.fields(SideSummary)}

        def side(values: Mapping[str, Any]) -> SideSummary:
            return SideSummary(**{k: v for k, v in values.items() if k in sides})

        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in known}
        fields.update(before=side(data["before"]), after=side(data["after"]))
        for name, default in (("labels", []), ("test_size", 0), ("seeds", []), ("config", {}),
                              ("verdict", ""), ("verdict_reason", None)):
            fields.setdefault(name, default)
        if fields.get("delta_ci") is not None:
            fields["delta_ci"] = tuple(fields["delta_ci"])
        return cls(**fields)

    @property
    def accuracy_before(self) -> float | None:
        return self.before.accuracy.get("mean")

    @property
    def accuracy_after(self) -> float | None:
        return self.after.accuracy.get("mean")

    @property
    def per_seed(self) -> list[dict[str, Any]]:
        """One row per seed: accuracy and macro-F1 of each side."""
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


# --- validation -----------------------------------------------------------------------------

def check_labelled(frame: Any, name: str) -> pd.DataFrame:
    """A ``text, label`` frame checked for its columns, rows and blanks (:func:`check_blank`),
    ``ValueError`` naming ``name`` (the file) and the fix: the one check of a labelled data
    set, for compare's frames and the Experiments' files alike."""
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame with columns text, label; "
                         f"got {type(frame).__name__}.")
    for col in ("text", "label"):
        if col not in frame.columns:
            hint = suggest(col, list(frame.columns))
            raise ValueError(f"{name}: no column {col!r} (columns: {format_list(frame.columns)}); "
                             f"rename a column to {col!r}{hint}" + ("" if hint else "."))
    if frame.empty:
        raise ValueError(f"{name}: no rows; pass at least one labelled text.")
    return check_blank(frame.reset_index(drop=True), name)


def check_blank(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """``text`` and ``label`` (and a pair's ``text_pair``) as str; ``ValueError`` naming the
    file (``name``) and the rows where one is empty."""
    for col in (*text_columns(frame), "label"):
        values = frame[col]
        blank = values.isna() | values.astype(str).str.strip().eq("")
        if blank.any():
            raise ValueError(f"{name} has an empty {col} in rows {format_list(np.flatnonzero(blank))} "
                             f"(counting from 0); fill them in or drop those rows.")
    return frame.assign(**{c: frame[c].astype(str) for c in (*text_columns(frame), "label")})


def _check_test_labels(test: pd.DataFrame, train_labels: set[str]) -> None:
    unknown = ~test["label"].isin(train_labels)
    if unknown.any():
        bad = sorted(set(test.loc[unknown, "label"]))
        raise ValueError(f"test labels {format_list(map(repr, bad))} (rows "
                         f"{format_list(np.flatnonzero(unknown))}) never occur in the training data, "
                         "so no model can predict them; drop those test rows or add training "
                         "examples of those labels.")


def _check_leakage(before: pd.DataFrame, after: pd.DataFrame, test: pd.DataFrame) -> None:
    from curation.splits import text_keys

    seen = {side: set(text_keys(frame)) for side, frame in (("before", before), ("after", after))}
    keys = text_keys(test)
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
    frames = [check_labelled(f, n) for f, n in
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
    from sklearn.model_selection import train_test_split

    from curation.splits import text_keys

    if not 0 <= validation_size < 1:
        raise ValueError(f"validation_size must be in [0, 1), e.g. 0.1; got {validation_size!r}.")
    frame = frame.reset_index(drop=True)
    augmented, sources = _augmented_mask(frame)
    keys = text_keys(frame)
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
    return jsonable(frame.to_dict("records"))


def _diagnosis_dict(diagnosis: Any) -> dict[str, Any]:
    if diagnosis is None:
        return {}
    if hasattr(diagnosis, "to_dict"):
        return jsonable(diagnosis.to_dict())
    return jsonable(dict(diagnosis))


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
    return _Run(seed, codes, _to_proba(result, codes, labels), jsonable(record),
                _diagnosis_dict(getattr(result, "diagnosis", None)),
                _history_records(getattr(result, "history", None)))


# --- runs kept in the cache -----------------------------------------------------------------

def _run_to_cache(run: _Run) -> dict[str, Any]:
    return {"codes": run.codes.tolist(), "proba": run.proba.tolist(), "record": run.record,
            "diagnosis": run.diagnosis, "history": run.history}


def _run_from_cache(seed: int, stored: dict[str, Any]) -> _Run:
    return _Run(seed, np.asarray(stored["codes"], dtype=int), np.asarray(stored["proba"], dtype=float),
                stored["record"], stored.get("diagnosis") or {}, stored.get("history") or [])


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


def _learning(plan: _Plan, truth: np.ndarray) -> dict[str, Any]:
    """Each side's :func:`fine_tune.verdict.side_learning` over the runs it finished."""
    config = _config_dict(plan.config)
    advised = {c["setting"]: c["advised"] for c in plan.settings.get("chosen") or [] if "advised" in c}
    out = {}
    for side in SIDES:
        checks = [(r.seed, learning_check(truth, r.codes, plan.labels, macro_f1=r.record["macro_f1"],
                                          loss_codes=r.diagnosis.get("codes") or []))
                  for r in plan.runs[side]]
        counts = plan.frames[side]["label"].value_counts().to_dict()
        out[side] = side_learning(checks, config=config, class_counts=counts, advised=advised)
    return out


def _macro_note(acc: dict[str, Any], f1: dict[str, Any] | None) -> str:
    """A warning when macro-F1 moved clearly against what accuracy says."""
    if f1 is None:
        return ""
    low, high = f1["ci"]
    if high < 0 and acc["delta"] >= 0 or low > 0 and acc["delta"] <= 0:
        word = "fell" if high < 0 else "rose"
        return (f" Note: macro-F1 {word} ({f1['delta']:+.3f}, 95% interval {low:+.3f} to "
                f"{high:+.3f}): the classes did not all move with accuracy; see the per-class F1.")
    return ""


def _tests(plan: _Plan, truth: np.ndarray, pairs: list[tuple[_Run, _Run]],
           n_boot: int) -> dict[str, Any]:
    """The interval over seeds and items, and the supporting item-only figures."""
    before = np.stack([b.codes for b, _ in pairs])
    after = np.stack([a.codes for _, a in pairs])
    _, item_ci = paired_bootstrap_delta(truth, before, after, n_boot=n_boot, seed=0, alpha=ALPHA)
    out: dict[str, Any] = {
        "item_bootstrap": {"ci": item_ci, "n_boot": n_boot},
        "mcnemar": mcnemar_exact(truth, ensemble_predictions([b.proba for b, _ in pairs]),
                                 ensemble_predictions([a.proba for _, a in pairs]))}
    if len(pairs) >= 2:
        out["change"] = seed_item_change(truth, before, after, metric="accuracy", alpha=ALPHA)
        out["macro_f1_change"] = seed_item_change(truth, before, after, metric="macro_f1",
                                                  labels=range(len(plan.labels)), alpha=ALPHA,
                                                  n_boot=min(n_boot, 1000))
        out["delta_ci"], out["p_value"] = out["change"]["ci"], out["change"]["p_value"]
    return out


def _headline(plan: _Plan, truth: np.ndarray, n_boot: int, min_effect: float) -> dict[str, Any]:
    """Verdict, change and supporting figures over the seeds both sides finished."""
    learning = _learning(plan, truth)
    after_by_seed = {r.seed: r for r in plan.runs["after"]}
    pairs = [(r, after_by_seed[r.seed]) for r in plan.runs["before"] if r.seed in after_by_seed]
    if not pairs:
        return {"learning": learning, "paired_seeds": [], "verdict": "inconclusive",
                "verdict_reason": "No seed finished on both sides: nothing to compare yet."}
    acc_b = float(np.mean([b.record["accuracy"] for b, _ in pairs]))
    acc_a = float(np.mean([a.record["accuracy"] for _, a in pairs]))
    head: dict[str, Any] = {
        "learning": learning, "paired_seeds": [b.seed for b, _ in pairs], "delta": acc_a - acc_b,
        "macro_f1_delta": float(np.mean([a.record["macro_f1"] - b.record["macro_f1"] for b, a in pairs]))}
    if learning["before"]["learned"] and learning["after"]["learned"]:
        head.update(_tests(plan, truth, pairs, n_boot))
    verdict, reason = decide(head.get("change"), learning, n_seeds=len(pairs), min_effect=min_effect)
    what = f"Mean accuracy over {len(pairs)} seeds" if len(pairs) > 1 else "Accuracy (one seed)"
    reason = f"{what} {_direction(acc_b, acc_a)}; {reason}"
    if "change" in head:
        reason += _macro_note(head["change"], head.get("macro_f1_change"))
    return {**head, "verdict": verdict, "verdict_reason": reason}


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
    head = _headline(plan, truth, n_boot, plan.min_effect)
    head["rules"] = _rules_result(plan, rules)
    if plan.cancelled:
        finished = sum(len(r) for r in plan.runs.values())
        head["verdict"] = "inconclusive"
        head["verdict_reason"] = (f"Cancelled after {finished} of {2 * len(plan.seeds)} training "
                                  f"runs; partial result: {head['verdict_reason']}")
    return CompareReport(labels=plan.labels, test_size=len(plan.test), seeds=plan.seeds,
                         config=_config_dict(plan.config), before=sides["before"],
                         after=sides["after"], cancelled=plan.cancelled, n_boot=n_boot,
                         validation_size=plan.validation_size, settings=plan.settings,
                         size_notes=plan.notes, reused=plan.reused, min_effect=plan.min_effect,
                         **head)


# --- compare --------------------------------------------------------------------------------

def _config_dict(config: Any) -> dict[str, Any]:
    if hasattr(config, "to_dict"):
        return jsonable(config.to_dict())
    return jsonable(dataclasses.asdict(config))


def _with_seed(config: Any, seed: int, side: str | None = None) -> Any:
    if not dataclasses.is_dataclass(config):
        raise ValueError(f"config must be a TrainConfig (a dataclass); got {type(config).__name__}.")
    named = {"run_name": f"{side}-seed{seed}"} if side and hasattr(config, "run_name") else {}
    if side and getattr(config, "output_dir", None):  # each run its own checkpoints
        named["output_dir"] = str(Path(config.output_dir) / f"{side}-seed{seed}")
    return dataclasses.replace(config, seed=seed, **named)


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
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    min_effect: float = DEFAULT_MIN_EFFECT
    cache: Any = None
    runs: dict[str, list[_Run]] = field(default_factory=lambda: {s: [] for s in SIDES})
    reused: list[dict[str, Any]] = field(default_factory=list)
    cancelled: bool = False


def _cache_key(plan: _Plan, side: str, seed: int, trainer: Any) -> str | None:
    if plan.cache is None:
        return None
    return plan.cache.key(frame=plan.frames[side], test=plan.test, labels=plan.labels,
                          config=_config_dict(_with_seed(plan.config, seed)),
                          validation_size=plan.validation_size, trainer=trainer)


def _reuse(plan: _Plan, side: str, seed: int, key: str | None) -> _Run | None:
    entry = plan.cache.get(key) if key else None
    if entry is None:
        return None
    plan.reused.append({"side": side, "seed": seed, "key": key, "created_at": entry.get("created_at"),
                        "origin": entry.get("origin") or {}})
    logger.info("reusing the cached %s run of seed %d (%s)", side, seed, key[:12])
    return _run_from_cache(seed, entry["run"])


def _train_one(plan: _Plan, side: str, seed: int, trainer: Callable[..., Any],
               progress: Progress | None, should_stop: Callable[[], bool] | None) -> _Run | None:
    """One run: from the cache when its inputs are unchanged, else trained (None: cancelled)."""
    key = _cache_key(plan, side, seed, trainer)
    run = _reuse(plan, side, seed, key)
    if run is not None:
        return run
    train, val = split_validation(plan.frames[side], validation_size=plan.validation_size, seed=seed)
    logger.info("training %s, seed %d: %d train rows, %d validation rows", side, seed,
                len(train), 0 if val is None else len(val))
    result = trainer(train, val, plan.test, config=_with_seed(plan.config, seed, side),
                     labels=plan.labels, should_stop=should_stop, progress=progress)
    if getattr(result, "cancelled", False):
        return None
    run = _finish_run(result, seed, plan.test, plan.labels)
    if key is not None:
        plan.cache.put(key, _run_to_cache(run))
    return run


def _train_all(plan: _Plan, trainer: Callable[..., Any], progress: Progress | None,
               should_stop: Callable[[], bool] | None) -> None:
    total, done = 2 * len(plan.seeds), 0
    for seed in plan.seeds:
        for side in SIDES:
            if should_stop is not None and should_stop():
                plan.cancelled = True
                return
            run = _train_one(plan, side, seed, trainer,
                             _run_progress(progress, done, total, side, seed), should_stop)
            if run is None:
                plan.cancelled = True
                return
            plan.runs[side].append(run)
            done += 1
            if progress is not None:
                progress(done / total, f"{side}, seed {seed}: done")


def _check_options(seeds: Sequence[int], n_boot: Any, validation_size: float,
                   min_effect: float) -> list[int]:
    seeds = _check_seeds(seeds)
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, e.g. 2000; got {n_boot!r}.")
    if not 0 <= validation_size < 1:
        raise ValueError(f"validation_size must be in [0, 1), e.g. 0.1; got {validation_size!r}.")
    if not 0 < min_effect < 1:
        raise ValueError(f"min_effect must be in (0, 1), e.g. 0.02 for 2 points of accuracy; "
                         f"got {min_effect!r}.")
    return seeds


def _resolve(after: pd.DataFrame, config: Any, tokenizer: Any) -> tuple[Any, dict[str, Any]]:
    """The config to train with and its settings record (see :mod:`fine_tune.settings`)."""
    from fine_tune.settings import ResolvedSettings, resolve_settings

    if isinstance(config, ResolvedSettings):
        return config.config, config.to_dict()
    resolved = resolve_settings(after[[*text_columns(after), "label"]], config, tokenizer=tokenizer)
    return resolved.config, resolved.to_dict()


def compare(before: pd.DataFrame, after: pd.DataFrame, test: pd.DataFrame, *, config: Any = None,
            seeds: Sequence[int] = (0, 1, 2), validation_size: float = 0.1, n_boot: int = 2000,
            progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
            trainer: Callable[..., Any] | None = None, rules: Any = None, cache: Any = None,
            min_effect: float = DEFAULT_MIN_EFFECT, tokenizer: Any = None,
            on_start: Callable[[dict[str, Any]], None] | None = None) -> CompareReport:
    """Train on ``before`` and on ``after`` with the same settings and seeds; judge both on ``test``.

    Parameters
    ----------
    before, after : pandas.DataFrame
        Training rows (``text``, ``label``); ``after`` may carry ``augmented_from`` (and
        ``item_id``): augmented rows and their sources always stay in training.
    test : pandas.DataFrame
        The one fixed test set (``text``, ``label``); no test text may appear in training.
    config : mapping, TrainConfig, ResolvedSettings or None
        ``None``: every setting from the advice measured on ``after`` (rows, class balance,
        lengths; :func:`fine_tune.settings.resolve_settings`), else the defaults. A mapping of
        ``TrainConfig`` fields: those are yours, the rest resolved so. A whole ``TrainConfig``:
        used as it is. Settings resolved earlier (``ResolvedSettings``) keep their sources.
        Each run gets ``seed`` replaced.
    seeds : sequence of int, default (0, 1, 2)
        One run per seed and side; each seed also seeds that run's validation split. One seed
        gives an ``inconclusive`` verdict by construction.
    validation_size : float, default 0.1
        Share of each side's rows held out for validation (see :func:`split_validation`).
    n_boot : int, default 2000
        Bootstrap replicates of the supporting item-only interval (and, at most 1,000, of the
        macro-F1 interval).
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
    cache : fine_tune.run_cache.RunCache, optional
        Finished runs by the content of their inputs: a run whose data, test set, settings,
        seed, model and trainer are unchanged is taken from it instead of trained
        (``report.reused`` lists them), and every new run is added.
    min_effect : float, default 0.02
        The smallest change in accuracy that matters: an interval within ``+-min_effect`` is
        ``no_real_change``; a test set too small to show it is said before training.
    tokenizer : callable, optional
        Counts tokens for the advice (default: the configured model's tokenizer).
    on_start : callable, optional
        Called once before training with ``{"settings", "size_notes"}``.

    Returns
    -------
    CompareReport
        The verdict (``better`` / ``worse`` / ``no_real_change`` / ``inconclusive``) and its
        reason; the change in mean accuracy
        :math:`\\Delta = \\frac{1}{S}\\sum_s(\\text{acc}^{after}_s - \\text{acc}^{before}_s)` with
        an interval over seeds and test items (:func:`fine_tune.stats.seed_item_change`); each
        side's learning check (:func:`fine_tune.verdict.learning_check`); accuracy and macro-F1
        per side and seed; and, as supporting figures, the paired bootstrap over test items,
        McNemar's exact test, per-class F1 and confusion matrices of each side's ensemble.
    """
    before, after, test, labels = validate_frames(before, after, test)
    if rules is not None:
        rules.check_labels(labels)
    seeds = _check_options(seeds, n_boot, validation_size, min_effect)
    config, settings = _resolve(after, config, tokenizer)
    notes = size_notes(len(test), {label: int((test["label"] == label).sum()) for label in labels},
                       min_effect=min_effect, n_seeds=len(seeds))
    for note in notes:
        logger.warning("before training: %s", note)
    if on_start is not None:
        on_start({"settings": settings, "size_notes": notes})
    trainer = _default_trainer() if trainer is None else trainer
    plan = _Plan(frames={"before": before, "after": after}, test=test, labels=labels, seeds=seeds,
                 config=config, validation_size=validation_size, settings=settings, notes=notes,
                 min_effect=min_effect, cache=cache)
    _train_all(plan, trainer, progress, should_stop)
    report = _report(plan, n_boot, rules)
    logger.info("retrain-and-compare: %s: %s", report.verdict, report.verdict_reason)
    return report


def train_summary(result: Any, test: pd.DataFrame | None, labels: list[str]) -> dict[str, Any]:
    """One training run's figures as plain data: labels, best epoch, speed, device, the loss
    history and its diagnosis, and accuracy and macro-F1 on ``test`` when it was predicted."""
    out: dict[str, Any] = {
        "labels": list(result.labels), "best_epoch": result.best_epoch,
        "best_metric": getattr(result, "best_metric", None),
        "train_seconds": result.train_seconds,
        "train_samples_per_second": result.train_samples_per_second,
        "peak_memory_mb": getattr(result, "peak_memory_mb", None),
        "device": getattr(result, "device", None), "output_dir": getattr(result, "output_dir", None),
        "cancelled": bool(getattr(result, "cancelled", False)),
        "diagnosis": result.diagnosis.to_dict() if result.diagnosis is not None else None,
        "history": _history_records(result.history)}
    if test is not None and result.test_pred is not None:
        run = _finish_run(result, 0, test, labels)
        out.update(accuracy=run.record["accuracy"], macro_f1=run.record["macro_f1"])
    config = getattr(result, "config", None)
    if config is not None:
        out["config"] = config.to_dict() if hasattr(config, "to_dict") else dataclasses.asdict(config)
    return jsonable(out)
