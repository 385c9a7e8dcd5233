"""The three data sets of retrain-and-compare, built from an annotation frame or a project.

- **before**: every item with its raw majority-vote label (a tie goes to the first tied label in
  the label set's order, as a naive pipeline would do);
- **after**: the curated dataset (review decisions applied, dropped and ambiguous items left
  out) plus accepted augmented rows, which are training rows only;
- **test**: the same for both sides: items with a gold label, judged on gold; where the data
  has no gold, a seeded, stratified share of the adjudicated items (those a reviewer decided),
  judged on their curated label.

Test items never train either side: they, every training text equal to a test text once
normalised, and augmented rows made from them are removed from both training sets.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from curation.aggregation import MajorityVote
from curation.curate import curate
from curation.schema import TEXT_PAIR, has_pairs, text_columns
from curation.splits import text_keys

__all__ = ["CompareData", "compare_data", "project_compare_data"]

logger = logging.getLogger(__name__)


@dataclass
class CompareData:
    """Training frames for each side, the shared test frame, and how they were made."""

    before: pd.DataFrame
    after: pd.DataFrame
    test: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)


def _raw_majority(frame: pd.DataFrame, label_set) -> pd.Series:
    mv = MajorityVote(labels=label_set).fit(frame)
    labels = mv.labels_.copy()
    tied = labels.isna()
    labels[tied] = mv.ties_[tied].map(lambda t: t[0])
    return labels


def _test_items(everything: pd.DataFrame, decisions: pd.DataFrame | None, *,
                test_share: float, seed: int) -> tuple[pd.DataFrame, str]:
    gold = everything[everything["gold"].notna()] if "gold" in everything else everything.iloc[:0]
    texts = ["item_id", *text_columns(everything)]
    if len(gold):
        return gold[texts].assign(label=gold["gold"].astype(str)), "gold"
    decided = set(decisions["item_id"]) if decisions is not None and len(decisions) else set()
    pool = everything[everything["item_id"].isin(decided) & everything["status"].isin(
        ["relabelled", "confirmed"])]
    if len(pool) < 10:
        raise ValueError(
            f"no gold labels and only {len(pool)} adjudicated items (reviewed and confirmed or "
            "relabelled): a fair test set needs gold labels or at least 10 adjudicated items. "
            "Review more flagged items, or import a file with a gold column.")
    counts = pool["label"].value_counts()
    stratify = pool["label"] if counts.min() >= 2 else None
    test, _ = train_test_split(pool, train_size=test_share, stratify=stratify, random_state=seed)
    return test[[*texts, "label"]], "adjudicated"


def compare_data(frame: pd.DataFrame, *, labels: Sequence[str] | None = None,
                 decisions: pd.DataFrame | None = None,
                 augmentations: pd.DataFrame | None = None, test_share: float = 0.5,
                 seed: int = 0) -> CompareData:
    """Before / after / test frames (columns ``item_id, text, label``; after also
    ``augmented_from``) from a long annotation frame, its decisions and augmentations.

    ``test_share`` is the share of adjudicated items held out when there is no gold.
    """
    if not 0 < test_share < 1:
        raise ValueError(f"test_share must be in (0, 1); got {test_share!r}.")
    label_set = list(labels) if labels is not None else None
    everything = curate(frame, decisions, labels=label_set, include_dropped=True)
    test, source = _test_items(everything, decisions, test_share=test_share, seed=seed)
    test_keys = set(text_keys(test))
    held_out = set(test["item_id"])

    def leaks(rows: pd.DataFrame) -> pd.Series:
        return rows["item_id"].isin(held_out) | text_keys(rows).isin(test_keys)

    raw = _raw_majority(frame, label_set)
    first = frame.drop_duplicates("item_id").set_index("item_id")
    before = pd.DataFrame({"item_id": raw.index, "text": first["text"].reindex(raw.index).to_numpy()})
    if has_pairs(frame):
        before[TEXT_PAIR] = first[TEXT_PAIR].reindex(raw.index).to_numpy()
    before["label"] = raw.to_numpy()
    columns = ["item_id", *text_columns(frame), "label"]
    before = before[~leaks(before)].reset_index(drop=True)
    after = everything[~everything["status"].isin(["dropped", "ambiguous"])]
    after = after[columns].assign(augmented_from=None)
    after = after[~leaks(after)]
    n_aug, aug_left_out = 0, {}
    if augmentations is not None and len(augmentations):
        from curation.workspace import augmented_rows

        extra, _, facts = augmented_rows(augmentations, everything)
        in_test = (extra["augmented_from"].isin(held_out)
                   | text_keys(extra).isin(test_keys))
        source_out = ~in_test & ~extra["augmented_from"].isin(set(after["item_id"]))
        extra = extra[~in_test & ~source_out]
        n_aug = len(extra)
        # why a saved row is not trained on: each reason counted, so the pages can say it
        aug_left_out = {"source dropped or ambiguous": facts["left_out_source_dropped"],
                        "source relabelled since": facts["left_out_label_changed"],
                        "source or text in the test set": int(in_test.sum()),
                        "source leaks into the test set": int(source_out.sum())}
        aug_left_out = {k: v for k, v in aug_left_out.items() if v}
        after = pd.concat([after, extra[[*columns, "augmented_from"]]], ignore_index=True)
    after = after.reset_index(drop=True)
    info = {"test_source": source, "test_items": len(test), "before_rows": len(before),
            "after_rows": len(after), "augmented_rows": n_aug,
            "augmented_saved": 0 if augmentations is None else len(augmentations),
            "augmented_left_out": aug_left_out,
            "relabelled": int((everything["status"] == "relabelled").sum()),
            "dropped": int((everything["status"] == "dropped").sum()),
            "ambiguous": int((everything["status"] == "ambiguous").sum()),
            "seed": seed}
    logger.info("compare data: %s", info)
    return CompareData(before=before, after=after, test=test.reset_index(drop=True), info=info)


def project_compare_data(project, *, test_share: float = 0.5, seed: int = 0) -> CompareData:
    """:func:`compare_data` for a :class:`curation.store.Project`."""
    frame = project.annotations()
    if frame.empty:
        raise ValueError("the project has no annotations; import a file first.")
    return compare_data(frame, labels=project.label_set(), decisions=project.latest_decisions(),
                        augmentations=project.augmentations(), test_share=test_share, seed=seed)
