"""Where projects live on disk, and the bundled demo project.

``CURATION_HOME`` (default ``~/.curation``) holds the SQLite projects; the demo
project is imported there from the package's own data on first use.
"""

from __future__ import annotations

import dataclasses

import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from curation.curate import STATUSES, curate
from curation.flags import (
    FLAGGERS,
    REST_REASON,
    FlagEvaluation,
    FlagReport,
    by_priority,
    evaluate_flags,
    flag_items,
    review_queue,
)
from curation.export_history import ITEMS_FILE, write_manifest
from curation.guidelines import Guideline, load_guideline
from curation.io import DEFAULT_LIMITS, DEFAULT_MAX_BYTES, declared_labels, load_annotations, loaded_from
from curation.progress import Progress, within
from curation.report import agreement_report
from curation.schema import TEXT_PAIR, has_pairs, text_columns
from curation.store import ImportResult, Project, import_action

__all__ = ["DEMO_CSV", "DEMO_GUIDELINE", "augment_project", "augmented_rows", "curation_home",
           "data_card_facts", "demo_label_set", "evaluate_project_flags", "export_curated",
           "export_project", "flag_project", "project_annotations", "project_truth",
           "import_file", "load_doubt", "load_queue", "open_demo_project", "open_project", "project_curated",
           "available_projects", "new_project_url", "PROJECTS_FILE", "DEMO_NAME",
           "available_models", "available_files", "BUNDLED_MODEL", "MODELS_DIR", "GLOSSARIES_DIR",
           "RULES_DIR",
           "project_guideline"]

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


#: The operator's list of projects the app may open, in ``$CURATION_HOME``: a TOML table
#: ``[projects]`` of ``name = "SQLAlchemy URL"``. Visitors pick from names; they never type a
#: path or URL.
PROJECTS_FILE = "projects.toml"
#: The bundled demo project's name (``$CURATION_HOME/demo.sqlite``).
DEMO_NAME = "demo"
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


#: Folders of ``$CURATION_HOME`` the operator fills; the app offers what is in them by name.
MODELS_DIR, GLOSSARIES_DIR, RULES_DIR = "models", "glossaries", "rules"
#: The name under which every model choice offers the bundled sentence-transformers model.
BUNDLED_MODEL = "bundled MiniLM"


