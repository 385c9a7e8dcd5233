"""The curated dataset: what each item became, what changed and who changed it, and the export."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd

from actions.access import require
from curation.curate import STATUSES, changes, curate
from curation.store import Project
from curation.workspace import curation_home, export_project

__all__ = ["STATUSES", "change_log", "curated", "data_card", "decisions_for", "export",
           "export_zip"]


def curated(project: Project, frame: pd.DataFrame) -> pd.DataFrame:
    """Every item with its consensus, the decision applied and its ``status`` (dropped included)."""
    return curate(frame, project.latest_decisions(), labels=project.label_set(),
                  include_dropped=True)


def change_log(project: Project, everything: pd.DataFrame) -> pd.DataFrame:
    """What changed, item by item: old and new label, who, when and why."""
    return changes(everything, project.decisions())


def export(project: Project, *, actor: str | None, out_dir: str | Path | None = None,
           **options: Any):
    """Write stratified, leak-free splits and the data card (a lead's act in team mode) to
    ``out_dir`` (a command line's ``--out``; the app always uses
    ``$CURATION_HOME/exports/<project>``). ``options`` go to
    :func:`curation.workspace.export_project` (formats, shares, seed, ...)."""
    require(project, actor, "export splits")
    target = Path(out_dir) if out_dir is not None else curation_home() / "exports" / Path(project.url).stem
    return export_project(project, target, actor=actor, **options)


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
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in result.files:
            archive.write(path, arcname=Path(path).name)
    return f"{Path(project.url).stem}-export.zip", buffer.getvalue()


def data_card(result) -> str | None:
    """The export's data card (Markdown we wrote, user data escaped), or None."""
    card = Path(result.out_dir) / "data_card.md"
    return card.read_text(encoding="utf-8") if card.is_file() else None
