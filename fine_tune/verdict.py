"""The verdict of retrain-and-compare: did each side learn, and did curation change accuracy?

Three steps, each a short pure function:

1. :func:`learning_check` looks at one training run: a model that puts nearly every test item
   in one class, whose macro-F1 is no better than always answering the most frequent class,
   whose predictions agree with the truth no better than chance, or whose training loss
   stayed flat (or blew up), learned nothing worth comparing.
2. :func:`fine_tune.stats.seed_item_change` gives the change in accuracy with an interval
   over seeds and test items.
3. :func:`decide` turns both into one of :data:`VERDICTS` with a reason in words:

   ============== =============================================================================
   inconclusive   fewer than two runs per side; or a side did not learn; or the interval
                  holds 0 and also changes of at least ``min_effect``
   better         the interval lies above 0
   worse          the interval lies below 0
   no_real_change the interval holds 0 and lies within ``+-min_effect``: any change is smaller
                  than what matters
   ============== =============================================================================

:func:`size_notes` says, before any training, what a test set of this size cannot show.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fine_tune.stats import MCNEMAR_MIN_DISCORDANT, smallest_detectable_change

__all__ = ["COLLAPSE_SHARE", "DEFAULT_MIN_EFFECT", "MIN_CLASS_TEST_ITEMS", "VERDICTS", "decide",
           "learning_check", "side_learning", "size_notes"]

VERDICTS = ("better", "worse", "no_real_change", "inconclusive")
#: A change in accuracy smaller than this (2 points) is "no real change" when the interval
#: shows it; the test set is also judged by whether it could show a change this large.
DEFAULT_MIN_EFFECT = 0.02
#: A run that puts at least this share of the test items in one class has collapsed onto it,
#: unless the test set itself is nearly all that class (see :func:`learning_check`).
COLLAPSE_SHARE = 0.95
#: Test items per class below which that class's F1 is too noisy to read.
MIN_CLASS_TEST_ITEMS = 10


# --- did a run learn? -------------------------------------------------------------------------

def _kappa(truth: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Cohen's kappa of predictions against the truth (0: chance agreement)."""
    p_o = float(np.mean(truth == pred))
    p_e = float(np.sum(np.bincount(truth, minlength=k) * np.bincount(pred, minlength=k))) / len(truth) ** 2
    return 0.0 if p_e >= 1 else (p_o - p_e) / (1 - p_e)


def majority_macro_f1(truth: Sequence[int], k: int) -> float:
    """Macro-F1 of always answering one class, the best such class: ``max_c 2p_c/(1+p_c) / k``
    (``truth``: class indices in ``range(k)``)."""
    return _majority_macro_f1(np.asarray(truth, dtype=int), k)


def _majority_macro_f1(truth: np.ndarray, k: int) -> float:
    """Macro-F1 of always answering one class, the best such class: ``max_c 2p_c/(1+p_c) / k``."""
    shares = np.bincount(truth, minlength=k) / len(truth)
    return float(np.max(2 * shares / (1 + shares)) / k)


def learning_check(truth: Sequence[int], pred: Sequence[int], labels: Sequence[str], *,
                   macro_f1: float, loss_codes: Sequence[str] = ()) -> dict[str, Any]:
    """Whether one run learned, and if not, why, in words.

    A run did not learn when any of these holds:

    - ``one_class``: it puts at least :data:`COLLAPSE_SHARE` of the test items in one class,
      and the items it puts elsewhere are fewer than half of those the truth puts elsewhere
      (so a test set that is itself 97% one class does not trip it on its own);
    - ``majority_baseline``: its macro-F1 is no better than always answering the test set's
      most frequent class (:math:`\\max_c 2p_c/(1+p_c)/K`);
    - ``chance``: its predictions agree with the truth no better than chance (Cohen's
      :math:`\\kappa \\le 0`);
    - ``flat`` / ``diverging``: its loss-curve diagnosis (:mod:`fine_tune.diagnose`).

    Parameters
    ----------
    truth, pred : sequence of int
        Class indices into ``labels``, one per test item.
    labels : sequence of str
    macro_f1 : float
        The run's macro-F1 over ``labels``.
    loss_codes : sequence of str
        The run's diagnosis codes.

    Returns
    -------
    dict
        ``learned`` (bool), ``codes`` and ``reasons`` (one sentence per failed check), and
        ``top_class``, ``top_share`` (the most predicted class and its share).

    Examples
    --------
    >>> truth = [0] * 50 + [1] * 50
    >>> learning_check(truth, [0] * 99 + [1], ["neg", "pos"], macro_f1=0.355)["reasons"]
    ["it answered 'neg' for 99% of the test items, which are 50% 'neg'"]
    >>> learning_check(truth, [0] * 100, ["neg", "pos"], macro_f1=1 / 3)["codes"]
    ['one_class', 'majority_baseline']
    >>> learning_check(truth, truth, ["neg", "pos"], macro_f1=1.0)["learned"]
    True
    """
    t, p, k = np.asarray(truth, dtype=int), np.asarray(pred, dtype=int), len(labels)
    counts = np.bincount(p, minlength=k)
    top = int(np.argmax(counts))
    top_share = float(counts[top] / len(p))
    true_share = float(np.mean(t == top))
    codes, reasons = [], []
    if top_share >= COLLAPSE_SHARE and (1 - top_share) < 0.5 * (1 - true_share):
        codes.append("one_class")
        reasons.append(f"it answered {labels[top]!r} for {top_share:.0%} of the test items, "
                       f"which are {true_share:.0%} {labels[top]!r}")
    baseline = _majority_macro_f1(t, k)
    if macro_f1 <= baseline + 1e-9:
        codes.append("majority_baseline")
        reasons.append(f"its macro-F1 {macro_f1:.3f} is no better than always answering the most "
                       f"frequent class ({baseline:.3f})")
    if "majority_baseline" not in codes and _kappa(t, p, k) <= 0:
        codes.append("chance")
        reasons.append("its answers agree with the truth no more than chance would (kappa <= 0)")
    for code, why in (("flat", "its training loss stayed flat"),
                      ("diverging", "its training loss blew up (diverged)")):
        if code in loss_codes:
            codes.append(code)
            reasons.append(why)
    return {"learned": not codes, "codes": codes, "reasons": reasons,
            "top_class": labels[top], "top_share": top_share}