def _operator_table(section: str, example: str) -> dict[str, str]:
    """``[section]`` of the operator's ``projects.toml``: ``name = "value"`` lines, checked."""
    import tomllib

    listed = curation_home() / PROJECTS_FILE
    if not listed.is_file():
        return {}
    try:
        table = tomllib.loads(listed.read_text(encoding="utf-8")).get(section, {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{listed} is not valid TOML ({err}); it should hold tables such as "
                         f"[{section}] of {example} lines.") from None
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise ValueError(f"{listed}: [{section}] must map names to strings, e.g. {example}.")
    for name in table:
        if not _PROJECT_NAME.match(name):
            raise ValueError(f"{listed}: [{section}] name {name!r} must be 1-64 letters, digits, "
                             "'_' or '-', starting with a letter or digit.")
    return dict(table)


def available_models() -> dict[str, str | None]:
    """The models the app offers, ``name -> model`` (None: the bundled MiniLM): the bundled one,
    every folder in ``$CURATION_HOME/models`` that holds a ``config.json`` (a
    ``save_pretrained`` folder, by folder name), and the operator's ``[models]`` table in
    ``projects.toml`` (``name = "local folder or a Hugging Face id in the local cache"``).
    Visitors pick a name; they never type a path. ``ValueError`` on a malformed table."""
    found: dict[str, str | None] = {BUNDLED_MODEL: None}
    folder = curation_home() / MODELS_DIR
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if _PROJECT_NAME.match(path.name) and (path / "config.json").is_file():
                found[path.name] = str(path)
    found.update(_operator_table("models", 'distilroberta = "/models/distilroberta-base"'))
    return found


def available_files(kind: str) -> dict[str, str]:
    """The glossaries (``kind="glossaries"``) or post-processing rules (``"rules"``) the app
    offers, ``name -> path``: the shipped ones in ``guidelines/`` and the operator's YAML files
    in ``$CURATION_HOME/glossaries`` or ``$CURATION_HOME/rules`` (by file name)."""
    if kind not in (GLOSSARIES_DIR, RULES_DIR):
        raise ValueError(f"kind={kind!r} is not one of {[GLOSSARIES_DIR, RULES_DIR]}.")
    shipped = DEMO_GUIDELINE.parent
    if kind == GLOSSARIES_DIR:
        found = {p.stem.removeprefix("glossary_"): str(p) for p in sorted(shipped.glob("glossary_*.yaml"))}
    else:
        found = {p.stem: str(p) for p in sorted(shipped.glob("*_rules.yaml"))}
    folder = curation_home() / kind
    if folder.is_dir():
        for path in sorted(folder.glob("*.yaml")):
            if _PROJECT_NAME.match(path.stem):
                found[path.stem] = str(path)
    return found


def available_projects() -> dict[str, str]:
    """The projects the app offers, ``name -> URL``, in this order: the demo, every ``*.sqlite``
    file directly in ``$CURATION_HOME`` (by file name), the operator's ``projects.toml``, and
    ``$CURATION_URL`` (by its database name). Names are unique; a later source wins a name.

    Raises ``ValueError`` naming the file and the fix when ``projects.toml`` is malformed.
    """
    home = curation_home()
    found = {DEMO_NAME: str(home / "demo.sqlite")}
    if home.is_dir():
        for path in sorted(home.glob("*.sqlite")):
            if _PROJECT_NAME.match(path.stem):
                found[path.stem] = str(path)
    found.update(_operator_table("projects", 'bank = "postgresql+psycopg://curation@db/bank"'))
    env = os.environ.get("CURATION_URL")
    if env:
        stem = Path(str(_database_name(env) or "project")).stem
        found[stem if _PROJECT_NAME.match(stem) else "CURATION_URL"] = env
    return found


def _database_name(url_or_path: str) -> str | None:
    """The database name (file path for SQLite) of a URL or path, without connecting."""
    if "://" not in url_or_path:
        return url_or_path
    import sqlalchemy as sa

    try:
        return sa.make_url(url_or_path).database
    except sa.exc.ArgumentError:
        return None


def new_project_url(name: str) -> str:
    """The file a new project called ``name`` gets in ``$CURATION_HOME``; ``ValueError`` when the
    name is not 1-64 letters, digits, '_' or '-' (no path can be smuggled in) or is taken."""
    if not isinstance(name, str) or not _PROJECT_NAME.match(name.strip()):
        raise ValueError(f"{str(name)[:80]!r} is not a project name: use 1-64 letters, digits, "
                         "'_' or '-', starting with a letter or digit (e.g. bank-support).")
    name = name.strip()
    if name in available_projects():
        raise ValueError(f"a project called {name!r} exists already: open it, or pick another name.")
    return str(curation_home() / f"{name}.sqlite")


def open_project(url_or_path: str | os.PathLike | None = None) -> Project:
    """Open a project by SQLAlchemy URL or SQLite path (default: ``$CURATION_URL`` or the demo)."""
    target = url_or_path or os.environ.get("CURATION_URL")
    if not target:
        return open_demo_project()
    return Project(target)


def open_demo_project(path: str | os.PathLike | None = None,
                      progress: Progress | None = None) -> Project:
    """Open the demo project, importing the bundled demo data the first time.

    Importing is idempotent, so calling this again never duplicates anything.
    """
    project = Project(path or curation_home() / "demo.sqlite")
    if project.is_empty():
        frame = load_annotations(DEMO_CSV, label_set=demo_label_set(), **DEFAULT_LIMITS)  # ours
        result = project.import_annotations(frame, source="demo/bank_demo.csv",
                                            label_set=demo_label_set(), progress=progress)
        logger.info("demo project imported: %s", result)
    return project


#: Environment variable: the app's upload limit in MiB (default 200, Streamlit's own limit).
MAX_UPLOAD_VAR = "CURATION_MAX_UPLOAD_MB"


def upload_limit_bytes() -> int:
    """The app's upload limit: ``$CURATION_MAX_UPLOAD_MB`` MiB (default 200).

    Raises
    ------
    ValueError
        When the variable is not a positive number (naming it and the fix).
    """
    raw = os.environ.get(MAX_UPLOAD_VAR, "").strip()
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"{MAX_UPLOAD_VAR}={raw!r} is not a positive number of MiB; set it to "
                         "e.g. 50, or unset it for the default of 200.")
    return int(value * 2**20)


