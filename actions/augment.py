"""Augmentation: build an augmenter from a page's or CLI's choices, generate and check
candidates from the curated data, save the rows a person accepted, remove saved rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from actions.access import require
from curation.augment import (
    AUGMENTERS,
    CATEGORIES,
    AugmenterError,
    AugmentResult,
    CheckSettings,
    Protector,
    glossary_from_yaml,
    load_glossary,
    make_augmenter,
    whole_pairs,
)
from curation.schema import has_pairs
from curation.store import Project
from curation.workspace import augment_project

__all__ = ["AUGMENTERS", "CATEGORIES", "AugmenterError", "CheckSettings", "augment", "has_pairs",
           "augmented", "augmenter_for", "glossary_from_yaml", "load_glossary", "remove_augmented",
           "reviewed_items", "save_augmented"]


def augmenter_for(method: str, *, seed: int, top_k: int, max_share: float,
                  allow: Sequence[str] = (), glossary: Any = None, model: str | None = None,
                  forward: str | None = None, backward: str | None = None):
    """An augmenter from the choices of a form: ``glossary`` (a loaded
    :class:`curation.augment.Glossary`) for the glossary method, ``model`` for masked-LM,
    ``forward``/``backward`` for back-translation (models the app offers)."""
    allow = list(allow)
    if method == "glossary":
        if glossary is None:
            raise AugmenterError("the glossary method needs a glossary: choose one or upload one.")
        return make_augmenter(method, glossary=glossary, seed=seed, top_k=top_k, max_share=max_share,
                              protector=Protector(terms=glossary.protected, allow=allow))
    models = {"masked-lm": {"model": model},
              "back-translation": {"forward": forward, "backward": backward}}.get(method, {})
    if not all(models.values()):
        raise AugmenterError(f"{method} needs a model this app offers: the operator adds a "
                             "save_pretrained folder in $CURATION_HOME/models, or lists a cached "
                             "Hugging Face id in the [models] table of its projects.toml.")
    if method == "back-translation":
        return make_augmenter(method, **models, seed=seed, protector=Protector(allow=allow))
    return make_augmenter(method, **models, seed=seed, top_k=top_k, max_share=max_share,
                          protector=Protector(allow=allow))


def augment(project: Project, augmenter: Any, *, actor: str | None, **options: Any) -> AugmentResult:
    """Candidates from the project's curated data, each checked (a member's act; nothing is
    saved until :func:`save_augmented`). ``options`` go to :func:`curation.augment.augment`."""
    require(project, actor, "augment")
    if options.get("items") is not None and not options["items"]:
        raise ValueError("choose at least one item, or lift minority classes instead.")
    return augment_project(project, augmenter, actor=actor, **options)


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
