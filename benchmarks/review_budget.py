"""Review budget: how many wrong labels does a reviewer fix in 5%, 10% and 20% of the items,
in each order? A simulated reviewer sets the true label of each item reviewed.

Orders, all from one flagging pass on the same embeddings:

- the review queue as the flaggers rank it (static), then the unflagged items by their doubt;
- the queue learning from the reviewer's decisions (:func:`curation.flags.learn_order`,
  re-ranked every 20 decisions with the flaggers' order as the prior, the doubt signs as
  features, as on the Review page);
- the share of minority votes (highest first);
- random order (mean of 20 shuffles);
- two ceilings, orders nobody can have: the learning queue's features re-weighted by a logistic
  regression fitted on the truth of every queued item (in-sample), and of the other four fifths
  (5-fold). What they reach bounds what any re-weighting of these signs, learnt from decisions,
  could reach; below the goal, only new evidence (a stronger model signal) can get there.

An item's label before review is its majority vote (the tie-break where the vote ties); after
review a reviewed item carries its true label. Reported per budget: wrong labels fixed (of how
many), label accuracy after review, and, over the whole run, the precision when half of the
wrong labels have been reached (the goal: >= 0.7).

Data: the Amazon crowd reviews (gold), the bundled demo (planted truth) and a simulated
double-annotated project whose annotators make real DynaSent workers' mistakes
(``_simulated_crowd.py``; far more wrong labels than the 5-vote crowds).

``--retrain``: on the simulated projects (``simulated``, ``simulated-single``: the ones with a
test set of their own, the held-out sentences with their true labels), train before review (every item's label as the app gives it) and after
a review of ``--retrain-budget`` (default 10%; several: ``0.05,0.20``) of the items in each of
``--retrain-orders`` (default ``queue,random``; also ``learning``, ``minority``), and compare each
with the unreviewed side through the retrain-and-compare (``fine_tune.compare``: 3 seeds, the
settings the product resolves from the data, its verdict). The "before" runs are trained once
and reused (``RunCache``; ``--runs DIR`` keeps them between invocations). About 20 minutes per
reviewed side on 2 CPU cores.

Run: ``python benchmarks/review_budget.py [--data amazon,demo,simulated] [--retrain
[--retrain-budget 0.05,0.10] [--retrain-orders queue,random] --runs DIR] [--json OUT]``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from _truth_sets import run_on_truth_sets

from curation.embeddings import Embedder, embed_texts
from curation.flags import REFIT_EVERY, flag_items, learn_order, order_features

BUDGETS = (0.05, 0.10, 0.20)


def _decisions(order: list[str], wrong: pd.Series) -> pd.DataFrame:
    """What the simulated reviewer records for each item of ``order``, in that order."""
    return pd.DataFrame({
        "decision_id": np.arange(1, len(order) + 1), "item_id": order,
        "action": ["set_label" if wrong[i] else "keep" for i in order],
        "old_label": "given", "curated_label": [("true" if wrong[i] else None) for i in order]})


def learning_order(queue: pd.DataFrame, flags: pd.DataFrame, wrong: pd.Series, n: int,
                   rest: list[str], doubt: pd.DataFrame | None = None) -> list[str]:
    """The items a reviewer decides, in the order the learning queue shows them."""
    done: list[str] = []
    while len(done) < n:
        learned = learn_order(queue, flags, _decisions(done, wrong), doubt=doubt)
        seen = set(done)
        left = [i for i in learned.queue["item_id"] if i not in seen]
        if not left:
            break
        # the order stands until the next refit
        done += left[:REFIT_EVERY - len(done) % REFIT_EVERY]
    done = done[:n]
    seen = set(done)
    return done + [i for i in rest if i not in seen][: max(0, n - len(done))]


def ceilings(queue: pd.DataFrame, flags: pd.DataFrame, doubt: pd.DataFrame, wrong: pd.Series,
             rest: list[str]) -> dict[str, list[str]]:
    """The queue's items ranked by a logistic regression of "wrong" on the learning queue's own
    features, fitted on the truth (in-sample; 5-fold), then ``rest``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = order_features(queue, flags, sorted(set(flags["kind"])), doubt)
    y = wrong.reindex(x.index).astype(int).to_numpy()
    model = LogisticRegression(C=1.0, max_iter=5000)
    scores = {"in-sample": model.fit(x, y).decision_function(x)}
    if min(y.sum(), len(y) - y.sum()) >= 5:
        folds = StratifiedKFold(5, shuffle=True, random_state=0)
        scores["5-fold"] = cross_val_predict(model, x, y, cv=folds, method="decision_function")
    return {f"ceiling: re-weighted on the truth, {name}":
            pd.Series(z, index=x.index).sort_values(ascending=False, kind="stable").index.tolist() + rest
            for name, z in scores.items()}


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


