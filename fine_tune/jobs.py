"""Retrain-and-compare (and fine-tuned out-of-fold probabilities) as background jobs: a separate
process, a status file, cancel, resume view.

:func:`start_out_of_fold_job` runs :mod:`fine_tune.out_of_fold` the same way (run kind
``out_of_fold``, ``probs.csv`` in its folder, :func:`latest_model_probs` to read it back): the
Review page's fine-tuned model signal.

:func:`start_compare_job` writes the three data sets and the settings into a job folder,
records a ``retrain_compare`` run in the project (status ``running``, the folder in its
params) and starts ``python -m fine_tune.jobs FOLDER`` in its own session, so the app stays
responsive and a page reload finds the job again through the project's runs.

The worker writes ``status.json`` (state, fraction done, message, seconds left) after every
progress report, polls for a ``cancel`` file, and at the end writes ``report.json``,
``report.md`` and ``report.html`` and finishes the project run (``done``, ``cancelled`` or
``failed``, with the report or the error as its result).

The models of the first seed (seed 0 unless the seeds leave it out) are kept in
``models/before`` and ``models/after`` (``save_pretrained``, safetensors), each with
``predictions.csv`` (the test rows, the predicted label and its probability);
:func:`job_status` lists them under ``models`` and :func:`latest_saved_models` finds those of
the newest finished job, for the app's attention view (:mod:`fine_tune.attention`).
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from curation.schema import text_columns
from fine_tune._job_files import (
    _SIDES,
    CACHE_DIR,
    MODELS_DIR,
    URL_VAR,
    _read_json,
    _write_json,
    saved_models,
)
from fine_tune.queue import (
    DEFER_FINISH_VAR,
    PARENT_VAR,
    cancel_queued,
    copy_path,
    local_folder,
    queued_status,
)

__all__ = ["ACTIVE", "AUGMENT_KIND", "CACHE_DIR", "EXPERIMENTS", "EXPERIMENT_KIND", "FLAGS_KIND", "LR_KIND", "MODELS_DIR", "OOF_KIND",
           "RUN_KIND", "SEARCH_KIND", "cancel_job", "experiment_warnings", "job_status", "latest_job",
           "augment_candidates", "latest_model_probs", "latest_saved_models", "run_job",
           "saved_models", "start_augment_job",
           "start_compare_job", "start_experiment_job", "start_flags_job", "start_lr_range_job",
           "start_lr_search_job",
           "start_out_of_fold_job"]

logger = logging.getLogger(__name__)

RUN_KIND = "retrain_compare"
#: The project run kind of a fine-tuned out-of-fold job (:func:`start_out_of_fold_job`).
OOF_KIND = "out_of_fold"
#: An experiment on two uploaded data sets (multi-task or continual learning), as a job.
EXPERIMENT_KIND = "experiment"
EXPERIMENTS = ("multitask", "continual")
#: Flagging (embedding the texts, every flagger, the review order) as a job: the queue's ``cpu``
#: work (:func:`start_flags_job`).
FLAGS_KIND = "flag_job"
#: Augmentation candidates (generated and checked; a person accepts them) as a job
#: (:func:`start_augment_job`).
AUGMENT_KIND = "augment_job"
#: A learning-rate range test on the curated training rows, as a job.
LR_KIND = "lr_range"
#: A small search of the learning rate on a validation split of the curated rows, as a job.
SEARCH_KIND = "lr_search"
_FINAL = ("done", "failed", "cancelled")
#: The states of a job that has not ended: waiting for a queue worker, starting, running.
ACTIVE = ("queued", "starting", "running")


def start_compare_job(project, folder: str | os.PathLike, *, config=None, seeds=(0, 1, 2),
                      test_share: float = 0.5, data_seed: int = 0,
                      actor: str | None = None,
                      rules: str | os.PathLike | Mapping[str, Any] | list | None = None,
                      use_cache: bool = True) -> dict[str, Any]:
    """Prepare the data, resolve the settings, record the run and start the worker; returns its status.

    ``config`` is a mapping of the settings the user chose (the rest come from the advice on
    the curated data, :func:`fine_tune.settings.resolve_settings`), ``None`` (all advised), a
    whole ``TrainConfig`` (used as it is) or a ``ResolvedSettings``. In team mode only a lead
    (``actor``) may retrain (``curation.store.AccessError`` otherwise). ``rules`` is a
    post-processing rules file (:mod:`fine_tune.rules`), or its parsed content (an upload:
    written to the job folder as ``rules.yaml``); it is checked here, so a bad file is
    refused before anything starts, and the report shows its effect. With ``use_cache``,
    runs whose data, test set and settings are unchanged since an earlier job are reused
    (``$CURATION_HOME/compare-cache``).
    """
    project.require(actor, "retrain and compare")
    given_rules = rules
    if rules is not None:
        from fine_tune.rules import load_rules

        load_rules(rules).check_labels(project.label_set())
        rules = str(Path(rules).resolve()) if isinstance(rules, (str, os.PathLike)) else None
    from curation.workspace import curation_home
    from fine_tune.data import project_compare_data
    from fine_tune.settings import ResolvedSettings, resolve_settings

    data = project_compare_data(project, test_share=test_share, seed=data_seed)
    folder = Path(folder)
    if isinstance(config, Mapping) and config.get("report_to") and not config.get("tracking_dir"):
        config = {**config, "tracking_dir": str((folder / "tracking").resolve())}
    resolved = config if isinstance(config, ResolvedSettings) else resolve_settings(
        data.after[[*text_columns(data.after), "label"]], config)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("before", "after", "test"):
        getattr(data, name).to_csv(folder / f"{name}.csv", index=False)
    if given_rules is not None and rules is None:  # uploaded rules travel with the job
        import yaml

        rules = str((folder / "rules.yaml").resolve())
        content = dict(given_rules) if isinstance(given_rules, Mapping) else {"rules": list(given_rules)}
        Path(rules).write_text(yaml.safe_dump(content, allow_unicode=True, sort_keys=False),
                               encoding="utf-8")
    settings = {"config": resolved.config.to_dict(), "resolved": resolved.to_dict(),
                "seeds": list(seeds), "data": data.info, "project_url": project.display_url,
                "agreement": _agreement_line(project),
                "folder": str(folder.resolve()), "rules": rules,
                "cache_dir": str(curation_home() / CACHE_DIR) if use_cache else None}
    return _start(project, folder, RUN_KIND, settings, actor=actor)


def _agreement_line(project) -> str | None:
    """The project's agreement verdict, for the kept models' cards (None when it cannot be
    read: a card without it is better than no job)."""
    try:
        from curation.report import agreement_report

        frame = project.annotations()
        return agreement_report(frame, labels=project.label_set(), n_boot=200, top_k=0).verdict()
    except ValueError as err:  # data agreement cannot be read from (one label per item, ...)
        logger.info("no agreement line for the model cards: %s", err)
        return None


def start_out_of_fold_job(project, folder: str | os.PathLike, *, folds: int = 5, seed: int = 0,
                          config: dict[str, Any] | None = None,
                          actor: str | None = None) -> dict[str, Any]:
    """Fine-tune ``folds`` classifiers in the background: the review queue's fine-tuned model signal.

    The items and their current labels (majority vote, Dawid-Skene on ties) are written to
    ``items.csv``; the worker runs :func:`fine_tune.out_of_fold.fine_tuned_probabilities` and
    writes ``probs.csv`` (what :func:`latest_model_probs` reads for ``flag_project``). In team
    mode only a lead (``actor``) may start it: it is a training job, like a retrain.
    """
    project.require(actor, "fine-tune the review queue's model")
    from curation.workspace import project_annotations
    from fine_tune.out_of_fold import current_labels, held_out_folds

    frame = project_annotations(project)
    labels = project.label_set() or sorted(frame["label"].unique())
    items = current_labels(frame, labels=labels)
    held_out_folds(items["label"], folds, seed)  # refuse too few items or a single label before starting
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    items.to_csv(folder / "items.csv", index=False)
    settings = {"kind": OOF_KIND, "folds": folds, "seed": seed, "config": config or None,
                "labels": labels, "project_url": project.display_url,
                "folder": str(folder.resolve()),
                "data_version": list(project.data_version()), "items": len(items)}
    return _start(project, folder, OOF_KIND, settings, actor=actor)


def start_experiment_job(project, folder: str | os.PathLike, *, experiment: str,
                         data: dict[str, tuple[Any, Any]], config: dict[str, Any],
                         seeds: Sequence[int], options: dict[str, Any] | None = None,
                         actor: str | None = None) -> dict[str, Any]:
    """Run a multi-task or continual-learning comparison in the background.

    ``data``: two data sets by name, each ``(train, test)`` frames of ``text, label``, in order
    (for ``continual``: A, then B). They are written into ``folder``; the worker trains with
    ``config`` (:class:`fine_tune.config.TrainConfig` fields) and ``options`` (``schedule`` for
    multi-task; ``ewc_lambda`` and ``fisher_samples`` for continual) and writes ``report.json``
    and ``report.md``, with a warning for every model that learned no more than always
    answering its test set's most frequent class. Recorded as a run of the current project
    (a lead's act in team mode: it trains).
    """
    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; pick one of {list(EXPERIMENTS)}.")
    if len(data) != 2:
        raise ValueError("an experiment takes exactly two data sets.")
    project.require(actor, "run an experiment")
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    names = list(data)
    for k, (train, test) in enumerate(data.values()):
        train[[*text_columns(train), "label"]].to_csv(folder / "data" / f"{k}-train.csv", index=False)
        test[[*text_columns(test), "label"]].to_csv(folder / "data" / f"{k}-test.csv", index=False)
    settings = {"kind": EXPERIMENT_KIND, "experiment": experiment, "names": names,
                "config": dict(config), "seeds": [int(s) for s in seeds],
                "options": dict(options or {}), "project_url": project.display_url,
                "folder": str(folder.resolve())}
    return _start(project, folder, EXPERIMENT_KIND, settings, actor=actor)


def start_flags_job(project, folder: str | os.PathLike, *, signal: str = "embedding",
                    force: bool = False, actor: str | None = None) -> dict[str, Any]:
    """Flag the project in the background: embed its texts (cached in the project), run every
    flagger and store the flags and the review order in the project, as
    :func:`curation.workspace.flag_project` does in-process. ``signal``: the model signal
    (``embedding``; ``fine_tuned`` or ``ensemble`` read the newest fine-tuned folds, found by
    the job itself). A member's act in team mode, like flagging in the page."""
    project.require(actor, "build the review queue")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"kind": FLAGS_KIND, "signal": str(signal), "force": bool(force),
                "project_url": project.display_url, "folder": str(folder.resolve())}
    return _start(project, folder, FLAGS_KIND, settings, actor=actor)


