"""The one shape every step reads and writes: the long annotation frame."""

from __future__ import annotations

__all__ = ["ANNOTATOR", "COLUMN_HELP", "GOLD", "ITEM", "LABEL", "LONG_COLUMNS", "REQUIRED_COLUMNS", "TEXT",
           "TEXT_PAIR", "has_pairs", "pair_key", "text_columns"]

ITEM = "item_id"
TEXT = "text"
ANNOTATOR = "annotator_id"
LABEL = "label"
GOLD = "gold"
#: The second text of a sentence pair (NLI hypothesis, the answer to a question, ...): optional.
#: A frame has this column only when its items are pairs, and then every item has both texts.
TEXT_PAIR = "text_pair"

#: Columns every long frame has; all hold ``str`` values (``gold`` may be missing).
REQUIRED_COLUMNS = (ITEM, TEXT, ANNOTATOR, LABEL)
LONG_COLUMNS = (ITEM, TEXT, ANNOTATOR, LABEL, GOLD)

#: What each column of the long frame means (shown in the app's import form).
COLUMN_HELP = {
    ITEM: "identifier of the text being labelled",
    TEXT: "the text itself",
    ANNOTATOR: "who gave the label",
    LABEL: "the label given",
    GOLD: "adjudicated label, if known (optional)",
    TEXT_PAIR: "second text of a sentence pair, e.g. an NLI hypothesis (optional)",
}

#: Joins the two sides of a pair into one key (the ASCII unit separator: no text holds it, so
#: ``("a b", "c")`` and ``("a", "b c")`` never meet).
_PAIR_SEPARATOR = "\x1f"


def has_pairs(frame) -> bool:
    """Whether a frame's items are sentence pairs (it has a ``text_pair`` column).

    >>> import pandas as pd
    >>> has_pairs(pd.DataFrame({"text": ["a"]})), has_pairs(pd.DataFrame({"text": ["a"], "text_pair": ["b"]}))
    (False, True)
    """
    return TEXT_PAIR in getattr(frame, "columns", ())


def text_columns(frame) -> list[str]:
    """``["text"]``, or ``["text", "text_pair"]`` for a frame of pairs: the columns a model reads."""
    return [TEXT, TEXT_PAIR] if has_pairs(frame) else [TEXT]


def pair_key(text: str, pair: str | None = None) -> str:
    """One string for an item's text(s), for identity (duplicates, leaks, hashes): the text
    alone when there is no pair, so keys of single texts are the texts themselves.

    >>> pair_key("a"), pair_key("a", "b") == pair_key("a b") , pair_key("a", "b") == "a\x1fb"
    ('a', False, True)
    """
    if pair is None or pair != pair:  # None or NaN: no second text
        return text
    return f"{text}{_PAIR_SEPARATOR}{pair}"
