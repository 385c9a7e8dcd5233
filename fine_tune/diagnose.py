"""Read a training history's loss curves and say, in plain words, what they show.

:func:`diagnose` takes the history of :func:`fine_tune.train.train_classifier` (one row per
logged point: ``epoch``, ``train_loss``, ``eval_loss``, ...) and returns a
:class:`Diagnosis` with codes from :data:`CODES` and one sentence per finding. Each finding
is one short check with a documented threshold:

=============  ===============================================================================
code           when
=============  ===============================================================================
diverging      a loss is NaN/inf, or training loss ends :data:`DIVERGE_RISE` above its start
flat           the training loss (a running mean over a fifth of its points) never falls
               :data:`FLAT_TOLERANCE` below ``prior_loss`` (the loss of always answering the
               class shares: nothing learned), when that is known; else training (and validation) loss fall by less than
               :data:`FLAT_TOLERANCE` from their first third to their last (which also calls a
               run flat that learned within its first third)
overfitting    validation loss ends :data:`OVERFIT_RISE` above its minimum while training
               loss keeps falling
large_gap      validation minus training loss exceeds ``gap_threshold`` (:data:`GAP_THRESHOLD`)
oscillating    training loss moves up for :data:`RISE_SHARE_THRESHOLD` of its movement,
               the std of its step-to-step changes is ``oscillation_threshold``
               (:data:`OSCILLATION_THRESHOLD`) of the starting loss or more, and that noise
               is larger than the progress (fall from the first to the last third, same
               scale): a noisy loss that still falls clearly is small-batch noise, not a rate
               that is too high
too_short      fewer than :data:`MIN_EVALUATIONS` validation points (or no validation)
healthy        none of the above
=============  ===============================================================================

:func:`loss_chart` draws both curves with altair.

Examples
--------
>>> import pandas as pd
>>> h = pd.DataFrame({"epoch": [1, 1, 2, 2, 3, 3],
...                   "train_loss": [0.60, None, 0.40, None, 0.30, None],
...                   "eval_loss": [None, 0.62, None, 0.45, None, 0.38]})
>>> d = diagnose(h)
>>> d.codes, d.best_epoch
(['healthy'], 3.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["CODES", "DIVERGE_RISE", "FLAT_TOLERANCE", "GAP_THRESHOLD", "MIN_EVALUATIONS",
           "OSCILLATION_THRESHOLD", "OVERFIT_RISE", "RISE_SHARE_THRESHOLD", "Diagnosis",
           "diagnose", "loss_chart"]

#: Every code a diagnosis can hold.
CODES = ("healthy", "oscillating", "overfitting", "flat", "large_gap", "diverging", "too_short")
#: Validation minus training loss (nats) above which the gap is reported.
GAP_THRESHOLD = 0.2
#: Std of the training loss's step-to-step changes, as a share of the starting loss, from
#: which the loss counts as oscillating (together with :data:`RISE_SHARE_THRESHOLD`).
OSCILLATION_THRESHOLD = 0.15
#: Share of the training loss's total movement that goes upwards, from which it oscillates.
RISE_SHARE_THRESHOLD = 0.35
#: A loss that falls by less than this share of its start is flat.
FLAT_TOLERANCE = 0.02
#: Validation loss this share above its minimum at the end (with training loss still falling)
#: is overfitting.
OVERFIT_RISE = 0.02
#: Training loss that ends this share above where it started is diverging.
DIVERGE_RISE = 0.1
#: Validation points needed to judge the curves.
MIN_EVALUATIONS = 2
#: Training-loss points needed to judge oscillation and divergence.
MIN_TRAIN_POINTS = 6

_NAMES = {"overfitting": "overfitting", "large_gap": "a large train/validation gap",
          "oscillating": "an oscillating training loss", "flat": "flat losses",
          "diverging": "a diverging training loss", "too_short": "too few points to judge"}


@dataclass
class Diagnosis:
    """What the loss curves show.

    Attributes
    ----------
    codes : list of str
        Findings from :data:`CODES` (``["healthy"]`` when nothing is wrong).
    messages : list of str
        One plain-English sentence per finding, with what to do.
    best_epoch : float or None
        Epoch of the best validation metric.
    summary : str
        One sentence for a table or a status line.
    measures : dict
        The numbers behind the findings (gap, oscillation, falls, ...).
    """

    codes: list[str]
    messages: list[str]
    best_epoch: float | None
    summary: str
    measures: dict[str, float | None] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able copy."""
        return {"codes": list(self.codes), "messages": list(self.messages),
                "best_epoch": self.best_epoch, "summary": self.summary,
                "measures": {k: _plain(v) for k, v in self.measures.items()}}


