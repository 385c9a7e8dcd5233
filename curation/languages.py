"""Which writing system a project's texts use, and whether the embedding model covers it.

The bundled all-MiniLM-L6-v2 was trained on English: on Chinese, Russian or Arabic text its
embeddings (and every flag built on them) say little, and nothing said so (3,000 Chinese NLI
pairs: 2,941 flagged). :func:`script_shares` counts the letters of a sample of texts by Unicode
script; :func:`model_warning` speaks up when most of them are in a script other than Latin and
the model is the bundled English one.

>>> script_shares(["我的信用卡被盗了，请帮我冻结", "card"])["Han"] > 0.5
True
>>> model_warning(["card stolen", "thanks"], None) is None
True
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable

__all__ = ["MULTILINGUAL_HINT", "model_warning", "script_shares"]

#: Unicode character-name prefixes of the scripts told apart (the first word of a letter's
#: name: "CJK UNIFIED IDEOGRAPH-6211" is Han, "CYRILLIC SMALL LETTER A" Cyrillic).
_SCRIPTS = {"CJK": "Han", "HIRAGANA": "Japanese kana", "KATAKANA": "Japanese kana",
            "HANGUL": "Hangul", "CYRILLIC": "Cyrillic", "ARABIC": "Arabic", "HEBREW": "Hebrew",
            "GREEK": "Greek", "DEVANAGARI": "Devanagari", "THAI": "Thai", "LATIN": "Latin"}
MULTILINGUAL_HINT = ("a multilingual sentence model the operator offers (--model, or [models] "
                     "in projects.toml), e.g. paraphrase-multilingual-MiniLM-L12-v2")


def script_shares(texts: Iterable[str], sample: int = 2000) -> dict[str, float]:
    """Share of letters per script over the first ``sample`` texts, largest first."""
    counts: Counter[str] = Counter()
    for k, text in enumerate(texts):
        if k == sample:
            break
        for ch in str(text):
            if ch.isalpha():
                name = unicodedata.name(ch, "")
                counts[_SCRIPTS.get(name.split(" ", 1)[0], "other")] += 1
    total = sum(counts.values())
    return {script: n / total for script, n in counts.most_common()} if total else {}


def model_warning(texts: Iterable[str], model: str | None) -> str | None:
    """A sentence for the user when most letters are not Latin and ``model`` is the bundled
    English MiniLM (``None`` or :data:`curation.embeddings.DEFAULT_MODEL`); else None. A model
    the user chose is taken as chosen for the language."""
    from curation.embeddings import DEFAULT_MODEL

    if model not in (None, DEFAULT_MODEL):
        return None
    shares = script_shares(texts)
    if not shares:
        return None
    script, share = next(iter(shares.items()))
    if script == "Latin" or share < 0.5:
        return None
    return (f"{share:.0%} of the letters are {script} script, and the embedding model is the "
            "bundled all-MiniLM-L6-v2, trained on English: its embeddings, and the flags built on "
            f"them (label issues, CROWDLAB, boundary, near-duplicates by meaning), say little "
            f"about these texts. Use {MULTILINGUAL_HINT}, or flag on the votes alone "
            "(--no-model).")
