"""Full agreement report vs the peer libraries on 1,000,000 annotation slots.

Data: 100,000 items x 10 annotators, 5 labels, 20% of slots missing (every item
is labelled by 8 of the 10 annotators, so statsmodels' Fleiss' kappa, which
needs the same number of ratings per item, applies; 800,000 annotations).

Ours: ``curation.agreement_report`` from the long frame: all four coefficients,
1,000 bootstrap intervals for each, 45 pairwise Cohen's kappas, per-class and
per-annotator tables, majority-vote consensus and the most disputed items.

Peers (given their natural inputs, built outside the timing): statsmodels
``aggregate_raters`` + ``fleiss_kappa``, ``krippendorff.alpha`` (nominal) and
scikit-learn ``cohen_kappa_score`` for each of the 45 pairs: point values only,
no intervals. Run: ``python benchmarks/agreement.py [--items N]``.
"""

from __future__ import annotations

import argparse
import itertools
import time

import krippendorff
import numpy as np
import pandas as pd
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

from curation import agreement_report


def make_data(n_items: int, n_annotators: int = 10, n_labels: int = 5, per_item: int = 8,
              seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, n_labels, n_items)
    skill = rng.uniform(0.55, 0.9, n_annotators)
    codes = np.full((n_items, n_annotators), -1)
    chosen = np.argsort(rng.random((n_items, n_annotators)), axis=1)[:, :per_item]
    rows = np.repeat(np.arange(n_items), per_item)
    cols = chosen.ravel()
    right = rng.random(rows.size) < skill[cols]
    codes[rows, cols] = np.where(right, truth[rows], rng.integers(0, n_labels, rows.size))
    labels = np.array([f"label_{k}" for k in range(n_labels)])
    df = pd.DataFrame({"item_id": [f"item{i}" for i in rows], "text": "t",
                       "annotator_id": [f"ann{a:02d}" for a in cols], "label": labels[codes[rows, cols]]})
    return df, codes


def best_of(fn, repeats: int):
    """Run ``fn`` several times; keep the last result and the fastest time."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return result, min(times)


def run_peers(codes: np.ndarray) -> dict:
    rated = np.where(codes >= 0, codes, -1)
    complete_rows = np.sort(rated, axis=1)[:, rated.shape[1] - (rated >= 0).sum(axis=1)[0]:]
    table, _ = aggregate_raters(complete_rows)
    fk = fleiss_kappa(table)
    alpha = krippendorff.alpha(reliability_data=np.where(codes >= 0, codes, np.nan).T.astype(float),
                               level_of_measurement="nominal")
    pairs = {}
    for a, b in itertools.combinations(range(codes.shape[1]), 2):
        both = (codes[:, a] >= 0) & (codes[:, b] >= 0)
        pairs[(a, b)] = cohen_kappa_score(codes[both, a], codes[both, b])
    return {"fleiss_kappa": fk, "krippendorff_alpha": alpha, "pairs": pairs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="best of N runs for each side")
    args = parser.parse_args()
    df, codes = make_data(args.items)
    print(f"data: {args.items:,} items x 10 annotators, 5 labels, 20% missing -> {len(df):,} annotations")
    peers, t_peers = best_of(lambda: run_peers(codes), args.repeats)
    report, t_ours = best_of(lambda: agreement_report(df, n_boot=1000, seed=0), args.repeats)
    diffs = {
        "fleiss_kappa": abs(report.coefficients["fleiss_kappa"] - peers["fleiss_kappa"]),
        "krippendorff_alpha": abs(report.coefficients["krippendorff_alpha"] - peers["krippendorff_alpha"]),
        "cohen (max over 45 pairs)": max(
            abs(r.kappa - peers["pairs"][(int(r.a[3:]), int(r.b[3:]))]) for r in report.pairwise.itertuples()),
    }
    print(f"\n{'value':<28}{'ours':>12}{'peer':>12}{'|diff|':>12}")
    print(f"{'fleiss_kappa':<28}{report.coefficients['fleiss_kappa']:>12.6f}{peers['fleiss_kappa']:>12.6f}"
          f"{diffs['fleiss_kappa']:>12.1e}")
    print(f"{'krippendorff_alpha':<28}{report.coefficients['krippendorff_alpha']:>12.6f}"
          f"{peers['krippendorff_alpha']:>12.6f}{diffs['krippendorff_alpha']:>12.1e}")
    print(f"{'cohen (max over 45 pairs)':<28}{'':>24}{diffs['cohen (max over 45 pairs)']:>12.1e}")
    print(f"\nbest of {args.repeats} runs each")
    print(f"peers (statsmodels + krippendorff + sklearn x45, point values only): {t_peers:6.2f} s")
    print(f"ours  (full report incl. 4x1000 bootstrap CIs, consensus, tables):  {t_ours:6.2f} s")
    print(f"ratio ours / peers: {t_ours / t_peers:.2f}  (goal <= 0.50; ours goal < 10 s)")
    identical = all(d < 1e-9 for d in diffs.values())
    print(f"identical to 1e-9: {identical}")


if __name__ == "__main__":
    main()
