"""The curated dataset: what each item became, what changed and who changed it, and the export."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from actions.access import require
from curation.curate import STATUSES, changes, curate
from curation.export import FORMATS
from curation.export_history import (
    MANIFEST,
    ExportDiff,
    diff_exports,
    export_versions,
    new_version,
    read_manifest,
    verify_export,
)
from curation.store import Project
from curation.workspace import curation_home, export_project

__all__ = ["FORMATS", "STATUSES", "change_log", "compare_versions", "curated", "data_card", "decisions_for",
           "export", "export_zip", "exports_root", "open_problems", "version_zip", "versions"]


def curated(project: Project, frame: pd.DataFrame) -> pd.DataFrame:
    """Every item with its consensus, the decision applied and its ``status`` (dropped included)."""
    return curate(frame, project.latest_decisions(), labels=project.label_set(),
                  include_dropped=True)


def change_log(project: Project, everything: pd.DataFrame) -> pd.DataFrame:
    """What changed, item by item: old and new label, who, when and why."""
    return changes(everything, project.decisions())


def exports_root(project: Project) -> Path:
    """Where the app keeps a project's exports: ``$CURATION_HOME/exports/<project>``, one
    folder per version."""
    return curation_home() / "exports" / Path(project.url).stem


def export(project: Project, *, actor: str | None, out_dir: str | Path | None = None,
           **options: Any):
    """Write stratified, leak-free splits, the data card and the manifest (a lead's act in team
    mode) to ``out_dir`` (a command line's ``--out``), or, in the app, to a new version folder
    under :func:`exports_root` (``v0001``, ``v0002``, ...: nothing is overwritten). ``options``
    go to :func:`curation.workspace.export_project` (formats, shares, seed, ...)."""
    require(project, actor, "export splits")
    if out_dir is not None:
        return export_project(project, Path(out_dir), actor=actor, **options)
    version, folder = new_version(exports_root(project))
    try:
        return export_project(project, folder, actor=actor, version=version, **options)
    except BaseException:
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # nothing was written: no empty version left behind
        raise


def versions(project: Project) -> pd.DataFrame:
    """The project's past exports, newest first (:func:`curation.export_history.export_versions`)."""
    return export_versions(exports_root(project))


def compare_versions(project: Project, old: int, new: int) -> ExportDiff:
    """What changed between two of the project's exports (``ValueError`` for a version that
    is not there or did not finish)."""
    table = versions(project).set_index("version")
    for version in (old, new):
        if version not in table.index:
            raise ValueError(f"there is no export v{version:04d} of this project; pick one of "
                             f"{['v%04d' % v for v in table.index]}.")
    return diff_exports(table.at[old, "folder"], table.at[new, "folder"])


def open_problems(project: Project) -> tuple[int, int]:
    """``(open flagged items, flagged items)`` of the latest flags run: how much of the review
    an export would leave undone."""
    flagged = project.flagged_items()
    decided = set(project.latest_decisions()["item_id"])
    return len(flagged - decided), len(flagged)


def decisions_for(project: Project, *, actor: str | None, out_dir: str | Path,
                  what: str = "splits") -> pd.DataFrame:
    """The project's effective decisions, handed out for an export made from a file (the
    command line's ``export FILE --project URL``): a lead's act in team mode, logged."""
    require(project, actor, "export splits" if what == "splits"
            else "export the curated data for augmenting")
    project.log(actor, "export", out_dir=str(Path(out_dir).resolve()),
                **({} if what == "splits" else {"what": what}))
    return project.latest_decisions()


def export_zip(project: Project, result) -> tuple[str, bytes]:
    """``(file name, zip bytes)`` of an export's files, to download."""
    return _zip(project, Path(result.out_dir), [Path(p) for p in result.files])


def version_zip(project: Project, version: int) -> tuple[str, bytes]:
    """``(file name, zip bytes)`` of a past export's files, as its manifest lists them
    (``ValueError`` when one is missing or changed since: a download must be what was exported)."""
    table = versions(project).set_index("version")
    if version not in table.index or table.at[version, "problem"]:
        raise ValueError(f"export v{version:04d} is not a finished export of this project.")
    folder = Path(table.at[version, "folder"])
    problems = verify_export(folder)
    if problems:
        raise ValueError(f"export v{version:04d} no longer matches its manifest: "
                         f"{'; '.join(problems)}. Export again.")
    names = [entry["name"] for entry in read_manifest(folder)["files"]]
    return _zip(project, folder, [folder / name for name in names] + [folder / MANIFEST])


def _zip(project: Project, folder: Path, files: list[Path]) -> tuple[str, bytes]:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            archive.write(path, arcname=path.relative_to(folder).as_posix())  # hf/... kept
    return f"{Path(project.url).stem}-export-{folder.name}.zip", buffer.getvalue()


def data_card(result) -> str | None:
    """The export's data card (Markdown we wrote, user data escaped), or None."""
    card = Path(result.out_dir) / "data_card.md"
    return card.read_text(encoding="utf-8") if card.is_file() else None
