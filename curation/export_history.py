"""Export versions: each export a folder of its own with a manifest, the list of past exports, and
what changed between two of them (items added, removed, relabelled, moved to another split).

A project's exports live under one root (the app's is ``$CURATION_HOME/exports/<project>``), one
folder per export, ``v0001``, ``v0002``, ... never overwritten. Each holds the split files, the data
card and two manifest files written last:

- ``manifest.json``: version, when, who, the options, the counts per split and label, and every
  file with its size and SHA-256 (so a changed or missing file is detected);
- ``manifest_items.csv``: ``item_id, split, label, augmented_from`` of every exported row, which is
  what a diff reads (whatever formats the splits were written in).

A folder without a readable manifest is an export that did not finish (or was damaged): it is
listed with the reason and never diffed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from curation.export import AUGMENTED_FROM, ExportResult

__all__ = ["ITEMS_FILE", "MANIFEST", "ExportDiff", "diff_exports", "export_versions", "new_version",
           "read_manifest", "verify_export", "write_manifest"]

MANIFEST = "manifest.json"
ITEMS_FILE = "manifest_items.csv"
_VERSION = re.compile(r"^v(\d{4,})$")
_ITEM_COLUMNS = ["item_id", "split", "label", AUGMENTED_FROM]


def new_version(root: str | os.PathLike) -> tuple[int, Path]:
    """The next version number under ``root`` and its new, empty folder (created here, so two
    exports at once never share a folder)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    while True:
        taken = [int(m.group(1)) for p in root.iterdir() if (m := _VERSION.match(p.name))]
        version = max(taken, default=0) + 1
        folder = root / f"v{version:04d}"
        try:
            folder.mkdir()
        except FileExistsError:  # another export took it a moment ago: the next one
            continue
        return version, folder


def write_manifest(result: ExportResult, *, version: int | None = None, actor: str | None = None,
                   options: dict[str, Any] | None = None) -> Path:
    """Write ``manifest_items.csv`` and then ``manifest.json`` into the export's folder (the
    manifest last: its presence says the export finished). Returns the manifest's path."""
    folder = Path(result.out_dir)
    items = result.splits.reindex(columns=_ITEM_COLUMNS)
    items[AUGMENTED_FROM] = items[AUGMENTED_FROM].fillna("")
    items.to_csv(folder / ITEMS_FILE, index=False)
    files = [Path(f) for f in result.files] + [folder / ITEMS_FILE]
    counts = pd.crosstab(result.splits["split"], result.splits["label"].astype(str))
    manifest = {
        "version": version,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "actor": actor,
        "options": {k: v for k, v in (options or {}).items() if _jsonable(v)},
        "n_rows": int(len(result.splits)),
        "counts": {split: {label: int(n) for label, n in row.items()}
                   for split, row in counts.iterrows()},
        "files": [{"name": f.relative_to(folder).as_posix(), "bytes": f.stat().st_size,
                   "sha256": _sha256(f)} for f in files],
    }
    path = folder / MANIFEST
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    tmp.replace(path)
    return path


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest of an export folder; ``ValueError`` naming the folder when it has none or
    it cannot be read."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ValueError(f"{Path(folder).name}: no {MANIFEST}, so the export did not finish "
                         "(or was made before exports were versioned); export again.")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{Path(folder).name}: {MANIFEST} cannot be read ({err}); export "
                         "again.") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise ValueError(f"{Path(folder).name}: {MANIFEST} is not an export manifest; export "
                         "again.")
    return manifest


def verify_export(folder: str | os.PathLike) -> list[str]:
    """What is wrong with an export folder's files against its manifest (empty: all intact)."""
    folder = Path(folder)
    problems = []
    for entry in read_manifest(folder)["files"]:
        name = str(entry.get("name", ""))
        path = folder / name
        if not _inside(name) or not path.is_file():
            problems.append(f"{name}: missing")
        elif path.stat().st_size != entry.get("bytes") or _sha256(path) != entry.get("sha256"):
            problems.append(f"{name}: changed since the export")
    return problems


