"""The polarity guard: an antonym is not a synonym.

Two signs, both data rather than code: VADER's sentiment lexicon (valence of
7,500 English words, shipped in the ``vaderSentiment`` wheel) and
``opposites.yaml`` (direction words such as rose/fell, and antonym pairs such as
profit/loss that sentiment lexicons miss). A word swap is opposed when the two
words point different ways; a whole candidate is flipped when its VADER
compound score or its net direction turns the other way.

Chinese has no VADER: ``polarity_zh.yaml`` is a short word list of our own (sentiment words of
reviews and customer service, direction words of finance), read the same way over the words
``jieba`` segments, a negation (不, 没, ...) before a word turning it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

__all__ = ["PolarityGuard"]

_OPPOSITES = Path(__file__).with_name("opposites.yaml")
_ZH = Path(__file__).with_name("polarity_zh.yaml")
_TOKEN = re.compile(r"[a-z]+(?:'[a-z]+)?")


@lru_cache(maxsize=1)
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@lru_cache(maxsize=4)
def _opposites(path: str) -> tuple[dict[str, int], frozenset[frozenset[str]]]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    direction = {w.lower(): +1 for w in data.get("direction", {}).get("up", [])}
    direction.update({w.lower(): -1 for w in data.get("direction", {}).get("down", [])})
    pairs = frozenset(frozenset(w.lower() for w in pair) for pair in data.get("pairs", [])
                      if len(pair) == 2)
    return direction, pairs


@lru_cache(maxsize=1)
def _zh_lists() -> tuple[dict[str, int], dict[str, int]]:
    """Chinese sentiment (+1/-1) and direction (+1/-1) words."""
    data = yaml.safe_load(_ZH.read_text(encoding="utf-8")) or {}
    sentiment = {w: +1 for w in data.get("positive", [])} | {w: -1 for w in data.get("negative", [])}
    direction = {w: +1 for w in data.get("up", [])} | {w: -1 for w in data.get("down", [])}
    return sentiment, direction


def _zh_sign(word: str, table: dict[str, int]) -> int:
    """A Chinese word's sign in ``table``; a negated word (不喜欢, 没有问题) the other way."""
    if word in table:
        return table[word]
    for lead in ("不", "没有", "没", "无", "未"):
        if word.startswith(lead) and word[len(lead):] in table:
            return -table[word[len(lead):]]
    return 0


def _zh_net(text: str, table: dict[str, int]) -> int:
    """The net sign of a Chinese text's words; a negation word turns the next signed word."""
    from curation.augment._text import _is_negation, words

    total, negate = 0, False
    for w in words(text):
        sign = _zh_sign(w.text, table)
        if sign:
            total += -sign if negate else sign
            negate = False
        elif _is_negation(w):
            negate = True
        elif w.text in "，。！？；,.!?;":
            negate = False
    return total


class PolarityGuard:
    """Says whether a word swap or a rewritten text turns the meaning around.

    Parameters
    ----------
    min_valence : float
        Two words whose VADER valences have opposite signs are opposed when the
        stronger of the two is at least this (VADER's scale runs -4..4).
    min_compound : float
        A candidate is flipped when the original's VADER compound score is at
        least this far from 0 and the candidate's has the other sign.

    Examples
    --------
    >>> g = PolarityGuard()
    >>> g.opposed("great", "bad"), g.opposed("rose", "fell"), g.opposed("profit", "loss")
    (True, True, True)
    >>> g.opposed("great", "excellent"), g.opposed("rose", "grew"), g.opposed("company", "firm")
    (False, False, False)
    >>> g.flipped("Sales rose sharply.", "Sales fell sharply.")
    'direction turns from up to down'
    >>> g.flipped("Sales rose sharply.", "Sales grew sharply.") is None
    True
    """

    def __init__(self, *, min_valence: float = 1.0, min_compound: float = 0.3,
                 opposites: str | Path = _OPPOSITES) -> None:
        self.min_valence = float(min_valence)
        self.min_compound = float(min_compound)
        self.direction, self.pairs = _opposites(str(opposites))

    def _valence(self, word: str) -> float:
        return float(_vader().lexicon.get(word.lower(), 0.0))

    def opposed(self, a: str, b: str) -> bool:
        """True when swapping word ``a`` for ``b`` points the other way (Chinese words: by
        ``polarity_zh.yaml``).

        >>> PolarityGuard().opposed("喜欢", "讨厌"), PolarityGuard().opposed("喜欢", "喜爱")
        (True, False)
        """
        from curation.augment._text import has_han

        if has_han(a) or has_han(b):
            return any(_zh_sign(a, t) * _zh_sign(b, t) < 0 for t in _zh_lists())
        a, b = a.lower(), b.lower()
        if frozenset((a, b)) in self.pairs:
            return True
        da, db = self.direction.get(a, 0), self.direction.get(b, 0)
        if da * db < 0:
            return True
        va, vb = self._valence(a), self._valence(b)
        return va * vb < 0 and max(abs(va), abs(vb)) >= self.min_valence

    def net_direction(self, text: str) -> int:
        return sum(self.direction.get(t, 0) for t in _TOKEN.findall(text.lower()))

    def compound(self, text: str) -> float:
        return float(_vader().polarity_scores(text)["compound"])

    def flipped(self, original: str, candidate: str) -> str | None:
        """Why ``candidate`` reads the other way round from ``original``, or ``None``.

        >>> PolarityGuard().flipped("服务很好，我很满意。", "服务很差，我不满意。")
        'sentiment turns from +2 to -2 (Chinese word list)'
        """
        from curation.augment._text import has_han

        if has_han(original):
            sentiment, direction = _zh_lists()
            for what, table in (("sentiment", sentiment), ("direction", direction)):
                before, after = _zh_net(original, table), _zh_net(candidate, table)
                if before * after < 0 or (before and not after and abs(before) >= 2):
                    return f"{what} turns from {before:+d} to {after:+d} (Chinese word list)"
            return None
        before, after = self.net_direction(original), self.net_direction(candidate)
        if before * after < 0 or (before != 0 and after == 0 and abs(before) >= 2):
            names = {1: "up", -1: "down", 0: "none"}
            return (f"direction turns from {names[(before > 0) - (before < 0)]} to "
                    f"{names[(after > 0) - (after < 0)]}")
        c0, c1 = self.compound(original), self.compound(candidate)
        if abs(c0) >= self.min_compound and c0 * c1 < 0:
            return f"sentiment turns from {c0:+.2f} to {c1:+.2f}"
        return None