def import_file(project: Project, source: Any, *, name: str | None = None,
                on_conflict: str = "error", progress: Progress | None = None,
                actor: str | None = None, **load_options: Any) -> ImportResult:
    """Validate a file and import it into ``project`` in one transaction.

    ``load_options`` go to :func:`curation.io.load_annotations` (format, columns,
    label_set, annotator_columns, encoding, max_bytes, file_type). A file that
    fails validation raises ``ValueError`` before anything is written, so the
    project is left exactly as it was. In team mode only a lead (``actor``) may import
    (``AccessError``, checked before the file is read, and again in the write).
    """
    project.require(actor, import_action(on_conflict))
    frame = load_annotations(source, name=name, **load_options)
    if progress:
        progress(0.0, "file read, importing")
    return project.import_annotations(frame, source=name or loaded_from(frame),
                                      label_set=declared_labels(frame),
                                      on_conflict=on_conflict, progress=progress, actor=actor)


# --------------------------------------------------------------------------- flags and review


def project_guideline(project: Project) -> Guideline | None:
    """The guideline for a project: ``CURATION_GUIDELINE`` if set, the demo's for the demo labels."""
    path = os.environ.get("CURATION_GUIDELINE")
    if path:
        return load_guideline(path)
    if DEMO_GUIDELINE.is_file() and set(project.label_set()) <= set(demo_label_set()):
        return load_guideline(DEMO_GUIDELINE)
    return None


def project_annotations(project: Project) -> pd.DataFrame:
    """The project's long annotation frame (its label set is :meth:`Project.label_set`, passed to
    whatever needs it as ``labels=``)."""
    return project.annotations()


def _item_embeddings(project: Project, frame: pd.DataFrame, *, embedder: Any = None,
                     progress: Progress | None = None,
                     actor: str | None = None) -> np.ndarray:
    """One embedding per item of ``frame`` (first-appearance order), through the project's cache
    (a sentence pair: both sides, :func:`curation.embeddings.embed_items`)."""
    from curation.embeddings import embed_items

    return embed_items(frame, embedder=embedder, project=project, progress=progress, actor=actor)


def flag_project(project: Project, *, embedder: Any = None, guideline: Guideline | None = None,
                 use_model: bool = True, seed: int = 0, force: bool = False,
                 model_probs: pd.DataFrame | None = None, model_signal: str = "embedding",
                 progress: Progress | None = None,
                 actor: str | None = None) -> FlagReport:
    """Embed the project's texts (cached in the project), run every flagger, store the flags.

    The review order (each flagged item's priority) is saved with the flags run,
    so the review queue reads it back without recomputing anything. When the
    annotations and settings are unchanged since the last run, that run's flags
    are returned as they are (``force=True`` recomputes). ``model_probs`` and
    ``model_signal`` choose the model-based flaggers' probabilities (a fine-tuned
    model's out-of-fold ones: ``fine_tune.jobs.latest_model_probs``), as in
    :func:`curation.flags.flag_items`. ``actor``: who flagged, for the audit log; in team
    mode a member (``AccessError`` otherwise, before anything is computed).
    """
    from curation.embeddings import Embedder

    project.require(actor, "build the review queue")

    embedder = embedder or Embedder()
    guideline = guideline or project_guideline(project)
    fingerprint = _flags_fingerprint(project, embedder if use_model else None, guideline, seed,
                                     model_probs, model_signal)
    if not force:
        cached = _cached_flags(project, fingerprint)
        if cached is not None:
            return cached
    frame = project_annotations(project)
    start, embeddings = time.perf_counter(), None
    if use_model:
        embeddings = _item_embeddings(project, frame, embedder=embedder, actor=actor,
                                      progress=within(progress, 0.0, 0.6, "embedding texts..."))
    embed_seconds = time.perf_counter() - start
    report = flag_items(frame, labels=project.label_set(), embeddings=embeddings,
                        guideline=guideline, seed=seed, model_probs=model_probs,
                        model_signal=model_signal, progress=within(progress, 0.6, 1.0))
    report.timings = {"embed": embed_seconds, **report.timings}
    priority = report.queue.set_index("item_id")["priority"]
    rest = report.rest.set_index("item_id")["priority"].round(4)
    rest = rest[rest > 0]
    # the doubt signs of the items a reviewer can reach: the learning order's features
    # (columns of one item list: a third of the size of one dict per sign)
    doubt = report.context.doubt().reindex(priority.index.append(rest.index)).round(4)
    order = pd.concat([pd.DataFrame({"item_id": priority.index, "priority": priority.to_numpy(),
                                     "flagged": True}),
                       pd.DataFrame({"item_id": rest.index, "priority": rest.to_numpy(),
                                     "flagged": False})], ignore_index=True)
    order = order.drop_duplicates("item_id")  # an item is in the queue or in the rest, not both
    project.save_flags(report.flags, priorities=order, params={
        "fingerprint": fingerprint, "model_signal": model_signal, "skipped": report.skipped,
        "doubt": {"items": doubt.index.astype(str).tolist(),
                  "signs": {name: [None if np.isnan(v) else float(v) for v in col.to_numpy(float)]
                            for name, col in doubt.items()}}}, actor=actor)
    return report


