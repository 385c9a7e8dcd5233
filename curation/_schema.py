"""The one shape every step reads and writes: the long annotation frame."""

from __future__ import annotations

__all__ = ["ITEM", "TEXT", "ANNOTATOR", "LABEL", "GOLD", "REQUIRED_COLUMNS", "LONG_COLUMNS"]

ITEM = "item_id"
TEXT = "text"
ANNOTATOR = "annotator_id"
LABEL = "label"
GOLD = "gold"

#: Columns every long frame has; all hold ``str`` values (``gold`` may be missing).
REQUIRED_COLUMNS = (ITEM, TEXT, ANNOTATOR, LABEL)
LONG_COLUMNS = (ITEM, TEXT, ANNOTATOR, LABEL, GOLD)
