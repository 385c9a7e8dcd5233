"""Is the retrain-and-compare verdict calibrated? How often each way of judging a change claims
one where nothing changed, and how often it finds a change that is there.

Procedures, each judged on the same predictions in one run:

- **seeds + items** (ours, :func:`fine_tune.stats.seed_item_change`): a 95% t interval of the
  change in mean accuracy with the seed-to-seed variance of both sides and the test items';
- **item bootstrap** (the old report's interval): a paired bootstrap over test items;
- **McNemar** on the seed ensembles (the old report's test), and the **old rule**: both;
- **two-level bootstrap**: seeds resampled within each side, then test items;
- **ASO** (Almost Stochastic Order, Dror et al. 2019; the peer library ``deepsig``) on the
  seeds' accuracies, with its authors' recommended threshold eps_min < 0.2, either direction.

Part 1 simulates comparisons from a logistic model of correctness with item easiness, a seed
effect and per-run noise (300 items, 3 seeds per side), with no change and with a change.
Part 2 trains for real: a tiny BERT (tests/tiny_models.py) on a toy task learned gradually,
both sides the same data, the after side with other seeds, through :func:`fine_tune.compare`.

Run: ``python benchmarks/verdict_calibration.py [--sim-reps 400] [--train-reps 40]``
(``pip install -e .[bench]`` for deepsig; without it the ASO column is left out).
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

warnings.filterwarnings("ignore", message="Division by zero encountered in violation ratio")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fine_tune.stats import mcnemar_exact, paired_bootstrap_delta, seed_item_change  # noqa: E402

Judge = Callable[[np.ndarray, np.ndarray, np.ndarray], bool]


def _accuracies(y: np.ndarray, pred: np.ndarray) -> np.ndarray:
    return (pred == y[None, :]).mean(axis=1)


def ours(y, before, after) -> bool:
    low, high = seed_item_change(y, before, after)["ci"]
    return low > 0 or high < 0


def item_bootstrap(y, before, after, seed=0) -> bool:
    _, (low, high) = paired_bootstrap_delta(y, before, after, n_boot=500, seed=seed)
    return low > 0 or high < 0


def _ensemble(y, pred):
    """Each item's majority answer over the runs (binary correctness: right if most are right)."""
    right = (pred == y[None, :]).mean(axis=0) > 0.5
    return np.where(right, y, 1 - y)


def mcnemar(y, before, after) -> bool:
    return mcnemar_exact(y, _ensemble(y, before), _ensemble(y, after))["p_value"] < 0.05


def old_rule(y, before, after) -> bool:
    return item_bootstrap(y, before, after) and mcnemar(y, before, after)


def two_level_bootstrap(y, before, after, n_boot=500, seed=0) -> bool:
    rng = np.random.default_rng(seed)
    rb, ra = (before == y[None, :]).astype(float), (after == y[None, :]).astype(float)
    s, n = len(rb), len(y)
    reps = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        reps[b] = ra[rng.integers(0, s, s)][:, idx].mean() - rb[rng.integers(0, s, s)][:, idx].mean()
    low, high = np.quantile(reps, [0.025, 0.975])
    return low > 0 or high < 0


def aso_judge() -> Judge | None:
    try:
        from deepsig import aso
    except ImportError:
        return None

    def judge(y, before, after) -> bool:
        acc_b, acc_a = _accuracies(y, before), _accuracies(y, after)
        kwargs = dict(num_bootstrap_iterations=100, show_progress=False, seed=0)
        return min(aso(acc_a, acc_b, **kwargs), aso(acc_b, acc_a, **kwargs)) < 0.2
    return judge


def judges() -> dict[str, Judge]:
    out: dict[str, Judge] = {"seeds + items (ours)": ours, "item bootstrap (old)": item_bootstrap,
                             "McNemar ensembles (old)": mcnemar, "old rule (both)": old_rule,
                             "two-level bootstrap": two_level_bootstrap}
    aso = aso_judge()
    if aso is not None:
        out["ASO eps<0.2 (deepsig)"] = aso
    return out


def wilson(k: int, n: int) -> tuple[float, float]:
    """95% Wilson interval of a rate k/n."""
    if n == 0:
        return math.nan, math.nan
    z, p = 1.96, k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


#: ASO takes about a second a call: it judges at most this many comparisons per setting.
ASO_LIMIT = 100


