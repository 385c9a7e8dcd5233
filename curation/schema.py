"""The one shape every step reads and writes: the long annotation frame."""

from __future__ import annotations

__all__ = ["ANNOTATOR", "COLUMN_HELP", "GOLD", "ITEM", "LABEL", "LONG_COLUMNS", "REQUIRED_COLUMNS", "TEXT"]

ITEM = "item_id"
TEXT = "text"
ANNOTATOR = "annotator_id"
LABEL = "label"
GOLD = "gold"

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
}