#: The augmenter choices a job takes (:func:`curation.augment.augmenter_for`'s keywords).
_AUGMENTER_CHOICES = ("seed", "top_k", "max_share", "allow", "model", "forward", "backward")
#: The candidates and summary an augmentation job writes into its folder.
CANDIDATES_FILE = "candidates.json"


def start_augment_job(project, folder: str | os.PathLike, *, method: str,
                      choices: Mapping[str, Any], glossary_yaml: str | None = None,
                      glossary_name: str | None = None, options: Mapping[str, Any] | None = None,
                      actor: str | None = None) -> dict[str, Any]:
    """Generate and check augmentation candidates in the background, as
    :func:`curation.workspace.augment_project` does in-process; nothing is saved to the project
    (a person accepts rows afterwards). ``choices``: the augmenter's settings
    (``seed``, ``top_k``, ``max_share``, ``allow``, and ``model`` or ``forward``/``backward``);
    the glossary method gets its glossary as YAML text (``glossary_yaml``, checked here);
    ``options`` go to :func:`curation.augment.augment` (``items``, ``per_item``,
    ``max_per_item``, ``oversample``, ``side``, and ``checks`` as a dict of
    :class:`curation.augment.CheckSettings` fields). The glossary method runs on the ``cpu``
    queue, the model-based ones on ``gpu``. A member's act in team mode."""
    from curation.augment import AugmenterError, CheckSettings, glossary_from_yaml

    project.require(actor, "augment")
    unknown = sorted(set(choices) - set(_AUGMENTER_CHOICES))
    if unknown:
        raise AugmenterError(f"unknown augmenter settings {unknown}; use {list(_AUGMENTER_CHOICES)}.")
    if method == "glossary":
        if glossary_yaml is None:
            raise AugmenterError("the glossary method needs a glossary: choose one or upload one.")
        glossary_from_yaml(glossary_yaml, name=glossary_name or "glossary")  # refuse it now
    options = dict(options or {})
    try:
        CheckSettings(**dict(options.get("checks") or {}))  # bad check settings refused now
    except TypeError as err:
        raise ValueError(f"augmentation checks: {err}; use the fields of CheckSettings.") from None
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if glossary_yaml is not None:
        (folder / "glossary.yaml").write_text(glossary_yaml, encoding="utf-8")
    settings = {"kind": AUGMENT_KIND, "method": method, "choices": dict(choices),
                "glossary_name": glossary_name, "options": options,
                "project_url": project.display_url, "folder": str(folder.resolve())}
    return _start(project, folder, AUGMENT_KIND, settings, actor=actor,
                  queue="cpu" if method == "glossary" else "gpu")


