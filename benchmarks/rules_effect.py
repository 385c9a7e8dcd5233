"""Do the post-processing rules help? The model's test predictions with and without them.

Two data sets, each with its own rules file beside the guidelines:

- ``../shared/data/financial-phrasebank-50agree`` with ``guidelines/finance_rules.yaml``: the same
  80/20 split (seed 0) as ``finetune_throughput.py``; the model trains on ``--train-rows`` of the
  80% (stratified sample) and predicts the 966 test sentences;
- the bundled demo with ``guidelines/bank_support_rules.yaml``: trained on the raw majority vote
  of the 402 pool items, judged on the 150 gold items (the split of ``curation_effect.py``).

Both train the bundled MiniLM (``--epochs``, ``--learning-rate``, over ``--seeds`` seeds; the
rules are applied to the seeds' ensemble). It prints accuracy without and with the rules, each
rule's tally (fired, overrides, helped, hurt) and every override, so a rule that hurts is seen.

Run: ``python benchmarks/rules_effect.py [--train-rows 1500 --epochs 3 --seeds 1]``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

from curation_effect import demo_split, sides, without_test_texts  # noqa: E402
from finetune_throughput import load  # noqa: E402


def _data(name: str, train_rows: int) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    if name == "phrasebank":
        train, test = load(1.0)
        if train_rows < len(train):
            from sklearn.model_selection import train_test_split

            train, _ = train_test_split(train, train_size=train_rows, stratify=train["label"],
                                        random_state=0)
        return train.reset_index(drop=True), test, ROOT / "guidelines" / "finance_rules.yaml"
    pool, test = demo_split()
    pool = without_test_texts(pool, test)
    before, _after, _facts = sides(pool, pd.DataFrame(columns=["item_id", "action", "curated_label"]))
    return before[["text", "label"]], test[["text", "label"]], ROOT / "guidelines" / "bank_support_rules.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="phrasebank,demo")
    parser.add_argument("--train-rows", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from fine_tune.compare import split_validation
    from fine_tune.config import TrainConfig
    from fine_tune.rules import load_rules
    from fine_tune.stats import ensemble_predictions
    from fine_tune.train import train_classifier

    out = {}
    for name in args.data.split(","):
        train, test, rules_file = _data(name, args.train_rows)
        rules = load_rules(rules_file)
        labels = sorted(train["label"].unique())
        rules.check_labels(labels)
        probas = []
        for seed in range(args.seeds):
            fit, val = split_validation(train, validation_size=0.1, seed=seed)
            config = TrainConfig(epochs=args.epochs, learning_rate=args.learning_rate, max_length=128,
                                 seed=seed, save_checkpoints=False)
            result = train_classifier(fit, val, test, config=config, labels=labels)
            probas.append(result.test_proba)
        pred = [labels[i] for i in ensemble_predictions(probas)]
        result = rules.evaluate(test["text"].tolist(), pred, test["label"].tolist())
        print(f"\n=== {name}: {len(train)} training rows, {len(test)} test; rules {rules_file.name}; "
              f"{args.seeds} seed(s), {args.epochs} epochs, lr {args.learning_rate:g}")
        print(f"accuracy without rules {result['accuracy_without']:.4f}, with rules "
              f"{result['accuracy_with']:.4f} (change {result['accuracy_with'] - result['accuracy_without']:+.4f}); "
              f"{result['n_fired']} fired, {result['n_overrides']} overrides")
        for rule_id, r in result["per_rule"].items():
            print(f"  {rule_id}: fired {r['fired']:3d}  overrides {r['overrides']:3d}  helped {r['helped']:3d}"
                  f"  hurt {r['hurt']:3d}  net {r['net']:+d}  ({r['reason']})")
        for o in result["overrides"]:
            print(f"  [{o['effect']:7s}] {o['rule_id']}: {o['model_label']} -> {o['rule_label']} "
                  f"(true {o['true_label']}): {o['text'][:110]}")
        out[name] = {**result, "train_rows": len(train), "test_rows": len(test),
                     "model_accuracy_check": float(np.mean(np.asarray(pred) == test["label"].to_numpy()))}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
