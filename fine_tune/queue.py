"""Jobs in the project's PostgreSQL database, run by ``curation worker`` on any host.

A team project on PostgreSQL queues its heavy work (retrain-and-compare, fine-tuned folds,
learning-rate tests, experiments, flagging) in its own database with procrastinate
(https://procrastinate.readthedocs.io), so a GPU host that reaches the database runs it:

    curation worker --project postgresql+psycopg://user@db/bank --queue gpu

What lives where:

- the queue: procrastinate's tables (``procrastinate_jobs``, ``procrastinate_workers``, applied
  to the project's database the first time a job is queued); a job's arguments are its run id
  and its folder, never the project URL (no password in the queue);
- status, progress, time left, the report: the project's ``runs`` row (``progress`` while it
  runs, ``status`` and ``result`` at the end), so the app on any host reads them;
- cancel: procrastinate's abort request, which the worker passes to the job's process;
- a dead worker: procrastinate's workers send a heartbeat every few seconds; a job whose worker
  has been silent for :func:`stall_seconds` (30 s) is marked failed, in the queue and in the
  project run, by the next worker that starts or the next app that reads the job's status, so
  nothing stays "running" for ever. A failed job is started again with Resume (not retried by
  itself: a job that killed its worker, out of memory say, would kill the next one too);
- artifacts (job inputs, models, reports): the artifact root, ``$CURATION_ARTIFACTS``: a folder
  every host sees at the same path (a shared mount), or an fsspec URL (``s3://bucket/curation``,
  ``file:///srv/artifacts``...). With a URL the submitter uploads the job's inputs, the worker
  downloads them to a scratch folder of its own, runs, and uploads the results before it records
  the end; an app reading a finished job downloads them into its own ``$CURATION_HOME/jobs``.
  Unset, the root is ``$CURATION_HOME/jobs`` of the host that queued the job (workers on that
  host only, or the same folder mounted at the same path).

Which runner: ``$CURATION_JOBS`` is ``queue`` (jobs wait for a worker: the default for
PostgreSQL projects) or ``local`` (the app's host starts each job as its own process: the only
runner for SQLite projects, which no other host can reach).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from curation.store import redact_url
from fine_tune._job_files import CACHE_DIR, URL_VAR, _read_json, _write_json, saved_models

__all__ = ["ARTIFACTS_VAR", "COPY_RETRY_S", "JOBS_VAR", "KIND_QUEUE", "QUEUES", "TASK", "artifact_location",
           "cancel_queued", "copy_path", "fail_stalled", "live_workers", "local_folder", "queued_status",
           "run_worker", "stall_seconds", "submit", "uses_queue"]

logger = logging.getLogger(__name__)

#: The environment variable that picks the runner: ``queue`` or ``local``.
JOBS_VAR = "CURATION_JOBS"
#: The artifact root: a folder path or an fsspec URL.
ARTIFACTS_VAR = "CURATION_ARTIFACTS"
#: Seconds without a worker heartbeat before its job counts as dead (tests shorten it).
STALL_VAR = "CURATION_WORKER_STALL_SECONDS"
#: The one procrastinate task: run the job whose run id and folder it is given.
TASK = "curation.run_job"
QUEUES = ("gpu", "cpu")
#: The queue each job kind goes to unless the caller names one.
KIND_QUEUE = {"retrain_compare": "gpu", "out_of_fold": "gpu", "experiment": "gpu",
              "lr_range": "gpu", "lr_search": "gpu", "flag_job": "cpu", "augment_job": "gpu"}
#: The job process learns here that a worker started it: it leaves the end to the worker,
#: which records it after the results are uploaded.
DEFER_FINISH_VAR = "CURATION_JOB_DEFER_FINISH"
#: The worker's pid: the job process stops when its worker is gone (no orphan training).
PARENT_VAR = "CURATION_JOB_PARENT"
_SCHEMA_LOCK = 0x6375726174  # pg_advisory_lock key while the queue's tables are created


def stall_seconds() -> float:
    """Seconds of worker silence after which its job is failed (``$CURATION_WORKER_STALL_SECONDS``,
    default 30; at least 3)."""
    raw = os.environ.get(STALL_VAR, "").strip()
    try:
        value = float(raw) if raw else 30.0
    except ValueError:
        raise ValueError(f"{STALL_VAR}={raw!r} is not a number of seconds; unset it or give "
                         "one such as 30.") from None
    return max(value, 3.0)


def _backend(url: str) -> str:
    try:
        return sa.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        return "sqlite"  # a plain file path


def uses_queue(project) -> bool:
    """Whether ``project``'s jobs go to the database queue (PostgreSQL, unless
    ``$CURATION_JOBS=local``) rather than a process on this host."""
    mode = os.environ.get(JOBS_VAR, "").strip().lower()
    if mode not in ("", "local", "queue"):
        raise ValueError(f"{JOBS_VAR}={mode!r}: use 'queue' (workers started with curation worker) "
                         "or 'local' (jobs run on the app's host).")
    postgres = _backend(project.url) == "postgresql"
    if mode == "queue" and not postgres:
        raise ValueError(f"{JOBS_VAR}=queue needs a PostgreSQL project: another host cannot reach "
                         f"the SQLite file {project.display_url}. Unset it (jobs then run on this "
                         "host), or keep the project on PostgreSQL (CURATION_URL).")
    return postgres and mode != "local"


def _conninfo(url: str) -> str:
    """The libpq connection string of a SQLAlchemy PostgreSQL URL (password kept)."""
    parsed = sa.make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def _app(url: str):
    import procrastinate

    connector = procrastinate.PsycopgConnector(conninfo=_conninfo(url), min_size=1, max_size=4)
    return procrastinate.App(connector=connector)


def _psycopg(url: str):
    import psycopg

    return psycopg.connect(_conninfo(url), autocommit=True)


def _has_queue(conn) -> bool:
    return conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL").fetchone()[0]


def _ensure_schema(url: str) -> None:
    """Create procrastinate's tables in the project's database once (under an advisory lock, so
    two hosts starting at once do not both try)."""
    from procrastinate.schema import SchemaManager

    with _psycopg(url) as conn:
        if _has_queue(conn):
            return
        conn.execute("SELECT pg_advisory_lock(%s)", (_SCHEMA_LOCK,))
        try:
            if not _has_queue(conn):
                conn.execute(SchemaManager.get_schema())
                logger.info("created the job queue's tables in the project database")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


# ----------------------------------------------------------------------------- artifact root
def _root() -> str | None:
    root = os.environ.get(ARTIFACTS_VAR, "").strip()
    return root or None


def _is_url(location: str) -> bool:
    return "://" in location


def artifact_location(name: str) -> str | None:
    """Where a job named ``name`` (a folder name we made) keeps its files under the artifact
    root: a path, an fsspec URL, or None when no root is set (``$CURATION_HOME/jobs``)."""
    root = _root()
    if root is None:
        return None
    return f"{root.rstrip('/')}/jobs/{name}" if _is_url(root) else str(Path(root) / "jobs" / name)


def _fs(url: str):
    import fsspec

    try:
        return fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as err:
        raise ValueError(f"artifact root {url!r}: {err}. Install the fsspec back end for it "
                         f"(s3fs for s3://, gcsfs for gs://) or set {ARTIFACTS_VAR} to a folder."
                         ) from None


def _upload(folder: Path, url: str) -> None:
    fs, path = _fs(url)
    fs.makedirs(path, exist_ok=True)
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        target = f"{path.rstrip('/')}/{file.relative_to(folder).as_posix()}"
        fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        fs.put_file(str(file), target)


def _download(url: str, folder: Path) -> None:
    fs, path = _fs(url)
    if not fs.exists(path):
        raise ValueError(f"the job's files are not at {url}: check {ARTIFACTS_VAR} on this host "
                         "(it must name the root the job was queued with).")
    folder.mkdir(parents=True, exist_ok=True)
    base = path.rstrip("/")
    for remote in fs.find(path):
        relative = remote[len(base):].lstrip("/")
        if not relative or ".." in Path(relative).parts:
            continue
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(remote, str(target))


def copy_path(params: Mapping[str, Any]) -> Path:
    """Where this host keeps its copy of a job whose artifacts are at a URL (nothing fetched)."""
    from curation.workspace import curation_home

    return curation_home() / "jobs" / Path(str(params["folder"])).name


#: After a copy of a job's files failed, how long (seconds) this process answers with that
#: failure instead of trying again: a page drawn many times a minute must not wait for a
#: network timeout per finished job on every draw.
COPY_RETRY_S = 60.0
#: (artifact URL, local folder) -> (time.monotonic() of the failed try, its reason)
_FAILED_COPIES: dict[tuple[str, str], tuple[float, str]] = {}


def local_folder(params: Mapping[str, Any], *, problems: list[str] | None = None) -> Path | None:
    """A job's folder on this host, with its files: the folder itself (a path root, a local job),
    or, for a job whose artifacts are at a URL, this host's copy under ``$CURATION_HOME/jobs``
    (downloaded once the job has ended; tried again on the next call until it has its
    outcome). None when the run has no folder.

    A copy that cannot be made is logged, and its reason appended to ``problems`` when given:
    the folder is still returned, without the files that did not arrive. For
    :data:`COPY_RETRY_S` after a failed try the same reason is given without trying again."""
    folder = params.get("folder")
    if not folder:
        return None
    url = params.get("artifacts")
    if not url or not _is_url(url):
        return Path(folder)
    local = copy_path(params)
    if (local / ".fetched").is_file():
        return local
    key = (str(url), str(local))
    failed = _FAILED_COPIES.get(key)
    if failed is not None and time.monotonic() - failed[0] < COPY_RETRY_S:
        if problems is not None:
            problems.append(failed[1])
        return local
    try:
        _download(url, local)
    except (ValueError, OSError) as err:
        problem = (f"the job's files (models, report, outputs) could not be copied to this "
                   f"host from {redact_url(url)} into {local}: {err}. Check that this host "
                   f"reaches the artifact root and has its credentials; the copy is tried again "
                   f"when a page is drawn {COPY_RETRY_S:.0f} s or more after this try.")
        logger.warning("%s", problem)
        _FAILED_COPIES[key] = (time.monotonic(), problem)
        if problems is not None:
            problems.append(problem)
    else:
        _FAILED_COPIES.pop(key, None)
        if (local / "outcome.json").is_file():
            (local / ".fetched").write_text(str(time.time()), encoding="utf-8")
    return local


# ----------------------------------------------------------------------------- submit, read, cancel
def submit(project, folder: Path, kind: str, settings: dict[str, Any], *,
           actor: str | None, queue: str | None = None) -> dict[str, Any]:
    """Queue a prepared job (its inputs written in ``folder``): the run is recorded with the
    queue's job id and the artifact location; returns its status. ``queue``: ``gpu`` or ``cpu``
    (default by kind, :data:`KIND_QUEUE`)."""
    queue = queue or KIND_QUEUE.get(kind, "gpu")
    if queue not in QUEUES:
        raise ValueError(f"queue {queue!r} is not one of {list(QUEUES)}.")
    _ensure_schema(project.url)
    location = artifact_location(folder.name)
    settings = {**settings, "actor": actor, "queue": queue}
    settings.setdefault("folder", str(folder.resolve()))
    if location is not None and _is_url(location):
        settings["artifacts"] = location
    run_id = project.start_run(kind, settings, actor=actor)
    settings["run_id"] = run_id
    _write_json(folder / "settings.json", settings)
    if "artifacts" in settings:
        _upload(folder, settings["artifacts"])
    # "queued" before the job exists: a worker that takes it at once writes "running" after this
    project.set_run_progress(run_id, {"state": "queued", "queue": queue, "fraction": 0.0,
                                      "queued_at": time.time()})
    app = _app(project.url)
    with app.open():
        job_id = app.configure_task(TASK, queue=queue).defer(run_id=run_id,
                                                              folder=settings.get("artifacts")
                                                              or str(folder))
    logger.info("queued %s job (run #%d, queue job %d, queue %s)", kind, run_id, job_id, queue)
    return queued_status(project, project.get_run(run_id))


def live_workers(project) -> int:
    """How many workers have sent a heartbeat to this project's queue within
    :func:`stall_seconds`."""
    with _psycopg(project.url) as conn:
        if not _has_queue(conn):
            return 0
        return int(conn.execute(
            "SELECT count(*) FROM procrastinate_workers WHERE last_heartbeat > "
            "NOW() - make_interval(secs => %s)", (stall_seconds(),)).fetchone()[0])


def _job_id(project, run_id: int) -> int | None:
    """The queue's job of a run (found by its arguments: the run's progress may not name it
    yet), or None."""
    with _psycopg(project.url) as conn:
        if not _has_queue(conn):
            return None
        row = conn.execute("SELECT id FROM procrastinate_jobs WHERE task_name = %s AND "
                           "(args->>'run_id')::bigint = %s ORDER BY id DESC LIMIT 1",
                           (TASK, int(run_id))).fetchone()
    return None if row is None else int(row[0])


def fail_stalled(project) -> list[int]:
    """Mark failed, in the queue and in the project, every job whose worker has stopped sending
    heartbeats (killed, host down); returns their run ids."""
    from procrastinate import sql
    from psycopg.rows import dict_row

    with _psycopg(project.url) as conn:
        if not _has_queue(conn):
            return []
        with conn.cursor(row_factory=dict_row) as cur:
            stalled = cur.execute(sql.queries["select_stalled_jobs_by_heartbeat"],
                                  {"queue": None, "task_name": TASK,
                                   "seconds_since_heartbeat": stall_seconds()}).fetchall()
            for job in stalled:
                cur.execute(sql.queries["finish_job"], {"job_id": job["id"], "status": "failed",
                                                       "delete_job": False})
    failed = []
    for job in stalled:
        run_id = int(job["args"]["run_id"])
        progress = (project.get_run(run_id).get("progress") or {})
        worker = progress.get("worker", "its worker")
        try:
            project.finish_run(run_id, status="failed", result={
                "error": f"{worker} stopped sending heartbeats (killed, or its host went down) "
                         f"for more than {stall_seconds():.0f} s; the job did not finish. Resume "
                         "it to run again (a compare reuses the runs it had finished)."})
            failed.append(run_id)
        except ValueError:  # it ended in the meantime
            pass
    if failed:
        logger.warning("marked failed the jobs of dead workers: runs %s", failed)
    return failed


def queued_status(project, run: Mapping[str, Any]) -> dict[str, Any]:
    """The status of a queued job read from the database (``state``: queued, running, done,
    failed, cancelled; fraction, message, seconds left, size notes; the report when done;
    ``folder`` and ``models`` on this host once it has ended)."""
    params, progress = run.get("params") or {}, run.get("progress") or {}
    state = run["status"]
    if state == "running":
        if fail_stalled(project):  # this job's worker, or another's, died: record it first
            return queued_status(project, project.get_run(int(run["run_id"])))
        state = "running" if progress.get("state") == "running" else "queued"
    status = {k: progress.get(k) for k in ("fraction", "message", "seconds_left", "size_notes",
                                            "settings", "elapsed_seconds", "worker")
              if progress.get(k) is not None}
    status.update(state=state, run_id=int(run["run_id"]), queue=params.get("queue"),
                  job_id=progress.get("job_id"), where="queue")
    if state == "queued":
        waiting = f"waiting for a worker on the '{params.get('queue')}' queue"
        if not live_workers(project):
            waiting += (f"; none has reported in the last {stall_seconds():.0f} s. Start one on "
                        f"a host that reaches the database: curation worker --project URL "
                        f"--queue {params.get('queue')}")
        status["message"] = waiting
    result = run.get("result") or {}
    if state == "done":
        status["report"] = result
        status["fraction"] = 1.0
    elif state in ("failed", "cancelled"):
        status["message"] = result.get("error") or status.get("message") or state
    problems: list[str] = []
    folder = (local_folder(params, problems=problems) if state in ("done", "failed", "cancelled")
              else None)
    if problems:
        status["files_error"] = problems[0]
    status["folder"] = str(folder) if folder else params.get("folder")
    status["models"] = saved_models(folder) if folder else {}
    return status


def cancel_queued(project, run: Mapping[str, Any]) -> str:
    """Cancel a queued job: one still waiting is cancelled at once; a running one is asked to
    stop (its worker passes it on; the job ends ``cancelled`` after its current step).
    Returns ``"cancelled"``, ``"asked"`` or ``"over"`` (it had already ended)."""
    job_id = (run.get("progress") or {}).get("job_id") or _job_id(project, int(run["run_id"]))
    if run["status"] != "running" or job_id is None:
        return "over"
    app = _app(project.url)
    with app.open():
        if app.job_manager.cancel_job_by_id(int(job_id), abort=False):
            with contextlib.suppress(ValueError):
                project.finish_run(int(run["run_id"]), status="cancelled",
                                   result={"error": "cancelled before a worker took it"})
            return "cancelled"
        if app.job_manager.cancel_job_by_id(int(job_id), abort=True):
            return "asked"
    return "over"


# ----------------------------------------------------------------------------- the worker
def _worker_name() -> str:
    return f"worker {socket.gethostname()}:{os.getpid()}"


def _scratch(folder: str) -> Path:
    from curation.workspace import curation_home

    return curation_home() / "worker" / Path(folder.rstrip("/")).name


def _relay(project, run_id: int, folder: Path, process: subprocess.Popen, context) -> Any:
    """While the job's process runs: its status.json into the run's progress (about once a
    second), an abort request (a lead's cancel, or the worker shutting down) into its cancel
    file. Returns the abort's reason, or None."""
    last, written, asked = None, 0.0, None
    while process.poll() is None:
        status = _read_json(folder / "status.json") or {}
        if status != last or time.time() - written > 10:  # and now and then, as a keep-alive
            last, written = status, time.time()
            with contextlib.suppress(ValueError):
                project.set_run_progress(run_id, {"fraction": 0.0,
                                                  "message": f"started by {_worker_name()}",
                                                  **status, "state": "running",
                                                  "job_id": context.job.id,
                                                  "worker": _worker_name()})
        if asked is None and context.should_abort():
            (folder / "cancel").write_text(str(time.time()), encoding="utf-8")
            asked = context.abort_reason()
        time.sleep(1.0)
    return asked


def _localise(local: Path) -> None:
    """Point the job's settings at this host: paths inside the job's folder at the copy here,
    the run cache at this host's own (``$CURATION_HOME/compare-cache``)."""
    from curation.workspace import curation_home

    settings = _read_json(local / "settings.json") or {}
    original = settings.get("folder")
    if original and original != str(local):
        text = json.dumps(settings).replace(json.dumps(original)[1:-1], json.dumps(str(local))[1:-1])
        settings = json.loads(text)
    if settings.get("cache_dir"):
        settings["cache_dir"] = str(curation_home() / CACHE_DIR)
    _write_json(local / "settings.json", settings)


def _run_task(context, *, run_id: int, folder: str) -> None:
    """The procrastinate task: run one job in its own process and record its end."""
    from curation.store import Project

    url = context.additional_context["project_url"]
    remote = _is_url(folder)
    local = _scratch(folder) if remote else Path(folder)
    with Project(url, create=False) as project:
        try:
            if remote:
                shutil.rmtree(local, ignore_errors=True)
                _download(folder, local)
            elif not (local / "settings.json").is_file():
                raise ValueError(f"the job folder {folder} is not on this host: mount the "
                                 f"artifact root at the same path, or set {ARTIFACTS_VAR} to a "
                                 "URL every host reaches (s3://..., file:///shared/...).")
        except ValueError as err:
            project.finish_run(run_id, status="failed", result={"error": str(err)})
            raise
        for stale in ("outcome.json", "status.json", "cancel"):  # a resumed job's last ones
            (local / stale).unlink(missing_ok=True)
        _localise(local)
        env = {**os.environ, URL_VAR: url, DEFER_FINISH_VAR: "1", PARENT_VAR: str(os.getpid())}
        with open(local / "worker.log", "ab") as log:
            process = subprocess.Popen([sys.executable, "-m", "fine_tune.jobs", str(local)],
                                       env=env, stdout=log, stderr=subprocess.STDOUT,
                                       cwd=str(Path(__file__).resolve().parents[1]))
            reason = _relay(project, run_id, local, process, context)
        outcome = _read_json(local / "outcome.json")
        if outcome and outcome["state"] == "cancelled" and getattr(reason, "value", "") == "shutdown":
            outcome["result"] = {**(outcome["result"] or {}), "error": (
                f"stopped when {_worker_name()} was shut down, after the step it was on; Resume "
                "runs it again (a compare reuses the runs it had finished)")}
        if outcome is None:
            tail = (local / "worker.log").read_text(errors="replace")[-1500:]
            outcome = {"state": "failed", "result": {
                "error": f"the job's process ended (exit code {process.returncode}) without a "
                         f"result; the end of its log: {tail}"}}
            _write_json(local / "outcome.json", outcome)
        if remote:
            _upload(local, folder)
        with contextlib.suppress(ValueError):  # cancelled before it started: already recorded
            project.finish_run(run_id, status=outcome["state"], result=outcome["result"])
    if outcome["state"] == "failed":
        raise RuntimeError(f"run #{run_id} failed: {(outcome['result'] or {}).get('error', '')}"[:500])
    if outcome["state"] == "cancelled":
        from procrastinate.exceptions import JobAborted

        raise JobAborted(f"run #{run_id} was cancelled")


def run_worker(url: str, *, queues: list[str] | None = None, once: bool = False,
               concurrency: int = 1) -> None:
    """Run jobs of the project at ``url`` from ``queues`` (default: all) until stopped, or, with
    ``once``, until the queue is empty. Ctrl-C or SIGTERM: no new job is taken, and a running
    one stops after its current step and is recorded cancelled (Resume runs it again)."""
    from curation.store import Project

    for queue in queues or []:
        if queue not in QUEUES:
            raise ValueError(f"queue {queue!r} is not one of {list(QUEUES)}; pick one (or "
                             "leave --queue out for both).")
    if _backend(url) != "postgresql":
        raise ValueError("curation worker needs a PostgreSQL project URL "
                         "(postgresql+psycopg://user@host/db): a SQLite project runs its jobs on "
                         "the app's host.")
    with Project(url, create=False) as project:  # refuses a database that is not a project
        _ensure_schema(url)
        fail_stalled(project)
    app = _app(url)
    app.task(name=TASK, pass_context=True)(_run_task)
    heartbeat = max(stall_seconds() / 6, 0.5)
    logger.info("%s serving %s on queues %s", _worker_name(), project.display_url,
                ",".join(queues or QUEUES))
    app.run_worker(queues=list(queues) if queues else None, wait=not once,
                   concurrency=concurrency, additional_context={"project_url": url},
                   update_heartbeat_interval=heartbeat, stalled_worker_timeout=stall_seconds(),
                   listen_notify=not once, shutdown_graceful_timeout=None if once else 0)

