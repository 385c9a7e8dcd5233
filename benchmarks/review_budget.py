"""Review budget: how many wrong labels does a reviewer fix in 5%, 10% and 20% of the items,
in each order? A simulated reviewer sets the true label of each item reviewed.

Orders, all from one flagging pass on the same embeddings:

- the review queue as the flaggers rank it (static), then the unflagged items by their doubt;
- the queue learning from the reviewer's decisions (:func:`curation.flags.learn_order`,
  re-ranked every 20 decisions with the flaggers' order as the prior);
- the share of minority votes (highest first);
- random order (mean of 20 shuffles).

An item's label before review is its majority vote (the tie-break where the vote ties); after
review a reviewed item carries its true label. Reported per budget: wrong labels fixed (of how
many), label accuracy after review, and, over the whole run, the precision when half of the
wrong labels have been reached (the goal: >= 0.7).

Data: the Amazon crowd reviews (gold) and the bundled demo (planted truth). Not here yet: the
retrained model after each review (the retrain-and-compare verdict per budget) and a data set
with simulated annotators whose noise moves a model: both are part of issue 14, still open.

Run: ``python benchmarks/review_budget.py [--json OUT]``.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from _truth_sets import run_on_truth_sets

from curation.embeddings import Embedder, embed_texts
from curation.flags import REFIT_EVERY, flag_items, learn_order

BUDGETS = (0.05, 0.10, 0.20)


def _decisions(order: list[str], wrong: pd.Series) -> pd.DataFrame:
    """What the simulated reviewer records for each item of ``order``, in that order."""
    return pd.DataFrame({
        "decision_id": np.arange(1, len(order) + 1), "item_id": order,
        "action": ["set_label" if wrong[i] else "keep" for i in order],
        "old_label": "given", "curated_label": [("true" if wrong[i] else None) for i in order]})


def learning_order(queue: pd.DataFrame, flags: pd.DataFrame, wrong: pd.Series, n: int,
                   rest: list[str]) -> list[str]:
    """The items a reviewer decides, in the order the learning queue shows them."""
    done: list[str] = []
    while len(done) < n:
        learned = learn_order(queue, flags, _decisions(done, wrong))
        seen = set(done)
        left = [i for i in learned.queue["item_id"] if i not in seen]
        if not left:
            break
        # the order stands until the next refit
        done += left[:REFIT_EVERY - len(done) % REFIT_EVERY]
    done = done[:n]
    seen = set(done)
    return done + [i for i in rest if i not in seen][: max(0, n - len(done))]


def figures(order: list[str], wrong: pd.Series, n_items: int, right_before: int) -> dict:
    out = {}
    targets = int(wrong.sum())
    for budget in BUDGETS:
        k = round(budget * n_items)
        fixed = int(wrong[order[:k]].sum())
        out[f"{budget:.0%}"] = {"reviewed": k, "fixed": fixed, "of": targets,
                                "accuracy_after": (right_before + fixed) / n_items}
    hits = np.cumsum(wrong[order].to_numpy())
    half = np.searchsorted(hits, np.ceil(targets / 2))
    out["precision_at_half_recall"] = float(hits[half] / (half + 1)) if half < len(hits) else None
    return out


def run(name: str, df: pd.DataFrame, truth: pd.Series, guideline=None) -> dict:
    start = time.perf_counter()
    texts = df.drop_duplicates("item_id")["text"].tolist()
    report = flag_items(df, embeddings=embed_texts(texts, embedder=Embedder(max_seq_length=256)),
                        guideline=guideline, seed=0)
    ctx = report.context
    items = list(ctx.items)
    given = pd.Series(np.asarray(ctx.labels, dtype=object)[ctx.given_codes], index=ctx.items)
    truth = truth.reindex(ctx.items)
    known = truth.notna()
    wrong = (given != truth) & known
    n_items, right_before = len(items), int((~wrong & known).sum())
    queue, flags = report.queue, report.flags
    # after the flagged items, the rest by their pooled doubt (the Review page's "go on"), then
    # any item with no doubt at all, by id
    ranked_rest = list(report.rest["item_id"])
    unflagged = ranked_rest + sorted(set(items) - set(queue["item_id"]) - set(ranked_rest))
    static = list(queue["item_id"]) + unflagged
    n_max = round(max(BUDGETS) * n_items)
    minority = (1 - ctx.majority.confidence_).rename("s").rename_axis("item_id").reset_index()
    minority = minority.sort_values(["s", "item_id"], ascending=[False, True])["item_id"].tolist()
    orders = {
        "queue (static)": static,
        "queue, learning from decisions": learning_order(queue, flags, wrong, n_max, unflagged),
        "minority-vote share": minority,
    }
    print(f"\n=== {name}: {n_items} items, {int(wrong.sum())} wrong labels before review "
          f"({time.perf_counter() - start:.0f} s to flag)")
    out = {name: figures(order, wrong, n_items, right_before) for name, order in orders.items()}
    rng = np.random.default_rng(0)
    shuffles = [figures(list(rng.permutation(items)), wrong, n_items, right_before) for _ in range(20)]
    out["random (mean of 20)"] = {
        key: ({f: float(np.mean([s[key][f] for s in shuffles])) for f in shuffles[0][key]}
              if isinstance(shuffles[0][key], dict)
              else float(np.mean([s[key] for s in shuffles if s[key] is not None])))
        for key in shuffles[0]}
    print(f"{'order':<34}" + "".join(f"{b:>22}" for b in ("5%", "10%", "20%")) + f"{'P at R=0.5':>12}")
    for order_name, fig in out.items():
        cells = "".join(f"{fig[b]['fixed']:>8.1f}/{fig[b]['of']} acc {fig[b]['accuracy_after']:.3f}"
                        for b in ("5%", "10%", "20%"))
        p = fig["precision_at_half_recall"]
        print(f"{order_name:<34}{cells}{('n/a' if p is None else f'{p:.2f}'):>12}")
    static_fixed = out["queue (static)"]["10%"]["fixed"]
    random_fixed = out["random (mean of 20)"]["10%"]["fixed"]
    print(f"at 10%: the static queue fixes {static_fixed / max(random_fixed, 1e-9):.1f}x what random "
          f"review fixes (goal >= 2x); learning: "
          f"{out['queue, learning from decisions']['10%']['fixed'] / max(random_fixed, 1e-9):.1f}x")
    return out


def main() -> None:
    run_on_truth_sets(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