def _plain(value: Any) -> Any:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    return float(value)


# --- the curves -----------------------------------------------------------------------------

@dataclass
class _Curves:
    train: np.ndarray  # training loss at each logged point, in order
    epochs: pd.DataFrame  # index: epoch number; columns train (mean of the epoch), eval
    best_epoch: float | None
    nonfinite: bool  # a logged loss is NaN or infinite


def _epoch_key(epoch: pd.Series) -> pd.Series:
    """Epoch number a point belongs to: (k-1, k] -> k."""
    return np.ceil(epoch.astype(float) - 1e-9).clip(lower=1)


def _curves(history: pd.DataFrame, metric: str) -> _Curves:
    h = history.copy()
    for col in ("epoch", "step", "train_loss", "eval_loss", "learning_rate", "eval_accuracy", metric):
        if col not in h:
            h[col] = np.nan
    order = "step" if h["step"].notna().any() else "epoch"
    h = h.sort_values(order, kind="stable")
    train = h.dropna(subset=["train_loss"])
    evals = h.dropna(subset=["eval_loss"])
    per_epoch = pd.DataFrame({
        "train": train.groupby(_epoch_key(train["epoch"]))["train_loss"].mean(),
        "eval": evals.groupby(_epoch_key(evals["epoch"]))["eval_loss"].last()})
    # NaN also marks "not logged": a NaN loss shows as a training log (it has a learning
    # rate) or an evaluation (it has an accuracy) without its loss
    nan_logged = ((h["train_loss"].isna() & h["learning_rate"].notna())
                  | (h["eval_loss"].isna() & h["eval_accuracy"].notna())).any()
    infinite = np.isinf(h[["train_loss", "eval_loss"]].to_numpy(float)).any()
    return _Curves(train["train_loss"].to_numpy(float), per_epoch, _best_epoch(h, metric),
                   bool(nan_logged or infinite))


def _best_epoch(h: pd.DataFrame, metric: str) -> float | None:
    col = metric if h[metric].notna().any() else "eval_loss"
    rows = h.dropna(subset=[col])
    if rows.empty:
        return None
    higher = col in ("eval_accuracy", "eval_macro_f1")
    values = rows[col].to_numpy(float)
    i = int(np.nanargmax(values) if higher else np.nanargmin(values))
    return float(rows["epoch"].iloc[i])


