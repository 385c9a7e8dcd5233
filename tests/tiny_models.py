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
    return _save_tiny_bert(folder, GOOD + BAD + NEUTRAL)


def _save_tiny_bert(folder: Path, words: list[str], **tokenizer_options) -> str:
    """A randomly initialised tiny BERT classifier with a WordPiece vocabulary of ``words``."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list(words)
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True,
                                  **tokenizer_options)
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


def graded(n: int, seed: int, *, words: int = 5, strength: float = 0.75) -> pd.DataFrame:
    """A toy task learned gradually: each of ``words`` words is weak evidence of the label.

    A "pos" text draws each word from GOOD with probability ``strength``, else from BAD (and
    the other way round for "neg"), so the best possible accuracy is the chance that most words
    point the right way (0.90 for 5 words at 0.75) and runs of different seeds end at different
    accuracies: the training noise a verdict has to see past.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        own, other = (GOOD, BAD) if label == "pos" else (BAD, GOOD)
        picks = [rng.choice(own) if rng.random() < strength else rng.choice(other) for _ in range(words)]
        rows.append((" ".join(picks), label))
    return pd.DataFrame(rows, columns=["text", "label"]).sample(frac=1, random_state=seed)


def calibration_case(n_train: int = 120, n_test: int = 200) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training and test frames of :func:`graded`, no test text in training."""
    from curation.splits import normalise_text

    train = graded(n_train, 0).reset_index(drop=True)
    test = graded(3 * n_test, 1)
    test = test[~test["text"].map(normalise_text).isin(set(train["text"].map(normalise_text)))]
    return train, test.drop_duplicates("text").head(n_test).reset_index(drop=True)


def calibration_config(model: str):
    """The training recipe of the calibration test and benchmark (a TrainConfig)."""
    from fine_tune.config import TrainConfig

    return TrainConfig(model=model, epochs=3, learning_rate=3e-3, batch_size=8, max_length=16,
                       warmup_ratio=0.0, early_stopping_patience=0, save_checkpoints=False)


class AfterSeedsDiffer:
    """Wraps a trainer so the after side of a comparison trains with other seeds than before.

    ``compare`` trains before, then after, for each seed; with the same data on both sides and
    the same seed the two runs would be identical. Adding ``offset`` to every second call's seed
    gives two independent sets of runs of one recipe: a comparison where nothing changed.
    """

    def __init__(self, trainer, offset: int = 100_000) -> None:
        self.trainer, self.offset, self.calls = trainer, offset, 0
        self.predictions: list[tuple[str, int, np.ndarray]] = []

    def __call__(self, train, validation, test, *, config, **kwargs):
        import dataclasses

        self.calls += 1
        side = "before" if self.calls % 2 else "after"
        if side == "after":
            config = dataclasses.replace(config, seed=config.seed + self.offset)
        result = self.trainer(train, validation, test, config=config, **kwargs)
        if getattr(result, "test_pred", None) is not None:
            self.predictions.append((side, config.seed, np.asarray(result.test_pred)))
        return result


def same_data_comparison(r: int, model: str) -> dict:
    """Comparison ``r`` of the calibration test: both sides the same data, the after side other
    seeds (``3r .. 3r+2``); what the verdict and the item-only bootstrap said of it."""
    from fine_tune.compare import compare
    from fine_tune.train import train_classifier

    train, test = calibration_case()
    report = compare(train, train.copy(), test, config=calibration_config(model),
                     seeds=range(3 * r, 3 * r + 3), trainer=AfterSeedsDiffer(train_classifier),
                     n_boot=300, validation_size=0.0)
    low, high = (report.item_bootstrap or {}).get("ci", (0.0, 0.0))
    return {"verdict": report.verdict, "spread": report.before.accuracy["std"],
            "learned": all(report.learning[side]["learned"] for side in ("before", "after")),
            "item_only_claim": bool(low > 0 or high < 0)}


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def same_data_comparisons(repeats: int, model: str, *, processes: int | None = None) -> list[dict]:
    """:func:`same_data_comparison` for ``r = 0 .. repeats-1``, in ``processes`` spawned
    processes of one torch thread each (default: one per core, at most 4): a tiny model gains
    nothing from a second thread, and the comparisons are independent."""
    import os
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    processes = processes or max(1, min(4, os.cpu_count() or 1))
    with ProcessPoolExecutor(processes, mp_context=get_context("spawn"),
                             initializer=_one_thread) as pool:
        return list(pool.map(same_data_comparison, range(repeats), [model] * repeats))


# A toy Chinese sentence-pair (NLI) task: the hypothesis repeats the premise (entailment), negates
# it with 不 (contradiction) or swaps the object for another (neutral), so only the pair decides.
ZH_SUBJECTS = ["我", "他", "她", "我们", "老师", "医生"]
ZH_VERBS = ["喜欢", "需要", "看见", "买了"]
ZH_OBJECTS = ["猫", "狗", "书", "药", "车", "茶"]
ZH_LABELS = ("entailment", "neutral", "contradiction")


def build_tiny_chinese_bert(folder: Path) -> str:
    """A tiny BERT whose vocabulary is the toy's characters (BERT splits Han text into them)."""
    chars = sorted({c for w in ZH_SUBJECTS + ZH_VERBS + ZH_OBJECTS + ["不", "。", "，"] for c in w})
    return _save_tiny_bert(folder, chars, tokenize_chinese_chars=True)


def chinese_nli(n: int, seed: int) -> pd.DataFrame:
    """``premise, hypothesis, label`` rows of the toy (labels in turn; premises repeat)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        s, v, o = rng.choice(ZH_SUBJECTS), rng.choice(ZH_VERBS), rng.choice(ZH_OBJECTS)
        premise = f"{s}{v}{o}。"
        label = ZH_LABELS[i % 3]
        if label == "entailment":
            hypothesis = premise
        elif label == "contradiction":
            hypothesis = f"{s}不{v}{o}。"
        else:
            hypothesis = f"{s}{v}{rng.choice([x for x in ZH_OBJECTS if x != o])}。"
        rows.append((premise, hypothesis, label))
    return pd.DataFrame(rows, columns=["premise", "hypothesis", "label"])


def build_tiny_sentence_model(folder: Path) -> str:
    """A tiny sentence-transformers model (the tiny Chinese BERT, mean pooling) saved to
    ``folder``: a local model to pass as ``--model`` where no multilingual model can be
    downloaded."""
    from sentence_transformers import SentenceTransformer, models

    bert = folder / "bert"
    bert.mkdir(parents=True, exist_ok=True)
    build_tiny_chinese_bert(bert)
    word = models.Transformer(str(bert), max_seq_length=64)
    pooling = models.Pooling(word.get_word_embedding_dimension(), pooling_mode="mean")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(folder / "st"))
    return str(folder / "st")
