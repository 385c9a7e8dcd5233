"""Shared fixtures: the real data sets in ../shared/data, expanded to long frames."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return path


def amazon_long() -> pd.DataFrame:
    """Amazon crowd sentiment: vote counts expanded to anonymous annotator slots s1..s5."""
    raw = pd.read_csv(_need(SHARED / "amazon-crowd-sentiment" / "1k_amazon_reviews_crowdsourced.csv"))
    rows = []
    for r in raw.itertuples():
        votes = ["negative"] * r.is_negative_in + ["not_negative"] * r.is_negative_out
        gold = "negative" if r.is_negative else "not_negative"
        rows += [(str(r.item_id), r.text, f"s{j + 1}", lab, gold) for j, lab in enumerate(votes)]
    return pd.DataFrame(rows, columns=["item_id", "text", "annotator_id", "label", "gold"])


def dynasent_long(name: str = "dynasent-v1.1-round02-dynabench-dev.jsonl") -> pd.DataFrame:
    """DynaSent: one row per (sentence, real worker id)."""
    rows = []
    with open(_need(SHARED / "dynasent" / name), encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            for label, workers in rec["label_distribution"].items():
                rows += [(rec["text_id"], rec["sentence"], w, label) for w in workers]
    return pd.DataFrame(rows, columns=["item_id", "text", "annotator_id", "label"])


@pytest.fixture(scope="session")
def amazon() -> pd.DataFrame:
    return amazon_long()


@pytest.fixture(scope="session")
def dynasent() -> pd.DataFrame:
    return dynasent_long()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A randomly initialised 2-layer BERT and its tokenizer in a folder (see tiny_models.py)."""
    pytest.importorskip("transformers")
    from tiny_models import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))