def project_truth(project: Project) -> tuple[pd.Series, str]:
    """``(item_id -> true label, where it comes from)``: the gold labels when the project has
    any, else what reviewers decided (a label set or kept); empty when neither exists."""
    gold = project.gold_labels()
    if len(gold):
        return gold, f"the gold labels of {len(gold):,} items"
    latest = project.latest_decisions()
    kept = latest[latest["action"] == "keep"].set_index("item_id")["old_label"]
    changed = latest[latest["action"] == "set_label"].set_index("item_id")["curated_label"]
    truth = pd.concat([kept, changed]).dropna().astype(str)
    if truth.empty:
        return truth, ""
    return truth, (f"reviewers' decisions on {len(truth):,} items (the queue chose which items "
                   "were reviewed, so these figures say how it orders what it showed, not what it "
                   "missed: add gold labels for a fair measure)")


def evaluate_project_flags(project: Project, *, embedder: Any = None, seed: int = 0,
                           model_probs: pd.DataFrame | None = None,
                           model_signal: str = "embedding",
                           actor: str | None = None) -> FlagEvaluation:
    """The review queue against random, vote share, Dawid-Skene, cleanlab and CROWDLAB on the
    project's items with a known label (:func:`project_truth`), in one flagging pass on the
    project's cached embeddings (the same queue the Review page shows: same data, same seed,
    same model signal). Texts not in the cache yet are embedded and cached: in team mode
    only for a member (``actor``)."""
    truth, source = project_truth(project)
    if truth.empty:
        raise ValueError("no item has a known label yet: import gold labels (a gold column) or "
                         "decide some items on the Review page, then measure again.")
    frame = project_annotations(project)
    embeddings = _item_embeddings(project, frame, embedder=embedder, actor=actor)
    return evaluate_flags(frame, truth, embeddings=embeddings, guideline=project_guideline(project),
                          seed=seed, truth_source=source, model_probs=model_probs,
                          model_signal=model_signal, labels=project.label_set())


def _flags_fingerprint(project: Project, embedder: Any, guideline: Guideline | None,
                       seed: int, model_probs: pd.DataFrame | None = None,
                       model_signal: str = "embedding") -> str:
    imports, _decisions, n_items, n_annotations = project.data_version()
    probs = (None if model_probs is None else
             hashlib.sha1(pd.util.hash_pandas_object(model_probs).to_numpy().tobytes()).hexdigest())
    parts = [imports, n_items, n_annotations, project.label_set(), seed,
             getattr(embedder, "model_key", None), guideline.source if guideline else None,
             sorted(FLAGGERS), model_signal, probs]
    return json.dumps(parts, default=str)


def _cached_flags(project: Project, fingerprint: str) -> FlagReport | None:
    flags = project.latest_flags()
    if flags.empty:
        return None
    params = project.get_run(int(flags["run_id"].iloc[0]))["params"] or {}
    if params.get("fingerprint") != fingerprint:
        return None
    start = time.perf_counter()
    queue = load_queue(project, flags=flags)
    return FlagReport(flags=flags.drop(columns=["run_id"]), queue=queue,
                      skipped=params.get("skipped") or {},
                      timings={"cached": time.perf_counter() - start})


def load_doubt(project: Project, *, flags: pd.DataFrame | None = None) -> pd.DataFrame | None:
    """Per queued (or "go on") item, the doubt signs of the latest flags run (``flags``: that
    run's flags when already read); None before any run, or for a run saved before the signs
    were kept."""
    flags = project.latest_flags() if flags is None else flags
    if flags.empty:
        return None
    stored = (project.get_run(int(flags["run_id"].iloc[0]))["params"] or {}).get("doubt")
    if not stored:
        return None
    return pd.DataFrame(stored["signs"], index=pd.Index(stored["items"], name="item_id"), dtype=float)


