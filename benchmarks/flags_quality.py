"""How well do the flags find wrong consensus labels? Against cleanlab alone and random order.

Target items: those whose majority vote differs from the known truth.

- ``../shared/data/amazon-crowd-sentiment``: 1,000 reviews, 5 crowd votes each (expanded to
  anonymous annotator slots), gold labels; majority vote is wrong on 35 items.
- the bundled demo project: 553 messages, 3 of 5 simulated annotators each, the true label of
  every item known from how it was made (``curation/demo/planted.json``): a second data set, so
  that no setting is judged on one data set alone;
- a simulated double-annotated project (``_simulated_crowd.py``: DynaSent sentences all five
  workers agreed on, labelled again by two simulated annotators with real DynaSent workers'
  confusion matrices): a third, with far more wrong labels and many ties.

For each: precision and recall of every flag kind's flagged set; then
:func:`curation.flags.evaluate_flags` (what ``curation evaluate-flags`` prints): the review
queue next to random order, minority-vote share, Dawid-Skene, cleanlab's ``find_label_issues``
and CROWDLAB, all from one flagging pass on the same embeddings: precision and recall at K
(K = number of targets, 50, 100, 10% of items), AUC, and the recall reached at precision
>= 0.7; tied items apart. Run: ``python benchmarks/flags_quality.py [--data amazon,demo,simulated] [--json OUT]``.
"""

from __future__ import annotations

import time

import pandas as pd
from _truth_sets import run_on_truth_sets

from commands.curation import format_flag_evaluation
from curation.embeddings import Embedder, embed_texts
from curation.flags import evaluate_flags, flag_items


def evaluate(name: str, df: pd.DataFrame, truth: pd.Series, guideline=None) -> dict:
    start = time.perf_counter()
    texts = df.drop_duplicates("item_id")["text"].tolist()
    embeddings = embed_texts(texts, embedder=Embedder(max_seq_length=256))
    report = flag_items(df, embeddings=embeddings, guideline=guideline, seed=0)
    result = evaluate_flags(df, truth, report=report, truth_source=name)
    ctx = report.context
    majority = ctx.majority.labels_.reindex(truth.index)
    targets = set(majority.index[(majority.notna() & (majority != truth)).to_numpy()])
    print(f"\n=== {name}: {len(ctx.items)} items, {len(targets)} with a wrong majority vote "
          f"({time.perf_counter() - start:.0f} s)")
    print(f"{'flag kind':<18}{'flagged':>8}{'precision':>11}{'recall':>8}")
    for kind, group in report.flags.groupby("kind"):
        hits = len(set(group["item_id"]) & targets)
        print(f"{kind:<18}{len(group):>8}{hits / len(group):>11.2f}{hits / len(targets):>8.2f}")
    flagged = set(report.queue["item_id"])
    print(f"{'any flag':<18}{len(flagged):>8}{len(flagged & targets) / len(flagged):>11.2f}"
          f"{len(flagged & targets) / len(targets):>8.2f}\n")
    print(format_flag_evaluation(result))
    print("goal: precision >= 0.70 at recall >= 0.50; the queue at least as good as the best "
          "baseline on AUC and precision at K")
    return result.to_dict()


def main() -> None:
    run_on_truth_sets(evaluate, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
