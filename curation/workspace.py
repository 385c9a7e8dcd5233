"""Where projects live on disk, and the bundled demo project.

``CURATION_HOME`` (default ``~/.curation``) holds the SQLite projects; the demo
project is imported there from the package's own data on first use.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from curation.io import load_annotations
from curation.store import ImportResult, Project

__all__ = ["DEMO_CSV", "DEMO_GUIDELINE", "curation_home", "demo_label_set", "import_file",
           "open_demo_project", "open_project"]

logger = logging.getLogger(__name__)

_PACKAGE = Path(__file__).resolve().parent
DEMO_CSV = _PACKAGE / "demo" / "bank_demo.csv"
DEMO_GUIDELINE = _PACKAGE.parent / "guidelines" / "bank_support.yaml"
_FALLBACK_LABELS = ["fraud_alert", "complaint", "request", "praise"]


def curation_home() -> Path:
    """The folder for local projects: ``$CURATION_HOME`` or ``~/.curation``."""
    return Path(os.environ.get("CURATION_HOME") or Path.home() / ".curation")


def demo_label_set() -> list[str]:
    """The demo's labels in guideline order (from ``guidelines/bank_support.yaml`` when present)."""
    if DEMO_GUIDELINE.is_file():
        spec = yaml.safe_load(DEMO_GUIDELINE.read_text(encoding="utf-8"))
        return [entry["name"] for entry in spec["labels"]]
    return list(_FALLBACK_LABELS)


def open_project(url_or_path: str | os.PathLike | None = None) -> Project:
    """Open a project by SQLAlchemy URL or SQLite path (default: ``$CURATION_URL`` or the demo)."""
    target = url_or_path or os.environ.get("CURATION_URL")
    if not target:
        return open_demo_project()
    return Project(target)


def open_demo_project(path: str | os.PathLike | None = None,
                      progress: Callable[[float], None] | None = None) -> Project:
    """Open the demo project, importing the bundled demo data the first time.

    Importing is idempotent, so calling this again never duplicates anything.
    """
    project = Project(path or curation_home() / "demo.sqlite")
    if project.is_empty():
        frame = load_annotations(DEMO_CSV, label_set=demo_label_set())
        result = project.import_annotations(frame, source="demo/bank_demo.csv",
                                            label_set=demo_label_set(), progress=progress)
        logger.info("demo project imported: %s", result)
    return project


def import_file(project: Project, source: Any, *, name: str | None = None,
                on_conflict: str = "error", progress: Callable[[float], None] | None = None,
                **load_options: Any) -> ImportResult:
    """Validate a file and import it into ``project`` in one transaction.

    ``load_options`` go to :func:`curation.io.load_annotations` (format, columns,
    label_set, annotator_columns, encoding, max_bytes, file_type). A file that
    fails validation raises ``ValueError`` before anything is written, so the
    project is left exactly as it was.
    """
    frame = load_annotations(source, name=name, **load_options)
    if progress:
        progress(0.0)
    return project.import_annotations(frame, source=name or str(frame.attrs.get("source", "")),
                                      label_set=frame.attrs.get("label_set"),
                                      on_conflict=on_conflict, progress=progress)
