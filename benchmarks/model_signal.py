"""What does a fine-tuned model signal add to the review order? (issue 14, item 4)

The model-based flaggers (cleanlab's ``find_label_issues``, CROWDLAB, the boundary flagger) and
the queue's ``model`` doubt sign read out-of-fold class probabilities. Three signals, on the
same items, the same current labels and the same folds' seed:

- ``embedding``: a logistic regression on the bundled MiniLM's sentence embeddings, 5 folds
  (the default; seconds);
- ``fine-tuned``: the MiniLM classifier itself fine-tuned 5 times, each fold's probabilities
  from the model trained on the other four (``python -m fine_tune out-of-fold``, with the
  retrain-and-compare's advised settings);
- ``ensemble``: the mean of the two.

For each data set with known truth (``_truth_sets.py``: Amazon, the demo, the simulated double
annotation) and each signal: :func:`curation.flags.evaluate_flags` (the queue and the cleanlab
and CROWDLAB baselines, which read the same probabilities), the wall time of each signal, and
the ratio of the fine-tuned signal's time to the embedding signal's (same machine, same run).

The fine-tuned probabilities take minutes per data set on a CPU: ``--cache DIR`` keeps them
(one CSV per data set, named by a hash of the items and labels they were trained on), so a rerun
only re-scores. Run: ``python benchmarks/model_signal.py [--data demo,simulated,amazon]
[--cache DIR] [--folds 5] [--json OUT]``.
"""

from __future__ import annotations

import argparse
import hashlib
import time
from pathlib import Path

import pandas as pd
from _truth_sets import run_on_truth_sets

from curation.embeddings import Embedder, embed_texts
from curation.io import declared_labels
from curation.flags import MODEL_SIGNALS, evaluate_flags, flag_items, read_model_probs
from fine_tune.out_of_fold import current_labels, fine_tuned_probabilities

COLUMNS = ("AUC", "P@K", "P@50", "R@P>=0.7")
ORDERINGS = ("review queue", "cleanlab find_label_issues", "CROWDLAB (cleanlab)")


def _figures(row: dict, k: int) -> list[float]:
    return [row["auc"], row["at"][k]["precision"], row["at"][50]["precision"],
            row["recall_at_precision"]]


def _fine_tuned(name: str, df: pd.DataFrame, cache: Path | None, folds: int) -> tuple[pd.DataFrame, float]:
    frame = current_labels(df, labels=declared_labels(df))
    key = hashlib.sha1(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
                       + str(folds).encode()).hexdigest()[:12]
    path = cache / f"{name.split()[0]}-{key}.csv" if cache else None
    if path is not None and path.is_file():
        seconds = float(path.with_suffix(".seconds").read_text())
        return read_model_probs(path), seconds
    out = fine_tuned_probabilities(frame, labels=declared_labels(df), folds=folds, seed=0,
                                   progress=_every_fold)
    print(f"  fine-tuned: {out.summary()}")
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        out.to_csv(path)
        path.with_suffix(".seconds").write_text(str(out.seconds))
    return out.probs, out.seconds


_last_fold = [""]


def _every_fold(fraction: float, message: str) -> None:
    fold = message.split(":")[0]
    if fold != _last_fold[0]:
        _last_fold[0] = fold
        print(f"  {fold} ({fraction:.0%})", flush=True)


def evaluate(name: str, df: pd.DataFrame, truth: pd.Series, guideline=None, *, cache=None,
             folds: int = 5) -> dict:
    print(f"\n=== {name}")
    texts = df.drop_duplicates("item_id")["text"].tolist()
    start = time.perf_counter()
    embeddings = embed_texts(texts, embedder=Embedder(max_seq_length=256))
    embed_seconds = time.perf_counter() - start
    probs, tune_seconds = _fine_tuned(name, df, cache, folds)
    results, seconds = {}, {}
    for signal in MODEL_SIGNALS:
        start = time.perf_counter()
        report = flag_items(df, embeddings=embeddings, guideline=guideline, seed=0, n_folds=folds,
                            model_probs=None if signal == "embedding" else probs, model_signal=signal)
        seconds[signal] = time.perf_counter() - start
        results[signal] = evaluate_flags(df, truth, report=report, truth_source=name)
    first = results["embedding"]
    k = first.n_wrong
    print(f"{first.n_items} ranked items, {k} with a wrong majority label; K = {k}")
    print(f"{'signal':<12}{'ordering':<30}" + "".join(f"{c:>10}" for c in COLUMNS))
    for signal, result in results.items():
        for ordering in ORDERINGS:
            if ordering in result.rows:
                print(f"{signal:<12}{ordering:<30}"
                      + "".join(f"{v:>10.3f}" for v in _figures(result.rows[ordering], k)))
    baseline = {o: _figures(results["embedding"].rows[o], k)[0] for o in ORDERINGS
                if o in results["embedding"].rows}
    for signal in ("fine-tuned", "ensemble"):
        gains = ", ".join(f"{o} {_figures(results[signal].rows[o], k)[0] - auc:+.3f}"
                          for o, auc in baseline.items())
        print(f"AUC change with the {signal} signal: {gains}")
    embed_total = embed_seconds + seconds["embedding"]
    tune_total = embed_seconds + tune_seconds + seconds["ensemble"]
    print(f"time: embedding signal {embed_total:.0f} s (embedding {embed_seconds:.0f} s); fine-tuned "
          f"folds {tune_seconds:.0f} s; the ensemble costs {tune_total / embed_total:.1f}x the "
          "embedding signal on this machine")
    return {"signals": {s: r.to_dict() for s, r in results.items()},
            "seconds": {"embed": embed_seconds, "fine_tune": tune_seconds, **seconds}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, help="keep the fine-tuned probabilities here")
    parser.add_argument("--folds", type=int, default=5)
    known, _ = parser.parse_known_args()
    run_on_truth_sets(lambda *a: evaluate(*a, cache=known.cache, folds=known.folds),
                      __doc__.splitlines()[0], parser=parser)


if __name__ == "__main__":
    main()
