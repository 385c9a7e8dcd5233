"""Combine the flags of every flagger into one review order."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["KIND_WEIGHTS", "SUGGESTION_ORDER", "review_queue"]

#: How much each kind's score counts as evidence that the current label is wrong. A boundary
#: case is unclear rather than wrong, so it counts for less; unknown kinds count 1.0.
KIND_WEIGHTS: dict[str, float] = {
    "crowdlab": 1.0, "label_issue": 1.0, "low_confidence": 1.0, "disagreement": 1.0,
    "near_duplicate": 1.0, "boundary": 0.3,
}
#: Whose suggested label the queue shows first when several flaggers suggest one.
SUGGESTION_ORDER = ("crowdlab", "low_confidence", "label_issue", "disagreement")

#: Flag kinds whose meaning the continuous ``doubt`` signs carry (so they are not counted twice).
DOUBT_KINDS = ("disagreement", "low_confidence", "label_issue", "crowdlab")
QUEUE_COLUMNS = ("item_id", "priority", "kinds", "n_flags", "reason", "suggested_label", "rule_id")


def review_queue(flags: pd.DataFrame, *, doubt: pd.DataFrame | None = None,
                 weights: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per flagged item, most urgent first.

    ``priority = 1 - prod_k (1 - w_k * s_k)`` (a noisy-OR: each sign is
    independent evidence that the label needs a look), over the item's flag
    scores with ``w_k`` from :data:`KIND_WEIGHTS`; when ``doubt`` is given
    (one row per item, e.g. :meth:`FlagContext.doubt`), its continuous signs
    replace the flag scores of the same meaning, so an item's priority also
    counts evidence below any flagger's threshold. Ties break by item id.

    >>> flags = pd.DataFrame({"item_id": ["a", "a", "b"], "kind": ["disagreement", "boundary", "boundary"],
    ...                       "score": [0.4, 0.5, 0.9], "reason": ["r1", "r2", "r3"],
    ...                       "suggested_label": ["x", None, None], "rule_id": [None, "R1", "R2"]})
    >>> review_queue(flags)[["item_id", "priority", "kinds"]].values.tolist()
    [['a', 0.49, 'disagreement, boundary'], ['b', 0.27, 'boundary']]
    """
    if flags.empty:
        return pd.DataFrame(columns=list(QUEUE_COLUMNS))
    weights = {**KIND_WEIGHTS, **(weights or {})}
    scored = flags if doubt is None else flags[~flags["kind"].isin(DOUBT_KINDS)]
    w = scored["kind"].map(lambda k: weights.get(k, 1.0)).to_numpy(float)
    keep_log = pd.Series(np.log1p(-np.clip(w * scored["score"].to_numpy(float), 0, 1 - 1e-12)),
                         index=scored.index).groupby(scored["item_id"]).sum()
    keep_log = keep_log.reindex(pd.unique(flags["item_id"]), fill_value=0.0)
    if doubt is not None:
        signs = doubt.reindex(keep_log.index).fillna(0.0).clip(0, 1 - 1e-12)
        keep_log = keep_log + np.log1p(-signs).sum(axis=1)
    queue = pd.DataFrame({
        "priority": 1 - np.exp(keep_log),
        **_joined(flags),
        "suggested_label": _suggestions(flags),
        "rule_id": _most_common_rule(flags),
    })
    queue["suggested_label"] = queue["suggested_label"].astype(object).where(queue["suggested_label"].notna(), None)
    queue["rule_id"] = queue["rule_id"].astype(object).where(queue["rule_id"].notna(), None)
    queue["priority"] = queue["priority"].round(6)
    queue = queue.rename_axis("item_id").reset_index()
    return queue.sort_values(["priority", "item_id"], ascending=[False, True],
                             kind="stable").reset_index(drop=True)[list(QUEUE_COLUMNS)]


def _joined(flags: pd.DataFrame) -> dict[str, pd.Series]:
    """Per item (first-appearance order): its kinds, its number of flags, its reasons joined."""
    kinds: dict[str, list[str]] = {}
    reasons: dict[str, list[str]] = {}
    for item, kind, reason in zip(flags["item_id"].tolist(), flags["kind"].tolist(),
                                  flags["reason"].tolist()):
        kinds.setdefault(item, []).append(kind)
        reasons.setdefault(item, []).append(reason)
    return {"kinds": pd.Series({k: ", ".join(v) for k, v in kinds.items()}, dtype=object),
            "n_flags": pd.Series({k: len(v) for k, v in kinds.items()}, dtype=int),
            "reason": pd.Series({k: " ".join(v) for k, v in reasons.items()}, dtype=object)}


def _suggestions(flags: pd.DataFrame) -> pd.Series:
    """Per item, the first suggestion in :data:`SUGGESTION_ORDER`, else any other one."""
    rank = flags["kind"].map({k: i for i, k in enumerate(SUGGESTION_ORDER)}).fillna(len(SUGGESTION_ORDER))
    ordered = flags.assign(_rank=rank).sort_values("_rank", kind="stable")
    return ordered.groupby("item_id", sort=False)["suggested_label"].first()


def _most_common_rule(flags: pd.DataFrame) -> pd.Series:
    """Per item, the rule most of its flags link to (the first one on a tie)."""
    linked = flags.dropna(subset=["rule_id"]).reset_index(drop=True)
    linked["pos"] = np.arange(len(linked))
    counts = linked.groupby(["item_id", "rule_id"], sort=False).agg(n=("pos", "size"),
                                                                    first=("pos", "min"))
    best = counts.reset_index().sort_values(["n", "first"], ascending=[False, True], kind="stable")
    return best.drop_duplicates("item_id").set_index("item_id")["rule_id"]
