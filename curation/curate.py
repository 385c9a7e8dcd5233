"""The curated dataset: consensus labels with review decisions applied, and what changed.

The latest effective decision per item wins (undo cancels the one before it);
every decision stays in the store's audit log. ``drop`` removes an item,
``ambiguous`` keeps it marked (the export leaves ambiguous items out unless
asked), ``set_label`` relabels, ``keep`` confirms the consensus.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from curation.aggregation import consensus_labels
from curation.schema import GOLD, ITEM, TEXT, TEXT_PAIR, has_pairs

__all__ = ["CURATED_COLUMNS", "STATUSES", "changes", "curate"]

CURATED_COLUMNS = ("item_id", "text", "label", "status", "consensus_label", "confidence",
                   "consensus_method", "reviewer", "note", "decided_at", "gold")
#: status -> meaning, in the order the changes view lists them.
STATUSES = {
    "relabelled": "a reviewer set a different label",
    "confirmed": "a reviewer kept the consensus label",
    "ambiguous": "a reviewer marked it ambiguous",
    "dropped": "a reviewer dropped it",
    "consensus": "not reviewed: consensus label",
}


def curate(frame: pd.DataFrame, decisions: pd.DataFrame | None = None, *,
           labels: Sequence[str] | None = None, include_dropped: bool = False) -> pd.DataFrame:
    """Consensus label per item with the latest review decisions applied.

    Parameters
    ----------
    frame : DataFrame
        The long annotation frame.
    decisions : DataFrame, optional
        ``Project.latest_decisions()``: one row per reviewed item with
        ``action``, ``curated_label``, ``reviewer``, ``note``, ``created_at``.
    labels : sequence of str, optional
        The label set, in order (a project's ``Project.label_set()``, a file's
        :func:`curation.io.declared_labels`); default: the labels seen, sorted.
    include_dropped : bool
        Keep dropped items (status ``dropped``) instead of removing them.

    Returns
    -------
    DataFrame with :data:`CURATED_COLUMNS`, one row per item (and ``text_pair`` after
    ``text`` when the items are sentence pairs).
    """
    consensus = consensus_labels(frame, labels=labels)
    first = frame.drop_duplicates(ITEM).set_index(ITEM)
    out = pd.DataFrame({
        "item_id": consensus.index, "text": first[TEXT].reindex(consensus.index).to_numpy(),
        "label": consensus["label"].to_numpy(), "status": "consensus",
        "consensus_label": consensus["label"].to_numpy(),
        "confidence": consensus["confidence"].to_numpy(),
        "consensus_method": consensus["method"].to_numpy(), "reviewer": None, "note": None,
        "decided_at": None,
        "gold": first[GOLD].reindex(consensus.index).to_numpy() if GOLD in first else None})
    if decisions is not None and len(decisions):
        out = _apply(out, decisions)
    if not include_dropped:
        out = out[out["status"] != "dropped"]
    columns = list(CURATED_COLUMNS)
    if has_pairs(frame):
        out[TEXT_PAIR] = out[ITEM].map(first[TEXT_PAIR])
        columns.insert(columns.index(TEXT) + 1, TEXT_PAIR)
    return out.reset_index(drop=True)[columns]


def _apply(out: pd.DataFrame, decisions: pd.DataFrame) -> pd.DataFrame:
    unknown = sorted(set(decisions[ITEM]) - set(out[ITEM]))
    if unknown:
        raise ValueError(f"decisions name items that are not in the data: {unknown[:5]}; "
                         "import those items or remove the decisions' project.")
    d = decisions.set_index(ITEM).reindex(out[ITEM])
    action = d["action"].to_numpy()
    has = pd.notna(action)
    curated = d["curated_label"].to_numpy()
    relabel = has & pd.notna(curated)
    out.loc[relabel, "label"] = curated[relabel]
    differs = (out["label"] != out["consensus_label"]).to_numpy()
    status = out["status"].to_numpy().copy()
    status[relabel & ~differs] = "confirmed"
    status[relabel & differs] = "relabelled"
    status[action == "keep"] = "confirmed"
    status[action == "ambiguous"] = "ambiguous"
    status[action == "drop"] = "dropped"
    out["status"] = status
    for src, dst in (("reviewer", "reviewer"), ("note", "note"), ("created_at", "decided_at")):
        out.loc[has, dst] = d[src].to_numpy()[has]
    return out


def changes(curated: pd.DataFrame, log: pd.DataFrame) -> pd.DataFrame:
    """The review log joined with each item's text and consensus label, newest first.

    ``log`` is ``Project.decisions()`` (every decision, undos and re-import
    replacements included): nothing is hidden, so a reviewer's trail is complete.
    """
    info = curated.set_index(ITEM)[[TEXT, "consensus_label", "label", "status"]]
    info = info.rename(columns={"label": "curated_label"})
    out = log.join(info, on=ITEM)
    cols = ["decision_id", "created_at", "reviewer", "action", ITEM, "old_label", "new_label",
            "note", "consensus_label", "curated_label", "status", TEXT]
    return out.sort_values("decision_id", ascending=False)[cols].reset_index(drop=True)
