"""Checking the text/label frames and turning them into tokenized torch datasets."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from curation.messages import format_list, suggest
from curation.schema import TEXT_PAIR, has_pairs, text_columns

__all__ = ["EncodedDataset", "balanced_weights", "check_frames", "encode", "label_order"]

REQUIRED = ("text", "label")


def _check_frame(frame: Any, name: str) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"{name} must be a pandas DataFrame with columns 'text' and 'label', "
                         f"got {type(frame).__name__}.")
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        hints = "".join(suggest(c, list(frame.columns)) for c in missing)
        raise ValueError(f"{name} lacks column(s) {format_list(repr(c) for c in missing)}{hints}; "
                         f"it has {format_list(repr(c) for c in frame.columns)}. Rename the "
                         "columns to 'text' and 'label'.")
    if name == "train" and frame.empty:
        raise ValueError("train has no rows; give at least one row per label.")
    for column in text_columns(frame):
        text_ok = frame[column].map(lambda t: isinstance(t, str) and bool(t.strip()))
        if not text_ok.all():
            bad = frame.index[~text_ok.to_numpy()]
            raise ValueError(f"{name} has empty or non-text {column!r} in rows {format_list(bad)} "
                             "(index labels); drop or fill those rows.")
    if frame["label"].isna().any():
        bad = frame.index[frame["label"].isna().to_numpy()]
        raise ValueError(f"{name} has no label in rows {format_list(bad)} (index labels); drop "
                         "those rows or label them.")
    return frame


def label_order(train: pd.DataFrame, labels: Sequence[str] | None) -> list[str]:
    """The class order: ``labels`` as given, else the training labels sorted."""
    seen = sorted(train["label"].astype(str).unique())
    if labels is None:
        order = seen
    else:
        order = [str(x) for x in labels]
        if len(set(order)) != len(order):
            raise ValueError(f"labels has duplicates: {order!r}; give each class once.")
        extra = [x for x in seen if x not in order]
        if extra:
            raise ValueError(f"train has labels {format_list(map(repr, extra))} that are not in "
                             f"labels={order!r}; add them to labels or drop those rows.")
    if len(order) < 2:
        raise ValueError(f"a classifier needs at least 2 labels; got {order!r}. Add rows of "
                         "another class or pass labels=[...] with every class.")
    return order


def check_frames(train: Any, validation: Any, test: Any,
                 labels: Sequence[str] | None) -> list[str]:
    """Validate the frames at the public boundary; return the class order.

    Every validation and test label must be a training label (or one of ``labels``).
    """
    _check_frame(train, "train")
    order = label_order(train, labels)
    known = set(order)
    for name, frame in (("validation", validation), ("test", test)):
        if frame is None:
            continue
        _check_frame(frame, name)
        unknown = ~frame["label"].astype(str).isin(known).to_numpy()
        if unknown.any():
            rows = frame.index[unknown]
            values = sorted(frame["label"].astype(str)[unknown].unique())
            raise ValueError(
                f"{name} rows {format_list(rows)} (index labels) have labels "
                f"{format_list(map(repr, values))} that the model is not trained on "
                f"(known: {format_list(map(repr, order), limit=20)}); drop those rows, or pass "
                "labels=[...] with every class.")
    return order


def balanced_weights(codes: np.ndarray, n_labels: int) -> np.ndarray:
    """Class weights ``n / (k * n_c)``; classes without rows get weight 1.

    Examples
    --------
    >>> balanced_weights(np.array([0, 0, 0, 1]), 2).tolist()
    [0.6666666666666666, 2.0]
    """
    counts = np.bincount(codes, minlength=n_labels).astype(float)
    weights = np.ones(n_labels)
    present = counts > 0
    weights[present] = len(codes) / (present.sum() * counts[present])
    return weights


class EncodedDataset(torch.utils.data.Dataset):
    """A map-style torch dataset of tokenized rows (lists of ids, no padding).

    Each item is a dict with the tokenizer's keys (``input_ids``, ``attention_mask``, ...)
    and ``labels``; ``LengthGroupedSampler`` reads ``len(item["input_ids"])``.
    """

    def __init__(self, features: list[dict[str, Any]]) -> None:
        self.features = features

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return dict(self.features[i])


def encode(frame: pd.DataFrame, tokenizer: Any, order: list[str], max_length: int, *,
           sort_by_length: bool = False) -> tuple[EncodedDataset, np.ndarray]:
    """Tokenize ``frame`` (truncated to ``max_length``, not padded); a frame with ``text_pair``
    is tokenized as sentence pairs.

    Returns the dataset and the row order used: ``dataset[j]`` is ``frame.iloc[perm[j]]``.
    With ``sort_by_length`` rows go longest first, so evaluation batches pad little.
    """
    pair = (frame[TEXT_PAIR].tolist(),) if has_pairs(frame) else ()
    # a pair is one input, [CLS] text [SEP] text_pair [SEP]; truncation takes from the longer side
    enc = tokenizer(frame["text"].tolist(), *pair, truncation=True, max_length=max_length)
    codes = frame["label"].astype(str).map({name: i for i, name in enumerate(order)}).to_numpy()
    lengths = np.array([len(ids) for ids in enc["input_ids"]])
    perm = np.argsort(-lengths, kind="stable") if sort_by_length else np.arange(len(frame))
    keys = list(enc.keys())
    features = [{**{k: enc[k][i] for k in keys}, "labels": int(codes[i])} for i in perm]
    return EncodedDataset(features), perm
