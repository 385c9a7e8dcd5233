"""Tests for curation.embeddings with the real bundled MiniLM (loaded once for the module)."""

from __future__ import annotations

import numpy as np
import pytest

from curation import embeddings
from curation.embeddings import DEFAULT_MODEL, Embedder, embed_texts
from curation.store import Project, text_sha1

TEXTS = [
    "The movie was wonderful.",
    "I really enjoyed this film.",
    "The quarterly revenue fell by ten percent.",
    "ok",
    "Stocks dropped sharply after the earnings report was published this morning.",
    "The movie was wonderful.",
    "A cat is sleeping on the sofa.",
    "",
    "Terrible service, cold food and a rude waiter; never again.",
    "The film was great.",
]


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    emb = Embedder(batch_size=3)
    emb.encode(["warm up"])  # loads the model once for every test here
    return emb


@pytest.fixture(scope="module")
def vectors(embedder) -> np.ndarray:
    return embedder.encode(TEXTS)


def test_shape_dtype_and_unit_norm(vectors):
    assert vectors.shape == (10, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_paraphrases_are_closer_than_unrelated_texts(vectors):
    cos = vectors @ vectors.T
    assert cos[0, 9] > 0.7  # "The movie was wonderful." ~ "The film was great."
    assert cos[0, 1] > cos[0, 2] + 0.3
    assert cos[2, 4] > cos[2, 6]  # revenue fell ~ stocks dropped, not the cat


def test_order_is_kept_after_length_sorting(embedder, vectors):
    one_by_one = np.stack([embedder.encode([t])[0] for t in TEXTS])
    np.testing.assert_allclose(vectors, one_by_one, atol=1e-5)
    # same text, same row (to float precision: batched kernels need not be bit-identical by position)
    np.testing.assert_allclose(vectors[0], vectors[5], atol=1e-6)


def test_progress_after_each_batch(embedder):
    calls: list[tuple[float, str]] = []
    embedder.encode(TEXTS[:7], progress=lambda f, m: calls.append((f, m)))  # batches of 3, 3, 1
    assert calls == [(3 / 7, "embedding texts"), (6 / 7, "embedding texts"), (1.0, "embedding texts")]
    empty: list[float] = []
    out = embedder.encode([], progress=lambda f, m: empty.append(f))
    assert out.shape == (0, 384) and out.dtype == np.float32 and empty == [1.0]


def test_model_is_loaded_once_per_name_and_device(embedder, monkeypatch):
    def no_reload(*args):
        raise AssertionError("the model was loaded again")

    monkeypatch.setattr(embeddings, "_build_model", no_reload)
    Embedder(batch_size=64).encode(["again"])


def test_settings_change_the_key_not_the_model(embedder):
    assert embedder.model_key == f"{DEFAULT_MODEL}|normalize=True|max_seq_length=128"
    raw = Embedder(normalize=False, max_seq_length=4)
    assert raw.model_key == f"{DEFAULT_MODEL}|normalize=False|max_seq_length=4"
    long_text = "one two three four five six seven eight nine ten"
    cut = raw.encode([long_text, "one two"])
    # 4 word pieces = [CLS] one two [SEP] for both texts: truncation applied
    np.testing.assert_allclose(cut[0], cut[1], atol=1e-5)
    full = embedder.encode([long_text, "one two"])  # the shared model is reset to 128
    assert float(full[0] @ full[1]) < 0.99
    assert repr(raw) == ("Embedder(model='all-MiniLM-L6-v2', batch_size=64, device=None, "
                         "normalize=False, max_seq_length=4)")


def test_embed_texts_deduplicates(embedder, vectors, monkeypatch):
    calls: list[list[str]] = []
    original = Embedder.encode

    def counting(self, texts, **kwargs):
        calls.append(list(texts))
        return original(self, texts, **kwargs)

    monkeypatch.setattr(Embedder, "encode", counting)
    out = embed_texts(TEXTS, embedder=embedder)
    assert len(calls) == 1 and len(calls[0]) == 9  # "The movie was wonderful." once
    np.testing.assert_allclose(out, vectors, atol=1e-5)


def test_cache_second_call_encodes_nothing(embedder, tmp_path, monkeypatch):
    calls: list[int] = []
    original = Embedder.encode

    def counting(self, texts, **kwargs):
        calls.append(len(texts))
        return original(self, texts, **kwargs)

    monkeypatch.setattr(Embedder, "encode", counting)
    with Project(tmp_path / "p.sqlite") as project:
        first = embed_texts(TEXTS[:6], embedder=embedder, project=project)
        assert calls == [5] and project.n_embeddings(embedder.model_key) == 5
        progress: list[float] = []
        second = embed_texts(TEXTS[:6], embedder=embedder, project=project,
                             progress=lambda f, m: progress.append(f))
        assert calls == [5] and progress == [1.0]
        np.testing.assert_array_equal(first, second)
        assert second.dtype == np.float32
        more = embed_texts(TEXTS, embedder=embedder, project=project)
        assert calls == [5, 4] and project.n_embeddings() == 9
        np.testing.assert_array_equal(more[:6], first)
        cached = project.cached_embeddings(embedder.model_key, [text_sha1(TEXTS[2])])
        np.testing.assert_array_equal(cached[text_sha1(TEXTS[2])], first[2])
        other = Embedder(normalize=False)
        embed_texts(TEXTS[:2], embedder=other, project=project)  # another key: encoded again
        assert calls == [5, 4, 2] and project.n_embeddings(other.model_key) == 2


def test_bad_model_path_names_it(tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ValueError, match=rf"cannot load embedding model '{missing}'.*local folder "
                                         rf".*CURATION_ALLOW_DOWNLOAD=1.*bundled default "
                                         rf"'all-MiniLM-L6-v2'"):
        Embedder(str(missing)).encode(["x"])
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    with pytest.raises(ValueError, match=f"cannot load embedding model '{empty}'"):
        Embedder(str(empty)).encode(["x"])


def test_bad_inputs_are_refused(embedder):
    with pytest.raises(ValueError, match="not one string; wrap it in a list"):
        embedder.encode("one text")
    with pytest.raises(ValueError, match=r"positions 1 \(None\), 3 \(nan\) \(0-based\)"):
        embed_texts(["a", None, "b", float("nan")], embedder=embedder)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        Embedder(batch_size=0).encode(["x"])
    with pytest.raises(ValueError, match="max_seq_length must be a positive integer"):
        _ = Embedder(max_seq_length=None).model_key


def test_empty_input(embedder):
    out = embed_texts([], embedder=embedder)
    assert out.shape == (0, 384) and out.dtype == np.float32


def test_hub_id_not_in_the_cache_fails_at_once_without_download(monkeypatch):
    import time

    monkeypatch.delenv("CURATION_ALLOW_DOWNLOAD", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(ValueError, match="(?s)'someone/not-a-cached-model'.*Hugging Face cache"):
        Embedder("someone/not-a-cached-model").encode(["x"])
    assert time.perf_counter() - start < 30


class _DiesAfter:
    """The real embedder, made to fail after ``calls`` encodes (a killed run)."""

    def __init__(self, embedder, calls):
        self.embedder, self.left, self.encoded = embedder, calls, []
        self.model_key = embedder.model_key

    def encode(self, texts, progress=None):
        if self.left == 0:
            raise KeyboardInterrupt("killed")
        self.left -= 1
        self.encoded += list(texts)
        return self.embedder.encode(texts, progress=progress)


def test_a_killed_run_resumes_at_the_last_chunk_written(embedder, tmp_path):
    texts = [f"sentence number {k} about cards" for k in range(10)]
    with Project(tmp_path / "p.sqlite") as project:
        dying = _DiesAfter(embedder, calls=2)
        with pytest.raises(KeyboardInterrupt):
            embed_texts(texts, embedder=dying, project=project, chunk=3)
        assert project.n_embeddings() == 6  # two chunks written before the kill
        again = _DiesAfter(embedder, calls=10)
        seen = []
        out = embed_texts(texts, embedder=again, project=project, chunk=3,
                          progress=lambda f, m: seen.append(round(f, 2)))
        assert again.encoded == texts[6:]  # only what the cache lacked
        assert project.n_embeddings() == 10
        np.testing.assert_allclose(out, embedder.encode(texts), atol=1e-5)
        assert seen[-1] == 1.0 and seen == sorted(seen)
    with pytest.raises(ValueError, match="chunk must be a positive"):
        embed_texts(texts, embedder=embedder, chunk=0)


@pytest.mark.slow  # the pool spawns worker processes
def test_a_process_pool_gives_the_same_vectors(embedder):
    texts = [f"my card number {k} was charged twice" for k in range(200)]
    pooled = Embedder(batch_size=16, processes=2).encode(texts)
    np.testing.assert_allclose(pooled, embedder.encode(texts), atol=1e-4)
    assert Embedder(processes=2).model_key == embedder.model_key  # same vectors, same cache
    with pytest.raises(ValueError, match="processes must be a positive integer"):
        Embedder(processes=0).model_key