def _thirds(values: np.ndarray) -> tuple[float, float]:
    """Mean of the first and of the last third (at least one point each), finite values only."""
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan
    k = max(1, len(values) // 3)
    return float(np.mean(values[:k])), float(np.mean(values[-k:]))


# --- the checks: each returns (code, message) or None, and fills `m` with its numbers --------

def _diverging(c: _Curves, m: dict[str, Any]) -> tuple[str, str] | None:
    if c.nonfinite:
        return "diverging", ("The loss became NaN or infinite: lower the learning rate, or "
                             "train in fp32.")
    if len(c.train) < 3:
        return None
    start, end = _thirds(c.train)
    m["train_rise"] = end / start - 1 if start > 0 else None
    if start > 0 and end > start * (1 + DIVERGE_RISE):
        return "diverging", (f"Training loss rises from {start:.3f} to {end:.3f} instead of "
                             "falling: the learning rate is too high; lower it (the learning-"
                             "rate range test suggests one).")
    return None


def _fall(values: np.ndarray) -> float | None:
    """How much a curve falls from its first third to its last third, as a share of the start."""
    if len(values) < 2:
        return None
    start, end = _thirds(values)
    return (start - end) / start if start > 0 else None


def _lowest_smoothed(values: np.ndarray) -> float:
    """The lowest point of the curve's running mean over a fifth of its points (at least one)."""
    values = values[np.isfinite(values)]
    k = max(1, len(values) // 5)
    return float(np.convolve(values, np.ones(k) / k, mode="valid").min())


def _flat(c: _Curves, m: dict[str, Any], prior_loss: float | None = None) -> tuple[str, str] | None:
    if prior_loss is not None and np.isfinite(c.train).any():
        low = _lowest_smoothed(c.train)
        m["train_lowest"], m["prior_loss"] = low, prior_loss
        if low < (1 - FLAT_TOLERANCE) * prior_loss:
            return None
        return "flat", (f"The training loss never fell below {low:.3f}, no lower than {prior_loss:.3f}, the "
                        "loss of always answering the class shares: the model learned nothing beyond how "
                        "common each class is. Train longer or at a higher rate; check the labels.")
    train_fall = _fall(c.train)
    eval_fall = _fall(c.epochs["eval"].dropna().to_numpy(float))
    m["train_fall"], m["eval_fall"] = train_fall, eval_fall
    falls = [f for f in (train_fall, eval_fall) if f is not None]
    if not falls or any(f >= FLAT_TOLERANCE for f in falls):
        return None
    which = "Both losses are" if len(falls) == 2 else "The training loss is"
    return "flat", (f"{which} flat (changing by {max(abs(f) for f in falls):.1%} at most): check the labels and "
                    "the data, or the model is too small / frozen, or the learning rate too low.")


def _overfitting(c: _Curves, m: dict[str, Any], restored: bool) -> tuple[str, str] | None:
    both = c.epochs.dropna()
    if len(both) < 2:
        return None
    best = both["eval"].idxmin()
    low, last_eval = both["eval"].min(), both["eval"].iloc[-1]
    m["eval_rise"] = float(last_eval / low - 1) if low > 0 else None
    rises = best != both.index[-1] and last_eval > low * (1 + OVERFIT_RISE)
    if not rises or not both["train"].iloc[-1] < both.loc[best, "train"]:
        return None
    kept = ("(kept)" if restored else f"(not kept: the final weights are from epoch "
            f"{both.index[-1]:g}; turn on early stopping to keep the best)")
    return "overfitting", (
        f"Validation loss rises after epoch {best:g} ({low:.3f} to {last_eval:.3f}) while "
        f"training loss keeps falling ({both.loc[best, 'train']:.3f} to "
        f"{both['train'].iloc[-1]:.3f}): the model is overfitting; the best checkpoint is epoch "
        f"{best:g} {kept}.")


def _large_gap(c: _Curves, m: dict[str, Any], threshold: float,
               restored: bool) -> tuple[str, str] | None:
    both = c.epochs.dropna()
    if both.empty:
        return None
    at = both.index[-1]
    if restored and c.best_epoch is not None and _epoch_key(pd.Series([c.best_epoch]))[0] in both.index:
        at = _epoch_key(pd.Series([c.best_epoch]))[0]
    gap = float(both.loc[at, "eval"] - both.loc[at, "train"])
    m["gap"] = gap
    if gap <= threshold:
        return None
    return "large_gap", (f"Train/validation loss gap is {gap:.2f} (over {threshold:g}) at epoch "
                         f"{at:g}: the model fits its training data much better than new data; "
                         "more data, more weight decay or fewer epochs help.")


def _oscillating(c: _Curves, m: dict[str, Any], threshold: float) -> tuple[str, str] | None:
    if len(c.train) < MIN_TRAIN_POINTS:
        return None
    steps = np.diff(c.train)
    movement = float(np.abs(steps).sum())
    start, end = _thirds(c.train)
    if movement == 0 or start <= 0:
        return None
    rise_share = float(steps[steps > 0].sum()) / movement
    spread = float(np.std(steps)) / start
    progress = (start - end) / start
    m["oscillation"], m["rise_share"], m["train_progress"] = spread, rise_share, progress
    if rise_share < RISE_SHARE_THRESHOLD or spread < threshold or progress >= spread:
        return None
    return "oscillating", (f"Training loss oscillates (std of step-to-step changes {spread:.2f} "
                           f"of the starting loss, more than its fall of {progress:.2f}; "
                           f"{rise_share:.0%} of its movement is upwards): lower the learning "
                           "rate or raise the batch size.")


def _too_short(c: _Curves) -> tuple[str, str] | None:
    n_eval = int(c.epochs["eval"].notna().sum())
    if n_eval == 0:
        return "too_short", ("No validation loss was logged: give a validation set to see "
                             "overfitting and keep the best epoch.")
    if n_eval < MIN_EVALUATIONS:
        return "too_short", (f"Only {n_eval} validation point: train for at least "
                             f"{MIN_EVALUATIONS} epochs to judge the curves.")
    return None


def _summary(codes: list[str], best_epoch: float | None) -> str:
    best = f" (best epoch {best_epoch:g})" if best_epoch is not None else ""
    if codes == ["healthy"]:
        return f"The loss curves look healthy{best}."
    names = [_NAMES[c] for c in codes]
    listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"The loss curves show {listed}{best}."


def diagnose(history: pd.DataFrame, *, prior_loss: float | None = None,
             gap_threshold: float = GAP_THRESHOLD,
             oscillation_threshold: float = OSCILLATION_THRESHOLD, metric: str = "eval_loss",
             best_restored: bool = True) -> Diagnosis:
    """Diagnose a training history's loss curves.

    Parameters
    ----------
    history : pandas.DataFrame
        Columns ``epoch`` and ``train_loss`` and/or ``eval_loss`` (``step`` orders the points
        when present); one row per logged point, NaN where a value was not logged. Training
        points of epoch ``k`` are those in ``(k-1, k]``.
    gap_threshold : float
        Validation minus training loss (per epoch, training loss averaged over the epoch)
        above which ``large_gap`` is reported.
    oscillation_threshold : float
        Std of the training loss's step-to-step changes, as a share of its starting level,
        from which ``oscillating`` is reported (when it also goes up for at least
        :data:`RISE_SHARE_THRESHOLD` of its movement).
    metric : str
        Metric column that picks the best epoch (``eval_loss`` is lower-is-better,
        ``eval_accuracy`` and ``eval_macro_f1`` higher-is-better).
    best_restored : bool
        Whether the best epoch's weights were kept (early stopping); only changes wording.
    prior_loss : float, optional
        The training loss of a model that learned only the class shares
        (:func:`fine_tune.train.prior_loss`); with it, ``flat`` means "ended no lower than
        that", so a run that learned early is not called flat.

    Returns
    -------
    Diagnosis

    Examples
    --------
    >>> h = pd.DataFrame({"epoch": [1, 1, 2, 2, 3, 3, 4, 4],
    ...                   "train_loss": [0.6, None, 0.4, None, 0.25, None, 0.1, None],
    ...                   "eval_loss": [None, 0.55, None, 0.45, None, 0.5, None, 0.6]})
    >>> d = diagnose(h)
    >>> d.codes
    ['overfitting']
    >>> d.messages[0]
    'Validation loss rises after epoch 2 (0.450 to 0.600) while training loss keeps falling (0.400 to 0.100): the model is overfitting; the best checkpoint is epoch 2 (kept).'
    """
    if not isinstance(history, pd.DataFrame):
        raise ValueError(f"history must be a pandas DataFrame, got {type(history).__name__}.")
    if "epoch" not in history or not ({"train_loss", "eval_loss"} & set(history.columns)):
        raise ValueError("history needs an 'epoch' column and 'train_loss' and/or 'eval_loss'; "
                         f"it has {list(history.columns)!r}. Pass TrainResult.history.")
    for name, value in (("gap_threshold", gap_threshold), ("oscillation_threshold", oscillation_threshold)):
        if not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a positive number, got {value!r}.")
    c = _curves(history, metric)
    m: dict[str, Any] = {}
    found = [_diverging(c, m), _flat(c, m, prior_loss), _overfitting(c, m, best_restored),
             _large_gap(c, m, gap_threshold, best_restored), _oscillating(c, m, oscillation_threshold),
             _too_short(c)]
    found = [f for f in found if f is not None]
    if not found:
        happy = ("Training and validation losses fall together" if c.epochs["eval"].notna().any()
                 else "Training loss falls steadily")
        best = f"; the best epoch is {c.best_epoch:g}" if c.best_epoch is not None else ""
        found = [("healthy", f"{happy}{best}.")]
    codes = [code for code, _ in found]
    return Diagnosis(codes, [msg for _, msg in found], c.best_epoch, _summary(codes, c.best_epoch), m)


def loss_chart(history: pd.DataFrame) -> Any:
    """Training and validation loss over epochs, as an ``altair.Chart``.

    Examples
    --------
    >>> chart = loss_chart(pd.DataFrame({"epoch": [0.5, 1.0, 1.0],
    ...                                  "train_loss": [0.7, 0.5, None],
    ...                                  "eval_loss": [None, None, 0.55]}))
    >>> sorted(chart.data["curve"].unique())
    ['training', 'validation']
    """
    import altair as alt

    parts = []
    for col, name in (("train_loss", "training"), ("eval_loss", "validation")):
        if col in history:
            rows = history.dropna(subset=[col])
            parts.append(pd.DataFrame({"epoch": rows["epoch"].astype(float),
                                       "loss": rows[col].astype(float), "curve": name}))
    data = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {"epoch": [], "loss": [], "curve": []})
    return alt.Chart(data).mark_line(point=True).encode(
        x=alt.X("epoch:Q", title="epoch"), y=alt.Y("loss:Q", title="loss"),
        color=alt.Color("curve:N", title=None), tooltip=["curve", "epoch", "loss"],
    ).properties(title="Loss curves")
