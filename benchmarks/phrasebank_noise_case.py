"""Write a retrain-and-compare case with a known answer: clean labels against randomly flipped ones.

Data: ``../shared/data/financial-phrasebank-50agree`` (duplicated texts dropped). A seeded,
stratified draw of ``--train`` sentences for training and ``--test`` others for the test set.

- ``before.csv``: the training sentences with ``--flip`` of their labels changed, at random,
  to one of the other labels (seeded): the data before curation;
- ``after.csv``: the same sentences with their true labels: the data after a perfect curation;
- ``after_half.csv``: half of the flipped labels fixed (a first review round), for the
  "second compare after more review" timing;
- ``test.csv``: the test sentences with their true labels.

Curation here can only help, so a trustworthy verdict says ``better`` when the comparison has
the power to see it. Run:

    python benchmarks/phrasebank_noise_case.py --out /tmp/fpb-case
    python -m fine_tune compare --before /tmp/fpb-case/before.csv --after /tmp/fpb-case/after.csv \\
        --test /tmp/fpb-case/test.csv --json /tmp/fpb-case/report.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "financial-phrasebank-50agree" / "Sentences_50Agree.txt"


def load() -> pd.DataFrame:
    lines = DATA.read_text(encoding="utf-8-sig").splitlines()
    rows = [line.rsplit("@", 1) for line in lines if line.strip()]
    return pd.DataFrame(rows, columns=["text", "label"]).drop_duplicates("text", keep=False)


def flip(labels: pd.Series, share: float, rng: np.random.Generator) -> tuple[pd.Series, np.ndarray]:
    """``share`` of the labels changed to another label, uniformly; returns them and the rows."""
    choices = sorted(labels.unique())
    rows = rng.choice(len(labels), size=round(share * len(labels)), replace=False)
    out = labels.to_numpy().copy()
    for i in rows:
        out[i] = rng.choice([c for c in choices if c != out[i]])
    return pd.Series(out, index=labels.index), np.sort(rows)


def build(n_train: int, n_test: int, share: float, seed: int) -> dict[str, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    data = load()
    train, rest = train_test_split(data, train_size=n_train, stratify=data["label"], random_state=seed)
    test, _ = train_test_split(rest, train_size=n_test, stratify=rest["label"], random_state=seed)
    train = train.reset_index(drop=True).assign(item_id=lambda f: [f"fpb{i}" for i in range(len(f))])
    rng = np.random.default_rng(seed)
    noisy, rows = flip(train["label"], share, rng)
    half = train["label"].copy()
    keep_noisy = rows[: len(rows) // 2]
    half.iloc[keep_noisy] = noisy.iloc[keep_noisy]
    cols = ["item_id", "text", "label"]
    return {"before": train.assign(label=noisy)[cols], "after": train[cols],
            "after_half": train.assign(label=half)[cols],
            "test": test.reset_index(drop=True)[["text", "label"]]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--flip", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    frames = build(args.train, args.test, args.flip, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, frame in frames.items():
        frame.to_csv(args.out / f"{name}.csv", index=False)
    wrong = (frames["before"]["label"] != frames["after"]["label"]).mean()
    half = (frames["after_half"]["label"] != frames["after"]["label"]).mean()
    print(f"wrote {args.out}: train {len(frames['after'])} (before {wrong:.0%} wrong labels, "
          f"after_half {half:.0%}), test {len(frames['test'])}; "
          f"train labels {frames['after']['label'].value_counts().to_dict()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
