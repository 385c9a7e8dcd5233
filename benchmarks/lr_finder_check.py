"""How close does the learning-rate range test come to the best rate of a small grid?

Data: ``../shared/data/financial-phrasebank-50agree`` (duplicated texts dropped), the same 80/20
stratified split with seed 0 as ``finetune_throughput.py``; the 80% is split again into
training rows (``--train-rows``, stratified sample) and a 20% validation set, which picks the
grid's best rate. The test set is only reported, never used to choose.

1. ``fine_tune.lr_range_test`` on the training rows (bundled MiniLM, batch 16, 128 tokens,
   ``--steps`` steps from 1e-7 to 1e-2): its suggested rate (steepest fall of the smoothed loss),
   and the "minimum / 10" rate beside it.
2. ``fine_tune.train_classifier`` at each rate of the grid (and at the suggested rate), same
   everything else (``--epochs`` epochs, warmup 10%, linear decay), over ``--seeds`` seeds:
   validation accuracy and macro-F1, test accuracy.

It prints the table, the grid's best rate, how many decades the suggestion is from it and the
validation accuracy lost by taking the suggestion instead of running the grid.

Run: ``python benchmarks/lr_finder_check.py [--train-rows 1500 --epochs 2 --seeds 1]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune_throughput import load  # noqa: E402

GRID = (1e-5, 3e-5, 1e-4, 3e-4, 1e-3)


def split(train_rows: int) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    pool, test = load(1.0)
    train, validation = train_test_split(pool, test_size=0.2, stratify=pool["label"], random_state=0)
    if train_rows < len(train):
        train, _ = train_test_split(train, train_size=train_rows, stratify=train["label"],
                                    random_state=0)
    return train.reset_index(drop=True), validation.reset_index(drop=True), test


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-rows", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()

    from sklearn.metrics import accuracy_score, f1_score

    from fine_tune import TrainConfig, lr_range_test, train_classifier

    train, validation, test = split(args.train_rows)
    print(f"financial-phrasebank: train {len(train):,}, validation {len(validation):,}, "
          f"test {len(test):,}; {args.epochs} epochs per grid point, {args.seeds} seed(s)")
    base = dict(batch_size=16, max_length=128, epochs=args.epochs, early_stopping_patience=0,
                save_checkpoints=False)

    start = time.perf_counter()
    found = lr_range_test(train, config=TrainConfig(**base), num_steps=args.steps)
    print(f"LR range test: {len(found.lrs)} steps in {time.perf_counter() - start:.0f} s"
          f"{' (stopped on divergence)' if found.stopped_early else ''}; suggested "
          f"{found.suggested_lr:.2e} (steepest fall), minimum/10 rule {found.min_loss_lr:.2e}")

    rates = sorted(set(GRID) | {found.suggested_lr})
    rows = []
    for lr in rates:
        for seed in range(args.seeds):
            result = train_classifier(train, validation, pd.concat([validation, test]),
                                      config=TrainConfig(**base, learning_rate=lr, seed=seed))
            codes = result.test_pred
            y = np.array([result.labels.index(v) for v in pd.concat([validation, test])["label"]])
            nv = len(validation)
            rows.append({"lr": lr, "seed": seed, "suggested": lr == found.suggested_lr,
                         "val_accuracy": accuracy_score(y[:nv], codes[:nv]),
                         "val_macro_f1": f1_score(y[:nv], codes[:nv], average="macro"),
                         "test_accuracy": accuracy_score(y[nv:], codes[nv:]),
                         "diagnosis": result.diagnosis.summary})
            r = rows[-1]
            print(f"  lr {lr:.2e}{' (suggested)' if r['suggested'] else '            '} seed {seed}: "
                  f"validation accuracy {r['val_accuracy']:.4f}  macro-F1 {r['val_macro_f1']:.4f}  "
                  f"test accuracy {r['test_accuracy']:.4f}", flush=True)
    table = pd.DataFrame(rows).groupby("lr")[["val_accuracy", "val_macro_f1", "test_accuracy"]].mean()
    grid = table.loc[list(GRID)]
    best = float(grid["val_accuracy"].idxmax())
    decades = math.log10(found.suggested_lr / best)
    lost = float(grid.loc[best, "val_accuracy"] - table.loc[found.suggested_lr, "val_accuracy"])
    print("\n" + table.round(4).to_string())
    print(f"\ngrid's best rate by validation accuracy: {best:.0e} "
          f"({grid.loc[best, 'val_accuracy']:.4f}); the suggestion {found.suggested_lr:.2e} is "
          f"{abs(decades):.2f} decades {'above' if decades > 0 else 'below'} it and gives "
          f"{table.loc[found.suggested_lr, 'val_accuracy']:.4f} ({-lost:+.4f}); the minimum/10 rule "
          f"says {found.min_loss_lr:.2e} ({math.log10(found.min_loss_lr / best):+.2f} decades)")
    print(json.dumps({"suggested_lr": found.suggested_lr, "min_loss_lr": found.min_loss_lr,
                      "best_grid_lr": best, "decades_off": decades,
                      "val_accuracy_lost": lost, "table": table.reset_index().to_dict("records")}))


if __name__ == "__main__":
    main()
