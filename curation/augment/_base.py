"""The augmenter interface, its registry, and the shared word-substitution machinery.

An augmenter turns source texts into :class:`Candidate` texts; it never judges
them (that is :mod:`curation.augment._checks`). Registering a class with
``@register_augmenter`` makes it available to :func:`curation.augment.augment`,
the CLI and the app by its ``method`` name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, NamedTuple

import numpy as np

from curation._registry import register
from curation.augment._text import (
    Protector,
    Word,
    apply_substitutions,
    match_case,
    words,
)

__all__ = ["AUGMENTERS", "Augmenter", "AugmenterError", "Candidate", "Slot",
           "SubstitutionAugmenter", "register_augmenter"]

logger = logging.getLogger(__name__)

#: method name -> augmenter class, filled by :func:`register_augmenter`.
AUGMENTERS: dict[str, type[Augmenter]] = {}

Progress = Callable[[float, str], None] | None


class AugmenterError(ValueError):
    """An augmenter cannot run as set up (a model that cannot be loaded, a bad glossary...)."""


def register_augmenter(cls: type[Augmenter]) -> type[Augmenter]:
    """Class decorator: make an augmenter available under its ``method``."""
    return register(AUGMENTERS, cls, "method", "augmenter")


class Slot(NamedTuple):
    """A span of a text that may be replaced by one of ``options``."""

    start: int
    end: int
    original: str
    options: tuple[str, ...]


@dataclass(frozen=True)
class Candidate:
    """One proposed text, before any check.

    ``changes`` lists the word substitutions as ``(old, new)`` pairs (empty for
    whole-text methods such as back-translation).
    """

    source_id: str
    source_text: str
    text: str
    method: str
    changes: tuple[tuple[str, str], ...] = field(default=())


class Augmenter:
    """Base class. Subclasses set ``method`` and implement :meth:`generate`.

    Settings go to ``__init__`` (stored as given; :meth:`params` returns them for
    provenance); ``seed`` makes every run repeatable.
    """

    method: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def __init__(self, *, seed: int = 0, protector: Protector | None = None) -> None:
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer; got {seed!r}.")
        self.seed = int(seed)
        self.protector = protector if protector is not None else Protector()

    def params(self) -> dict[str, Any]:
        """The settings that produced a candidate, JSON-serialisable (stored as provenance)."""
        return {"seed": self.seed, "protect_allow": sorted(self.protector.allow),
                "protected_terms": len(self.protector.terms)}

    def generate(self, ids: Sequence[str], texts: Sequence[str], *, n: Sequence[int] | int = 1,
                 progress: Progress = None) -> list[Candidate]:
        """Up to ``n`` distinct candidates per text (``n`` may be one count per text)."""
        raise NotImplementedError

    @staticmethod
    def _counts(n: Sequence[int] | int, size: int) -> list[int]:
        counts = [int(n)] * size if np.isscalar(n) else [int(k) for k in n]
        if len(counts) != size or any(k < 0 for k in counts):
            raise ValueError(f"n must be a non-negative count or one count per text ({size}); "
                             f"got {n!r}.")
        return counts


class SubstitutionAugmenter(Augmenter):
    """Replaces a few changeable words with alternatives a subclass proposes.

    A subclass implements :meth:`options`: for each text, a mapping from the
    positions (index into ``words(text)``) of its changeable words to the
    replacement words worth trying, best first. This class then draws, per
    candidate, up to ``max(1, floor(max_share * alphabetic words))`` positions and
    one of the first ``top_k`` options for each, seeded, and keeps distinct texts.

    Parameters
    ----------
    top_k : int
        How many of the best options per word may be drawn.
    max_share : float in (0, 1]
        The largest share of a text's words one candidate may change.
    """

    def __init__(self, *, top_k: int = 5, max_share: float = 0.15, seed: int = 0,
                 protector: Protector | None = None) -> None:
        super().__init__(seed=seed, protector=protector)
        if not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be a positive integer; got {top_k!r}.")
        if not 0 < float(max_share) <= 1:
            raise ValueError(f"max_share must be in (0, 1]; got {max_share!r}.")
        self.top_k = int(top_k)
        self.max_share = float(max_share)

    def params(self) -> dict[str, Any]:
        return {**super().params(), "top_k": self.top_k, "max_share": self.max_share}

    def options(self, texts: Sequence[str], tokens: Sequence[list[Word]],
                positions: Sequence[list[int]]) -> list[dict[int, list[str]]]:
        raise NotImplementedError

    def slots(self, texts: Sequence[str], tokens: Sequence[list[Word]]) -> list[list[Slot]]:
        """Per text, the spans that may change and their options (best first).

        The default asks :meth:`options` about each changeable word; an augmenter
        that swaps multi-word terms (the glossary) overrides this instead.
        """
        positions = [self._positions(t, w) for t, w in zip(texts, tokens)]
        keep = [i for i, p in enumerate(positions) if p]
        proposed = self.options([texts[i] for i in keep], [tokens[i] for i in keep],
                                [positions[i] for i in keep]) if keep else []
        out: list[list[Slot]] = [[] for _ in texts]
        for i, opts in zip(keep, proposed):
            out[i] = [Slot(tokens[i][p].start, tokens[i][p].end, tokens[i][p].text, tuple(o))
                      for p, o in sorted(opts.items())]
        return out

    def generate(self, ids: Sequence[str], texts: Sequence[str], *, n: Sequence[int] | int = 1,
                 progress: Progress = None) -> list[Candidate]:
        counts = self._counts(n, len(texts))
        wanted = [i for i, k in enumerate(counts) if k > 0]
        tokens = [words(texts[i]) for i in wanted]
        slots = self.slots([texts[i] for i in wanted], tokens) if wanted else []
        out: list[Candidate] = []
        for step, (i, toks, text_slots) in enumerate(zip(wanted, tokens, slots)):
            rng = np.random.default_rng([self.seed, i])
            n_alpha = sum(w.is_alpha for w in toks)
            out.extend(self._variants(str(ids[i]), texts[i], text_slots, n_alpha, counts[i], rng))
            if progress is not None:
                progress((step + 1) / len(wanted), "generating candidates")
        return out

    def _positions(self, text: str, tokens: list[Word]) -> list[int]:
        index = {(w.start, w.end): k for k, w in enumerate(tokens)}
        return [index[(w.start, w.end)] for w in self.protector.changeable(text, tokens)]

    def _variants(self, source_id: str, text: str, slots: list[Slot], n_alpha: int, n: int,
                  rng: np.random.Generator) -> list[Candidate]:
        slots = [s._replace(options=tuple(o for o in s.options[: self.top_k]
                                          if o.lower() != s.original.lower()))
                 for s in slots]
        slots = [s for s in slots if s.options]
        if not slots:
            return []
        most = max(1, int(np.floor(self.max_share * max(n_alpha, 1))))
        seen, out = {text}, []
        for _ in range(4 * n):  # a few extra draws, since two draws may give the same text
            if len(out) == n:
                break
            k = int(rng.integers(1, min(most, len(slots)) + 1))
            picked = [slots[j] for j in sorted(rng.choice(len(slots), size=k, replace=False))]
            subs = [(s, s.options[int(rng.integers(len(s.options)))]) for s in picked]
            new = apply_substitutions(text, [(s.start, s.end, match_case(s.original, w))
                                             for s, w in subs])
            if new not in seen:
                seen.add(new)
                out.append(Candidate(source_id, text, new, self.method,
                                     tuple((s.original, w) for s, w in subs)))
        return out
