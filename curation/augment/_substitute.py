"""Offline substitution augmenters: domain glossary terms and token-embedding neighbours."""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from curation.augment._base import (
    AugmenterError,
    Slot,
    SubstitutionAugmenter,
    register_augmenter,
)
from curation.augment._text import NUMBER_WORDS, STOPWORDS, Protector, Word, has_han, words

__all__ = ["EmbeddingNeighbours", "Glossary", "GlossarySubstitution", "load_glossary"]

GUIDELINES = Path(__file__).resolve().parents[2] / "guidelines"


class Glossary:
    """Groups of interchangeable terms, and terms no augmenter may change."""

    def __init__(self, groups: Sequence[Sequence[str]], protected: Sequence[str] = (), *,
                 name: str = "", source: str = "") -> None:
        self.name, self.source = name, source
        self.groups = tuple(tuple(dict.fromkeys(t.strip() for t in g if t and t.strip()))
                            for g in groups)
        self.protected = tuple(t.strip() for t in protected if t and t.strip())
        self._group_of: dict[str, int] = {}
        for k, group in enumerate(self.groups):
            for term in group:
                self._group_of.setdefault(term.lower(), k)
        terms = sorted(self._group_of, key=len, reverse=True)
        # not inside a hyphenated word: "turn-around" holds no glossary term "around"; a Chinese
        # term has no spaces around it, so it is matched anywhere and then kept only where it
        # starts and ends on word boundaries of the segmented text (find)
        self._pattern = (re.compile("|".join(
            re.escape(t) if has_han(t) else r"(?<![\w-])" + re.escape(t) + r"(?![\w-])"
            for t in terms), re.IGNORECASE) if terms else None)

    def __repr__(self) -> str:
        return f"Glossary({self.name!r}, {len(self.groups)} groups, {len(self.protected)} protected)"

    def alternatives(self, term: str) -> tuple[str, ...]:
        group = self.groups[self._group_of[term.lower()]]
        return tuple(t for t in group if t.lower() != term.lower())

    def find(self, text: str) -> list[tuple[int, int, str]]:
        """Glossary terms in ``text`` as ``(start, end, term)``, longest match first, no overlaps."""
        if self._pattern is None:
            return []
        found = [(m.start(), m.end(), m.group()) for m in self._pattern.finditer(text)]
        if not any(has_han(term) for _, _, term in found):
            return found
        bounds = {b for w in words(text) for b in (w.start, w.end)}
        return [(s, e, term) for s, e, term in found
                if not has_han(term) or (s in bounds and e in bounds)]


def load_glossary(path: str | os.PathLike) -> Glossary:
    """Read a glossary YAML (``groups``: lists of terms; optional ``protected``, ``name``).

    A bare name such as ``"finance"`` reads ``guidelines/glossary_finance.yaml``.
    """
    given = str(path)
    path = Path(path)
    if not path.suffix and not path.exists():
        path = GUIDELINES / f"glossary_{path.name}.yaml"
    if not path.is_file():
        shipped = sorted(p.stem.removeprefix("glossary_") for p in GUIDELINES.glob("glossary_*.yaml"))
        raise AugmenterError(f"glossary {given!r} not found (looked for {path}); pass a YAML file "
                             f"path or one of "
                             f"the shipped names {shipped}.")
    try:
        source = str(path.resolve().relative_to(GUIDELINES.parent))
    except ValueError:
        source = str(path)
    return glossary_from_yaml(path.read_text(encoding="utf-8"), name=str(path), source=source)


