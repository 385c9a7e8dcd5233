"""Do the offline augmenters add rows that read naturally and keep their label?

Data: ``../shared/data/financial-phrasebank-50agree`` (4,846 sentences, 3 labels; duplicated
texts dropped). The sentences are split in two stratified halves (seed 0): half A is the curated
data the augmenters and their checks see (the checks' classifier is trained on it, as in the
app); half B trains an independent judge (logistic regression over MiniLM embeddings) that never
saw a source sentence. Label preservation = the judge's accuracy on accepted rows (scored
against their source's label) divided by its accuracy on those rows' source sentences.

Augmenters: ``glossary`` (guidelines/glossary_finance.yaml) and ``embedding-neighbours`` (the
bundled MiniLM's token embeddings), default settings, lifting the minority classes towards the
largest. Peer, in the same run on the same requests: nlpaug's ``WordEmbsAug`` over the very same
MiniLM token vectors (written as a GloVe text file) at the same share of words changed, its
candidates then put through our checks. Figures: candidates tried, share accepted, mean
similarity, protected words (numbers, names, negations) altered, label preservation, candidates
per second; then ten accepted and ten rejected examples per method for a person to judge.

Run: ``python benchmarks/augment_quality.py`` (needs ``pip install nlpaug gensim`` for the peer).
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curation.augment import (Candidate, CheckSettings, LabelModel,  # noqa: E402
                              augment, check_candidates, make_augmenter, plan_requests)
from curation.augment import token_vectors  # noqa: E402
from curation.embeddings import embed_texts
from curation.models import default_model_path  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "financial-phrasebank-50agree" / "Sentences_50Agree.txt"
SEED = 0


def load() -> pd.DataFrame:
    lines = DATA.read_text(encoding="utf-8-sig").splitlines()
    rows = [line.rsplit("@", 1) for line in lines if line.strip()]
    df = pd.DataFrame(rows, columns=["text", "label"]).drop_duplicates("text", keep=False)
    return df.assign(item_id=[f"fp{i:04d}" for i in range(len(df))]).reset_index(drop=True)


def judge_model(half_b: pd.DataFrame) -> LogisticRegression:
    x = embed_texts(half_b["text"].tolist())
    return LogisticRegression(max_iter=2000, C=1.0).fit(x, half_b["label"])


def preservation(judge, rows: pd.DataFrame, source_text: dict[str, str]) -> tuple[float, float, float]:
    """Judge accuracy on the rows, on their sources, and the ratio."""
    if rows.empty:
        return math.nan, math.nan, math.nan
    on_rows = (judge.predict(embed_texts(rows["text"].tolist())) == rows["label"]).mean()
    sources = [source_text[s] for s in rows["source_id"]]
    on_sources = (judge.predict(embed_texts(sources)) == rows["label"]).mean()
    return float(on_rows), float(on_sources), float(on_rows / on_sources)


def altered_share(rows: pd.DataFrame) -> float:
    """Share of candidates the protected-word checks rejected (numbers, names, negations)."""
    if rows.empty:
        return math.nan
    hit = rows["reason"].str.contains("changed protected words|adds negations or numbers")
    return float(hit.mean())


def peer_candidates(half_a: pd.DataFrame, wanted: pd.Series, oversample: float, folder: Path):
    """nlpaug WordEmbsAug over the MiniLM token vectors, the same number of tries per source."""
    import nlpaug.augmenter.word as naw

    vocab, unit, ids = token_vectors(default_model_path())
    glove = folder / "minilm_tokens.txt"
    with glove.open("w", encoding="utf-8") as f:
        for k, i in enumerate(ids):
            f.write(vocab[i] + " " + " ".join(f"{v:.5f}" for v in unit[k]) + "\n")
    aug = naw.WordEmbsAug(model_type="glove", model_path=str(glove), aug_p=0.15, top_k=5)
    text_of = half_a.set_index("item_id")["text"]
    start = time.perf_counter()
    cands = []
    for item, n in wanted.items():
        k = math.ceil(n * oversample)
        for text in dict.fromkeys(aug.augment(text_of[item], n=k)):
            if text != text_of[item]:
                cands.append(Candidate(item, text_of[item], text, "nlpaug-WordEmbsAug"))
    return cands, time.perf_counter() - start


def check_peer(cands, half_a: pd.DataFrame, wanted: pd.Series) -> pd.DataFrame:
    existing = embed_texts(half_a["text"].tolist())
    model = LabelModel().fit(existing, half_a["label"].tolist())
    out = check_candidates(cands, labels=half_a.set_index("item_id")["label"].to_dict(),
                           candidate_embeddings=embed_texts([c.text for c in cands]),
                           existing_ids=half_a["item_id"].tolist(),
                           existing_texts=half_a["text"].tolist(), existing_embeddings=existing,
                           label_model=model, settings=CheckSettings())
    rank = out[out["passed"]].groupby("source_id").cumcount()
    out["status"] = "rejected"
    out.loc[rank.index, "status"] = np.where(rank < out.loc[rank.index, "source_id"].map(wanted),
                                             "accepted", "surplus")
    return out


def row(name: str, cands: pd.DataFrame, seconds: float, judge, source_text) -> dict:
    accepted = cands[cands["status"] == "accepted"]
    judged, on_src, ratio = preservation(judge, accepted, source_text)
    return {"method": name, "tried": len(cands), "passed": int(cands["passed"].sum()),
            "accepted": len(accepted), "accepted_share": len(accepted) / max(len(cands), 1),
            "mean_sim": accepted["similarity"].mean(), "protected_altered": altered_share(cands),
            "judge_acc_rows": judged, "judge_acc_sources": on_src, "preservation": ratio,
            "cand_per_s": len(cands) / seconds}


def examples(name: str, cands: pd.DataFrame) -> None:
    for status, title in (("accepted", "ACCEPTED"), ("rejected", "REJECTED")):
        part = cands[cands["status"] == status]
        shown = part.sample(min(10, len(part)), random_state=SEED)
        print(f"\n--- {name}: ten {title} ({len(part)} in all) ---")
        for r in shown.itertuples():
            print(f"[{r.label}] {r.source_text}\n   -> {r.text}")
            print(f"   sim {r.similarity:.3f}  p(label) {r.label_prob:.2f}"
                  + (f"  changes: {r.changes}" if r.changes else "")
                  + ("" if status == "accepted" else f"\n   why: {r.reason}"))


def main() -> None:
    df = load()
    half_a, half_b = train_test_split(df, test_size=0.5, stratify=df["label"], random_state=SEED)
    half_a, half_b = half_a.reset_index(drop=True), half_b.reset_index(drop=True)
    print(f"{len(df):,} sentences; half A (augmented) {len(half_a):,}: "
          f"{half_a['label'].value_counts().to_dict()}; half B (judge) {len(half_b):,}")
    judge = judge_model(half_b)
    source_text = half_a.set_index("item_id")["text"].to_dict()
    oversample = 3.0
    results, frames = [], {}
    for method in ("glossary", "embedding-neighbours"):
        augmenter = make_augmenter(method, seed=SEED)
        start = time.perf_counter()
        result = augment(half_a, augmenter, oversample=oversample)
        seconds = time.perf_counter() - start
        frames[method] = result.candidates
        results.append(row(method, result.candidates, seconds, judge, source_text))
        print(f"{method}: {result.summary['rejections']}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            wanted = plan_requests(half_a)
            start = time.perf_counter()
            cands, gen_s = peer_candidates(half_a, wanted, oversample, Path(tmp))
            checked = check_peer(cands, half_a, wanted)
            seconds = time.perf_counter() - start
        frames["nlpaug WordEmbsAug"] = checked
        peer = row("nlpaug WordEmbsAug (+ our checks)", checked, seconds, judge, source_text)
        peer["generate_per_s"] = len(cands) / gen_s
        results.append(peer)
    except ImportError as err:
        print(f"peer skipped: {err} (pip install nlpaug gensim)")
    table = pd.DataFrame(results).set_index("method")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\n" + table.round(3).to_string())
    if "nlpaug WordEmbsAug" in frames:
        ours = table.loc["embedding-neighbours", "cand_per_s"]
        peer_rate = table.loc["nlpaug WordEmbsAug (+ our checks)", "cand_per_s"]
        print(f"\ncandidates per second incl. checks, embedding-neighbours / nlpaug+checks: "
              f"{ours / peer_rate:.2f}; nlpaug generation alone {table.iloc[-1]['generate_per_s']:.1f}/s")
    for name, frame in frames.items():
        examples(name, frame)


if __name__ == "__main__":
    main()