def _augment_job(folder: Path, settings: dict[str, Any], reporter: _Reporter):
    from curation.augment import CheckSettings, augmenter_for, glossary_from_yaml
    from curation.store import Project
    from curation.workspace import augment_project

    glossary = None
    if (folder / "glossary.yaml").is_file():
        glossary = glossary_from_yaml((folder / "glossary.yaml").read_text(encoding="utf-8"),
                                      name=settings.get("glossary_name") or "glossary")
    augmenter = augmenter_for(settings["method"], glossary=glossary, **settings["choices"])
    options = dict(settings.get("options") or {})
    options["checks"] = CheckSettings(**dict(options.get("checks") or {}))

    with Project(os.environ.get(URL_VAR) or settings["project_url"], create=False) as project:
        try:
            result = augment_project(project, augmenter, actor=settings.get("actor"),
                                     progress=reporter.or_stop, **options)
        except _Cancelled:
            return "cancelled", {"error": "cancelled"}, "cancelled"
    records = result.candidates.astype(object).where(result.candidates.notna(), None)
    _write_json(folder / CANDIDATES_FILE, {"summary": result.summary,
                                           "candidates": records.to_dict(orient="records")})
    summary = {k: result.summary.get(k) for k in ("tried", "passed", "accepted", "rejections")}
    return "done", summary, (f"{summary['accepted']} candidates picked of {summary['tried']} "
                             "tried; tick the rows to keep on the Augment page")


def augment_candidates(status: Mapping[str, Any]) -> tuple[Any, dict[str, Any]] | None:
    """A finished augmentation job's ``(candidates frame, summary)``, or None before it is done
    (or when its folder has no candidates: ``ValueError`` naming the file)."""
    import pandas as pd

    if status.get("state") != "done" or not status.get("folder"):
        return None
    path = Path(status["folder"]) / CANDIDATES_FILE
    data = _read_json(path)
    if not isinstance(data, dict) or "candidates" not in data:
        if status.get("files_error"):
            raise ValueError(f"the augmentation job's candidates are not on this host: "
                             f"{status['files_error']}")
        raise ValueError(f"the augmentation job's candidates cannot be read ({path}); run it again.")
    return pd.DataFrame.from_records(data["candidates"]), data.get("summary") or {}


class _Cancelled(Exception):
    """Raised by :meth:`_Reporter.or_stop` once a cancel was asked: library steps that take a
    progress callback but no cancel (flagging, augmentation) stop at their next report."""


def _flags_job(folder: Path, settings: dict[str, Any], reporter: _Reporter):
    from curation.store import Project
    from curation.workspace import flag_project

    with Project(os.environ.get(URL_VAR) or settings["project_url"], create=False) as project:
        probs = None
        if settings.get("signal", "embedding") != "embedding":
            found = latest_model_probs(project)
            if found is None:
                raise ValueError(f"the model signal {settings['signal']!r} needs fine-tuned "
                                 "out-of-fold probabilities: fine-tune the queue's model first.")
            probs = found[0]
        try:
            report = flag_project(project, model_signal=settings.get("signal", "embedding"),
                                  model_probs=probs, force=bool(settings.get("force")),
                                  progress=reporter.or_stop, actor=settings.get("actor"))
        except _Cancelled:  # the texts embedded so far stay cached in the project
            return "cancelled", {"error": "cancelled"}, "cancelled; the texts embedded so far are cached"
    summary = {"flagged": int(len(report.queue)), "flags": int(len(report.flags))}
    return "done", summary, f"{summary['flagged']} items flagged ({summary['flags']} flags)"


def _curated_rows(project, config: Mapping[str, Any] | None, folder: str | os.PathLike):
    """``(compare data, resolved settings, folder)`` for a tuning job: the rows the retrain's
    after side trains on (its test items held out), the settings a retrain would use on them
    (``config``: the user's choices), and the job folder, created."""
    from fine_tune.data import project_compare_data
    from fine_tune.settings import resolve_settings

    data = project_compare_data(project)
    resolved = resolve_settings(data.after[[*text_columns(data.after), "label"]], dict(config or {}))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return data, resolved, folder


def start_lr_range_job(project, folder: str | os.PathLike, *, config: Mapping[str, Any] | None = None,
                       num_steps: int = 100, actor: str | None = None) -> dict[str, Any]:
    """A learning-rate range test (:func:`fine_tune.lr_finder.lr_range_test`) in the
    background, on the rows the retrain's after side trains on, with the settings a retrain
    would use (``config``: the user's choices; the rest advised). A lead's act in team mode.
    """
    project.require(actor, "retrain and compare")
    if not 5 <= int(num_steps) <= 1000:
        raise ValueError(f"num_steps={num_steps} must be between 5 and 1000 mini-batches.")
    data, resolved, folder = _curated_rows(project, config, folder)
    data.after[[*text_columns(data.after), "label"]].to_csv(folder / "train.csv", index=False)
    settings = {"kind": LR_KIND, "config": resolved.config.to_dict(), "num_steps": int(num_steps),
                "labels": project.label_set(), "project_url": project.display_url,
                "folder": str(folder.resolve()), "rows": len(data.after)}
    return _start(project, folder, LR_KIND, settings, actor=actor)