def glossary_from_yaml(text: str, *, name: str, source: str | None = None) -> Glossary:
    """A glossary from YAML text (e.g. an upload); ``name`` is what messages call it.

    Only plain YAML is read (``yaml.safe_load``: no tags that build objects).
    """
    path = name
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise AugmenterError(f"{path}: not valid YAML ({exc}); fix the file.") from exc
    groups = data.get("groups") if isinstance(data, dict) else None
    if not isinstance(groups, list) or not groups:
        raise AugmenterError(f"{path}: needs a non-empty 'groups' list of term lists, e.g. "
                             "groups: [[rose, increased, grew]].")
    for k, group in enumerate(groups, 1):
        if not isinstance(group, list) or len(group) < 2 or not all(isinstance(t, str) for t in group):
            raise AugmenterError(f"{path}: group {k} ({group!r}) must be a list of at least two "
                                 "terms (strings).")
    protected = data.get("protected") or []
    if not isinstance(protected, list) or not all(isinstance(t, str) for t in protected):
        raise AugmenterError(f"{path}: 'protected' must be a list of terms (strings).")
    return Glossary(groups, protected, name=str(data.get("name", Path(path).stem)),
                    source=source or path)


@register_augmenter
class GlossarySubstitution(SubstitutionAugmenter):
    """Swap domain terms for others of their glossary group ("net sales" -> "revenue").

    Terms that overlap a protected span (numbers, names, negations, protected
    terms) stay. ``top_k`` caps the alternatives drawn per term.
    """

    method = "glossary"
    description = "Swap domain terms for interchangeable ones from a YAML glossary"

    def __init__(self, glossary: str | os.PathLike | Glossary = "finance", *, top_k: int = 5,
                 max_share: float = 0.15, seed: int = 0, protector: Protector | None = None) -> None:
        self.glossary = glossary if isinstance(glossary, Glossary) else load_glossary(glossary)
        if protector is None:
            protector = Protector(terms=self.glossary.protected)
        super().__init__(top_k=top_k, max_share=max_share, seed=seed, protector=protector)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "glossary": self.glossary.source or self.glossary.name}

    def slots(self, texts: Sequence[str], tokens: Sequence[list[Word]]) -> list[list[Slot]]:
        out = []
        for text, toks in zip(texts, tokens):
            # a glossary term opening a sentence ("Net sales rose") is a common word, not a name
            fixed = [(w.start, w.end) for w in toks
                     if self.protector.category(w) and not (
                         w.sentence_start and self.protector.category(w) == "entities")]
            fixed += self.protector._term_spans(text)
            out.append([Slot(s, e, term, self.glossary.alternatives(term))
                        for s, e, term in self.glossary.find(text)
                        if not any(a < e and s < b for a, b in fixed)])
        return out


_VOCAB_LOCK = threading.Lock()
_VOCABS: dict[str, tuple[list[str], np.ndarray, np.ndarray]] = {}
_SUFFIXES = ("ly", "ing", "ed", "s")


def _same_form(a: str, b: str) -> bool:
    """Same inflection class by suffix (so "rose" does not become "rising")."""
    for suffix in _SUFFIXES:
        if suffix == "s":
            ends = [w.endswith("s") and not w.endswith(("ss", "us", "is")) for w in (a, b)]
        else:
            ends = [w.endswith(suffix) for w in (a, b)]
        if ends[0] != ends[1]:
            return False
    return True


