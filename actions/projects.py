"""Projects: which ones the app offers, opening one, its contents, its members, importing a file."""

from __future__ import annotations

from typing import Any

import pandas as pd

from actions.access import NEEDS, require
from curation.aggregation import consensus_labels
from curation.io import FORMATS, declared_labels, effective_limits, limit_variable
from curation.progress import Progress
from curation.schema import COLUMN_HELP
from curation.store import ImportResult, NoProjectError, Project, SchemaState, import_action
from curation.store.project import downgrade_schema, schema_state
from curation.workspace import (
    BUNDLED_MODEL,
    DEMO_NAME,
    available_files,
    available_models,
    available_projects,
    curation_home,
    new_project_url,
    open_demo_project,
    project_annotations,
    project_guideline,
    project_truth,
    upload_limit_bytes,
)
from curation.workspace import import_file as _import_file
from fine_tune.jobs import RUN_KIND

__all__ = ["BUNDLED_MODEL", "COLUMN_HELP", "DEMO_NAME", "FORMATS", "STEPS", "NoProjectError",
           "Project", "annotations", "available_files", "available_models", "available_projects",
           "consensus", "create_at", "create_project", "data_version", "demo_url", "display_url",
           "effective_limits", "guideline", "import_action", "import_file", "import_frame",
           "known_truth", "label_set", "language_line", "language_warning", "limit_variable", "members",
           "n_augmented", "next_step",
           "open_existing", "open_project", "remove_member", "schema", "schema_line",
           "set_member", "take_schema_back", "upgrade_schema", "upload_limit_bytes"]


#: Where :func:`next_step` sends a user: a page of the app, by what it is for.
STEPS = ("project", "agreement", "review", "curated", "retrain")


def next_step(project: Project) -> tuple[str, str]:
    """``(what to do next, where)``: the first thing the project still lacks, in the order of
    the work (import, review the flagged items, export, retrain and compare). ``where`` is one
    of :data:`STEPS`."""
    if project.is_empty():
        return "import an annotation file (Project page, below).", "project"
    if project.latest_flags_run_id() is None:
        return ("check the agreement, then let the app find the items to review (Review page).",
                "review")
    from actions.export import open_problems

    still_open, flagged = open_problems(project)
    if still_open:
        return (f"review the flagged items: {still_open:,} of {flagged:,} are still open "
                "(Review page).", "review")
    audit = project.audit()
    exported = audit.loc[audit["action"] == "export", "created_at"]
    decided = project.decisions()["created_at"]
    if exported.empty or (len(decided) and exported.max() < decided.max()):
        return ("every flagged item is decided: export the curated splits (Curated data page).",
                "curated")
    runs = project.runs()
    compared = runs.loc[(runs["kind"] == RUN_KIND) & (runs["status"] == "done"),
                        "created_at"]
    if compared.empty or compared.max() < exported.max():
        return ("retrain and compare: does a model trained on the curated data do better "
                "(Retrain and compare page)?", "retrain")
    return ("nothing left: the latest export has its comparison. Import more data, or flag "
            "again to look further.", "project")


def language_warning(frame: pd.DataFrame) -> str | None:
    """What to tell the user when most of the project's letters are in a script the bundled
    English embedding model (the one the app flags with) was not trained on; else None."""
    from curation.languages import model_warning

    return model_warning(frame.drop_duplicates("item_id")["text"], None)


def language_line(frame: pd.DataFrame) -> str:
    """The project's texts in a line: main script, its share, the language (Latin script), and
    whether items are sentence pairs."""
    from curation.languages import project_language

    found = project_language(frame.drop_duplicates("item_id")["text"])
    if found["script"] is None:
        return "Texts: no letters found"
    language = f"{found['language']}, " if found["language"] else ""
    kind = "sentence pairs (text, text_pair)" if "text_pair" in frame.columns else "single texts"
    return (f"Texts: {language}{found['script']} script ({float(found['share']):.0%} of the "
            f"letters) · {kind}")


def demo_url() -> str:
    """Where the bundled demo project lives: ``$CURATION_HOME/demo.sqlite``."""
    return str(curation_home() / "demo.sqlite")


def open_project(url: str) -> Project:
    """Open an offered project by URL; the demo is created (and its data imported) on first use."""
    if url == demo_url():
        return open_demo_project(url)
    return Project(url)