def start_lr_search_job(project, folder: str | os.PathLike, *, center: float,
                        factors: Sequence[float] = (1 / 3, 1.0, 3.0),
                        config: Mapping[str, Any] | None = None, validation_share: float = 0.2,
                        seed: int = 0, actor: str | None = None) -> dict[str, Any]:
    """Train once per learning rate ``center * factor`` on the curated training rows less a
    stratified validation split, and rank the rates by their best validation macro-F1 (lower
    validation loss breaks ties). The retrain's test set is never touched: the items it holds
    out are not in these rows. Augmented rows train only, and never with a validation source.
    A lead's act in team mode (it trains)."""
    project.require(actor, "retrain and compare")
    rates = sorted({float(center) * float(f) for f in factors})
    if not rates or not all(1e-8 <= r <= 1e-1 for r in rates) or len(rates) > 8:
        raise ValueError(f"learning rates {rates} must be 1 to 8 values between 1e-8 and 0.1; "
                         "center the search on the range test's suggestion.")
    if not 0.05 <= float(validation_share) <= 0.5:
        raise ValueError(f"validation_share={validation_share} must be between 0.05 and 0.5.")
    data, resolved, folder = _curated_rows(project, config, folder)
    data.after.to_csv(folder / "after.csv", index=False)
    settings = {"kind": SEARCH_KIND, "config": resolved.config.to_dict(), "rates": rates,
                "validation_share": float(validation_share), "seed": int(seed),
                "labels": project.label_set(), "project_url": project.display_url,
                "folder": str(folder.resolve())}
    return _start(project, folder, SEARCH_KIND, settings, actor=actor)


def _search_split(after, share: float, seed: int):
    """``(train, validation)``: validation from original rows only, stratified and seeded;
    augmented rows of a validation source left out (they would leak it)."""
    from fine_tune.multitask import split_train_test

    original = after[after["augmented_from"].fillna("") == ""]
    columns = ["item_id", *text_columns(after), "label"]
    train, validation = split_train_test(original[columns], share, seed=seed,
                                         name="the curated rows")
    augmented = after[(after["augmented_from"].fillna("") != "")
                      & ~after["augmented_from"].isin(set(validation["item_id"]))]
    import pandas as pd

    return (pd.concat([train, augmented[columns]], ignore_index=True),
            validation)


def _labels_in(settings: dict[str, Any], rows) -> list[str] | None:
    """The project's label set in its order, less the labels ``rows`` never use (a class with
    no training row cannot be learned); None without a label set (the rows' sorted labels)."""
    used = set(rows["label"])
    return [x for x in settings.get("labels") or [] if x in used] or None


def _lr_search_job(folder: Path, settings: dict[str, Any], reporter: _Reporter):
    """One training per rate, scored on the validation split; ``(state, result, message)``."""
    import dataclasses

    import pandas as pd

    from fine_tune.config import TrainConfig
    from fine_tune.train import train_classifier

    after = pd.read_csv(folder / "after.csv", dtype=str, keep_default_na=False)
    train, validation = _search_split(after, settings["validation_share"], settings["seed"])
    labels = _labels_in(settings, after)
    base = TrainConfig(**settings["config"])
    rows = []
    rates = settings["rates"]
    for k, rate in enumerate(rates):
        if reporter.cancelled():
            return "cancelled", {"runs": rows}, "cancelled; the rates tried so far are kept"
        config = dataclasses.replace(base, learning_rate=rate, save_checkpoints=False,
                                     seed=settings["seed"])
        result = train_classifier(
            train[[*text_columns(train), "label"]], validation[[*text_columns(validation), "label"]],
            None, config=config,
            labels=labels, should_stop=reporter.cancelled,
            progress=lambda f, m, k=k, rate=rate: reporter(
                (k + min(max(f, 0.0), 1.0)) / len(rates), f"rate {rate:.2e}: {m}"))
        history = result.history
        f1 = history["eval_macro_f1"].dropna()
        loss = history["eval_loss"].dropna()
        rows.append({"learning_rate": rate,
                     "best_macro_f1": None if f1.empty else float(f1.max()),
                     "best_eval_loss": None if loss.empty else float(loss.min()),
                     "best_epoch": result.best_epoch,
                     "diagnosis": result.diagnosis.summary})
    scored = [r for r in rows if r["best_macro_f1"] is not None]
    best = max(scored, key=lambda r: (r["best_macro_f1"], -(r["best_eval_loss"] or 0.0)),
               default=None)
    out = {"runs": rows, "best_learning_rate": None if best is None else best["learning_rate"],
           "n_train": len(train), "n_validation": len(validation)}
    _write_json(folder / "report.json", out)
    return "done", out, ("no rate was scored" if best is None else
                         f"best learning rate {best['learning_rate']:.2e} (validation macro-F1 "
                         f"{best['best_macro_f1']:.3f})")


