"""Pieces of validation messages shared by the loader and the store."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["MAX_LISTED", "format_list", "markdown_text", "suggest"]

#: How many offending rows or ids a message lists before "and N more".
MAX_LISTED = 5


def format_list(values: Iterable[Any], limit: int = MAX_LISTED) -> str:
    """``"a, b, c and 4 more"``: the first ``limit`` values and a count of the rest."""
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    more = len(values) - limit
    return shown + (f" and {more} more" if more > 0 else "")


def suggest(word: str, options: Sequence[Any]) -> str:
    """``" - did you mean 'label'?"`` for the closest option (case-insensitive), else ``""``."""
    lowered = {str(o).lower(): str(o) for o in options}
    close = difflib.get_close_matches(str(word).lower(), list(lowered), n=1, cutoff=0.5)
    return f" - did you mean {lowered[close[0]]!r}?" if close else ""




_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
#: Where GitHub-flavoured Markdown turns plain text into a link without any markup (its
#: "autolink literals", applied to text after escapes are resolved, so escaping cannot stop them):
#: ``scheme://``, ``www.`` and e-mail addresses. An invisible WORD JOINER (U+2060) breaks each.
_AUTOLINK = re.compile(r"(?i)(://|\bwww(?=\.)|@)")
WORD_JOINER = "\u2060"


def markdown_text(text: object) -> str:
    r"""``text`` shown as typed inside Markdown: every ASCII punctuation character is
    backslash-escaped (CommonMark shows an escaped character as itself), so no link, image,
    HTML tag, heading, emphasis, code span, table cell break or maths can form from it; and an
    invisible word joiner (U+2060) follows ``://``, ``www`` and ``@``, so GitHub-flavoured
    Markdown's autolinks (``http://x``, ``www.x.com``, ``a@b.com``) cannot form either.

    For user data (labels, names, texts, ids) inside Markdown: the app's messages and the data
    card. Copied from the page, such text carries the invisible joiners.

    Examples
    --------
    >>> print(markdown_text("label ![x](h/p.png) *bold* 0.05"))
    label \!\[x\]\(h\/p\.png\) \*bold\* 0\.05
    >>> markdown_text("see www.x.com") == "see www\u2060\\.x\\.com"
    True
    """
    return _PUNCTUATION.sub(r"\\\1", _AUTOLINK.sub(lambda m: m.group(1) + WORD_JOINER, str(text)))