def _judge_all(js: dict[str, Judge], y, before, after, counts: dict[str, list[int]], r: int) -> None:
    for name, judge in js.items():
        if name.startswith("ASO") and r >= ASO_LIMIT:
            continue
        counts.setdefault(name, [0, 0])
        counts[name][0] += bool(judge(y, before, after))
        counts[name][1] += 1


def _print_rates(title: str, counts: dict[str, list[int]]) -> None:
    print(f"\n{title}: share of comparisons that claims a change")
    for name, (k, n) in counts.items():
        low, high = wilson(k, n)
        print(f"  {name:<28} {k:4d}/{n:<4d} = {k / n:5.3f}   (95% {low:.3f}-{high:.3f})")


# --- part 1: simulation -------------------------------------------------------------------

def simulate(rng, n, seeds, seed_sd, run_sd, effect):
    easy = rng.normal(1.5, 1.5, n)

    def side(shift):
        z = easy[None, :] + shift + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, run_sd, (seeds, n))
        right = rng.random((seeds, n)) < 1 / (1 + np.exp(-z))
        return np.where(right, 0, 1)          # y = 0 everywhere: prediction 0 is right
    return np.zeros(n, dtype=int), side(0.0), side(effect)


def part_one(reps: int) -> None:
    rng = np.random.default_rng(2026)
    js = judges()
    for effect, label in ((0.0, "no change"), (0.5, "a change (+0.5 on the logit scale)")):
        for seed_sd, run_sd in ((0.0, 0.5), (0.3, 0.5), (0.6, 0.3)):
            counts: dict[str, list[int]] = {}
            for r in range(reps):
                y, before, after = simulate(rng, 300, 3, seed_sd, run_sd, effect)
                _judge_all(js, y, before, after, counts, r)
            _print_rates(f"simulation, {label}, seed sd {seed_sd}, run sd {run_sd}", counts)


# --- part 2: a tiny BERT, trained -----------------------------------------------------------

def part_two(reps: int) -> None:
    from tiny_models import AfterSeedsDiffer, build_tiny_bert, calibration_case, calibration_config

    from fine_tune.compare import compare
    from fine_tune.train import train_classifier

    import logging

    import transformers

    logging.getLogger("fine_tune.compare").setLevel(logging.ERROR)  # the size note, 40 times
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    train, test = calibration_case()
    with tempfile.TemporaryDirectory() as tmp:
        model = build_tiny_bert(Path(tmp))
        config = calibration_config(model)
        js = judges()
        counts: dict[str, list[int]] = {k: [0, reps] for k in (
            "verdict better/worse (ours)", "verdict no_real_change", "verdict inconclusive",
            "a side did not learn")}
        y = test["label"].map({"neg": 0, "pos": 1}).to_numpy()
        start, spreads = time.perf_counter(), []
        for r in range(reps):
            trainer = AfterSeedsDiffer(train_classifier)
            report = compare(train, train.copy(), test, config=config, seeds=range(3 * r, 3 * r + 3),
                             trainer=trainer, n_boot=300, validation_size=0.0)
            key = {"better": "verdict better/worse (ours)", "worse": "verdict better/worse (ours)"}
            counts[key.get(report.verdict, f"verdict {report.verdict}")][0] += 1
            learned = all(report.learning[s]["learned"] for s in ("before", "after"))
            counts["a side did not learn"][0] += not learned
            spreads.append(report.before.accuracy["std"])
            before = np.stack([p for side, _, p in trainer.predictions if side == "before"])
            after = np.stack([p for side, _, p in trainer.predictions if side == "after"])
            _judge_all(js, y, before, after, counts, r)
        print(f"\ntiny BERT, {len(train)} training rows, {len(test)} test items, 3 seeds a side, "
              f"{config.epochs} epochs at {config.learning_rate}: median seed spread of accuracy "
              f"(std) {np.median(spreads):.3f}; {time.perf_counter() - start:.0f} s")
        _print_rates("tiny BERT, same data both sides, other seeds (the judges see every run, "
                     "also where a side did not learn)", counts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sim-reps", type=int, default=300)
    parser.add_argument("--train-reps", type=int, default=40)
    args = parser.parse_args()
    if args.sim_reps:
        part_one(args.sim_reps)
    if args.train_reps:
        part_two(args.train_reps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