def _fixes(codes: set[str], config: dict[str, Any], class_counts: dict[str, int],
           top_class: str | None, advised: dict[str, Any]) -> list[str]:
    """What to change, from what failed, the settings used and what the advice had."""
    fixes = []
    epochs, rate = config.get("epochs"), config.get("learning_rate")
    if codes & {"flat", "majority_baseline", "chance", "one_class"}:
        if epochs is not None:
            more = _raised(epochs, advised.get("epochs"), max(2 * float(epochs), 10))
            fixes.append(f"train longer (epochs {epochs} -> {more:g})")
        if rate is not None and "diverging" not in codes:
            up = _raised(rate, advised.get("learning_rate"), 3 * float(rate))
            fixes.append(f"raise the learning rate ({rate:g} -> {up:.1g}), or run "
                         "`python -m fine_tune lr-find` to pick one")
    if "diverging" in codes and rate is not None:
        fixes.append(f"lower the learning rate ({rate:g} -> {float(rate) / 3:.1g})")
    counts = [v for v in class_counts.values() if v > 0]
    weights = str(config.get("class_weights", "none"))
    if ("one_class" in codes and weights != "balanced" and len(counts) > 1
            and max(counts) > 1.5 * min(counts)):
        fixes.append(f"weight the classes (class_weights = balanced): {top_class!r} dominates "
                     "the training data")
    return fixes


def _raised(used: Any, advised: Any, otherwise: float) -> float:
    """The data's advice when it asks for more than was used, else ``otherwise``."""
    wanted = float(advised or 0)
    return wanted if wanted > float(used) else otherwise


def side_learning(checks: Sequence[tuple[int, dict[str, Any]]], *, config: dict[str, Any],
                  class_counts: dict[str, int], advised: dict[str, Any] | None = None) -> dict[str, Any]:
    """One side's learning over its runs: it learned only if every run did.

    ``checks`` holds ``(seed, learning_check(...))`` per run. One run that learned nothing
    among learners would drag the side's mean down, so the side is not compared then either.
    ``advised`` maps settings to what the data's advice had (the fixes never suggest less).

    Examples
    --------
    >>> ok = {"learned": True, "codes": [], "reasons": [], "top_class": "a", "top_share": 0.5}
    >>> bad = {"learned": False, "codes": ["flat"], "reasons": ["its training loss stayed flat"],
    ...        "top_class": "a", "top_share": 0.5}
    >>> s = side_learning([(0, ok), (1, bad)], config={"epochs": 3, "learning_rate": 5e-5},
    ...                   class_counts={"a": 5, "b": 5})
    >>> s["learned"], s["failed_seeds"], s["fixes"][0]
    (False, [1], 'train longer (epochs 3 -> 10)')
    """
    failed = [(seed, c) for seed, c in checks if not c["learned"]]
    codes = {code for _, c in failed for code in c["codes"]}
    top = failed[0][1]["top_class"] if failed else None
    return {"learned": not failed and bool(checks),
            "runs": [{"seed": seed, **c} for seed, c in checks],
            "failed_seeds": [seed for seed, _ in failed],
            "reasons": [f"seed {seed}: " + "; ".join(c["reasons"]) for seed, c in failed],
            "fixes": _fixes(codes, config, class_counts, top, advised or {}) if failed else []}


