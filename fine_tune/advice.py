"""Model-selection advice from the data set's measured traits, each with its reason in words.

:func:`advise` measures a training frame (``text``, ``label``): its size, class balance, text
length in the configured model's tokens against the model's maximum, and its language (script
and English function-word share), and recommends a backbone and settings. Every recommendation
says why, with the number behind it. :meth:`Advice.apply` turns the accepted ones into a
:class:`~fine_tune.config.TrainConfig`. The bundled MiniLM stays the default backbone: another one
is only suggested by name (it must be available locally to be used; nothing is downloaded).

Thresholds (module constants) and where they come from:

- ``TARGET_UPDATES = 400`` optimizer updates, ``MAX_EPOCHS = 20``: fine-tuning needs a number
  of *updates*, not of epochs (Mosbach et al. 2021, "On the stability of fine-tuning BERT":
  failed small-data runs are under-trained, and training longer fixes them), so the epochs are
  raised until about this many updates happen (batch size, accumulation and the 10% held out
  for validation counted), at most ``MAX_EPOCHS``; early stopping keeps the best epoch. Where
  the defaults worked (Financial PhraseBank, 3,864 rows: about 650 updates at 5e-5, 0.84
  accuracy) they already give more; where they failed (the 402-row demo: 3 epochs are about
  70 updates, macro-F1 0.42, while about 230 updates at 1e-4 gave 0.86) they give far fewer.
- ``BUNDLED_RATE = 1e-4`` for the bundled MiniLM (the default 5e-5 is BERT-base's): the LR range
  test on 1,500 Financial PhraseBank sentences suggested 1.7e-4 (a grid's best was 1e-4), 1e-4
  fit the demo, and at 5e-5 a 1,000-row PhraseBank run had barely moved its loss after two
  epochs. A rate belongs to the model, not to the data's size; other models keep 5e-5.
- Patience 3 whenever the epochs are raised (more epochs, a small noisy validation set).
- Early stopping and the best epoch by validation macro-F1, not loss: on noisy validation labels
  the loss rises as the model grows confident and so favours under-trained epochs (measured on
  Financial PhraseBank with 30% of labels wrong: the loss kept epoch 1, validation accuracy 0.34,
  while accuracy and macro-F1 rose for 3 more epochs). Accuracy on noisy labels still ranks
  models as clean accuracy does (Chen et al. 2021, "Robustness of accuracy metric and its
  inspirations in learning with noisy labels"); macro-F1 never favours a majority-only epoch.
- ``SMALL_DATA = 1000`` rows: below it, and below 300, LoRA is advised (advice only).
- ``IMBALANCE = 3.0``: largest / smallest class above which class weights are advised, among the
  classes with at least ``TINY_CLASS`` rows when two or more have that many (a stray label, one
  row in 1,000, made "balanced" weigh that row 250 times).
- ``TINY_CLASS = 30`` examples: too few to learn a class reliably; augment or label more.
- ``LONG_SHARE = 0.10``: when more than this share of texts exceeds 512 tokens a long-document
  model is advised; when it exceeds the configured ``max_length`` only, a longer ``max_length``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Advice", "Recommendation", "advise", "measure"]

SMALL_DATA = 1000
BUNDLED_RATE = 1e-4
TARGET_UPDATES = 400
MAX_EPOCHS = 20
#: Share of the rows a compare run holds out for validation (its default ``validation_size``).
VALIDATION_SHARE = 0.1
IMBALANCE = 3.0
TINY_CLASS = 30
LONG_SHARE = 0.10
LONG_MODEL = "allenai/longformer-base-4096"
MULTILINGUAL_MODEL = "sentence-transformers/paraphrase-multilingual-MiniLM-L12-v2"
_ENGLISH = set("the a an and or of to in on for with is are was were be it this that i you we "
               "my your our not no have has had do does did at by from as but if".split())
_SCRIPTS = {"CJK": r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]", "Cyrillic": r"[\u0400-\u04ff]",
            "Arabic": r"[\u0600-\u06ff]", "Devanagari": r"[\u0900-\u097f]", "Greek": r"[\u0370-\u03ff]",
            "Hebrew": r"[\u0590-\u05ff]", "Thai": r"[\u0e00-\u0e7f]"}


@dataclass
class Recommendation:
    """One piece of advice: a setting (or None for advice only), its value, and why."""

    setting: str | None
    value: Any
    reason: str


@dataclass
class Advice:
    """The measured traits and the recommendations, in order of importance."""

    traits: dict[str, Any]
    recommendations: list[Recommendation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"traits": self.traits, "recommendations": [dataclasses.asdict(r) for r in self.recommendations]}

    def to_markdown(self) -> str:
        t = self.traits
        lines = [f"**{t['n_rows']:,} rows, {t['n_labels']} labels** (largest/smallest class "
                 f"{t['imbalance']:.1f}), median {t['tokens_median']:.0f} tokens, 95th percentile "
                 f"{t['tokens_p95']:.0f} ({t['share_over_max_length']:.0%} over max_length "
                 f"{t['max_length']}, {t['share_over_512']:.0%} over 512), language: {t['language']}.", ""]
        for r in self.recommendations:
            what = f"`{r.setting} = {r.value}`" if r.setting else "Note"
            lines.append(f"- {what}: {r.reason}")
        return "\n".join(lines)

    def apply(self, config: Any = None, *, accept: set[str] | None = None) -> Any:
        """A TrainConfig with the accepted recommendations (default: all that are settings).

        ``model`` is only taken when it names a local folder (nothing is downloaded).
        """
        from pathlib import Path

        from fine_tune.config import ClassWeights, TrainConfig

        config = config if config is not None else TrainConfig()
        changes: dict[str, Any] = {}
        for r in self.recommendations:
            if r.setting is None or (accept is not None and r.setting not in accept):
                continue
            if r.setting == "model" and not Path(str(r.value)).expanduser().is_dir():
                continue
            changes[r.setting] = ClassWeights(r.value) if r.setting == "class_weights" else r.value
        return dataclasses.replace(config, **changes)


def _language(texts: list[str]) -> str:
    sample = " ".join(texts[:2000])
    letters = re.findall(r"[^\W\d_]", sample)
    if not letters:
        return "unknown (no letters)"
    for script, pattern in _SCRIPTS.items():
        if len(re.findall(pattern, sample)) > 0.3 * len(letters):
            return f"non-Latin script ({script})"
    words = re.findall(r"[a-zA-Z']+", sample.lower())
    share = sum(w in _ENGLISH for w in words) / max(len(words), 1)
    return "English" if share >= 0.12 else f"Latin script, probably not English ({share:.0%} English function words)"


def _updates_per_epoch(n_rows: int, config: Any) -> int:
    train_rows = max(1, round(n_rows * (1 - VALIDATION_SHARE)))
    return max(1, math.ceil(train_rows / (config.batch_size * config.gradient_accumulation)))


def _epochs_for_updates(n_rows: int, config: Any) -> int:
    """Epochs that give about :data:`TARGET_UPDATES` updates, at most :data:`MAX_EPOCHS`.

    >>> from fine_tune.config import TrainConfig
    >>> _epochs_for_updates(402, TrainConfig()), _epochs_for_updates(1000, TrainConfig())
    (18, 8)
    >>> _epochs_for_updates(5000, TrainConfig())
    3
    """
    need = math.ceil(TARGET_UPDATES / _updates_per_epoch(n_rows, config))
    return int(min(MAX_EPOCHS, max(need, math.ceil(config.epochs))))


def measure(frame: pd.DataFrame, *, config: Any = None, tokenizer: Any = None) -> dict[str, Any]:
    """The traits :func:`advise` reasons from (token lengths with the config's tokenizer)."""
    from fine_tune.config import TrainConfig

    config = config if config is not None else TrainConfig()
    for col in ("text", "label"):
        if col not in frame.columns:
            raise ValueError(f"the data set lacks column {col!r} (it has {list(frame.columns)}); "
                             "advice needs text and label.")
    if frame.empty:
        raise ValueError("the data set has no rows; advice needs at least one labelled text.")
    if tokenizer is None:
        from fine_tune._model import load_tokenizer

        tokenizer = load_tokenizer(config)
    texts = frame["text"].astype(str).tolist()
    # a pair's length is both texts', as trained
    pair = (frame["text_pair"].astype(str).tolist(),) if "text_pair" in frame.columns else ()
    lengths = np.asarray([len(ids) for ids in
                          tokenizer(texts, *pair, truncation=False)["input_ids"]])
    counts = frame["label"].astype(str).value_counts()
    return {
        "n_rows": int(len(frame)), "n_labels": int(len(counts)),
        "class_counts": {k: int(v) for k, v in counts.items()},
        "imbalance": float(counts.max() / counts.min()),
        "tokens_median": float(np.median(lengths)), "tokens_p95": float(np.percentile(lengths, 95)),
        "tokens_max": int(lengths.max()), "max_length": int(config.max_length),
        "share_over_max_length": float(np.mean(lengths > config.max_length)),
        "share_over_512": float(np.mean(lengths > 512)), "language": _language(texts),
        "model": config.model or "bundled all-MiniLM-L6-v2",
    }


def advise(frame: pd.DataFrame, *, config: Any = None, tokenizer: Any = None) -> Advice:
    """Recommend a backbone and settings for ``frame`` (``text``, ``label``), with reasons.

    Examples
    --------
    >>> class Tok:  # one token per word
    ...     def __call__(self, texts, truncation=False):
    ...         return {"input_ids": [t.split() for t in texts]}
    >>> frame = pd.DataFrame({"text": ["the card is lost"] * 90 + ["thanks for the help"] * 10,
    ...                       "label": ["fraud"] * 90 + ["praise"] * 10})
    >>> [r.setting for r in advise(frame, tokenizer=Tok()).recommendations]
    ['epochs', 'learning_rate', 'early_stopping_metric', 'early_stopping_patience', 'lora', 'class_weights', None, 'max_length']
    """
    from fine_tune.config import TrainConfig

    config = config if config is not None else TrainConfig()
    t = measure(frame, config=config, tokenizer=tokenizer)
    recs: list[Recommendation] = []
    if not t["language"].startswith("English"):
        recs.append(Recommendation("model", MULTILINGUAL_MODEL,
                                   f"the texts look {t['language']}, and the bundled MiniLM was trained "
                                   "on English: a multilingual model of the same size reads them "
                                   "(put it in a local folder and give its path)."))
    if t["share_over_512"] > LONG_SHARE:
        recs.append(Recommendation("model", LONG_MODEL,
                                   f"{t['share_over_512']:.0%} of the texts are longer than 512 tokens "
                                   "(the limit of BERT-size models, MiniLM included): a long-document "
                                   "model reads them whole instead of their first 512 tokens."))
    epochs = _epochs_for_updates(t["n_rows"], config)
    if epochs > config.epochs:
        per_epoch = _updates_per_epoch(t["n_rows"], config)
        recs.append(Recommendation("epochs", epochs,
                                   f"{t['n_rows']:,} rows give {per_epoch} optimizer updates an epoch "
                                   f"(batch {config.batch_size * config.gradient_accumulation}): "
                                   f"{config.epochs:g} epochs are {per_epoch * config.epochs:.0f} updates, "
                                   f"too few to learn the smaller classes; {epochs} epochs give about "
                                   f"{per_epoch * epochs} (the aim is {TARGET_UPDATES}), and early "
                                   "stopping keeps the best epoch."))
    if config.model is None and config.learning_rate < BUNDLED_RATE:
        recs.append(Recommendation("learning_rate", BUNDLED_RATE,
                                   "the bundled MiniLM (6 layers) learns slowly at the BERT-base default "
                                   "5e-5: measured, the LR range test on Financial PhraseBank suggests "
                                   "1.7e-4 and a grid's best was 1e-4, and 1e-4 fit the demo; "
                                   "`python -m fine_tune lr-find` checks it on your data."))
    if config.early_stopping_metric == "eval_loss":
        recs.append(Recommendation("early_stopping_metric", "eval_macro_f1",
                                   "labels that still hold mistakes (the uncurated side always does) "
                                   "make the validation loss rise as soon as the model grows sure of "
                                   "itself, so it picks an under-trained epoch: on 1,000 PhraseBank rows "
                                   "with 30% wrong labels it kept epoch 1 (validation accuracy 0.34) "
                                   "while accuracy and macro-F1 kept rising; accuracy on noisy labels "
                                   "still ranks models as clean accuracy does (Chen et al. 2021), and "
                                   "macro-F1 never prefers an epoch that answers only the largest class."))
    if epochs > config.epochs and config.early_stopping_patience < 3:
        recs.append(Recommendation("early_stopping_patience", 3,
                                   "more epochs need a little more patience before stopping: on a small, "
                                   "noisy validation set the loss wobbles for an epoch or two."))
    if t["n_rows"] < SMALL_DATA:
        if t["n_rows"] < 300:
            recs.append(Recommendation("lora", True,
                                       f"with {t['n_rows']} rows, training LoRA adapters (a few hundred "
                                       "thousand parameters) overfits less than the whole model."))
    tiny = sorted(k for k, v in t["class_counts"].items() if v < TINY_CLASS)
    # Class weights help a model learn a minority class; a class of a few rows cannot be learnt
    # reliably (the note below says so), and its inverse-frequency weight would count each of its
    # rows hundreds of times: one stray label in 1,000 rows weighed 250x. So the imbalance that
    # asks for weights is the one among the classes with TINY_CLASS rows or more, when there are
    # two such classes (else every class is small, and all of them are weighed).
    learnable = {k: v for k, v in t["class_counts"].items() if v >= TINY_CLASS}
    tiny_left_out = len(learnable) >= 2
    counted = learnable if tiny_left_out else t["class_counts"]
    ratio = max(counted.values()) / min(counted.values())
    if ratio > IMBALANCE:
        small = min(counted, key=counted.get)
        recs.append(Recommendation("class_weights", "balanced",
                                   f"the largest class has {ratio:.1f}x the rows of the smallest "
                                   f"({small!r}): weighting the loss by inverse frequency keeps the model "
                                   "from ignoring it."))
    if tiny:
        left_out = ""
        if tiny_left_out and t["imbalance"] > IMBALANCE:
            # the balanced weight (fine_tune._inputs.balanced_weights) of the smallest class
            heaviest = t["n_rows"] / (t["n_labels"] * min(t["class_counts"].values()))
            left_out = (f"; they are left out of the class-weight advice (the other classes' "
                        f"largest/smallest ratio is {ratio:.1f}), since an inverse-frequency "
                        f"weight would count each of their rows up to {heaviest:.0f} times")
        recs.append(Recommendation(None, None,
                                   f"class(es) {tiny} have fewer than {TINY_CLASS} examples: label more or "
                                   "augment them (Augment page) before expecting the model to learn them, "
                                   f"or drop them if they are stray labels{left_out}."))
    p95 = t["tokens_p95"]
    if t["share_over_max_length"] > LONG_SHARE and t["share_over_512"] <= LONG_SHARE:
        new = int(min(512, 32 * math.ceil(p95 / 32)))
        recs.append(Recommendation("max_length", new,
                                   f"{t['share_over_max_length']:.0%} of the texts are longer than "
                                   f"max_length {t['max_length']} and would be cut; {new} covers 95% of them."))
    elif p95 < t["max_length"] / 2:
        new = int(max(32, 32 * math.ceil(p95 / 32)))
        recs.append(Recommendation("max_length", new,
                                   f"95% of the texts have at most {p95:.0f} tokens: max_length {new} "
                                   f"loses nothing and is faster than {t['max_length']} (dynamic "
                                   "padding already helps; this caps the longest batches)."))
    if not recs:
        recs.append(Recommendation(None, None, "the defaults fit this data set: "
                                   f"{t['n_rows']:,} rows, balanced enough, texts within max_length."))
    return Advice(t, recs)
