"""Hugging Face ``datasets`` folders: the export's ``hf`` format and reading one back.

:func:`write_dataset_dict` saves the splits as a ``DatasetDict`` with ``save_to_disk``: ``label``
a ``ClassLabel`` over the project's label set (in its order), the sentence pair's ``text_pair``
kept, every other exported column as it is, and the data card as the folder's ``README.md``
with a YAML header (the dataset card the Hub reads). :func:`read_dataset_dict` reads such a
folder (or any ``save_to_disk`` folder of a ``Dataset`` or ``DatasetDict``) into one table with
``split`` and the labels as names, for :func:`curation.io.load_annotations`.

``datasets`` is imported on first use: it takes a second to import. Reading a folder runs no
code from it: ``load_from_disk`` reads JSON metadata and Arrow files only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["HF_FOLDER", "is_dataset_folder", "read_dataset_dict", "write_dataset_dict"]

#: The folder the ``hf`` export format writes inside the export folder.
HF_FOLDER = "hf"
#: Files that mark a ``save_to_disk`` folder (a DatasetDict's, a Dataset's).
_MARKERS = ("dataset_dict.json", "dataset_info.json")


def is_dataset_folder(path: str | Path) -> bool:
    """Whether ``path`` is a folder written by ``save_to_disk`` (or an export folder holding
    the ``hf`` format)."""
    path = Path(path)
    if not path.is_dir():
        return False
    return any((path / m).is_file() for m in _MARKERS) or any(
        (path / HF_FOLDER / m).is_file() for m in _MARKERS)


def _yaml_header(labels: Sequence[str], splits: dict[str, int], pairs: bool, card: dict) -> str:
    """The dataset card's YAML front matter (JSON is YAML: every value is quoted safely)."""
    agreement = card.get("agreement") or {}
    lines = ["---", "task_categories:", "- text-classification",
             "size_categories:", f"- {_size_category(sum(splits.values()))}",
             "tags:", "- curated", "- " + ("sentence-pair" if pairs else "single-text"),
             "dataset_info:", "  features:",
             "  - name: item_id", "    dtype: string", "  - name: text", "    dtype: string"]
    if pairs:
        lines += ["  - name: text_pair", "    dtype: string"]
    lines += ["  - name: label", "    dtype:", "      class_label:", "        names:"]
    lines += [f"          '{i}': {json.dumps(str(x), ensure_ascii=False)}"
              for i, x in enumerate(labels)]
    lines += ["  splits:"]
    for name, n in splits.items():
        lines += [f"  - name: {name}", f"    num_examples: {int(n)}"]
    if agreement.get("verdict"):
        lines += [f"curation_agreement: {json.dumps(str(agreement['verdict']), ensure_ascii=False)}"]
    return "\n".join(lines + ["---", ""])


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def write_dataset_dict(folder: Path, parts: dict[str, pd.DataFrame], *, labels: Sequence[str],
                       card: dict, card_md: str) -> list[str]:
    """Save ``parts`` (split name -> rows) under ``folder / "hf"``; returns the written files'
    paths relative to ``folder`` (sorted)."""
    import datasets

    labels = [str(x) for x in labels]
    target = folder / HF_FOLDER
    built = {}
    for name, frame in parts.items():
        frame = frame.reset_index(drop=True)
        features, data = {}, {}
        for column in frame.columns:
            values = frame[column]
            if column == "label":
                features[column] = datasets.ClassLabel(names=labels)
                data[column] = [labels.index(str(v)) for v in values]
            elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                features[column] = datasets.Value("float64")  # confidence: a number, not text
                data[column] = [None if pd.isna(v) else float(v) for v in values]
            else:
                features[column] = datasets.Value("string")
                data[column] = [None if pd.isna(v) else str(v) for v in values]
        built[name] = datasets.Dataset.from_dict(data, features=datasets.Features(features))
    dataset = datasets.DatasetDict(built)
    dataset.save_to_disk(str(target))
    pairs = any("text_pair" in f.columns for f in parts.values())
    header = _yaml_header(labels, {k: len(v) for k, v in parts.items()}, pairs, card)
    (target / "README.md").write_text(header + card_md, encoding="utf-8")
    return sorted(str(p.relative_to(folder)) for p in target.rglob("*") if p.is_file())


def read_dataset_dict(path: str | Path,
                      check: Callable[[int, int], None] | None = None) -> pd.DataFrame:
    """Every split of a ``save_to_disk`` folder as one frame with a ``split`` column (a lone
    Dataset: split ``train``); ``ClassLabel`` columns hold the label names, not their numbers.
    An export folder that holds the ``hf`` format is read from its ``hf`` folder.

    ``check(rows, columns)`` is called with the rows counted so far (the Arrow files are memory
    mapped: nothing is read into memory yet) before each split is turned into a frame, so a
    loader's limits refuse a huge folder before it is allocated.
    """
    import datasets

    path = Path(path)
    if not any((path / m).is_file() for m in _MARKERS) and (path / HF_FOLDER).is_dir():
        path = path / HF_FOLDER
    loaded: Any = datasets.load_from_disk(str(path))
    parts = loaded.items() if isinstance(loaded, datasets.DatasetDict) else [("train", loaded)]
    frames, rows = [], 0
    for name, split in parts:
        rows += split.num_rows
        if check is not None:
            check(rows, len(split.column_names))
        frame = split.to_pandas()
        for column, feature in split.features.items():
            if isinstance(feature, datasets.ClassLabel):
                frame[column] = [feature.int2str(int(v)) if v is not None and v >= 0 else None
                                 for v in frame[column]]
        frames.append(frame.assign(split=name))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
