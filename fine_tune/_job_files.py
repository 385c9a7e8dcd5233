"""A job folder's files, shared by the local runner (:mod:`fine_tune.jobs`) and the queue's
workers (:mod:`fine_tune.queue`): JSON written atomically, the kept models, the names both use."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

__all__ = ["CACHE_DIR", "MODELS_DIR", "URL_VAR", "saved_models"]

#: The job folder's subfolder holding the kept models (``before``, ``after``).
MODELS_DIR = "models"
#: The run cache's folder under ``$CURATION_HOME``.
CACHE_DIR = "compare-cache"
#: The worker's environment variable with the project URL, password included (the settings
#: file and the runs table keep it hidden).
URL_VAR = "CURATION_JOB_PROJECT_URL"
_SIDES = ("before", "after")


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def saved_models(folder: str | os.PathLike) -> dict[str, str]:
    """The models a job kept: ``{"before": path, "after": path}``, only those saved in full."""
    out = {}
    for side in _SIDES:
        path = Path(folder) / MODELS_DIR / side
        if (path / "config.json").is_file() and any(path.glob("*.safetensors")):
            out[side] = str(path)
    return out