def _start(project, folder: Path, kind: str, settings: dict[str, Any], *,
           actor: str | None, queue: str | None = None) -> dict[str, Any]:
    """Record the run, write the settings and a first status, start the worker process.

    The settings (in the runs table and ``settings.json``) carry the project URL with its
    password hidden; the worker gets the real one in its environment (:data:`URL_VAR`).
    """
    from fine_tune.queue import submit, uses_queue

    if uses_queue(project):  # PostgreSQL: a worker on any host runs it (fine_tune.queue)
        return submit(project, folder, kind, settings, actor=actor, queue=queue)
    settings["actor"] = actor
    run_id = project.start_run(kind, settings, actor=actor)
    settings["run_id"] = run_id
    _write_json(folder / "settings.json", settings)
    _write_json(folder / "status.json", {"state": "starting", "fraction": 0.0, "message":
                                         "starting the worker", "started_at": time.time(),
                                         "run_id": run_id})
    with open(folder / "worker.log", "ab") as log:  # the child keeps its own handle
        process = subprocess.Popen([sys.executable, "-m", "fine_tune.jobs", str(folder)],
                                   env={**os.environ, URL_VAR: project.url},
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   cwd=str(Path(__file__).resolve().parents[1]))
    # reap the worker when it ends, so a finished job leaves no zombie child in the app
    threading.Thread(target=process.wait, name=f"reap-job-{process.pid}", daemon=True).start()
    (folder / "pid").write_text(str(process.pid), encoding="utf-8")
    logger.info("started %s job %s (pid %d, run #%d)", kind, folder, process.pid, run_id)
    return job_status(folder)


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # reap our own finished child
        if finished == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def job_status(folder: str | os.PathLike) -> dict[str, Any]:
    """The job's status: state, fraction, message, seconds_left, and the report when done.

    A job whose process is gone without a final state reads as ``failed``.
    """
    folder = Path(folder)
    status = _read_json(folder / "status.json") or {"state": "unknown", "fraction": 0.0,
                                                   "message": f"no status in {folder}"}
    pid_file = folder / "pid"
    if status["state"] not in _FINAL and pid_file.is_file():
        if not _alive(int(pid_file.read_text())):
            time.sleep(0.2)  # the worker may be writing its last status
            status = _read_json(folder / "status.json") or status
            if status["state"] not in _FINAL:
                status = {**status, "state": "failed",
                          "message": "the worker process ended without a result; see worker.log"}
    if status["state"] == "done":
        status["report"] = _read_json(folder / "report.json")
    status["folder"] = str(folder)
    status["models"] = saved_models(folder)
    return status


def latest_saved_models(project, *, problems: list[str] | None = None) -> dict[str, Any] | None:
    """The kept models of the project's newest finished (``done``) job that has any.

    Returns ``{"run_id", "folder", "models": {"before": path, "after": path}}`` or ``None``
    (no job, or none kept models: jobs from before models were kept, or all failed). Why a
    job's files could not be copied to this host is appended to ``problems`` when given
    (:func:`fine_tune.queue.local_folder`).
    """
    runs = project.runs()
    if runs.empty:
        return None
    runs = runs[(runs["kind"] == RUN_KIND) & (runs["status"] == "done")]
    for run in runs.iloc[::-1].itertuples():
        folder = local_folder(run.params or {}, problems=problems)
        models = saved_models(folder) if folder else {}
        if models:
            return {"run_id": int(run.run_id), "folder": str(folder), "models": models}
    return None


def _own_run(project, folder: Path) -> int:
    """The id of ``project``'s newest run whose job folder is ``folder``; ``ValueError`` if none."""
    runs = project.runs()
    wanted = {str(folder), str(folder.resolve())}

    def same(params: dict) -> bool:  # a job kept at a URL: this host's copy has its name
        return params.get("folder") in wanted or bool(
            params.get("artifacts") and params.get("folder") and copy_path(params) == folder)

    mine = runs[[same(p or {}) for p in runs["params"]]] if len(runs) else runs
    if mine.empty:
        raise ValueError(f"{folder} is not a job of {project!r}; use a job from its own project.")
    return int(mine["run_id"].iloc[-1])


def resume_job(project, folder: str | os.PathLike, *, actor: str | None = None) -> dict[str, Any]:
    """Start a stopped job again on its own folder and settings (a lead's act in team mode).

    For a job that failed (its worker was killed, the machine went down) or was cancelled. A
    retrain-and-compare reuses every run it finished before it stopped (the run cache, when
    the job was started with it) and trains the rest; fine-tuned folds start over. The job is
    recorded as a new run; the audit log names who resumed it.
    """
    folder = Path(folder)
    old_run = _own_run(project, folder)
    project.require(actor, "resume a training job")
    run = project.get_run(old_run)
    if _queued(run):
        status = queued_status(project, run)
        folder = Path(status["folder"])  # this host's copy of a job kept at a URL
    else:
        status = job_status(folder)
    state = status["state"]
    if state not in ("failed", "cancelled"):
        raise ValueError(f"the job in {folder} is {state}: only a failed or cancelled job can be "
                         "resumed.")
    if project.get_run(old_run)["status"] == "running":  # a killed worker could not record it
        project.finish_run(old_run, status=state, result={"error": status.get("message", "")})
    settings = _read_json(folder / "settings.json")
    if not settings or settings.get("kind", RUN_KIND) not in (RUN_KIND, OOF_KIND):
        raise ValueError(f"{folder / 'settings.json'} is missing or not a job's settings; start "
                         "a new job instead.")
    for stale in ("cancel", "outcome.json", ".fetched"):
        (folder / stale).unlink(missing_ok=True)
    settings = {k: v for k, v in settings.items()
                if k not in ("run_id", "actor", "queue", "artifacts")}
    settings.setdefault("kind", RUN_KIND)
    settings["resumed"] = True
    return _start(project, folder, settings["kind"], settings, actor=actor)


def cancel_job(project, folder: str | os.PathLike, *, actor: str | None = None,
               grace_seconds: float = 30.0) -> None:
    """Ask the worker to stop after its current step; kill it if it has not within the grace.

    ``folder`` must be one of ``project``'s jobs (``ValueError`` otherwise); in team mode only
    a lead (``actor``) may cancel (``curation.store.AccessError``); the audit log names them.
    """
    folder = Path(folder)
    run_id = _own_run(project, folder)
    project.require(actor, "cancel a training job")
    run = project.get_run(run_id)
    if _queued(run):  # its worker may be on another host: ask through the database
        outcome = cancel_queued(project, run)
        project.log(actor, "cancel", run_id=run_id, folder=str(folder), queue=outcome)
        return
    (folder / "cancel").write_text(str(time.time()), encoding="utf-8")
    project.log(actor, "cancel", run_id=run_id, folder=str(folder))
    pid_file = folder / "pid"
    if grace_seconds <= 0 and pid_file.is_file():
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except OSError:
            pass


