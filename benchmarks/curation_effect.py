"""Does curation move accuracy? Retrain-and-compare with automatic curation, on real crowd data.

Data sets (two, so no threshold is judged on one alone):

- ``../shared/data/amazon-crowd-sentiment``: 1,000 reviews, 5 crowd votes each, gold labels. A
  fixed stratified split (seed 0) holds out 30% as the test set, judged on gold; the other 70%
  are the training pool.
- the bundled demo project: its 150 gold items are the test set; the other 403 the pool.

Pool items whose text equals a test text (after normalising case, spaces and punctuation: the
demo plants near-duplicates) are left out of both sides, as the app does.

before = the raw majority vote of every pool item. after = automatic curation of the pool, with
no gold used: run every flagger, then for each item whose review priority is at least
``--relabel-priority`` (default 0.8) take the queue's suggested label when it has one (else keep
the item); drop items whose priority is at least ``--drop-priority`` (0.95) and that have no
suggestion. Both sides train with the same settings and seeds (the bundled MiniLM, 3 seeds; the
settings the product resolves from the data unless ``--epochs`` / ``--learning-rate`` are given)
and are judged on the same test set: the full retrain-and-compare report, whose verdict
(better / worse / no_real_change / inconclusive) rests on an interval over seeds and test items.

``--review-top N`` (the demo only) replaces automatic curation with a simulated reviewer: the
whole project is flagged as the app does (gold items included, with the demo's guideline) and
the reviewer decides the first N items of the queue, setting each item's true label (from how
the demo was made) or keeping it; the decisions on pool items make the "after" side. This is
the loop the demo is for: review the top of the queue, retrain, compare.

Run: ``python benchmarks/curation_effect.py [--seeds 3] [--epochs N --learning-rate R]
[--data amazon,demo] [--review-top N]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import amazon_long  # noqa: E402

from curation.aggregation import MajorityVote  # noqa: E402
from curation.curate import curate  # noqa: E402
from curation.embeddings import embed_texts  # noqa: E402
from curation.flags import flag_items  # noqa: E402
from curation.io import load_annotations  # noqa: E402


def auto_decisions(pool: pd.DataFrame, *, relabel_priority: float, drop_priority: float) -> pd.DataFrame:
    """Decisions (the shape of ``Project.latest_decisions()``) that automatic curation takes."""
    texts = pool.drop_duplicates("item_id")["text"].tolist()
    report = flag_items(pool, embeddings=embed_texts(texts), seed=0)
    queue = report.queue
    relabel = queue[(queue["priority"] >= relabel_priority) & queue["suggested_label"].notna()]
    drop = queue[(queue["priority"] >= drop_priority) & queue["suggested_label"].isna()]
    rows = ([(i, "set_label", lab) for i, lab in zip(relabel["item_id"], relabel["suggested_label"])]
            + [(i, "drop", None) for i in drop["item_id"]])
    out = pd.DataFrame(rows, columns=["item_id", "action", "curated_label"])
    return out.assign(reviewer="auto", note="automatic curation", created_at=pd.Timestamp.now())


def review_decisions(top: int) -> pd.DataFrame:
    """A reviewer's decisions on the first ``top`` items of the demo's whole-project queue."""
    from curation.guidelines import load_guideline
    from curation.workspace import DEMO_CSV, DEMO_GUIDELINE

    long = load_annotations(DEMO_CSV)
    texts = long.drop_duplicates("item_id")["text"].tolist()
    report = flag_items(long.drop(columns=["gold"]), embeddings=embed_texts(texts),
                        guideline=load_guideline(DEMO_GUIDELINE), seed=0)
    truth = json.loads((ROOT / "curation" / "demo" / "planted.json").read_text())["true_labels"]
    given = report.context.given_labels
    rows = [(i, "set_label", truth[i]) if truth[i] != given[i] else (i, "keep", None)
            for i in report.queue["item_id"][:top]]
    out = pd.DataFrame(rows, columns=["item_id", "action", "curated_label"])
    print(f"(the reviewer decided the queue's first {len(out)} items: "
          f"{int((out['action'] == 'set_label').sum())} labels changed)")
    return out.assign(reviewer="simulated reviewer", note="", created_at=pd.Timestamp.now())


def sides(pool: pd.DataFrame, decisions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    mv = MajorityVote().fit(pool.drop(columns=["gold"], errors="ignore"))
    labels = mv.labels_.copy()
    tied = labels.isna()
    labels[tied] = mv.ties_[tied].map(lambda t: t[0])
    text = pool.drop_duplicates("item_id").set_index("item_id")["text"]
    before = pd.DataFrame({"item_id": labels.index, "text": text.reindex(labels.index).to_numpy(),
                           "label": labels.to_numpy()})
    curated = curate(pool.drop(columns=["gold"], errors="ignore"), decisions)
    after = curated[~curated["status"].isin(["ambiguous"])][["item_id", "text", "label"]]
    gold = pool.drop_duplicates("item_id").set_index("item_id").get("gold")  # scoring only
    facts = {"pool": len(before), "relabelled": int((curated["status"] == "relabelled").sum()),
             "dropped": int(len(before) - len(after))}
    if gold is not None:
        g = gold.reindex(before["item_id"]).to_numpy()
        facts["pool_label_accuracy_before"] = float((before["label"].to_numpy() == g).mean())
        ga = gold.reindex(after["item_id"]).to_numpy()
        facts["pool_label_accuracy_after"] = float((after["label"].to_numpy() == ga).mean())
    return before.reset_index(drop=True), after.reset_index(drop=True), facts


def amazon_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split

    long = amazon_long()
    items = long.drop_duplicates("item_id")
    pool_ids, test_ids = train_test_split(items["item_id"], test_size=0.3, stratify=items["gold"],
                                          random_state=0)
    test = items[items["item_id"].isin(set(test_ids))]
    return (long[long["item_id"].isin(set(pool_ids))].reset_index(drop=True),
            test[["item_id", "text"]].assign(label=test["gold"]).reset_index(drop=True))


def demo_split() -> tuple[pd.DataFrame, pd.DataFrame]:
    from curation.workspace import DEMO_CSV

    long = load_annotations(DEMO_CSV)
    items = long.drop_duplicates("item_id")
    test = items[items["gold"].notna()]
    pool = long[~long["item_id"].isin(set(test["item_id"]))].drop(columns=["gold"])
    truth = json.loads((ROOT / "curation" / "demo" / "planted.json").read_text())["true_labels"]
    pool["gold"] = pool["item_id"].map(truth)  # how the demo was made; only to score the labels
    return pool.reset_index(drop=True), test[["item_id", "text"]].assign(label=test["gold"]).reset_index(drop=True)


def without_test_texts(pool: pd.DataFrame, test: pd.DataFrame) -> pd.DataFrame:
    """The pool minus items whose text equals a test text (after normalising): no leakage."""
    from curation.splits import normalise_text

    keys = set(test["text"].map(normalise_text))
    leaked = pool["text"].map(normalise_text).isin(keys)
    if leaked.any():
        print(f"(left {pool.loc[leaked, 'item_id'].nunique()} pool items out: same text as a test item)")
    return pool[~leaked].reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, help="default: what the product resolves from the data")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, help="default: resolved from the data")
    parser.add_argument("--max-length", type=int, help="default: resolved from the data (Amazon's "
                        "long reviews resolve to 480 tokens: hours on a 2-core CPU)")
    parser.add_argument("--relabel-priority", type=float, default=0.8)
    parser.add_argument("--drop-priority", type=float, default=0.95)
    parser.add_argument("--data", default="amazon,demo")
    parser.add_argument("--review-top", type=int, help="demo: a simulated reviewer decides the "
                        "queue's first N items (true labels) instead of automatic curation")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--runs", type=Path, help="keep finished training runs here; a rerun "
                        "reuses those whose data, settings and code are unchanged")
    args = parser.parse_args()
    from fine_tune.compare import compare
    from fine_tune.run_cache import RunCache

    cache = RunCache(args.runs) if args.runs else None

    given = {k: v for k, v in (("epochs", args.epochs), ("learning_rate", args.learning_rate),
                               ("max_length", args.max_length)) if v is not None}
    config = {**given, "save_checkpoints": False}
    out = {}
    for name in args.data.split(","):
        pool, test = amazon_split() if name == "amazon" else demo_split()
        pool = without_test_texts(pool, test)
        start = time.perf_counter()
        if args.review_top and name == "demo":
            decisions = review_decisions(args.review_top)
            decisions = decisions[decisions["item_id"].isin(set(pool["item_id"]))]
        else:
            decisions = auto_decisions(pool.drop(columns=["gold"], errors="ignore"),
                                       relabel_priority=args.relabel_priority,
                                       drop_priority=args.drop_priority)
        before, after, facts = sides(pool, decisions)
        how = "review of the queue's top" if args.review_top and name == "demo" else "automatic curation"
        print(f"\n=== {name}: pool {facts['pool']}, test {len(test)} (gold); {how} "
              f"relabelled {facts['relabelled']}, dropped {facts['dropped']}")
        if "pool_label_accuracy_before" in facts:
            print(f"training labels right (against gold): before {facts['pool_label_accuracy_before']:.3f}, "
                  f"after {facts['pool_label_accuracy_after']:.3f}")
        if not facts["relabelled"] and not facts["dropped"]:
            print(f"VERDICT ({name}): none: automatic curation changed no label at priority >= "
                  f"{args.relabel_priority} (the queue's priority pools its doubt signs since "
                  "2026-11-30, so few items reach it); both sides would be the same data.")
            out[name] = {"facts": facts, "report": None}
            continue
        report = compare(before[["text", "label"]], after[["text", "label"]], test[["text", "label"]],
                         config=config, seeds=list(range(args.seeds)),
                         progress=lambda f, m: None, cache=cache)
        print(report.to_markdown())
        print(f"VERDICT ({name}): {report.verdict}: {report.verdict_reason}")
        print(f"({time.perf_counter() - start:.0f} s)")
        out[name] = {"facts": facts, "report": report.to_dict()}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