def export_versions(root: str | os.PathLike) -> pd.DataFrame:
    """Every export under ``root``, newest first: ``version, folder, created_at, actor, n_rows,
    train, validation, test, problem`` (``problem`` empty for a finished export)."""
    root = Path(root)
    rows = []
    folders = sorted((p for p in root.iterdir() if p.is_dir() and _VERSION.match(p.name)),
                     key=lambda p: int(_VERSION.match(p.name).group(1)),
                     reverse=True) if root.is_dir() else []
    for folder in folders:
        version = int(_VERSION.match(folder.name).group(1))
        try:
            manifest = read_manifest(folder)
        except ValueError as err:
            rows.append({"version": version, "folder": str(folder), "problem": str(err)})
            continue
        counts = manifest.get("counts") or {}
        rows.append({"version": version, "folder": str(folder),
                     "created_at": manifest.get("created_at"), "actor": manifest.get("actor"),
                     "n_rows": manifest.get("n_rows"),
                     **{split: sum((counts.get(split) or {}).values())
                        for split in ("train", "validation", "test")},
                     "problem": ""})
    return pd.DataFrame(rows, columns=["version", "folder", "created_at", "actor", "n_rows",
                                       "train", "validation", "test", "problem"])


@dataclass
class ExportDiff:
    """What changed from export ``old`` to export ``new``, by item id (original items only;
    augmented rows are counted apart)."""

    old: str
    new: str
    added: pd.DataFrame       # item_id, split, label
    removed: pd.DataFrame     # item_id, split, label
    relabelled: pd.DataFrame  # item_id, old_label, new_label, split
    moved: pd.DataFrame       # item_id, old_split, new_split, label
    augmented: tuple[int, int]  # augmented rows in old, in new

    def summary(self) -> str:
        return (f"{self.old} -> {self.new}: {len(self.added)} items added, {len(self.removed)} "
                f"removed, {len(self.relabelled)} relabelled, {len(self.moved)} moved to another "
                f"split; augmented rows {self.augmented[0]} -> {self.augmented[1]}.")

    def to_dict(self) -> dict[str, Any]:
        return {"old": self.old, "new": self.new, "summary": self.summary(),
                **{name: getattr(self, name).to_dict(orient="records")
                   for name in ("added", "removed", "relabelled", "moved")},
                "augmented": list(self.augmented)}


def diff_exports(old: str | os.PathLike, new: str | os.PathLike) -> ExportDiff:
    """Compare two finished exports (``ValueError`` naming the folder that has no manifest or a
    damaged item list)."""
    a, b = _items(Path(old)), _items(Path(new))
    a_aug, b_aug = a[AUGMENTED_FROM] != "", b[AUGMENTED_FROM] != ""
    a, b = a[~a_aug].set_index("item_id"), b[~b_aug].set_index("item_id")
    added = b.loc[b.index.difference(a.index), ["split", "label"]]
    removed = a.loc[a.index.difference(b.index), ["split", "label"]]
    both = a.index.intersection(b.index)
    joined = a.loc[both, ["split", "label"]].join(
        b.loc[both, ["split", "label"]].add_suffix("_new"))
    relabelled = joined[joined["label"] != joined["label_new"]]
    moved = joined[joined["split"] != joined["split_new"]]
    return ExportDiff(
        old=Path(old).name, new=Path(new).name,
        added=added.rename_axis("item_id").reset_index(),
        removed=removed.rename_axis("item_id").reset_index(),
        relabelled=relabelled.rename(columns={"label": "old_label", "label_new": "new_label",
                                              "split_new": "new_split"})
        .rename_axis("item_id").reset_index()[["item_id", "old_label", "new_label", "new_split"]],
        moved=moved.rename(columns={"split": "old_split", "split_new": "new_split",
                                    "label_new": "new_label"})
        .rename_axis("item_id").reset_index()[["item_id", "old_split", "new_split", "new_label"]],
        augmented=(int(a_aug.sum()), int(b_aug.sum())))


def _items(folder: Path) -> pd.DataFrame:
    read_manifest(folder)  # a finished export
    try:
        items = pd.read_csv(folder / ITEMS_FILE, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as err:
        raise ValueError(f"{folder.name}: {ITEMS_FILE} cannot be read ({err}); export "
                         "again.") from None
    missing = [c for c in _ITEM_COLUMNS if c not in items.columns]
    if missing:
        raise ValueError(f"{folder.name}: {ITEMS_FILE} lacks the column(s) {missing}; export again.")
    return items[_ITEM_COLUMNS]


def _inside(name: str) -> bool:
    """A manifest's file name is a plain relative path inside the export folder (``hf/...``
    for the datasets format): never absolute, never through ``..``."""
    parts = Path(name).parts
    return bool(parts) and not Path(name).is_absolute() and ".." not in parts and "\\" not in name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