def latest_model_probs(project) -> tuple[Any, dict[str, Any]] | None:
    """The newest finished fine-tuned out-of-fold probabilities: ``(table, info)`` or ``None``.

    ``table`` is indexed by item id, one column per label (``flag_project(model_probs=...)``);
    ``info`` has the run id, the summary, and ``stale`` (True when the project's annotations
    changed since the job read them). A ``probs.csv`` that cannot be read raises ``ValueError``
    naming the run and the file.
    """
    runs = project.runs()
    if runs.empty:
        return None
    runs = runs[(runs["kind"] == OOF_KIND) & (runs["status"] == "done")]
    for run in runs.iloc[::-1].itertuples():
        params = run.params or {}
        folder = local_folder(params)
        path = Path(folder or "") / "probs.csv"
        if folder and path.is_file():
            version = list(project.data_version())
            stale = [version[0], *version[2:]] != [params["data_version"][0],
                                                   *params["data_version"][2:]]
            try:
                stat = path.stat()
                table = _read_probs(str(path), stat.st_mtime_ns, stat.st_size).copy()
            except (OSError, ValueError) as err:
                raise ValueError(f"the fine-tuned folds of run #{run.run_id} cannot be read "
                                 f"({path}): {err} Fine-tune again to replace them.") from err
            return table, {"run_id": int(run.run_id), "stale": stale,
                           "summary": (run.result or {}).get("summary", ""),
                           "folder": str(folder)}
    return None


@functools.lru_cache(maxsize=4)
def _read_probs(path: str, mtime_ns: int, size: int) -> Any:
    """``probs.csv`` read once per version of the file (the Review page asks on every rerun)."""
    from curation.flags import read_model_probs

    return read_model_probs(path)


def _queued(run) -> bool:
    """Whether a run (a row of ``project.runs()`` or a dict) went to the database queue."""
    return "queue" in (run["params"] or {})


def latest_job(project, kind: str = RUN_KIND) -> dict[str, Any] | None:
    """The status of the project's newest job of ``kind`` (default: retrain-and-compare), or ``None``."""
    runs = project.runs()
    runs = runs[runs["kind"] == kind] if len(runs) else runs
    if runs.empty:
        return None
    run = runs.iloc[-1]
    if _queued(run):
        return queued_status(project, run.to_dict())
    folder = (run["params"] or {}).get("folder")
    status = job_status(folder) if folder else {"state": run["status"]}
    status["run_id"] = int(run["run_id"])
    if run["status"] == "running" and status["state"] in _FINAL:
        # the worker died before it could record its end (killed, out of memory): say so in
        # the project too, so the run is not "running" for ever
        try:
            project.finish_run(int(run["run_id"]), status=status["state"],
                               result={"error": status.get("message", "")})
        except ValueError:  # the worker finished it in the meantime
            pass
    return status


class _KeepModels:
    """A trainer for :func:`fine_tune.compare.compare` that saves the models of one seed.

    It wraps ``trainer`` (passing ``save_to``) for the runs whose ``config.seed`` is ``seed``,
    saves into a hidden folder and renames it to ``models/<side>`` once the run finished, so a
    half-written model is never found; it adds ``predictions.csv`` (the test rows with the
    predicted label and its probability). The side is told by the training rows (train plus
    validation equal that side's frame), or by the order compare() trains in (before, after).
    """

    def __init__(self, trainer, folder: Path, frames: dict[str, Any], seed: int) -> None:
        self.trainer, self.folder, self.seed = trainer, Path(folder), seed
        self.rows = {side: _row_set(frames[side]) for side in _SIDES}
        self.calls = 0
        self.saved: dict[str, str] = {}
        params = inspect.signature(trainer).parameters.values()
        self.can_save = any(p.name == "save_to" or p.kind is p.VAR_KEYWORD for p in params)
        if not self.can_save:
            logger.warning("the trainer takes no save_to: no models are kept for the attention view")

    @property
    def cache_id(self) -> str:
        """The wrapped trainer's name: keeping a model does not change a run's result."""
        from fine_tune.run_cache import trainer_id

        return trainer_id(self.trainer)

    def _side(self, train, validation) -> str:
        rows = _row_set(train) | (_row_set(validation) if validation is not None else set())
        matches = [side for side in _SIDES if rows == self.rows[side]]
        return matches[0] if len(matches) == 1 else _SIDES[min(self.calls, 1)]

    def __call__(self, train, validation, test, *, config, **kwargs):
        if not self.can_save or getattr(config, "seed", None) != self.seed:
            return self.trainer(train, validation, test, config=config, **kwargs)
        side = self._side(train, validation)
        self.calls += 1
        models = self.folder / MODELS_DIR
        partial, final = models / f".{side}-partial", models / side
        shutil.rmtree(partial, ignore_errors=True)
        result = self.trainer(train, validation, test, config=config, save_to=str(partial),
                              **kwargs)
        if getattr(result, "cancelled", False) or not (partial / "config.json").is_file():
            shutil.rmtree(partial, ignore_errors=True)
            return result
        _predictions(test, result).to_csv(partial / "predictions.csv", index=False)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
        self.saved[side] = str(final)
        logger.info("kept the %s model of seed %d in %s", side, self.seed, final)
        return result


def _row_set(frame) -> set[tuple[str, str]]:
    return set(zip(frame["text"].astype(str), frame["label"].astype(str)))


def _predictions(test, result):
    """The test rows with the model's predicted label and its probability."""
    import numpy as np

    keep = [c for c in ("item_id", "text", "text_pair", "label") if c in test.columns]
    out = test[keep].reset_index(drop=True).copy()
    labels = list(result.labels)
    pred = np.asarray(result.test_pred, dtype=int)
    out["predicted"] = [labels[i] for i in pred]
    proba = getattr(result, "test_proba", None)
    out["probability"] = (np.asarray(proba)[np.arange(len(pred)), pred] if proba is not None
                          else np.nan)
    return out


