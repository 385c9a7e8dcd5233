"""Pieces of validation messages shared by the loader and the store."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["MAX_LISTED", "format_list", "suggest"]

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
