"""A tiny BERT classifier built from a config (no download), and a toy data set it can learn.

The model is a randomly initialised 2-layer BERT (hidden size 32) with a WordPiece vocabulary of
the toy words; the toy label is given by two "good" (pos) or two "bad" (neg) words among neutral
ones, so a few epochs learn it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

GOOD = ["good", "great", "fine", "nice", "happy", "love"]
BAD = ["bad", "awful", "poor", "sad", "hate", "ugly"]
NEUTRAL = ["the", "a", "movie", "food", "day", "it", "was", "is"]
HIDDEN, LAYERS = 32, 2


def build_tiny_bert(folder: Path) -> str:
    """Save the tiny BERT and its tokenizer to ``folder``; returns the folder as a string."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + GOOD + BAD + NEUTRAL
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=HIDDEN, num_hidden_layers=LAYERS,
                        num_attention_heads=2, intermediate_size=37, max_position_embeddings=64)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def toy(n: int, seed: int, *, pos_share: float = 0.5) -> pd.DataFrame:
    """Texts of neutral words plus two "good" (label pos) or two "bad" (label neg) words."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "pos" if (i + 0.5) / n < pos_share else "neg"
        words = list(rng.choice(NEUTRAL, rng.integers(1, 6))) + list(
            rng.choice(GOOD if label == "pos" else BAD, 2))
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return pd.DataFrame(rows, columns=["text", "label"]).sample(frac=1, random_state=seed)


def topic(n: int, seed: int, topics: tuple[str, ...] = ("food", "movie", "day"),
          filler: tuple[str, ...] = ("the", "a", "it", "was", "is")) -> pd.DataFrame:
    """A second toy task: one topic word (the label) among filler and two sentiment words."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = topics[i % len(topics)]
        words = list(rng.choice(list(filler), rng.integers(1, 4))) + [label] + list(rng.choice(GOOD + BAD, 2))
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return pd.DataFrame(rows, columns=["text", "label"]).sample(frac=1, random_state=seed)
