"""Fine-tuning throughput: the seed article's Trainer set-up against ours, same model, same data.

Data: ``../shared/data/financial-phrasebank-50agree`` (duplicated texts dropped), an 80/20
stratified split with seed 0. Model: the bundled all-MiniLM-L6-v2 with a new classification head.

- **article**: ``transformers.Trainer`` with batch 16, fp32, every text padded to 128 tokens,
  3 epochs, learning rate 5e-5, the Trainer's default optimizer (AdamW; fused in transformers 5),
  no warmup, no length grouping.
- **ours**: ``fine_tune.train_classifier`` with the same model, epochs, learning rate, batch size
  (16 on CPU; ``--ours-batch-size`` to change, 64 by default on a GPU), truncation at 128 tokens,
  dynamic padding, length-grouped batches, automatic precision (bf16/fp16 on a GPU, fp32 on CPU),
  fused AdamW on a GPU, warmup 10%.

Each side runs in its own process (so peak memory is its own): training samples per second (as
the Trainer reports it: examples x epochs / training time), test accuracy and macro-F1, and peak
memory (GPU: ``torch.cuda.max_memory_allocated``; CPU: the process's peak resident set).

Run: ``python benchmarks/finetune_throughput.py [--epochs 3] [--fraction 1.0]``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data" / "financial-phrasebank-50agree" / "Sentences_50Agree.txt"


def load(fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    lines = DATA.read_text(encoding="utf-8-sig").splitlines()
    rows = [line.rsplit("@", 1) for line in lines if line.strip()]
    df = pd.DataFrame(rows, columns=["text", "label"]).drop_duplicates("text", keep=False)
    train, test = train_test_split(df, test_size=0.2, stratify=df["label"], random_state=0)
    if fraction < 1:
        train = train.sample(frac=fraction, random_state=0)
        test = test.sample(frac=fraction, random_state=0)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _peak_memory_mb() -> float:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_article(train: pd.DataFrame, test: pd.DataFrame, epochs: int) -> dict:
    import tempfile

    import torch
    from sklearn.metrics import accuracy_score, f1_score
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, Trainer,
                              TrainingArguments)

    from curation.models import default_model_path

    labels = sorted(train["label"].unique())
    index = {label: i for i, label in enumerate(labels)}
    path = default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=len(labels))

    class Encoded(torch.utils.data.Dataset):
        def __init__(self, frame):
            self.enc = tokenizer(frame["text"].tolist(), padding="max_length", truncation=True,
                                 max_length=128)
            self.y = [index[label] for label in frame["label"]]

        def __len__(self):
            return len(self.y)

        def __getitem__(self, i):
            item = {k: torch.tensor(v[i]) for k, v in self.enc.items()}
            item["labels"] = torch.tensor(self.y[i])
            return item

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_train_batch_size=16,
                                 per_device_eval_batch_size=64, num_train_epochs=epochs,
                                 learning_rate=5e-5, save_strategy="no", report_to=[], seed=0,
                                 logging_steps=50, use_cpu=not torch.cuda.is_available())
        trainer = Trainer(model=model, args=args, train_dataset=Encoded(train))
        out = trainer.train()
        pred = trainer.predict(Encoded(test)).predictions.argmax(axis=1)
    y = [index[label] for label in test["label"]]
    return {"samples_per_second": out.metrics["train_samples_per_second"],
            "train_seconds": out.metrics["train_runtime"],
            "accuracy": accuracy_score(y, pred), "macro_f1": f1_score(y, pred, average="macro"),
            "peak_memory_mb": _peak_memory_mb()}


def run_ours(train: pd.DataFrame, test: pd.DataFrame, epochs: int, batch_size: int | None) -> dict:
    import torch
    from sklearn.metrics import accuracy_score, f1_score

    from fine_tune.config import TrainConfig
    from fine_tune.train import train_classifier

    if batch_size is None:
        batch_size = 64 if torch.cuda.is_available() else 16
    config = TrainConfig(epochs=epochs, learning_rate=5e-5, batch_size=batch_size, max_length=128,
                         early_stopping_patience=0, save_checkpoints=False, seed=0)
    result = train_classifier(train, None, test, config=config)
    y = [result.labels.index(label) for label in test["label"]]
    return {"samples_per_second": result.train_samples_per_second,
            "train_seconds": result.train_seconds,
            "accuracy": accuracy_score(y, result.test_pred),
            "macro_f1": f1_score(y, result.test_pred, average="macro"),
            "peak_memory_mb": _peak_memory_mb(), "batch_size": batch_size,
            "precision": str(config.resolved_precision(result.device))}


def _side(args) -> None:
    train, test = load(args.fraction)
    start = time.perf_counter()
    if args.side == "article":
        out = run_article(train, test, args.epochs)
    else:
        out = run_ours(train, test, args.epochs, args.ours_batch_size)
    out["wall_seconds"] = time.perf_counter() - start
    print("RESULT " + json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the data (quick runs)")
    parser.add_argument("--ours-batch-size", type=int, default=None)
    parser.add_argument("--side", choices=["article", "ours"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.side:
        _side(args)
        return
    import torch

    train, test = load(args.fraction)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "CPU"
    print(f"financial-phrasebank: train {len(train):,}, test {len(test):,}; {args.epochs} epochs; "
          f"device: {device}")
    results = {}
    for side in ("article", "ours"):
        cmd = [sys.executable, __file__, "--side", side, "--epochs", str(args.epochs),
               "--fraction", str(args.fraction)]
        if args.ours_batch_size:
            cmd += ["--ours-batch-size", str(args.ours_batch_size)]
        done = subprocess.run(cmd, capture_output=True, text=True)
        line = next((l for l in done.stdout.splitlines() if l.startswith("RESULT ")), None)
        if line is None:
            print(done.stdout[-3000:], done.stderr[-3000:])
            raise SystemExit(f"{side} run failed")
        results[side] = json.loads(line[len("RESULT "):])
        r = results[side]
        print(f"{side:>8}: {r['samples_per_second']:8.1f} samples/s  train {r['train_seconds']:7.1f} s  "
              f"accuracy {r['accuracy']:.4f}  macro-F1 {r['macro_f1']:.4f}  "
              f"peak memory {r['peak_memory_mb']:8.0f} MiB")
    ratio = results["ours"]["samples_per_second"] / results["article"]["samples_per_second"]
    gain = results["ours"]["accuracy"] - results["article"]["accuracy"]
    print(f"\nthroughput ours / article: {ratio:.2f}x (goal on a GPU: >= 5x); "
          f"accuracy difference {gain:+.4f} (goal: >= 0)")
    print(json.dumps({"ratio": ratio, **{f"{k}_{s}": v for s, r in results.items()
                                         for k, v in r.items()}}, default=str))


if __name__ == "__main__":
    main()
