"""Retrain-and-compare as a background job: a separate process, a status file, cancel, resume view.

:func:`start_compare_job` writes the three data sets and the settings into a job folder,
records a ``retrain_compare`` run in the project (status ``running``, the folder in its
params) and starts ``python -m fine_tune.jobs FOLDER`` in its own session, so the app stays
responsive and a page reload finds the job again through the project's runs.

The worker writes ``status.json`` (state, fraction done, message, seconds left) after every
progress report, polls for a ``cancel`` file, and at the end writes ``report.json``,
``report.md`` and ``report.html`` and finishes the project run (``done``, ``cancelled`` or
``failed``, with the report or the error as its result).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

__all__ = ["RUN_KIND", "cancel_job", "job_status", "latest_job", "run_job", "start_compare_job"]

logger = logging.getLogger(__name__)

RUN_KIND = "retrain_compare"
_FINAL = ("done", "failed", "cancelled")


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def start_compare_job(project, folder: str | os.PathLike, *, config=None, seeds=(0, 1, 2),
                      test_share: float = 0.5, data_seed: int = 0,
                      actor: str | None = None) -> dict[str, Any]:
    """Prepare the data, record the run and start the worker process; returns its status.

    In team mode only a lead (``actor``) may retrain (``curation.store.AccessError`` otherwise).
    """
    project.require_role(actor, "lead", to="retrain and compare")
    from fine_tune.config import TrainConfig
    from fine_tune.data import project_compare_data

    config = config or TrainConfig()
    data = project_compare_data(project, test_share=test_share, seed=data_seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("before", "after", "test"):
        getattr(data, name).to_csv(folder / f"{name}.csv", index=False)
    settings = {"config": config.to_dict(), "seeds": list(seeds), "data": data.info,
                "project_url": project.url, "folder": str(folder.resolve())}
    run_id = project.start_run(RUN_KIND, settings)
    settings["run_id"] = run_id
    _write_json(folder / "settings.json", settings)
    _write_json(folder / "status.json", {"state": "starting", "fraction": 0.0, "message":
                                         "starting the worker", "started_at": time.time(),
                                         "run_id": run_id})
    log = open(folder / "worker.log", "ab")
    process = subprocess.Popen([sys.executable, "-m", "fine_tune.jobs", str(folder)],
                               stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                               cwd=str(Path(__file__).resolve().parents[1]))
    (folder / "pid").write_text(str(process.pid), encoding="utf-8")
    logger.info("started retrain-and-compare job %s (pid %d, run #%d)", folder, process.pid, run_id)
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
    return status


def cancel_job(folder: str | os.PathLike, *, grace_seconds: float = 30.0) -> None:
    """Ask the worker to stop after its current step; kill it if it has not within the grace."""
    folder = Path(folder)
    (folder / "cancel").write_text(str(time.time()), encoding="utf-8")
    pid_file = folder / "pid"
    if grace_seconds <= 0 and pid_file.is_file():
        try:
            os.killpg(int(pid_file.read_text()), signal.SIGTERM)
        except OSError:
            pass


def latest_job(project) -> dict[str, Any] | None:
    """The status of the project's newest retrain-and-compare job, or ``None``."""
    runs = project.runs()
    runs = runs[runs["kind"] == RUN_KIND] if len(runs) else runs
    if runs.empty:
        return None
    run = runs.iloc[-1]
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


class _Reporter:
    """Writes status.json on progress (at most every half second) with an ETA; polls cancel."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.start, self.last = folder, time.time(), 0.0

    def __call__(self, fraction: float, message: str) -> None:
        now = time.time()
        if now - self.last < 0.5 and fraction < 1:
            return
        self.last = now
        elapsed = now - self.start
        left = elapsed * (1 - fraction) / fraction if fraction > 0.01 else None
        _write_json(self.folder / "status.json", {
            "state": "running", "fraction": round(float(fraction), 4), "message": message,
            "elapsed_seconds": round(elapsed, 1),
            "seconds_left": None if left is None else round(left, 1), "started_at": self.start})

    def cancelled(self) -> bool:
        return (self.folder / "cancel").exists()


def run_job(folder: str | os.PathLike) -> int:
    """The worker: run the comparison described in ``folder`` and record the outcome."""
    import pandas as pd

    from curation.store import Project
    from fine_tune.compare import compare
    from fine_tune.config import TrainConfig

    folder = Path(folder)
    settings = _read_json(folder / "settings.json")
    reporter = _Reporter(folder)
    state, result = "failed", None
    try:
        frames = {n: pd.read_csv(folder / f"{n}.csv", keep_default_na=False)
                  for n in ("before", "after", "test")}
        frames["after"]["augmented_from"] = frames["after"]["augmented_from"].replace("", None)
        config = TrainConfig(**settings["config"])
        report = compare(frames["before"], frames["after"], frames["test"], config=config,
                         seeds=settings["seeds"], progress=reporter,
                         should_stop=reporter.cancelled)
        result = report.to_dict()
        _write_json(folder / "report.json", result)
        (folder / "report.md").write_text(report.to_markdown(), encoding="utf-8")
        (folder / "report.html").write_text(report.to_html(), encoding="utf-8")
        state = "cancelled" if report.cancelled else "done"
        message = report.verdict if state == "done" else "cancelled; partial results kept"
    except Exception as err:  # the worker must always record why it stopped
        message = f"{type(err).__name__}: {err}"
        result = {"error": message, "traceback": traceback.format_exc()}
        logger.exception("retrain-and-compare job failed")
    _write_json(folder / "status.json", {"state": state, "fraction": 1.0 if state == "done" else None,
                                         "message": message, "finished_at": time.time()})
    try:
        with Project(settings["project_url"]) as project:
            project.finish_run(settings["run_id"], status=state, result=result)
    except Exception as err:  # the report files are written; the run row is secondary
        logger.warning("could not record the run in the project: %s", err)
    return 0 if state != "failed" else 1


def _main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if len(argv) != 1:
        print("usage: python -m fine_tune.jobs JOB_FOLDER", file=sys.stderr)
        return 2
    return run_job(argv[0])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(_main(sys.argv[1:]))


