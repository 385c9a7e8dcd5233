"""Words, and what in a text must never change: numbers, names, negations, protected terms.

Substitution augmenters see a text as :class:`Word` spans; :class:`Protector`
marks the spans that stay as they are. Back-translation cannot be steered word
by word, so :meth:`Protector.lost` lists the protected values a candidate no
longer contains, and the checks reject it for that.

Chinese is written without spaces: a run of Han characters is segmented into words with
``jieba`` (its bundled dictionary, loaded on the first Chinese text), and Chinese negations
(:data:`NEGATIONS_ZH`, words opening with 不 or 没), numbers (Chinese numerals, 第, digits) and
function words (:data:`STOPWORDS_ZH`) are protected like their English counterparts.
"""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

__all__ = ["CATEGORIES", "NEGATIONS", "NEGATIONS_ZH", "STOPWORDS", "STOPWORDS_ZH", "Protector",
           "Word", "apply_substitutions", "has_han", "match_case", "words"]

#: What a :class:`Protector` can protect.
CATEGORIES = ("numbers", "entities", "negations", "terms")

NEGATIONS = frozenset("""not no never none nobody nothing nowhere neither nor without cannot
cant dont doesnt didnt isnt arent wasnt werent wont wouldnt shouldnt couldnt hasnt havent hadnt
hardly barely scarcely lack lacks lacking""".split())
NUMBER_WORDS = frozenset("""zero one two three four five six seven eight nine ten eleven twelve
thirteen fourteen fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty
seventy eighty ninety hundred thousand million billion trillion mn bn m k half quarter third
double twice triple percent per cent pct dozen dozens tens hundreds thousands millions
billions first second third fourth fifth year years month months week weeks day days
hour hours annual annually monthly quarterly weekly daily yearly today yesterday tomorrow
tonight""".split())
STOPWORDS = frozenset("""a about above after again against all am an and any are as at be because
been before being below between both but by can could did do does doing down during each few for
from further had has have having he her here hers herself him himself his how i if in into is it
its itself just me more most my myself of off on once only or other our ours ourselves out over own
same she should so some such than that the their theirs them themselves then there these they this
those through to too under until up very was we were what when where which while who whom why will
with would you your yours yourself yourselves also per via upon within among amid s t d ll re ve y
however therefore thus hence nevertheless nonetheless although though whereas while despite yet
otherwise instead meanwhile moreover furthermore besides still even already only just
""".split()) | NEGATIONS

#: Chinese negation words; besides these, any word that opens with 不 or 没 (不喜欢, 没有) is one.
NEGATIONS_ZH = frozenset("""不 没 没有 别 未 未曾 无 无法 非 莫 勿 甭 否 不是 不能 不会 不要 不用 并非
从未 从不 绝不 决不 毫无 尚未 未必 不必 没法 休想""".split())
#: Words that open with 不/没/未/无/非 but are no negation (so a rewrite may add or drop them).
_NOT_NEGATIONS_ZH = frozenset("非常 未来 不过 不断 不仅 无论 无限 不少 不错 没准 非得 不久".split())
#: Chinese numerals; a Han word that opens with one (三十分钟, 第三) is a number.
_NUMERALS_ZH = frozenset("零〇一二三四五六七八九十百千万亿两半第几")
#: Chinese function words (particles, pronouns, conjunctions): never swapped.
STOPWORDS_ZH = frozenset("""的 了 着 过 是 在 和 与 及 或 也 就 都 而 但 却 又 还 把 被 让 给 对 向 从
到 以 于 为 之 其 这 那 这个 那个 这些 那些 这家 那家 我 你 您 他 她 它 我们 你们 他们 她们 它们 自己 谁
什么 怎么 哪 吗 呢 吧 啊 呀 嘛 哦 请 很 太 更 最 也许 因为 所以 如果 虽然 但是 而且 可以 能 会 要 想 得 地
个 些 每 各 该 此 并 则 即 等 啦""".split())

_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*|\d[\d.,:/]*%?|\S", re.UNICODE)
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_JIEBA_LOCK = threading.Lock()