def load_queue(project: Project, *, flags: pd.DataFrame | None = None,
               include_rest: bool = False) -> pd.DataFrame:
    """The review queue of the project's latest flags run (empty if it was never flagged).

    ``include_rest``: append the items no flagger raised that still have some doubt, by it
    (:func:`curation.flags.unflagged_order`), with an empty ``kinds``.
    """
    flags = project.latest_flags() if flags is None else flags
    if flags.empty:
        return review_queue(flags.drop(columns=["run_id"], errors="ignore"))
    order = project.priorities(int(flags["run_id"].iloc[0]))
    queue = review_queue(flags.drop(columns=["run_id"]))
    saved = order[order["flagged"]].set_index("item_id")["priority"]
    if len(saved):
        queue["priority"] = queue["item_id"].map(saved).fillna(queue["priority"])
        queue = by_priority(queue)
    rest = order[~order["flagged"]].set_index("item_id")["priority"]
    if include_rest and len(rest):
        rest = rest[~rest.index.isin(queue["item_id"])]
        tail = pd.DataFrame({"item_id": rest.index.astype(str), "priority": rest.to_numpy(),
                             "kinds": "", "n_flags": 0, "reason": REST_REASON,
                             "suggested_label": None, "rule_id": None})
        queue = pd.concat([queue, by_priority(tail)[queue.columns]], ignore_index=True)
    return queue.reset_index(drop=True)


# --------------------------------------------------------------------------- export


def export_curated(frame: pd.DataFrame, out_dir: str | os.PathLike, *,
                   decisions: pd.DataFrame | None = None, flags: pd.DataFrame | None = None,
                   embeddings: Any = None, include_ambiguous: bool = False, target: float = 0.90,
                   augmentations: pd.DataFrame | None = None, augmentation_embeddings: Any = None,
                   labels: Sequence[str] | None = None, **split_options: Any):
    """Curate (decisions over consensus), then write leak-free stratified splits and a data card.

    ``split_options`` go to :func:`curation.export.export_dataset` (formats,
    test_size, val_size, seed, near_duplicate_threshold). ``embeddings`` (one row per
    item of ``frame``) let near-duplicate grouping use meaning, not only normalised text.
    ``augmentations`` (``Project.augmentations()``) join the train split only, next
    to their source item (see :func:`augmented_rows` for which are left out). ``labels``: the
    label set in order (default: the labels seen, sorted).
    """
    from curation.export import export_dataset

    everything = curate(frame, decisions, labels=labels, include_dropped=True)
    if embeddings is not None:
        position = {item: i for i, item in enumerate(pd.unique(frame["item_id"]))}
        embeddings = embeddings[[position[i] for i in everything["item_id"]]]
    card = data_card_facts(frame, everything, flags, target=target, labels=labels)
    columns = ["item_id", *text_columns(everything), "label", "consensus_label", "status",
               "confidence", "gold"]
    rows = everything[columns].assign(augmented_from=None, method=None)
    if augmentations is not None and len(augmentations):
        extra, keep, card["augmentation"] = augmented_rows(augmentations, everything,
                                                           include_ambiguous=include_ambiguous)
        rows = pd.concat([rows, extra], ignore_index=True)
        if embeddings is not None:
            if augmentation_embeddings is None:
                raise ValueError("pass augmentation_embeddings (one row per augmented row) with "
                                 "embeddings, or neither.")
            embeddings = np.vstack([embeddings, np.asarray(augmentation_embeddings)[keep]])
    return export_dataset(rows, out_dir, embeddings=embeddings, card=card, labels=labels,
                          include_ambiguous=include_ambiguous, **split_options)


def augmented_rows(augmentations: pd.DataFrame, curated: pd.DataFrame, *,
                   include_ambiguous: bool = False) -> tuple[pd.DataFrame, Any, dict[str, Any]]:
    """Stored augmented rows ready for export, which of them were kept, and card facts.

    A row is left out when its source item is dropped (or ambiguous and not
    exported), or when the source's curated label has changed since the row was
    accepted (the new text would carry the old label).
    """
    source = curated.set_index("item_id")
    status = augmentations["item_id"].map(source["status"])
    label_now = augmentations["item_id"].map(source["label"])
    gone = status.isna() | status.eq("dropped") | (status.eq("ambiguous") & (not include_ambiguous))
    changed = ~gone & (label_now != augmentations["label"])
    keep = (~gone & ~changed).to_numpy()
    kept = augmentations[keep]
    extra = pd.DataFrame({"item_id": kept["aug_id"], "text": kept["text"],
                          **({TEXT_PAIR: kept[TEXT_PAIR]} if has_pairs(kept) else {}),
                          "label": kept["label"], "consensus_label": None, "status": "augmented", "confidence": None,
                          "gold": None, "augmented_from": kept["item_id"],
                          "method": kept["method"]})
    facts = {"rows_exported": int(keep.sum()), "all_in": "train",
             "left_out_source_dropped": int(gone.sum()),
             "left_out_label_changed": int(changed.sum()),
             "by_method": {k: int(v) for k, v in kept["method"].value_counts().items()}}
    return extra, keep, facts


