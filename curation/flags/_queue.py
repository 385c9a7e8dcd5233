"""Combine the flags of every flagger into one review order."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

__all__ = ["KIND_WEIGHTS", "POOL_EPS", "SUGGESTION_ORDER", "REST_REASON", "by_priority", "pool_doubt",
           "review_queue", "unflagged_order"]

#: How much each kind's score counts as evidence that the current label is wrong (unknown kinds
#: count 1.0). Where the continuous doubt signs are given they stand in for the first four. A
#: boundary case is unclear, not wrong: it stays in the queue (with its rule) but adds nothing
#: to the priority; measured, its 0.3 used to push unclear-but-right items ahead of wrong ones.
KIND_WEIGHTS: dict[str, float] = {
    "crowdlab": 1.0, "label_issue": 1.0, "low_confidence": 1.0, "disagreement": 1.0,
    "near_duplicate": 1.0, "boundary": 0.0,
}
#: Whose suggested label the queue shows first when several flaggers suggest one.
SUGGESTION_ORDER = ("crowdlab", "low_confidence", "label_issue", "disagreement")

#: Flag kinds whose meaning the continuous ``doubt`` signs carry (so they are not counted twice).
DOUBT_KINDS = ("disagreement", "low_confidence", "label_issue", "crowdlab")
QUEUE_COLUMNS = ("item_id", "priority", "kinds", "n_flags", "reason", "suggested_label", "rule_id")


#: Signs are clipped to [POOL_EPS, 1 - POOL_EPS] before their log-odds are taken: no sign is
#: ever certain, so one sign alone moves the pooled log-odds by at most logit(1 - POOL_EPS) / n.
POOL_EPS = 1e-3


def pool_doubt(doubt: pd.DataFrame) -> pd.Series:
    """Per item, the doubt signs pooled into one: the mean of their log-odds, back to [0, 1].

    A logarithmic opinion pool with equal weights (Genest & Zidek 1986): each sign is an
    estimate of the same event ("this label is wrong"), and log-odds are the scale on which
    evidence adds, so a sign's confident extremes count (Dawid-Skene's posterior on the items
    of an annotator it has seen err the same way) while averaging, not summing, keeps
    overlapping signs from counting their shared evidence several times, and the clip at
    :data:`POOL_EPS` keeps one over-confident sign from deciding alone. A linear pool (the
    plain mean, used until 2026-11-30) is instead dominated by the signs with a high base rate
    (the model's doubt is rarely below 0.1) and washes such extremes out. Missing signs
    (NaN) are left out; an item with none pools to 0.

    >>> doubt = pd.DataFrame({"votes": [1.0, 0.1, float("nan")], "model": [0.1, 0.1, float("nan")],
    ...                       "other": [0.1, 0.1, float("nan")], "more": [0.1, 0.1, float("nan")]})
    >>> pool_doubt(doubt).round(3).tolist()   # one certain sign against three: about even
    [0.52, 0.1, 0.0]
    """
    from scipy.special import expit, logit

    signs = doubt.astype(float).clip(POOL_EPS, 1 - POOL_EPS)
    return pd.Series(expit(logit(signs).mean(axis=1, skipna=True)), index=doubt.index).fillna(0.0)


def by_priority(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows most urgent first, equal priorities by item id (the order a reviewer sees)."""
    return frame.sort_values(["priority", "item_id"], ascending=[False, True],
                             kind="stable").reset_index(drop=True)


def review_queue(flags: pd.DataFrame, *, doubt: pd.DataFrame | None = None,
                 weights: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per flagged item, most urgent first.

    ``priority = 1 - (1 - d) * prod_k (1 - w_k * s_k)``: ``d`` is the item's
    continuous doubt signs pooled by :func:`pool_doubt` when ``doubt`` is given
    (one row per item, e.g. :meth:`FlagContext.doubt`; a sign that is NaN is
    left out), and the product runs over its other flags (near-duplicates) with
    ``w_k`` from :data:`KIND_WEIGHTS`; without ``doubt`` every flag enters the
    product.

    The doubt signs (minority share, Dawid-Skene, the model, CROWDLAB) are
    estimates of one thing, "this label is wrong", from overlapping evidence
    (CROWDLAB already weighs the votes and the model), so they are pooled, not
    multiplied as independent evidence: with a noisy-OR one over-confident sign
    (Dawid-Skene's posterior is often 1.00 when it parts from the majority) put
    an item at priority 1.0 by itself. A near-duplicate with another label is
    separate evidence and joins by a noisy-OR. Ties break by item id.

    >>> flags = pd.DataFrame({"item_id": ["a", "a", "b"], "kind": ["disagreement", "near_duplicate", "boundary"],
    ...                       "score": [0.4, 0.5, 0.9], "reason": ["r1", "r2", "r3"],
    ...                       "suggested_label": ["x", None, None], "rule_id": [None, "R1", "R2"]})
    >>> review_queue(flags)[["item_id", "priority", "kinds"]].values.tolist()
    [['a', 0.7, 'disagreement, near_duplicate'], ['b', 0.0, 'boundary']]
    >>> doubt = pd.DataFrame({"minority": [0.4, 0.0], "crowdlab": [0.2, float("nan")]}, index=["a", "b"])
    >>> review_queue(flags, doubt=doubt)[["item_id", "priority"]].values.tolist()
    [['a', 0.644949], ['b', 0.001]]
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
        pooled = pool_doubt(doubt.reindex(keep_log.index))
        keep_log = keep_log + np.log1p(-pooled.clip(0, 1 - 1e-12))
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
    return by_priority(queue)[list(QUEUE_COLUMNS)]


#: The reason shown for an item no flagger raised, when the queue goes on past the flagged ones.
REST_REASON = ("No flagger raised this item; it comes after the flagged ones, ranked by the "
               "pooled doubt of the votes, the model and CROWDLAB.")


def unflagged_order(doubt: pd.DataFrame, flagged: pd.Index | list) -> pd.DataFrame:
    """The items no flagger raised, ``item_id, priority`` (their pooled doubt), most doubtful first.

    A reviewer who has finished the flagged items goes on with these: a wrong label that every
    annotator gave (no vote-based sign can see it) may still have the model's and CROWDLAB's
    doubt.

    >>> doubt = pd.DataFrame({"minority": [0.0, 0.0, 0.5], "model": [0.6, 0.2, 0.9]}, index=["a", "b", "c"])
    >>> unflagged_order(doubt, ["c"]).values.tolist()
    [['a', 0.037304], ['b', 0.015573]]
    """
    rest = doubt[~doubt.index.isin(list(flagged))]
    pooled = pool_doubt(rest).clip(0, 1).round(6)
    out = pd.DataFrame({"item_id": rest.index.astype(str), "priority": pooled.to_numpy()})
    return by_priority(out)


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