def open_existing(url: str) -> Project:
    """Open a project that must exist (:class:`curation.store.NoProjectError` otherwise): the
    command lines' ``--project URL``."""
    return Project(url, create=False)


def create_at(url: str, *, actor: str | None) -> Project:
    """Create (or open) the project at a URL the operator gave (the command line's
    ``--project``; the app creates projects by name only, :func:`create_project`)."""
    return Project(url, actor=actor)


def create_project(name: str, *, actor: str | None) -> str:
    """Create an empty project called ``name`` in ``$CURATION_HOME``; returns its URL.
    ``ValueError`` for a name that is not 1-64 letters, digits, '_' or '-', or is taken."""
    url = new_project_url(name)
    Project(url, actor=actor).close()
    return url


def annotations(project: Project) -> pd.DataFrame:
    """The project's long frame (``attrs["label_set"]`` holds its label set)."""
    return project_annotations(project)


def consensus(frame: pd.DataFrame, labels: list[str] | None) -> pd.DataFrame:
    """Consensus label, confidence and method per item: majority vote, Dawid-Skene on ties."""
    return consensus_labels(frame, labels=labels)


def known_truth(project: Project) -> tuple[pd.Series, str]:
    """The items whose label is known (gold, else decisions) and where that comes from."""
    return project_truth(project)


def data_version(project: Project) -> tuple[int, ...]:
    """Changes whenever the project's imports, decisions, items or annotations change
    (a cache key)."""
    return project.data_version()


def display_url(project: Project) -> str:
    """The project's URL with any password hidden: what may be shown."""
    return project.display_url


def n_augmented(project: Project) -> int:
    """How many augmented rows are saved (removed ones left out)."""
    return len(project.augmentations())


def label_set(project: Project) -> list[str]:
    return project.label_set()


def guideline(project: Project):
    """The project's annotation guideline (:class:`curation.guidelines.Guideline`) or None."""
    return project_guideline(project)


def members(project: Project) -> pd.DataFrame:
    return project.members()


def set_member(project: Project, name: str, role: str, *, actor: str | None) -> None:
    """Add a member or change their role. The first member is a lead added by anyone (that
    starts team mode), by ``actor`` or else themselves; after that only a lead manages members."""
    first = project.members().empty
    if not first:
        require(project, actor, "add members or change roles")
    project.set_member(name, role, actor=(actor or name) if first else (actor or ""))


def remove_member(project: Project, name: str, *, actor: str | None) -> None:
    """Remove a member (a lead's act; the last lead cannot be removed)."""
    require(project, actor, "remove members")
    project.remove_member(name, actor=actor or "")


def import_frame(project: Project, frame: pd.DataFrame, *, actor: str | None, source: str,
                 on_conflict: str = "error") -> ImportResult:
    """Import a frame already loaded and checked (:func:`curation.io.load_annotations`)."""
    require(project, actor, import_action(on_conflict))
    return project.import_annotations(frame, source=source, label_set=declared_labels(frame),
                                      on_conflict=on_conflict, actor=actor)


def import_file(project: Project, source: Any, *, actor: str | None, on_conflict: str = "error",
                progress: Progress | None = None, **load_options: Any) -> ImportResult:
    """Validate a file and import it in one transaction (a lead's act in team mode; checked
    before the file is read). ``load_options`` go to :func:`curation.io.load_annotations`."""
    require(project, actor, import_action(on_conflict))
    return _import_file(project, source, on_conflict=on_conflict, progress=progress, actor=actor,
                        **load_options)


def schema(url: str) -> SchemaState:
    """An existing project's schema state, read without upgrading it."""
    return schema_state(url)


def schema_line(project: Project) -> str:
    """The open project's schema in words, for the Project page."""
    state = project.schema()
    return f"schema revision {state.current} (curation migrate shows and changes it)"


def upgrade_schema(url: str) -> SchemaState:
    """Bring an existing project to this code's schema (what opening it does); returns the state
    after. Anyone who may open the project may: an upgrade keeps every row."""
    with open_existing(url) as project:
        return project.schema()


def take_schema_back(url: str, revision: str, *, actor: str | None) -> SchemaState:
    """Downgrade an existing project's schema to ``revision`` so an older curation opens it
    (a lead's act in team mode; a SQLite file is copied first); returns the state before."""
    action = "take the schema back"
    return downgrade_schema(url, revision, actor=actor, role=NEEDS[action], to=action)
