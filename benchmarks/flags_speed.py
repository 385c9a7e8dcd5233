"""All flaggers on 100,000 texts on the CPU, against bare embedding of the same texts (the floor).

Texts: sentences of the shared DynaSent and Financial PhraseBank files, one or two per item,
combined with a seeded generator into 100,000 distinct texts; each item labelled by 3 of 5
simulated annotators (85% accurate) with the first sentence's label as truth.

Three timings, in one run:

1. floor: ``Embedder().encode(texts)``, the bundled MiniLM, nothing else;
2. ours, cold: ``flag_project`` on a fresh SQLite project: embed (and cache) every text, train the
   out-of-fold classifier, run every flagger, build the queue, store the flags;
3. ours, cached rerun: ``flag_project`` again on the unchanged project.

Goal: (2) <= 1.3 x (1); (3) < 5 s. Run: ``python benchmarks/flags_speed.py [--items N]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from curation.embeddings import Embedder
from curation.store import Project
from curation.workspace import flag_project

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LABELS = ["negative", "neutral", "positive"]


def sentence_pool() -> pd.DataFrame:
    rows = []
    for path in sorted((SHARED / "dynasent").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            rec = json.loads(line)
            if rec["gold_label"] in LABELS:
                rows.append((rec["sentence"], rec["gold_label"]))
    phrasebank = SHARED / "financial-phrasebank-50agree" / "Sentences_50Agree.txt"
    for line in phrasebank.read_text(encoding="utf-8-sig").splitlines():
        text, _, label = line.rpartition("@")
        rows.append((text.strip(), label.strip()))
    return pd.DataFrame(rows, columns=["text", "label"]).drop_duplicates("text")


def make_items(n_items: int, seed: int = 0) -> pd.DataFrame:
    pool = sentence_pool()
    rng = np.random.default_rng(seed)
    first = rng.integers(0, len(pool), n_items * 2)
    second = rng.integers(0, len(pool), n_items * 2)
    both = rng.random(n_items * 2) < 0.6
    texts = np.where(both, pool["text"].to_numpy()[first] + " " + pool["text"].to_numpy()[second],
                     pool["text"].to_numpy()[first])
    items = pd.DataFrame({"text": texts, "truth": pool["label"].to_numpy()[first]})
    items = items.drop_duplicates("text").head(n_items).reset_index(drop=True)
    items["item_id"] = [f"t{i:06d}" for i in range(len(items))]
    return items


def annotate(items: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    annotators = np.array(["a1", "a2", "a3", "a4", "a5"])
    truth = pd.Index(LABELS).get_indexer(items["truth"])
    rows = []
    for k in range(3):
        who = annotators[(np.arange(len(items)) + k) % 5]
        right = rng.random(len(items)) < 0.85
        label = np.where(right, truth, (truth + rng.integers(1, 3, len(items))) % 3)
        rows.append(pd.DataFrame({"item_id": items["item_id"], "text": items["text"],
                                  "annotator_id": who, "label": np.array(LABELS)[label]}))
    return pd.concat(rows, ignore_index=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args()
    items = make_items(args.items)
    df = annotate(items)
    print(f"{len(items):,} texts (mean {items['text'].str.len().mean():.0f} chars), {len(df):,} annotations")

    start = time.perf_counter()
    Embedder().encode(items["text"].tolist())
    floor = time.perf_counter() - start
    print(f"floor: bare embedding                      {floor:8.1f} s")

    with tempfile.TemporaryDirectory() as tmp:
        project = Project(Path(tmp) / "speed.sqlite")
        project.import_annotations(df, label_set=LABELS)
        start = time.perf_counter()
        report = flag_project(project)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        again = flag_project(project)
        cached = time.perf_counter() - start
        project.close()
    print(f"ours, cold: embed + cache + all flaggers   {cold:8.1f} s   ratio {cold / floor:.2f} (goal <= 1.30)")
    print(f"ours, cached rerun                         {cached:8.1f} s   (goal < 5 s)")
    print(f"flags: {len(report.flags):,} on {len(report.queue):,} items; rerun identical: "
          f"{report.queue[['item_id', 'priority']].equals(again.queue[['item_id', 'priority']])}")
    print("per stage (cold):", ", ".join(f"{k} {v:.1f} s" for k, v in report.timings.items()))


if __name__ == "__main__":
    main()