def data_card_facts(frame: pd.DataFrame, everything: pd.DataFrame, flags: pd.DataFrame | None, *,
                    target: float, labels: Sequence[str] | None = None) -> dict[str, Any]:
    """What the data card says beyond the split counts: agreement, consensus, review, flags."""
    report = agreement_report(frame, labels=labels, target=target, n_boot=1000, seed=0, top_k=0)
    status = everything["status"].value_counts().to_dict()
    facts: dict[str, Any] = {
        "source": {"items": int(everything.shape[0]), "annotations": int(len(frame)),
                   "annotators": int(frame["annotator_id"].nunique())},
        "agreement": {"verdict": report.verdict(), "judged_by": report.judged_by,
                      "target": target, "meets_target": report.meets_target,
                      **{k: round(v, 4) for k, v in report.coefficients.items()}},
        "labels": {"consensus": "majority vote; Dawid-Skene breaks ties",
                   "ties_broken": int((everything["consensus_method"] != "majority").sum())},
        "review": {s: int(status.get(s, 0)) for s in STATUSES},
    }
    if flags is not None and len(flags):
        flagged = set(flags["item_id"])
        reviewed = set(everything.loc[everything["status"] != "consensus", "item_id"])
        facts["flags"] = {"items_flagged": len(flagged), "resolved": len(flagged & reviewed),
                          "open": len(flagged - reviewed),
                          "by_kind": {k: int(v) for k, v in flags["kind"].value_counts().items()}}
    return facts


def export_project(project: Project, out_dir: str | os.PathLike, *, use_model: bool = True,
                   actor: str | None = None, version: int | None = None, **options: Any):
    """Export a project's curated dataset, with its accepted augmented rows in train.

    Its decisions and latest flags are summarised in the data card; a manifest (what was
    exported, by whom, every file's checksum: :mod:`curation.export_history`) is written last,
    with ``version`` when the folder is one of a project's versioned exports. In team mode only
    a lead (``actor``) may export (:class:`curation.store.AccessError` otherwise).
    """
    project.require(actor, "export splits")
    frame = project_annotations(project)
    augmentations = project.augmentations()
    embeddings = aug_embeddings = None
    if use_model:
        from curation.embeddings import embed_rows

        embeddings = _item_embeddings(project, frame, actor=actor)
        aug_embeddings = embed_rows(augmentations, project=project, actor=actor)
    flags = project.latest_flags()
    result = export_curated(frame, out_dir, decisions=project.latest_decisions(),
                            flags=flags if len(flags) else None, embeddings=embeddings,
                            augmentations=augmentations, augmentation_embeddings=aug_embeddings,
                            labels=project.label_set(), **options)
    manifest = write_manifest(result, version=version, actor=actor,
                              options={"use_model": use_model, **options})
    result = dataclasses.replace(result, files=[*result.files, manifest.parent / ITEMS_FILE,
                                                manifest])
    project.log(actor, "export", out_dir=str(Path(out_dir).resolve()),
                **({} if version is None else {"version": version}))
    return result


def project_curated(project: Project) -> pd.DataFrame:
    """The project's curated dataset (consensus with review decisions applied)."""
    return curate(project_annotations(project), project.latest_decisions(),
                  labels=project.label_set())


def augment_project(project: Project, augmenter: Any, *, actor: str | None = None, **options: Any):
    """Augment the project's curated dataset (see :func:`curation.augment.augment`).

    The project's embedding cache serves the existing texts (and keeps new ones: in team
    mode only for a member, ``actor``); nothing else is saved until
    :meth:`curation.store.Project.save_augmentations` is called with the rows a person accepted.
    """
    from curation.augment import augment

    project.require(actor, "augment")
    return augment(project_curated(project), augmenter, project=project, actor=actor, **options)
