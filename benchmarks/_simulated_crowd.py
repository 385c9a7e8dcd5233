"""A double-annotated data set with a known truth and real annotators' mistakes (simulated).

Why: the Amazon and demo crowds vote 5 times per item, so their majority labels are mostly right
and fixing them barely moves a model. A project run as the product recommends (two annotators
per item) with annotators as good as real crowd workers has far more wrong labels. This builds
such a project where every true label is known.

How (everything seeded; nothing here is fitted to the product's results):

1. **Annotators.** Dawid-Skene (crowd-kit, 100 iterations) on every label of DynaSent round 1
   (``../shared/data/dynasent``, dev + test: 7,200 sentences, 5 labels each, 1,492 real worker
   ids) gives each worker a confusion matrix P(label given | true label) over positive, neutral,
   negative and mixed. The simulated crowd is the workers with at least ``MIN_LABELS`` (20)
   labels (352 workers: below that a 4x4 matrix is mostly prior); a worker is drawn in
   proportion to how many labels they gave, as in the real crowd.
2. **Sentences and truth.** The round-1 sentences all five workers gave the same label, in
   {positive, neutral, negative} (2,479): their label is the truth. (The PhraseBank file in
   ``../shared/data`` holds majority labels only, no all-agree subset.)
3. **Annotation.** Each training item gets ``annotators`` (2) distinct simulated workers; each
   answers with a label drawn from their confusion matrix's column for the true label. A worker
   may answer "mixed": a stray label that real crowds give too.
4. **Split.** A stratified draw (seed) of ``n_train`` sentences for training; every other
   sentence is the test set, with its true label.

Measured (seed 0, 1,000 training items, 2 annotators): see ``describe()``; about 13% of the
majority labels (ties broken as the product breaks them) are wrong and a quarter of the items
tie. Limits: confusion matrices estimated on the same sentences' labels are a model of those
workers, not of yours; workers' mistakes here are independent given the true label (no shared
confusions about one sentence).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DYNASENT = ROOT.parent / "shared" / "data" / "dynasent"
ROUND1 = ("dynasent-v1.1-round01-yelp-dev.jsonl", "dynasent-v1.1-round01-yelp-test.jsonl")
CLASSES = ("negative", "neutral", "positive")
MIN_LABELS = 20


@lru_cache(maxsize=1)
def _round1() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(labels: task, worker, label; sentences: task, text, label, unanimous) of round 1."""
    labels, sentences = [], []
    for name in ROUND1:
        for line in (DYNASENT / name).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            votes = {lab: len(ws) for lab, ws in row["label_distribution"].items()}
            sentences.append((row["text_id"], row["sentence"], row["gold_label"], max(votes.values()) == 5))
            labels += [(row["text_id"], w, lab) for lab, ws in row["label_distribution"].items() for w in ws]
    return (pd.DataFrame(labels, columns=["task", "worker", "label"]),
            pd.DataFrame(sentences, columns=["task", "text", "label", "unanimous"]))


@lru_cache(maxsize=1)
def worker_confusions() -> tuple[pd.Series, dict[str, pd.DataFrame]]:
    """(labels per worker, worker -> confusion DataFrame: rows label given, columns true label)."""
    from crowdkit.aggregation import DawidSkene

    labels, _ = _round1()
    errors = DawidSkene(n_iter=100).fit(labels).errors_
    counts = labels["worker"].value_counts()
    counts = counts[counts >= MIN_LABELS].sort_index()
    matrices = {}
    for worker in counts.index:
        m = errors.loc[worker]
        matrices[worker] = m / m.sum(axis=0)  # each column a distribution over labels given
    return counts, matrices


def build(*, n_train: int = 1000, annotators: int = 2, seed: int = 0
          ) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """(annotations: item_id, annotator_id, label, text; truth by item_id; test: text, label)."""
    from sklearn.model_selection import train_test_split

    _, sentences = _round1()
    trusted = sentences[sentences["unanimous"] & sentences["label"].isin(CLASSES)]
    trusted = trusted.drop_duplicates("text", keep=False).reset_index(drop=True)
    train, test = train_test_split(trusted, train_size=n_train, stratify=trusted["label"],
                                   random_state=seed)
    counts, matrices = worker_confusions()
    rng = np.random.default_rng(seed)
    weights = (counts / counts.sum()).to_numpy()
    rows = []
    for k, (text, truth) in enumerate(zip(train["text"], train["label"])):
        item = f"sim{k:05d}"
        for worker in rng.choice(counts.index.to_numpy(), size=annotators, replace=False, p=weights):
            column = matrices[worker][truth]
            rows.append((item, worker, str(rng.choice(column.index.to_numpy(), p=column.to_numpy())), text))
    annotations = pd.DataFrame(rows, columns=["item_id", "annotator_id", "label", "text"])
    truth = pd.Series(train["label"].to_numpy(), index=[f"sim{k:05d}" for k in range(len(train))])
    return annotations, truth, test[["text", "label"]].reset_index(drop=True)


def describe(annotations: pd.DataFrame, truth: pd.Series) -> str:
    from curation.aggregation import MajorityVote

    mv = MajorityVote().fit(annotations)
    tied = mv.labels_.isna()
    wrong_votes = (annotations["label"].to_numpy() != truth.reindex(annotations["item_id"]).to_numpy()).mean()
    untied_wrong = (mv.labels_[~tied] != truth.reindex(mv.labels_.index[~tied])).mean()
    return (f"{len(truth)} items x {annotations.groupby('item_id').size().iloc[0]} simulated annotators "
            f"({annotations['annotator_id'].nunique()} distinct): {wrong_votes:.1%} of single labels wrong, "
            f"{tied.mean():.1%} of items tie, {untied_wrong:.1%} of untied majority labels wrong")


if __name__ == "__main__":
    ann, tru, tst = build()
    print(describe(ann, tru), f"; test {len(tst)} {tst['label'].value_counts().to_dict()}")
