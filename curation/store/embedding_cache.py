"""The embedding cache (``embeddings``): one float32 vector per (model key, SHA-1 of the text),
so a text is embedded once per model whatever item it is in."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from curation.messages import format_list
from curation.store.database import (
    BATCH_SIZE,
    Database,
    _insert_ignoring_duplicates,
    _short,
)
from curation.store.tables import _embeddings, _utcnow
from curation.store.team import _check_role, needed

logger = logging.getLogger(__name__)

#: Ids per ``IN (...)`` of an embedding lookup (SQLite allows 999 variables in old builds).
_EMBED_CHUNK = 900


_SHA1 = re.compile(r"^[0-9a-f]{40}$")


def _check_model_key(model: Any) -> str:
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"the embedding model key must be a non-empty string, got {model!r}; "
                         "pass Embedder.model_key.")
    return model


def _check_sha1s(values: Any) -> list[str]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"expected a sequence of SHA-1 hex digests, got {_short(values)}; "
                         "hash each text with curation.store.text_sha1(text).")
    keys = list(values)
    bad = [k for k in keys if not isinstance(k, str) or not _SHA1.fullmatch(k)]
    if bad:
        raise ValueError(f"{len(bad)} key(s) are not SHA-1 hex digests (40 lower-case hex "
                         f"characters): {format_list(map(_short, bad))}; hash each text with "
                         "curation.store.text_sha1(text).")
    return keys


def _check_vectors(vectors: Any) -> tuple[list[str], np.ndarray]:
    """Digests and a ``(n, dim)`` little-endian float32 matrix; ValueError on bad input."""
    if not isinstance(vectors, Mapping):
        raise ValueError(f"vectors must be a mapping text_sha1 -> vector, got "
                         f"{type(vectors).__name__}; e.g. {{text_sha1(text): embedding}}.")
    keys = _check_sha1s(list(vectors))
    if not keys:
        return [], np.zeros((0, 0), dtype="<f4")
    arrays = [np.asarray(v) for v in vectors.values()]
    shape = arrays[0].shape
    if len(shape) != 1 or shape[0] == 0:
        raise ValueError(f"the vector of {keys[0]!r} has shape {shape}; each vector must be "
                         "1-D and non-empty (one row of the embedding matrix).")
    odd = [k for k, a in zip(keys, arrays) if a.shape != shape]
    if odd:
        raise ValueError(f"vectors {format_list(map(repr, odd))} are not of shape {shape} like "
                         f"{keys[0]!r}; store one model's vectors (one length) per model key.")
    try:
        matrix = np.stack(arrays).astype("<f4")
    except (TypeError, ValueError) as err:
        raise ValueError(f"vectors must hold numbers ({err}).") from None
    bad = np.flatnonzero(~np.isfinite(matrix).all(axis=1))
    if len(bad):
        raise ValueError(f"vectors {format_list(repr(keys[i]) for i in bad)} hold NaN or "
                         "infinite values (as float32); fix the encoder output before caching.")
    return keys, matrix


def _decode_vector(key: str, dim: int, blob: bytes) -> np.ndarray:
    vector = np.frombuffer(blob, dtype="<f4")
    if vector.size != dim:
        raise ValueError(f"the stored embedding of {key!r} has {vector.size} values, not {dim}; "
                         "the cache is damaged: delete that model's rows from the embeddings "
                         "table and they will be recomputed.")
    return vector.astype(np.float32)


def _check_stored_dim(conn: Connection, model: str, dim: int) -> None:
    query = sa.select(_embeddings.c.dim).where(_embeddings.c.model == model).limit(1)
    stored = conn.execute(query).scalar()
    if stored is not None and int(stored) != dim:
        raise ValueError(f"model key {model!r} already holds vectors of length {stored}, not "
                         f"{dim}; vectors from another model need another model key.")


def _count_embeddings(conn: Connection, model: str | None) -> int:
    query = sa.select(sa.func.count()).select_from(_embeddings)
    if model is not None:
        query = query.where(_embeddings.c.model == model)
    return int(conn.execute(query).scalar_one())


class EmbeddingCache(Database):
    """Cached text embeddings per model key: look up, store (new ones only), count."""

    def cached_embeddings(self, model: str, text_sha1s: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored embeddings of some texts, for one model key.

        Parameters
        ----------
        model : str
            The model key the vectors were stored under
            (:attr:`curation.embeddings.Embedder.model_key`).
        text_sha1s : sequence of str
            SHA-1 hex digests of the texts (:func:`text_sha1`); duplicates are
            fine. Looked up in chunks of 900, within SQLite's variable limit.

        Returns
        -------
        dict of str to numpy.ndarray
            ``text_sha1 -> float32 vector`` for the digests that are stored;
            the others are simply absent.
        """
        model = _check_model_key(model)
        keys = list(dict.fromkeys(_check_sha1s(text_sha1s)))
        columns = (_embeddings.c.text_sha1, _embeddings.c.dim, _embeddings.c.vector)
        found: dict[str, np.ndarray] = {}
        with self._read() as conn:
            for start in range(0, len(keys), _EMBED_CHUNK):
                chunk = keys[start:start + _EMBED_CHUNK]
                query = sa.select(*columns).where(_embeddings.c.model == model,
                                                  _embeddings.c.text_sha1.in_(chunk))
                found.update((key, _decode_vector(key, dim, blob))
                             for key, dim, blob in conn.execute(query))
        return found

    def store_embeddings(self, model: str, vectors: Mapping[str, np.ndarray], *,
                         actor: str | None = None) -> int:
        """Cache embeddings under a model key; digests already stored are left as they are.

        Parameters
        ----------
        model : str
            The model key (:attr:`curation.embeddings.Embedder.model_key`).
        vectors : mapping of str to array-like
            ``text_sha1 -> 1-D vector``; all of one length (the length already
            stored for ``model``, if any) and finite. Stored as float32.
        actor : str, optional
            Who computed them: in team mode a member (:class:`AccessError` otherwise, checked
            in the write; a cache is still shared data).

        Returns
        -------
        int
            How many vectors were new (written), all in one transaction.

        Raises
        ------
        ValueError
            On a digest that is not 40 lower-case hex characters, vectors of
            different or wrong lengths, or non-finite values; nothing is written.
        """
        model = _check_model_key(model)
        keys, matrix = _check_vectors(vectors)
        if not keys:
            return 0
        now = _utcnow()
        rows = [{"model": model, "text_sha1": key, "dim": matrix.shape[1],
                 "vector": row.tobytes(), "created_at": now} for key, row in zip(keys, matrix)]
        with self._write() as conn:
            _check_role(conn, actor, needed("cache embeddings"), to="cache embeddings")
            _check_stored_dim(conn, model, matrix.shape[1])
            before = _count_embeddings(conn, model)
            for start in range(0, len(rows), BATCH_SIZE):
                _insert_ignoring_duplicates(conn, _embeddings, rows[start:start + BATCH_SIZE])
            added = _count_embeddings(conn, model) - before
        logger.info("stored %d new embeddings under %r (%d were cached already)", added, model,
                    len(rows) - added)
        return added

    def n_embeddings(self, model: str | None = None) -> int:
        """Number of cached embeddings, for one model key or (``None``) all of them."""
        with self._read() as conn:
            return _count_embeddings(conn, None if model is None else _check_model_key(model))