def has_han(text: str) -> bool:
    """Whether ``text`` holds a Han (Chinese) character.

    >>> has_han("我的卡"), has_han("my card")
    (True, False)
    """
    return _HAN.search(text) is not None


@lru_cache(maxsize=1)
def _jieba() -> Any:
    import jieba

    jieba.setLogLevel(logging.WARNING)  # not its "Building prefix dict" lines on every start
    with _JIEBA_LOCK:
        jieba.initialize()
    return jieba


def _segments(token: str) -> list[tuple[str, int, int]]:
    """A token with Han characters split into Chinese words (jieba), offsets within it."""
    if not has_han(token):
        return [(token, 0, len(token))]
    return [(w, s, e) for w, s, e in _jieba().tokenize(token)]
_SENTENCE_END = frozenset(".!?")


@dataclass(frozen=True)
class Word:
    """A token of a text: its characters ``text[start:end]`` and whether it is alphabetic."""

    text: str
    start: int
    end: int
    sentence_start: bool

    @property
    def is_alpha(self) -> bool:
        return self.text.replace("'", "").replace("’", "").isalpha()

    @property
    def lower(self) -> str:
        return self.text.lower()


def words(text: str) -> list[Word]:
    """The tokens of ``text``: alphabetic words, numbers and single punctuation marks; Chinese
    segmented into words.

    >>> [w.text for w in words("Profit rose 5.2% to EUR 3mn, didn't it?")]
    ['Profit', 'rose', '5.2%', 'to', 'EUR', '3', 'mn', ',', "didn't", 'it', '?']
    >>> [w.text for w in words("我的信用卡被盗了，请帮我冻结。")]
    ['我', '的', '信用卡', '被盗', '了', '，', '请', '帮', '我', '冻结', '。']
    """
    out: list[Word] = []
    start = True
    for match in _WORD.finditer(text):
        for token, s, e in _segments(match.group()):
            out.append(Word(token, match.start() + s, match.start() + e, start))
            start = token in _SENTENCE_END or token in "。！？"
    return out


def match_case(template: str, word: str) -> str:
    """``word`` in the case pattern of ``template`` (UPPER, Title or as given).

    >>> match_case("Rose", "grew"), match_case("EUR", "euro"), match_case("rose", "grew")
    ('Grew', 'EURO', 'grew')
    """
    if len(template) > 1 and template.isupper():
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def apply_substitutions(text: str, changes: Iterable[tuple[int, int, str]]) -> str:
    """``text`` with each ``(start, end, new)`` span replaced (spans must not overlap).

    >>> apply_substitutions("sales rose fast", [(6, 10, "grew"), (0, 5, "revenue")])
    'revenue grew fast'
    """
    out, last = [], 0
    for start, end, new in sorted(changes):
        if start < last:
            raise ValueError(f"overlapping substitutions at character {start}; pass disjoint spans.")
        out.extend([text[last:start], new])
        last = end
    out.append(text[last:])
    return "".join(out)


def _is_number(word: Word) -> bool:
    if any(ch.isdigit() for ch in word.text) or word.lower in NUMBER_WORDS:
        return True
    return has_han(word.text) and word.text[0] in _NUMERALS_ZH


def _is_negation(word: Word) -> bool:
    if has_han(word.text):
        return word.text not in _NOT_NEGATIONS_ZH and (
            word.text in NEGATIONS_ZH or word.text[0] in "不没")
    lowered = word.lower.replace("’", "'")
    return lowered in NEGATIONS or lowered.endswith("n't") or lowered.replace("'", "") in NEGATIONS


def _is_stopword(word: Word) -> bool:
    return word.lower in STOPWORDS or word.text in STOPWORDS_ZH


def _is_entity(word: Word) -> bool:
    """A heuristic named entity: ALL-CAPS (2+ letters), or capitalised away from a sentence start,
    or capitalised at a sentence start when the lower-case word is not a common word."""
    if not word.is_alpha or not word.text[:1].isupper():
        return False
    if len(word.text) > 1 and word.text.isupper():
        return True
    return not word.sentence_start or word.lower not in STOPWORDS


