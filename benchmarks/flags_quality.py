"""How well do the flags find wrong consensus labels? Against cleanlab alone and random order.

Target items: those whose majority vote differs from the known truth.

- ``../shared/data/amazon-crowd-sentiment``: 1,000 reviews, 5 crowd votes each (expanded to
  anonymous annotator slots), gold labels; majority vote is wrong on 35 items.
- the bundled demo project: 553 messages, 3 of 5 simulated annotators each, the true label of
  every item known from how it was made (``curation/demo/planted.json``): a second data set, so
  that no setting is judged on one data set alone.

For each: precision and recall of every flag kind's flagged set; precision and recall of the
top K of the review queue for K = number of targets, 50 and 100, next to cleanlab's
``find_label_issues`` alone (ranked by self-confidence, on the same out-of-fold probabilities)
and to a random order (mean of 200 seeded shuffles); and the largest recall reached at
precision >= 0.7. Run: ``python benchmarks/flags_quality.py``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import amazon_long  # noqa: E402

from curation.embeddings import Embedder, embed_texts  # noqa: E402
from curation.flags import flag_items  # noqa: E402
from curation.guidelines import load_guideline  # noqa: E402
from curation.io import load_annotations  # noqa: E402


def ranking_figures(order: list[str], targets: set[str], ks: list[int]) -> dict[str, tuple[float, float]]:
    out = {}
    for k in ks:
        hits = len(set(order[:k]) & targets)
        out[f"K={k}"] = (hits / k, hits / len(targets))
    return out


def recall_at_precision(order: list[str], targets: set[str], precision: float = 0.7) -> float:
    hits = np.cumsum([item in targets for item in order])
    ok = hits / np.arange(1, len(order) + 1) >= precision
    return float(hits[ok].max() / len(targets)) if ok.any() else 0.0


def cleanlab_order(context) -> list[str]:
    from cleanlab.filter import find_label_issues

    ranked = find_label_issues(context.given_codes, context.pred_probs,
                               return_indices_ranked_by="self_confidence")
    return list(context.items[ranked])


def random_figures(items: list[str], targets: set[str], ks: list[int]) -> dict[str, tuple[float, float]]:
    rng = np.random.default_rng(0)
    runs = [ranking_figures(list(rng.permutation(items)), targets, ks) for _ in range(200)]
    return {k: tuple(np.mean([r[k][i] for r in runs]) for i in (0, 1)) for k in runs[0]}


def evaluate(name: str, df: pd.DataFrame, truth: pd.Series, guideline=None) -> None:
    start = time.perf_counter()
    texts = df.drop_duplicates("item_id")["text"].tolist()
    embeddings = embed_texts(texts, embedder=Embedder(max_seq_length=256))
    report = flag_items(df, embeddings=embeddings, guideline=guideline, seed=0)
    ctx = report.context
    majority = ctx.majority.labels_
    wrong = (majority != truth.reindex(ctx.items)) & majority.notna()
    targets = set(ctx.items[wrong.to_numpy()])
    ks = [len(targets), 50, 100]
    print(f"\n=== {name}: {len(ctx.items)} items, {len(targets)} with a wrong majority vote "
          f"({time.perf_counter() - start:.0f} s)")
    print(f"{'flag kind':<18}{'flagged':>8}{'precision':>11}{'recall':>8}")
    for kind, group in report.flags.groupby("kind"):
        hits = len(set(group["item_id"]) & targets)
        print(f"{kind:<18}{len(group):>8}{hits / len(group):>11.2f}{hits / len(targets):>8.2f}")
    flagged = set(report.queue["item_id"])
    print(f"{'any flag':<18}{len(flagged):>8}{len(flagged & targets) / len(flagged):>11.2f}"
          f"{len(flagged & targets) / len(targets):>8.2f}")
    orders = {"review queue (ours)": list(report.queue["item_id"]),
              "cleanlab find_label_issues": cleanlab_order(ctx)}
    print(f"\n{'ranking':<30}" + "".join(f"{'K=' + str(k):>16}" for k in ks) + f"{'recall@p>=0.7':>15}")
    for label, order in orders.items():
        figs = ranking_figures(order, targets, ks)
        print(f"{label:<30}" + "".join(f"  p={p:.2f} r={r:.2f}" for p, r in figs.values())
              + f"{recall_at_precision(order, targets):>15.2f}   ({len(order)} ranked)")
    figs = random_figures(list(ctx.items), targets, ks)
    print(f"{'random order (200 shuffles)':<30}" + "".join(f"  p={p:.2f} r={r:.2f}" for p, r in figs.values()))
    print("goal: precision >= 0.70 at recall >= 0.50")


def main() -> None:
    amazon = amazon_long()
    evaluate("amazon-crowd-sentiment", amazon, amazon.drop_duplicates("item_id").set_index("item_id")["gold"])
    demo = load_annotations(ROOT / "curation" / "demo" / "bank_demo.csv")
    planted = json.loads((ROOT / "curation" / "demo" / "planted.json").read_text())
    evaluate("bundled demo (bank support)", demo, pd.Series(planted["true_labels"]),
             load_guideline(ROOT / "guidelines" / "bank_support.yaml"))


if __name__ == "__main__":
    main()
