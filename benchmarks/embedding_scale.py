"""Embedding and near-duplicate search at scale (issue 19, part 3).

1. **Throughput, 1 vs 2 processes**: the bundled MiniLM encodes the same texts (real DynaSent and
   Financial PhraseBank sentences) in this process, then with ``Embedder(processes=2)``
   (sentence-transformers' multi-process pool), timed in one run; the ratio says what a second
   process buys on this machine (on 2 cores one process already uses both through torch's
   threads; on a GPU host the pool puts one process on each GPU).
2. **Resumable chunks**: ``embed_texts(..., project=P, chunk=C)`` writes the cache every C texts; a
   run killed after the first chunk (an encoder that raises) is resumed, and the resumed run
   encodes only what the cache lacks. Reported: texts encoded by each run.
3. **Near-duplicate search, exact vs indexed** at ``--rows`` (default 100,000) vectors: every pair
   in blocks (:func:`curation.splits.similar_pairs`, ``method="exact"``) against the faiss HNSW
   index (``method="index"``), same vectors, cosine >= 0.95. Reported: time of each and their
   ratio, the index's recall of the exact pairs, and how many exact near-duplicate groups
   (connected components) it reproduces exactly. The vectors: the real MiniLM embeddings of the
   sentence pool, and for the rest of the rows items built as ``flags_speed.make_items`` builds
   texts (60% are two pool sentences joined), a joined item's vector being the normalised sum of
   its sentences' (embedding 100,000 texts for real takes 13 minutes on 2 cores: ``--real`` does it).

Run: ``python benchmarks/embedding_scale.py [--rows 100000] [--real]``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flags_speed import make_items, sentence_pool  # noqa: E402  (benchmarks/ is on the path)

from curation.embeddings import Embedder, embed_texts  # noqa: E402
from curation.splits import similar_pairs  # noqa: E402
from curation.store import Project  # noqa: E402


def throughput(texts: list[str]) -> None:
    one, two = Embedder(), Embedder(processes=2)
    one.encode(texts[:64])  # load the model outside the timing
    start = time.perf_counter()
    a = one.encode(texts)
    t1 = time.perf_counter() - start
    start = time.perf_counter()
    b = two.encode(texts)
    t2 = time.perf_counter() - start
    print(f"1. {len(texts):,} texts: 1 process {t1:.1f} s ({len(texts) / t1:.0f}/s), 2 processes "
          f"{t2:.1f} s ({len(texts) / t2:.0f}/s, pool start included), ratio 2/1 {t2 / t1:.2f}; "
          f"largest difference between the vectors {float(np.abs(a - b).max()):.1e}")


class _Killed(Exception):
    pass


class _Counting:
    """The bundled model, counting what it encodes, raising after ``die_after`` calls."""

    def __init__(self, die_after: int | None = None) -> None:
        self.inner, self.calls, self.encoded, self.die_after = Embedder(), 0, 0, die_after
        self.model_key = self.inner.model_key

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts, progress=None):
        if self.die_after is not None and self.calls >= self.die_after:
            raise _Killed("killed")
        self.calls += 1
        self.encoded += len(texts)
        return self.inner.encode(texts, progress=progress)


def resume(texts: list[str], chunk: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, Project(Path(tmp) / "p.sqlite") as project:
        first = _Counting(die_after=1)
        try:
            embed_texts(texts, embedder=first, project=project, chunk=chunk)
        except _Killed:
            pass
        again = _Counting()
        vectors = embed_texts(texts, embedder=again, project=project, chunk=chunk)
        print(f"2. {len(texts):,} texts in chunks of {chunk:,}: the killed run encoded "
              f"{first.encoded:,} (cached), the resumed run {again.encoded:,}; "
              f"{len(vectors):,} vectors, {project.n_embeddings():,} in the cache")


def vectors(rows: int, real: bool) -> tuple[np.ndarray, list[str]]:
    items = make_items(rows)
    texts = items["text"].tolist()
    if real:
        return Embedder().encode(texts), texts
    pool = sentence_pool()["text"].tolist()
    base = Embedder().encode(pool)
    at = {t: k for k, t in enumerate(pool)}
    out = np.empty((len(texts), base.shape[1]), np.float32)
    for k, text in enumerate(texts):
        if text in at:
            out[k] = base[at[text]]
            continue
        # a joined item: find where the first pool sentence ends (texts are "A B")
        cut = next(i for i in range(len(text)) if text[:i] in at and text[i + 1:] in at)
        v = base[at[text[:cut]]] + base[at[text[cut + 1:]]]
        out[k] = v / np.linalg.norm(v)
    return out, texts


def _groups(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Connected-component id per row: the near-duplicate groups a set of pairs makes."""
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    graph = sparse.coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def search(x: np.ndarray, texts: list[str], threshold: float = 0.95) -> None:
    start = time.perf_counter()
    exact = similar_pairs(x, threshold=threshold, method="exact")
    t_exact = time.perf_counter() - start
    start = time.perf_counter()
    approx = similar_pairs(x, threshold=threshold, method="index")
    t_index = time.perf_counter() - start
    ea = set(zip(exact[0].tolist(), exact[1].tolist()))
    ia = set(zip(approx[0].tolist(), approx[1].tolist()))
    recall = len(ea & ia) / len(ea) if ea else 1.0
    ge, gi = _groups(len(x), *exact[:2]), _groups(len(x), *approx[:2])
    groups_e = {}
    for k, g in enumerate(ge):
        groups_e.setdefault(g, []).append(k)
    multi = [m for m in groups_e.values() if len(m) > 1]
    sizes = np.bincount(gi)
    same = sum(len(set(gi[m])) == 1 and sizes[gi[m[0]]] == len(m) for m in multi)
    print(f"3. {len(x):,} vectors, cosine >= {threshold}: exact {t_exact:.1f} s, index "
          f"{t_index:.1f} s (ratio index/exact {t_index / t_exact:.2f}); exact pairs "
          f"{len(ea):,}, index pairs {len(ia):,}, recall {recall:.3f}, false pairs "
          f"{len(ia - ea):,}; near-duplicate groups (2+ rows) {len(multi):,}, reproduced "
          f"exactly by the index {same:,} ({same / max(len(multi), 1):.1%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--texts", type=int, default=2_000, help="texts for parts 1 and 2")
    parser.add_argument("--real", action="store_true", help="embed every row for real (slow)")
    parser.add_argument("--search-only", action="store_true", help="part 3 only")
    args = parser.parse_args(argv)
    pool = sentence_pool()["text"].tolist()
    if not args.search_only:
        throughput(pool[:args.texts])
        resume(pool[:args.texts], chunk=max(1, args.texts // 4))
    x, texts = vectors(args.rows, args.real)
    search(x, texts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