def retrain(given: pd.Series, truth: pd.Series, text: pd.Series, orders: dict[str, list[str]],
            budget: float, test: pd.DataFrame, seeds: int, runs: Path | None = None,
            config=None) -> dict:
    """The retrain-and-compare of the unreviewed labels against each order's reviewed ones
    (``config``: training settings; default the product's, resolved from the data)."""
    import tempfile

    from fine_tune.compare import compare
    from fine_tune.run_cache import RunCache

    k = round(budget * len(given))
    before = pd.DataFrame({"item_id": given.index, "text": text.reindex(given.index).to_numpy(),
                           "label": given.to_numpy()})
    out = {}
    with tempfile.TemporaryDirectory(prefix="review-budget-runs-") as folder:
        cache = RunCache(runs or folder)
        for name, order in orders.items():
            reviewed = given.copy()
            reviewed[order[:k]] = truth[order[:k]]
            after = before.assign(label=reviewed.reindex(before["item_id"]).to_numpy())
            start = time.perf_counter()
            report = compare(before[["text", "label"]], after[["text", "label"]], test,
                             config=config or {"save_checkpoints": False}, seeds=list(range(seeds)),
                             cache=cache, progress=lambda f, m: None)
            change = ("no change measured" if report.delta is None else
                      f"change {report.delta:+.3f}" + (
                          f", 95% {report.delta_ci[0]:+.3f} to {report.delta_ci[1]:+.3f}"
                          if report.delta_ci else ""))
            print(f"retrain after {budget:.0%} reviewed in {name} order "
                  f"({int((after['label'] != before['label']).sum())} labels changed): "
                  f"{report.verdict}, accuracy {report.before.accuracy['mean']} -> "
                  f"{report.after.accuracy['mean']} ({change}); {report.verdict_reason} "
                  f"({time.perf_counter() - start:.0f} s)")
            out[name] = report.to_dict()
    return out


def run(name: str, df: pd.DataFrame, truth: pd.Series, guideline=None) -> dict:
    start = time.perf_counter()
    texts = df.drop_duplicates("item_id")["text"].tolist()
    report = flag_items(df, embeddings=embed_texts(texts, embedder=Embedder(max_seq_length=256)),
                        guideline=guideline, seed=0)
    ctx = report.context
    items = list(ctx.items)
    given = ctx.given_labels
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
        "queue, learning from decisions": learning_order(queue, flags, wrong, n_max, unflagged,
                                                         ctx.doubt()),
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
    for order_name, order in ceilings(queue, flags, ctx.doubt(), wrong, unflagged).items():
        out[order_name] = figures(order, wrong, n_items, right_before)
    print(f"{'order':<46}" + "".join(f"{b:>22}" for b in ("5%", "10%", "20%")) + f"{'P at R=0.5':>12}")
    for order_name, fig in out.items():
        cells = "".join(f"{fig[b]['fixed']:>8.1f}/{fig[b]['of']} acc {fig[b]['accuracy_after']:.3f}"
                        for b in ("5%", "10%", "20%"))
        p = fig["precision_at_half_recall"]
        print(f"{order_name:<46}{cells}{('n/a' if p is None else f'{p:.2f}'):>12}")
    static_fixed = out["queue (static)"]["10%"]["fixed"]
    random_fixed = out["random (mean of 20)"]["10%"]["fixed"]
    print(f"at 10%: the static queue fixes {static_fixed / max(random_fixed, 1e-9):.1f}x what random "
          f"review fixes (goal >= 2x); learning: "
          f"{out['queue, learning from decisions']['10%']['fixed'] / max(random_fixed, 1e-9):.1f}x")
    if RETRAIN.get("on") and RETRAIN.get("test") is not None and name.startswith("simulated"):
        text = df.drop_duplicates("item_id").set_index("item_id")["text"]
        random_order = list(np.random.default_rng(0).permutation(items))
        # the learning order is simulated up to the largest budget of the figures above
        orders = {"queue": ("queue (static)", static),
                  "learning": ("queue, learning from decisions",
                               orders["queue, learning from decisions"]),
                  "minority": ("minority-vote share", minority),
                  "random": ("random (one shuffle, seed 0)", random_order)}
        unknown = sorted(set(RETRAIN["orders"]) - set(orders))
        if unknown:
            raise SystemExit(f"--retrain-orders: unknown {', '.join(unknown)}; use any of "
                             f"{', '.join(orders)}")
        out["retrain"] = {}
        for budget in RETRAIN["budgets"]:
            if budget > max(BUDGETS):
                raise SystemExit(f"--retrain-budget {budget}: at most {max(BUDGETS)} (the "
                                 f"learning order is simulated that far)")
            chosen = dict(orders[key] for key in RETRAIN["orders"])
            out["retrain"][f"{budget:.0%}"] = retrain(
                given, truth, text, chosen, budget, RETRAIN["test"], RETRAIN["seeds"],
                RETRAIN["runs"])
    elif RETRAIN.get("on"):
        print("(no retrain here: this data set has no test set outside the project)")
    return out


#: what ``--retrain`` asked for, set by main()
RETRAIN: dict = {}


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrain", action="store_true",
                        help="retrain-and-compare after review, on the simulated projects")
    parser.add_argument("--retrain-budget", default="0.10",
                        help="share(s) of the items reviewed, comma-separated: 0.05,0.10,0.20")
    parser.add_argument("--retrain-orders", default="queue,random",
                        help="which reviewed sides to compare with the unreviewed one, "
                             "comma-separated: queue, learning, minority, random")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--runs", type=Path, help="keep finished training runs here (a rerun "
                        "reuses them); default: a temporary folder")
    known, _ = parser.parse_known_args()
    if known.retrain:
        from _simulated_crowd import build

        RETRAIN.update(on=True, budgets=[float(b) for b in known.retrain_budget.split(",")],
                       seeds=known.seeds, test=build()[2],
                       runs=known.runs, orders=known.retrain_orders.split(","))
    run_on_truth_sets(run, __doc__.splitlines()[0], parser)


if __name__ == "__main__":
    main()
