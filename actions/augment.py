"""Augmentation: build an augmenter from a page's or CLI's choices, generate and check
candidates from the curated data, save the rows a person accepted, remove saved rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from actions.access import require
from curation.augment import (
    AUGMENTERS,
    CATEGORIES,
    AugmenterError,
    AugmentResult,
    CheckSettings,
    augmenter_for,
    glossary_from_yaml,
    load_glossary,
    whole_pairs,
)
from curation.schema import has_pairs
from curation.store import Project
from curation.workspace import augment_project
from fine_tune.jobs import AUGMENT_KIND, augment_candidates, latest_job, start_augment_job

__all__ = ["AUGMENTERS", "CATEGORIES", "AugmenterError", "CheckSettings", "augment", "has_pairs",
           "augment_job", "augment_job_result", "start_augment", "augmented", "augmenter_for", "glossary_from_yaml", "load_glossary", "remove_augmented",
           "reviewed_items", "save_augmented"]


def augment(project: Project, augmenter: Any, *, actor: str | None, **options: Any) -> AugmentResult:
    """Candidates from the project's curated data, each checked (a member's act; nothing is
    saved until :func:`save_augmented`). ``options`` go to :func:`curation.augment.augment`."""
    require(project, actor, "augment")
    if options.get("items") is not None and not options["items"]:
        raise ValueError("choose at least one item, or lift minority classes instead.")
    return augment_project(project, augmenter, actor=actor, **options)


def start_augment(project: Project, *, actor: str | None, method: str, choices: dict[str, Any],
                  glossary_file: str | None = None, glossary_yaml: str | None = None,
                  glossary_name: str | None = None, **options: Any) -> dict[str, Any]:
    """Queue candidate generation for a worker (a member's act; nothing is saved until a person
    accepts rows). ``choices``: :func:`augmenter_for`'s settings; the glossary method's glossary
    is one the app offers (``glossary_file``) or an upload's text (``glossary_yaml``, named
    ``glossary_name``), and travels with the job; ``options``: :func:`augment`'s, with ``checks``
    a :class:`CheckSettings`."""
    from actions.jobs import job_folder

    require(project, actor, "augment")
    if glossary_file is not None:
        glossary_yaml = Path(glossary_file).read_text(encoding="utf-8")
        glossary_name = Path(glossary_file).name
    if options.get("items") is not None and not options["items"]:
        raise ValueError("choose at least one item, or lift minority classes instead.")
    checks = options.pop("checks", None)
    if isinstance(checks, CheckSettings):
        checks = checks.as_dict()
    return start_augment_job(project, job_folder(project, "augment"), method=method,
                             choices=choices, glossary_yaml=glossary_yaml,
                             glossary_name=glossary_name, options={**options, "checks": checks},
                             actor=actor)


def augment_job(project: Project) -> dict[str, Any] | None:
    """The status of the project's newest augmentation job, or None."""
    return latest_job(project, kind=AUGMENT_KIND)


def augment_job_result(status: dict[str, Any]) -> AugmentResult | None:
    """A finished augmentation job's candidates, as :func:`augment` returns them, or None."""
    found = augment_candidates(status)
    return None if found is None else AugmentResult(found[0], found[1])


def reviewed_items(project: Project) -> list[str]:
    """The items with a decision, sorted (the default items to augment)."""
    return sorted(project.latest_decisions()["item_id"])


def save_augmented(project: Project, rows: pd.DataFrame, *, actor: str | None) -> list[str]:
    """Store the accepted rows with their provenance under the name of who accepted them."""
    if not (actor or "").strip():
        raise ValueError("Sign in or enter your name in the sidebar first: every saved row records "
                         "who accepted it.")
    require(project, actor, "save augmented rows")
    return project.save_augmentations(whole_pairs(rows), actor=actor)


def augmented(project: Project) -> pd.DataFrame:
    """The saved augmented rows (removed ones left out), oldest first."""
    return project.augmentations()


def remove_augmented(project: Project, ids: Sequence[str], *, actor: str | None) -> int:
    """Mark saved rows removed (kept in the table with who removed them and when)."""
    if not (actor or "").strip():
        raise ValueError("Sign in or enter your name in the sidebar first.")
    require(project, actor, "remove augmented rows")
    return project.remove_augmentations(list(ids), actor=actor)