class Protector:
    """Decides which words an augmenter may change.

    Parameters
    ----------
    terms : iterable of str
        Extra protected terms (case-insensitive; several words allowed), e.g. a
        glossary's ``protected`` list.
    allow : iterable of {"numbers", "entities", "negations", "terms"}
        Categories the user asks to let change; by default all are protected.

    Examples
    --------
    >>> p = Protector(terms=["credit card"])
    >>> [w.text for w in p.changeable("Nokia did not pay the 5 credit card fees quickly")]
    ['pay', 'fees', 'quickly']
    >>> p.lost("Nokia did not pay 5 fees", "Nokia did pay 6 fees")
    ['not', '5']
    """

    def __init__(self, *, terms: Iterable[str] = (), allow: Iterable[str] = ()) -> None:
        allow = tuple(allow)
        unknown = sorted(set(allow) - set(CATEGORIES))
        if unknown:
            raise ValueError(f"unknown protection categories {unknown}; choose from {list(CATEGORIES)}.")
        self.allow = frozenset(allow)
        self.terms = tuple(sorted({t.strip().lower() for t in terms if t and t.strip()}, key=len,
                                  reverse=True))
        # a Chinese term has no spaces around it: matched anywhere, not between word boundaries
        self._term_re = (re.compile("|".join(
            re.escape(t) if has_han(t) else r"(?<!\w)" + re.escape(t) + r"(?!\w)"
            for t in self.terms), re.IGNORECASE) if self.terms else None)

    def __repr__(self) -> str:
        return f"Protector(terms={len(self.terms)}, allow={sorted(self.allow)})"

    def category(self, word: Word) -> str | None:
        """The protection category of a single word, or ``None`` (terms are found per text)."""
        checks = (("numbers", _is_number), ("negations", _is_negation), ("entities", _is_entity))
        return next((name for name, test in checks if name not in self.allow and test(word)), None)

    def _term_spans(self, text: str) -> list[tuple[int, int]]:
        if self._term_re is None or "terms" in self.allow:
            return []
        return [m.span() for m in self._term_re.finditer(text)]

    def changeable(self, text: str, tokens: Sequence[Word] | None = None) -> list[Word]:
        """The alphabetic, non-stopword words of ``text`` that no protection covers."""
        tokens = words(text) if tokens is None else tokens
        spans = self._term_spans(text)
        return [w for w in tokens
                if w.is_alpha and (len(w.text) > 1 or has_han(w.text)) and not _is_stopword(w)
                and self.category(w) is None
                and not any(s < w.end and w.start < e for s, e in spans)]

    def protected_values(self, text: str) -> list[str]:
        """Every protected value in ``text`` (lower-cased), in order, repeats kept."""
        values = [m.group().lower() for m in self._term_re.finditer(text)] if (
            self._term_re is not None and "terms" not in self.allow) else []
        return values + [w.lower for w in words(text) if self.category(w) is not None]

    def gained(self, original: str, candidate: str) -> list[str]:
        """Negations and numbers ``candidate`` has that ``original`` has not (a rewrite that adds
        "not" or a figure says something else).

        >>> Protector().gained("Sales rose 5 %", "Sales did not rise 6 %")
        ['not', '6']
        """
        return [value for value in self._lost_from(candidate, original, ("negations", "numbers"))]

    def _lost_from(self, original: str, candidate: str, categories: tuple[str, ...]) -> list[str]:
        have = Counter(w.lower for w in words(candidate))
        missing = []
        for word in words(original):
            if self.category(word) in categories:
                if have[word.lower] > 0:
                    have[word.lower] -= 1
                else:
                    missing.append(word.lower)
        return missing

    def lost(self, original: str, candidate: str) -> list[str]:
        """Protected values of ``original`` that ``candidate`` no longer holds as often."""
        terms = ([m.group().lower() for m in self._term_re.finditer(candidate)]
                 if self._term_re is not None else [])
        have = Counter([w.lower for w in words(candidate)] + terms)
        missing = []
        for value in self.protected_values(original):
            if have[value] > 0:
                have[value] -= 1
            else:
                missing.append(value)
        return missing
