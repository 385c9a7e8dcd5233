"""Which writing system a project's texts use, and whether the embedding model covers it.

The bundled all-MiniLM-L6-v2 was trained on English: on Chinese, Russian or Arabic text its
embeddings (and every flag built on them) say little, and nothing said so (3,000 Chinese NLI
pairs: 2,941 flagged). :func:`script_shares` counts the letters of a sample of texts by Unicode
script; within the Latin script :func:`latin_language` tells English from German, French,
Spanish, Italian, Portuguese, Dutch, Swedish, Polish, Turkish and Indonesian by their commonest
short words (the words that make up a third of any running text, so a few sentences suffice);
:func:`project_language` gives both, and :func:`model_warning` speaks up when the texts are not
English and the model is the bundled English one.

>>> script_shares(["我的信用卡被盗了，请帮我冻结", "card"])["Han"] > 0.5
True
>>> model_warning(["card stolen", "thanks"], None) is None
True
>>> latin_language(["Meine Karte wurde gestohlen und ich kann nicht mehr zahlen.",
...                 "Die Bank hat das Konto gesperrt, aber ich habe nichts bekommen."] * 3)
'German'
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable

__all__ = ["MULTILINGUAL_HINT", "latin_language", "model_warning", "project_language",
           "script_shares"]

#: Common short words of each language told apart (function words: articles, pronouns,
#: prepositions, conjunctions, auxiliaries); a word on two lists counts for neither.
_FUNCTION_WORDS = {
    "English": "the and of to is in it that was for you with this are on have be not but what "
               "they at my his her from were would there been has will",
    "German": "der die und das ist nicht ich zu den mit sich des auf für ein eine dem auch es "
              "wird ein sie wir aber noch nach bei oder wurde habe",
    "French": "le la les et est des une pas que qui dans pour sur au avec il elle je ce sont "
              "mais du nous vous leur été très aux",
    "Spanish": "el los las y que del una por con para es muy pero como su sus está fue yo lo "
               "más ya hay sin también porque mi puedo ella nada todavía esta este hasta",
    "Italian": "il di che è per una sono della non gli anche come nel alla più ma questo ho "
               "mi ha sul dei delle ci io",
    "Portuguese": "o os as e que do da não uma para com em por mais foi são muito mas é ao "
                  "dos das meu minha isso está",
    "Dutch": "de het een en van ik niet dat op zijn met voor maar er ook als aan bij heb "
             "wordt nog dan geen mijn",
    "Swedish": "och att det som en på är av för med inte har jag till den om var men ett vi "
               "så kan min",
    "Polish": "i w nie na się z do że jest to jak co ale po tak za od jestem mnie przez",
    "Turkish": "ve bir bu da de için ile çok ama ne gibi daha olarak olan var ben değil",
    "Indonesian": "dan yang di ini itu dengan untuk tidak dari ada saya akan pada juga ke "
                  "bisa sudah karena",
}
_SHARED = {w for w, n in Counter(w for ws in _FUNCTION_WORDS.values()
                                  for w in set(ws.split())).items() if n > 1}
_WORDS = {lang: frozenset(words.split()) - _SHARED for lang, words in _FUNCTION_WORDS.items()}
_TOKEN = re.compile(r"[^\W\d_]+", re.UNICODE)

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


def latin_language(texts: Iterable[str], sample: int = 2000) -> str | None:
    """The language of Latin-script texts, by which language's function words are most of the
    words that are function words of any (None with under 20 such words, or no clear winner:
    the leader under 60% of them)."""
    counts: Counter[str] = Counter()
    for k, text in enumerate(texts):
        if k == sample:
            break
        for token in _TOKEN.findall(str(text).casefold()):
            for lang, words in _WORDS.items():
                if token in words:
                    counts[lang] += 1
    total = sum(counts.values())
    if total < 20:
        return None
    lang, n = counts.most_common(1)[0]
    return lang if n / total >= 0.6 else None


def project_language(texts: Iterable[str]) -> dict[str, object]:
    """``{"script", "share", "language"}`` of a sample of texts: the main script and its share
    of the letters, and for Latin script the language (None when it cannot be told).

    >>> project_language(["The card was stolen and I cannot pay with it at the shop."] * 3)
    {'script': 'Latin', 'share': 1.0, 'language': 'English'}
    """
    texts = list(texts)[:2000]
    shares = script_shares(texts)
    if not shares:
        return {"script": None, "share": 0.0, "language": None}
    script, share = next(iter(shares.items()))
    language = latin_language(texts) if script == "Latin" else None
    return {"script": script, "share": round(share, 4), "language": language}


def model_warning(texts: Iterable[str], model: str | None) -> str | None:
    """A sentence for the user when the texts are not English - most letters not Latin, or
    Latin-script text in another language - and ``model`` is the bundled English MiniLM
    (``None`` or :data:`curation.embeddings.DEFAULT_MODEL`); else None. A model the user chose is
    taken as chosen for the language."""
    from curation.embeddings import DEFAULT_MODEL

    if model not in (None, DEFAULT_MODEL):
        return None
    found = project_language(texts)
    if found["script"] is None:
        return None
    script, share = found["script"], float(found["share"])
    if script == "Latin" or share < 0.5:
        language = found["language"]
        if script != "Latin" or language in (None, "English"):
            return None
        what = f"The texts read as {language}"
    else:
        what = f"{share:.0%} of the letters are {script} script"
    return (f"{what}, and the embedding model is the "
            "bundled all-MiniLM-L6-v2, trained on English: its embeddings, and the flags built on "
            f"them (label issues, CROWDLAB, boundary, near-duplicates by meaning), say little "
            f"about these texts. Use {MULTILINGUAL_HINT}, or flag on the votes alone "
            "(--no-model).")
