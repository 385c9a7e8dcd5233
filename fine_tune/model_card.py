"""A model card (``README.md``) beside every saved model: what it was trained on, how, and what
it scored, so a folder copied elsewhere still says what it is.

:func:`write_model_card` writes the card of a model saved by
:func:`fine_tune.train.train_classifier` (``save_to``): a YAML header the Hugging Face Hub reads
(``library_name``, ``pipeline_tag``, ``base_model``, ``tags``), the labels, the training rows
and settings, and the scores it had. A retrain-and-compare job rewrites the cards of the models
it keeps with the comparison (verdict, accuracy of each side over seeds, the change and its
interval) and the data's facts (where the test set came from, rows, review decisions,
agreement): ``fine_tune.jobs`` passes them as ``compare`` and ``data``. Every value from user data is written as JSON text in
the YAML header and as plain text in the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["CARD_FILE", "write_model_card"]

CARD_FILE = "README.md"


def _yaml_value(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.1%}"


def write_model_card(folder: str | Path, *, labels: Sequence[str], config: Mapping[str, Any],
                     train_rows: int | None = None, pairs: bool = False,
                     scores: Mapping[str, Any] | None = None,
                     side: str | None = None, compare: Mapping[str, Any] | None = None,
                     data: Mapping[str, Any] | None = None) -> Path:
    """Write ``folder/README.md``; returns its path.

    Parameters
    ----------
    labels : the class order (``id2label``).
    config : the training settings (``TrainConfig.to_dict()``).
    train_rows : rows it trained on.
    pairs : whether it reads sentence pairs (``text`` and ``text_pair``).
    scores : e.g. ``{"test_accuracy": 0.9, "best_epoch": 3, "diagnosis": "..."}``.
    side, compare, data : a retrain-and-compare's side (``before``/``after``), its report
        (``CompareReport.to_dict()``) and data facts.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     text = write_model_card(tmp, labels=["neg", "pos"], config={"model": None, "epochs": 3},
    ...                             train_rows=120).read_text()
    >>> text.splitlines()[:4]
    ['---', 'library_name: transformers', 'pipeline_tag: text-classification', 'base_model: "sentence-transformers/all-MiniLM-L6-v2"']
    """
    folder = Path(folder)
    base = config.get("model") or "sentence-transformers/all-MiniLM-L6-v2"
    tags = ["curation", "text-classification"] + (["sentence-pair"] if pairs else [])
    if side:
        tags.append(f"{side}-curation")
    head = ["---", "library_name: transformers", "pipeline_tag: text-classification",
            f"base_model: {_yaml_value(str(base))}", "tags:", *[f"- {t}" for t in tags]]
    if compare:
        head += [f"curation_verdict: {_yaml_value(compare.get('verdict'))}"]
    head += ["---", ""]
    title = f"# Text classifier ({side} curation)" if side else "# Text classifier"
    body = [title, "",
            "Fine-tuned with `curation` (`fine_tune.train_classifier`) on the Hugging Face Trainer.",
            "", "## Labels", "",
            "| id | label |", "|---|---|", *[f"| {i} | {_cell(x)} |" for i, x in enumerate(labels)],
            "", "## Input", "",
            ("Sentence pairs: the tokenizer reads `[CLS] text [SEP] text_pair [SEP]`; pass both "
             "texts (`tokenizer(text, text_pair)`)." if pairs else "One text per example."),
            "", "## Training", ""]
    if train_rows is not None:
        body.append(f"- rows trained on: {train_rows:,}")
    shown = ("epochs", "learning_rate", "batch_size", "gradient_accumulation", "max_length",
             "precision", "class_weights", "freeze_layers", "lora", "early_stopping_patience",
             "seed")
    body += [f"- {k}: {_cell(config[k])}" for k in shown if k in config]
    if scores:
        body += ["", "## Scores", ""]
        body += [f"- {k}: {_cell(v)}" for k, v in scores.items()]
    if compare:
        body += _compare_section(compare, side)
    if data:
        body += ["", "## Data", ""]
        body += [f"- {k.replace('_', ' ')}: {_cell(v)}" for k, v in data.items()]
    body += ["", "## Limitations", "",
             "Scores are on the test set named above; a model is only as good as its labels and "
             "may not carry over to texts unlike its training data. Check it on your own data "
             "before relying on it."]
    path = folder / CARD_FILE
    path.write_text("\n".join(head + body) + "\n", encoding="utf-8")
    return path


def _cell(value: Any) -> str:
    """A value as plain text in a Markdown line (no markup from user data)."""
    if isinstance(value, (dict, list)):
        value = json.dumps(value, ensure_ascii=False)
    text = str(value).replace("\n", " ")
    return "".join("\\" + c if c in "\\`*_{}[]()<>#+-!|" else c for c in text)


def _compare_section(compare: Mapping[str, Any], side: str | None) -> list[str]:
    lines = ["", "## Retrain and compare", "",
             f"- verdict: **{_cell(compare.get('verdict'))}** ({_cell(compare.get('verdict_reason'))})",
             f"- accuracy before curation (mean over seeds): {_pct(compare.get('accuracy_before'))}",
             f"- accuracy after curation (mean over seeds): {_pct(compare.get('accuracy_after'))}"]
    if compare.get("delta") is not None:
        ci = compare.get("delta_ci") or [None, None]
        interval = (f" (95% interval {float(ci[0]):+.1%} to {float(ci[1]):+.1%})"
                    if None not in ci else "")
        lines.append(f"- change: {float(compare['delta']):+.1%}{interval}")
    lines.append(f"- test items: {compare.get('test_size')}; seeds: {_cell(compare.get('seeds'))}")
    if side:
        lines.append(f"- this folder holds the {side} model of the first seed")
    return lines