def _edit_distance(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


def _same_family(a: str, b: str) -> bool:
    """Forms of one word (``profit``/``profits``/``nonprofit``, ``meet``/``met``, ``sales``/``sells``):
    one holds the other, they share most of the shorter word as a prefix, or they are one edit
    apart (two for short words).

    >>> _same_family("meet", "met"), _same_family("sales", "sells"), _same_family("terrible", "horrible")
    (True, True, False)
    """
    if a in b or b in a:
        return True
    n = len(os.path.commonprefix([a, b]))
    if n >= max(4, int(0.6 * min(len(a), len(b)))):
        return True
    return _edit_distance(a, b) <= (2 if min(len(a), len(b)) <= 6 else 1)


def token_vectors(model_path: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The model's WordPiece vocabulary, the unit input-embedding rows of whole words, and their ids."""
    with _VOCAB_LOCK:
        if model_path not in _VOCABS:
            from safetensors import safe_open

            folder = Path(model_path)
            vocab_file, weights = folder / "vocab.txt", folder / "model.safetensors"
            if not vocab_file.is_file() or not weights.is_file():
                raise AugmenterError(
                    f"{folder} has no vocab.txt and model.safetensors; the embedding-neighbour "
                    "augmenter needs a BERT-style WordPiece model saved with save_pretrained "
                    "(the bundled MiniLM is one: leave the model unset).")
            vocab = vocab_file.read_text(encoding="utf-8").split("\n")
            with safe_open(str(weights), "np") as f:
                key = next((k for k in f.keys() if k.endswith("word_embeddings.weight")), None)
                if key is None:
                    raise AugmenterError(f"{weights} has no word_embeddings.weight tensor; pass a "
                                         "BERT-style model folder.")
                matrix = f.get_tensor(key).astype(np.float32)
            ids = np.array([i for i, w in enumerate(vocab[: len(matrix)])
                            if w.isalpha() and w.isascii() and len(w) > 1
                            and w not in STOPWORDS and w not in NUMBER_WORDS])
            unit = matrix[ids] / np.linalg.norm(matrix[ids], axis=1, keepdims=True).clip(1e-12)
            _VOCABS[model_path] = (vocab, unit, ids)
        return _VOCABS[model_path]


@register_augmenter
class EmbeddingNeighbours(SubstitutionAugmenter):
    """Swap words for their nearest neighbours in a model's token-embedding space.

    Works offline with the bundled MiniLM: its 30,522 WordPiece input embeddings
    hold words used alike close together ("terrible" ~ "horrible"). Neighbours
    of the same family ("profit" -> "profits") or another inflection ("rose" ->
    "rising") are skipped, and so are those below ``min_word_similarity``.
    Antonyms can be neighbours too ("rude" ~ "polite"): the polarity check
    rejects those candidates.
    """

    method = "embedding-neighbours"
    description = "Swap words for their nearest neighbours in MiniLM's token-embedding space (offline)"

    def __init__(self, model: str | None = None, *, top_k: int = 5, max_share: float = 0.15,
                 min_word_similarity: float = 0.4, seed: int = 0,
                 protector: Protector | None = None) -> None:
        super().__init__(top_k=top_k, max_share=max_share, seed=seed, protector=protector)
        if not 0 <= float(min_word_similarity) < 1:
            raise ValueError(f"min_word_similarity must be in [0, 1); got {min_word_similarity!r}.")
        self.model = model
        self.min_word_similarity = float(min_word_similarity)

    def _model_path(self) -> str:
        if self.model is None:
            from curation.models import default_model_path

            return default_model_path()
        if not Path(self.model).is_dir():
            raise AugmenterError(f"model {self.model!r} is not a local folder; the "
                                 "embedding-neighbour augmenter reads vocab.txt and "
                                 "model.safetensors from a folder saved with save_pretrained.")
        return str(self.model)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "model": self.model or "bundled all-MiniLM-L6-v2",
                "min_word_similarity": self.min_word_similarity}

    def options(self, texts, tokens, positions) -> list[dict[int, list[str]]]:
        vocab, unit, ids = token_vectors(self._model_path())
        row = {vocab[i]: k for k, i in enumerate(ids)}
        wanted = sorted({tokens[t][p].lower for t in range(len(texts)) for p in positions[t]
                         if tokens[t][p].lower in row})
        neighbours = self._neighbours(wanted, row, unit, [vocab[i] for i in ids])
        return [{p: neighbours[tokens[t][p].lower] for p in positions[t]
                 if neighbours.get(tokens[t][p].lower)} for t in range(len(texts))]

    def _neighbours(self, wanted: list[str], row: dict[str, int], unit: np.ndarray,
                    names: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for start in range(0, len(wanted), 512):
            chunk = wanted[start:start + 512]
            sims = unit[[row[w] for w in chunk]] @ unit.T
            best = np.argsort(-sims, axis=1)[:, : 8 * self.top_k + 1]
            for w, order, s in zip(chunk, best, sims):
                out[w] = [names[j] for j in order
                          if s[j] >= self.min_word_similarity and names[j] != w
                          and not _same_family(w, names[j]) and _same_form(w, names[j])
                          ][: self.top_k]
        return out