# --- the decision ---------------------------------------------------------------------------

def _dominant_noise(variance: dict[str, float]) -> str:
    seeds = variance.get("seeds_before", 0.0) + variance.get("seeds_after", 0.0)
    if seeds > variance.get("test_items", 0.0):
        return "more seeds (training randomness is the larger part of the uncertainty)"
    return "a larger test set (which test items were drawn is the larger part of the uncertainty)"


def decide(change: dict[str, Any] | None, learning: dict[str, dict[str, Any]], *,
           n_seeds: int, min_effect: float = DEFAULT_MIN_EFFECT) -> tuple[str, str]:
    """``(verdict, reason)``: one of :data:`VERDICTS` and why, in words.

    ``change`` is :func:`fine_tune.stats.seed_item_change` on accuracy (None when it could not
    be computed); ``learning`` maps each side to :func:`side_learning`; ``n_seeds`` is the
    number of seeds both sides finished.

    Examples
    --------
    >>> ok = {"learned": True}
    >>> decide(None, {"before": ok, "after": ok}, n_seeds=1)[0]
    'inconclusive'
    >>> change = {"delta": 0.05, "ci": (0.02, 0.08), "p_value": 0.003,
    ...           "variance": {"test_items": 1e-4, "seeds_before": 5e-5, "seeds_after": 5e-5}}
    >>> decide(change, {"before": ok, "after": ok}, n_seeds=3)[0]
    'better'
    >>> decide({**change, "delta": 0.0, "ci": (-0.01, 0.01)}, {"before": ok, "after": ok},
    ...        n_seeds=3)[0]
    'no_real_change'
    """
    if n_seeds < 2:
        return "inconclusive", ("inconclusive: one run per side cannot separate the change from "
                                "training noise; run at least 2 seeds (3 by default).")
    failed = [side for side in ("before", "after") if not learning[side]["learned"]]
    if failed:
        parts = []
        for side in failed:
            lrn = learning[side]
            parts.append(f"the {side} model did not learn ({'; '.join(lrn['reasons'])})"
                         + (f"; to fix it: {'; '.join(lrn['fixes'])}" if lrn.get("fixes") else ""))
        return "inconclusive", ("inconclusive: " + ". ".join(parts) + ". A model that learned "
                                "nothing cannot show whether curation helped, so no p-value is given.")
    if change is None:
        return "inconclusive", "inconclusive: the change could not be computed."
    delta, (low, high) = change["delta"], change["ci"]
    where = (f"{delta:+.3f}, 95% interval {low:+.3f} to {high:+.3f} over seeds and test items, "
             f"p = {change['p_value']:.2g}")
    if low > 0:
        return "better", f"better: the interval lies above 0 ({where})."
    if high < 0:
        return "worse", f"worse: the interval lies below 0 ({where})."
    if -min_effect < low and high < min_effect:
        return "no_real_change", (f"no real change: the interval ({where}) lies within "
                                  f"+-{min_effect:.3f}, so any change is smaller than that.")
    return "inconclusive", (f"inconclusive: the interval ({where}) holds no change as well as "
                            f"changes of {max(abs(low), abs(high)):.3f} or more. To narrow it, use "
                            f"{_dominant_noise(change.get('variance', {}))}.")


# --- what the test set can show ---------------------------------------------------------------

def size_notes(n_test: int, class_counts: dict[str, int], *,
               min_effect: float = DEFAULT_MIN_EFFECT, n_seeds: int = 3) -> list[str]:
    """What this test set (and seed count) cannot show, said before training starts.

    Examples
    --------
    >>> size_notes(150, {"a": 75, "b": 75})[0][:60]
    'The test set has 150 items: no change in accuracy smaller th'
    >>> size_notes(600, {"a": 300, "b": 300})
    []
    """
    notes = []
    floor = smallest_detectable_change(int(n_test))
    if floor > min_effect:
        need = int(np.ceil(MCNEMAR_MIN_DISCORDANT / min_effect))
        notes.append(f"The test set has {n_test} items: no change in accuracy smaller than "
                     f"{floor:.3f} can be shown on it, even if curation only fixed items and broke "
                     f"none ({MCNEMAR_MIN_DISCORDANT} items must change, all the same way). "
                     f"Seeing a {min_effect:.3f} change needs at least {need} test items, and in "
                     "practice several times that.")
    small = sorted(label for label, n in class_counts.items() if n < MIN_CLASS_TEST_ITEMS)
    if small:
        notes.append(f"Class(es) {', '.join(map(repr, small))} have fewer than "
                     f"{MIN_CLASS_TEST_ITEMS} test items: their F1 is too noisy to read.")
    if n_seeds < 2:
        notes.append("One seed per side: the verdict will be inconclusive, since one run cannot "
                     "separate a change from training noise.")
    return notes