class _Reporter:
    """Writes status.json on progress (at most every half second) with an ETA; polls cancel."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.start, self.last = folder, time.time(), 0.0
        self.plan: dict[str, Any] = {}

    def planned(self, plan: dict[str, Any]) -> None:
        """Before training: keep the settings and size notes in every status from now on."""
        self.plan = {"settings": plan["settings"].get("chosen") or [], "size_notes": plan["size_notes"]}
        self(0.0, "starting to train")

    def __call__(self, fraction: float, message: str) -> None:
        now = time.time()
        if now - self.last < 0.5 and 0 < fraction < 1:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed * (1 - fraction) / fraction if fraction > 0.01 else None
        _write_json(self.folder / "status.json", {
            "state": "running", "fraction": round(float(fraction), 4), "message": message,
            "elapsed_seconds": round(elapsed, 1),
            "seconds_left": None if left is None else round(left, 1), "started_at": self.start,
            **self.plan})

    def cancelled(self) -> bool:
        return (self.folder / "cancel").exists()

    def or_stop(self, fraction: float, message: str) -> None:
        """A progress report that raises :class:`_Cancelled` once a cancel was asked."""
        if self.cancelled():
            raise _Cancelled
        self(fraction, message)


def _cache(settings: dict[str, Any], folder: Path):
    if not settings.get("cache_dir"):
        return None
    from fine_tune.run_cache import RunCache

    return RunCache(settings["cache_dir"], origin={"folder": str(folder), "run_id": settings.get("run_id")})


def _settings_of(settings: dict[str, Any]):
    """The resolved settings (with their sources), or a plain config from an older job folder."""
    from fine_tune.config import TrainConfig
    from fine_tune.settings import ResolvedSettings

    if settings.get("resolved"):
        return ResolvedSettings.from_dict(settings["resolved"])
    return TrainConfig(**settings["config"])


def _copy_reused_models(folder: Path, reused: list[dict[str, Any]], seed: int) -> None:
    """A reused run trained no model here: take the one the job that trained it kept."""
    for run in reused:
        source = (run.get("origin") or {}).get("folder")
        target = folder / MODELS_DIR / run["side"]
        if run["seed"] != seed or not source or target.exists():
            continue
        kept = saved_models(source).get(run["side"])
        if kept:
            shutil.copytree(kept, target.with_name(f".{run['side']}-copy"), dirs_exist_ok=True)
            os.replace(target.with_name(f".{run['side']}-copy"), target)


def _compare_in(folder: Path, settings: dict[str, Any], reporter: _Reporter):
    import pandas as pd

    from fine_tune.compare import _default_trainer, compare

    frames = {n: pd.read_csv(folder / f"{n}.csv", keep_default_na=False)
              for n in ("before", "after", "test")}
    frames["after"]["augmented_from"] = frames["after"]["augmented_from"].replace("", None)
    seeds = [int(s) for s in settings["seeds"]]
    keep_seed = 0 if 0 in seeds or not seeds else seeds[0]
    keep = _KeepModels(_default_trainer(), folder, frames, keep_seed)
    rules = None
    if settings.get("rules"):
        from fine_tune.rules import load_rules

        rules = load_rules(settings["rules"])
    report = compare(frames["before"], frames["after"], frames["test"], config=_settings_of(settings),
                     seeds=seeds, progress=reporter, should_stop=reporter.cancelled, trainer=keep,
                     rules=rules, cache=_cache(settings, folder), on_start=reporter.planned)
    _copy_reused_models(folder, report.reused, keep_seed)
    return report


def _compare_job(folder: Path, settings: dict[str, Any], reporter: _Reporter):
    """Retrain and compare; ``(state, result, message)``."""
    report = _compare_in(folder, settings, reporter)
    result = report.to_dict()
    result["models"] = saved_models(folder)
    _compare_cards(folder, result, settings)
    _write_json(folder / "report.json", result)
    (folder / "report.md").write_text(report.to_markdown(), encoding="utf-8")
    (folder / "report.html").write_text(report.to_html(), encoding="utf-8")
    state = "cancelled" if report.cancelled else "done"
    return state, result, (f"{report.verdict}: {report.verdict_reason}" if state == "done"
                           else "cancelled; partial results kept")


def _compare_cards(folder: Path, result: dict[str, Any], settings: dict[str, Any]) -> None:
    """Each kept model's card rewritten with the comparison and the data's facts."""
    import pandas as pd

    from fine_tune.model_card import write_model_card

    data = dict(settings.get("data") or {})
    pairs = "text_pair" in pd.read_csv(folder / "after.csv", nrows=0).columns
    facts = {k: data[k] for k in ("test_source", "test_items", "relabelled", "dropped",
                                  "ambiguous", "augmented_rows") if k in data}
    if settings.get("agreement"):
        facts["agreement"] = settings["agreement"]
    for side, path in result["models"].items():
        write_model_card(path, labels=result["labels"], config=result["config"],
                         train_rows=data.get(f"{side}_rows"), pairs=pairs, side=side,
                         compare=result, data=facts)


def _out_of_fold_job(folder: Path, settings: dict[str, Any], reporter: _Reporter):
    """Fine-tuned out-of-fold probabilities to ``probs.csv``; ``(state, result, message)``."""
    import pandas as pd

    from fine_tune.out_of_fold import fine_tuned_probabilities

    items = pd.read_csv(folder / "items.csv", dtype=str, keep_default_na=False)
    out = fine_tuned_probabilities(items, labels=settings["labels"], folds=int(settings["folds"]),
                                   seed=int(settings["seed"]), config=settings.get("config"),
                                   progress=reporter, should_stop=reporter.cancelled)
    result = {"summary": out.summary(), "folds": out.folds, "fold_agreement": out.fold_agreement,
              "seconds": out.seconds, "device": out.device, "settings": out.settings}
    if out.cancelled:
        return "cancelled", result, "cancelled; nothing kept"
    out.to_csv(folder / "probs.csv")
    _write_json(folder / "report.json", result)
    return "done", result, out.summary()


def _experiment_job(folder: Path, settings: dict[str, Any], reporter: _Reporter):
    """A multi-task or continual comparison; ``(state, result, message)``."""
    import pandas as pd

    from fine_tune.config import TrainConfig

    names = settings["names"]
    data = {name: tuple(pd.read_csv(folder / "data" / f"{k}-{part}.csv", dtype=str,
                                    keep_default_na=False) for part in ("train", "test"))
            for k, name in enumerate(names)}
    config = TrainConfig(**settings["config"])
    options = settings.get("options") or {}  # the comparison's own keywords, its defaults kept
    if settings["experiment"] == "multitask":
        from fine_tune.multitask import compare_multitask

        report = compare_multitask(data, config, seeds=settings["seeds"], progress=reporter,
                                   **options)
    else:
        from fine_tune.continual import compare_continual

        report = compare_continual(data[names[0]], data[names[1]], config, seeds=settings["seeds"],
                                   names=tuple(names), progress=reporter, **options)
    result = report.to_dict()
    result["warnings"] = experiment_warnings(result, {n: d[1]["label"] for n, d in data.items()},
                                             {n: d[0]["label"] for n, d in data.items()})
    _write_json(folder / "report.json", result)
    (folder / "report.md").write_text(report.to_markdown(), encoding="utf-8")
    return "done", result, (f"{settings['experiment']} comparison done"
                            + (f"; {len(result['warnings'])} warning(s)" if result["warnings"] else ""))


def _lr_range_job(folder: Path, settings: dict[str, Any], reporter: _Reporter):
    """The range test; ``(state, result, message)``."""
    import pandas as pd

    from fine_tune.config import TrainConfig
    from fine_tune.lr_finder import lr_range_test

    train = pd.read_csv(folder / "train.csv", dtype=str, keep_default_na=False)
    labels = _labels_in(settings, train)
    reporter(0.05, f"range test: up to {settings['num_steps']} mini-batches, the learning rate "
                   "rising from 1e-7 to 1e-2")
    result = lr_range_test(train, config=TrainConfig(**settings["config"]),
                           num_steps=int(settings["num_steps"]), labels=labels).to_dict()
    _write_json(folder / "report.json", result)
    return "done", result, f"suggested learning rate {result['suggested_lr']:.2g}"


def experiment_warnings(result: dict[str, Any], tests: dict[str, Any],
                        trains: dict[str, Any]) -> list[str]:
    """One sentence per model whose mean macro-F1 on a test set is no better than always
    answering that test set's most frequent class (the retrain's ``majority_baseline`` rule),
    and one more when every model is so: the comparison then says nothing."""
    from fine_tune.verdict import majority_macro_f1

    def baseline(name: str) -> tuple[float, str]:
        labels = sorted(set(trains[name]) | set(tests[name]))
        codes = [labels.index(x) for x in tests[name]]
        top = max(labels, key=list(tests[name]).count)
        return majority_macro_f1(codes, len(labels)), top

    models = []  # (what, data set, mean macro-F1)
    if result.get("kind") == "continual":
        a, b = result["A"]["name"], result["B"]["name"]
        for method in ("plain", "ewc"):
            runs = result[method]["per_seed"]
            for key, name, when in (("macro_f1_A_after_A", a, f"after {a}"),
                                    ("macro_f1_B", b, f"after {b}")):
                values = [r[key] for r in runs if r.get(key) is not None]
                if values:
                    models.append((f"{method} ({when})", name, sum(values) / len(values)))
    else:
        for name, task in (result.get("tasks") or {}).items():
            for side in ("multi", "single"):
                f1 = (task.get(side) or {}).get("macro_f1", {}).get("mean")
                if f1 is not None:
                    models.append((f"{side}-task", name, f1))
    out = []
    for what, name, f1 in models:
        floor, top = baseline(name)
        if f1 <= floor + 1e-9:
            out.append(f"The {what} model on {name!r} learned no more than always answering "
                       f"{top!r}: macro-F1 {f1:.3f}, the same as that ({floor:.3f}). Train longer "
                       "or with a higher learning rate.")
    if models and len(out) == len(models):
        out.append("Every model learned only the most frequent class: this comparison says "
                   "nothing about the methods.")
    return out


def run_job(folder: str | os.PathLike) -> int:
    """The worker: run the job described in ``folder`` and record the outcome."""
    from curation.store import Project

    folder = Path(folder)
    settings = _read_json(folder / "settings.json")
    reporter = _Reporter(folder)
    state, result = "failed", None
    work = {OOF_KIND: _out_of_fold_job, EXPERIMENT_KIND: _experiment_job,
            LR_KIND: _lr_range_job, SEARCH_KIND: _lr_search_job, FLAGS_KIND: _flags_job,
            AUGMENT_KIND: _augment_job}.get(
        settings.get("kind"), _compare_job)
    try:
        state, result, message = work(folder, settings, reporter)
    except Exception as err:  # the worker must always record why it stopped
        message = f"{type(err).__name__}: {err}"
        result = {"error": message, "traceback": traceback.format_exc()}
        logger.exception("%s job failed", settings.get("kind", RUN_KIND))
    _write_json(folder / "status.json", {"state": state, "fraction": 1.0 if state == "done" else None,
                                         "message": message, "finished_at": time.time(),
                                         "models": saved_models(folder), **reporter.plan})
    if os.environ.get(DEFER_FINISH_VAR):  # a queue worker records the end after the upload
        _write_json(folder / "outcome.json", {"state": state, "result": result})
        return 0 if state != "failed" else 1
    try:
        with Project(os.environ.get(URL_VAR) or settings["project_url"], create=False) as project:
            project.finish_run(settings["run_id"], status=state, result=result)
    except Exception as err:  # the report files are written; the run row is secondary
        logger.warning("could not record the run in the project: %s", err)
    return 0 if state != "failed" else 1


def _stop_with_parent(parent: int) -> None:
    """A job started by a queue worker ends when the worker does (killed, host shutting down):
    the worker's heartbeat stops, the job is marked failed, and no orphan keeps training."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        logger.error("the worker (pid %d) is gone; stopping", parent)
        os._exit(3)

    threading.Thread(target=watch, name="watch-worker", daemon=True).start()


def _main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(argv) != 1:
        print("usage: python -m fine_tune.jobs JOB_FOLDER", file=sys.stderr)
        return 2
    if os.environ.get(PARENT_VAR, "").isdigit():
        _stop_with_parent(int(os.environ[PARENT_VAR]))
    return run_job(argv[0])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))


