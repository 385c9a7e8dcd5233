"""Continual learning: how much of data set A is forgotten after training on B, plain vs EWC.

A = **phrasebank** (3-class financial sentiment, ``../shared/data/financial-phrasebank-50agree``),
B = **amazon_negative** (the gold "negative" label of ``../shared/data/amazon-crowd-sentiment``);
``--reverse`` swaps them. The data and splits are those of ``multitask_effect.py`` (stratified,
seed 0: ``--test-rows`` test rows, ``--train-rows`` training rows).

Model: the bundled all-MiniLM-L6-v2 as a shared encoder with a head per data set
(``fine_tune.continual``). Per seed, phase 1 trains on A (``--epochs``); phase 2 trains on B from
the same weights twice: plain fine-tuning, and with elastic weight consolidation (the Fisher
information of the encoder estimated on ``--fisher-samples`` of A's training rows, penalty
``lambda/2 * sum F_i (theta_i - theta*_i)^2``, ``--ewc-lambda``, default 1e4). Settings as in
``multitask_effect.py`` (learning rate 1e-4, batch 16, balanced class weights). It prints, per
method, mean ± std over seeds of accuracy on A after A, on A after B, forgetting
(the difference) and accuracy on B, and the paired bootstrap 95% intervals of the forgetting
reduction and of the change in B's accuracy.

The defaults (600 training rows per data set, 400 test rows, 2 epochs, max length 64, 3 seeds,
100 Fisher rows) take about 10 minutes on a 2-core CPU.

Run: ``python benchmarks/continual_ewc.py [--seeds 3 --epochs 2 --train-rows 600 --max-length 64
--ewc-lambda 1e4 --json out.json]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from multitask_effect import (  # noqa: E402
    AMAZON,
    PHRASEBANK,
    common_options,
    load_tasks,
    make_config,
    progress_printer,
    write,
)


def main() -> None:
    from fine_tune.continual import DEFAULT_EWC_LAMBDA, DEFAULT_FISHER_SAMPLES, compare_continual

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    common_options(parser)
    parser.add_argument("--ewc-lambda", type=float, default=DEFAULT_EWC_LAMBDA,
                        help=f"EWC strength (default {DEFAULT_EWC_LAMBDA:g})")
    parser.add_argument("--fisher-samples", type=int, default=DEFAULT_FISHER_SAMPLES,
                        help=f"A's rows for the Fisher information (default {DEFAULT_FISHER_SAMPLES})")
    parser.add_argument("--reverse", action="store_true",
                        help="A = amazon_negative, B = phrasebank (default the other way round)")
    args = parser.parse_args()

    tasks = load_tasks(args.train_rows, args.test_rows)
    order = ["amazon_negative", "phrasebank"] if args.reverse else ["phrasebank", "amazon_negative"]
    for role, name in zip("AB", order):
        train, test = tasks[name]
        print(f"{role} = {name}: {len(train)} train / {len(test)} test rows, labels "
              f"{train['label'].value_counts().to_dict()}", file=sys.stderr)
    start = time.perf_counter()
    report = compare_continual(tasks[order[0]], tasks[order[1]], make_config(args),
                               seeds=range(args.seeds), ewc_lambda=args.ewc_lambda,
                               names=tuple(order), fisher_samples=args.fisher_samples,
                               progress=progress_printer())
    elapsed = time.perf_counter() - start
    write(report, args, {"benchmark": "continual_ewc", "wall_seconds": elapsed,
                         "data": {"phrasebank": str(PHRASEBANK), "amazon_negative": str(AMAZON)},
                         "train_rows": args.train_rows, "test_rows": args.test_rows})
    print(f"wall time {elapsed:.0f} s")


if __name__ == "__main__":
    main()
