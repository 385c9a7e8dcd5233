"""Jobs in the project's PostgreSQL database (fine_tune/queue.py), run by a separately started
``curation worker`` process, as a GPU host would run them.

The worker gets a ``CURATION_HOME`` of its own (another host's disk) and both sides share only
the database and an artifact root given as an fsspec URL (``file://...``): the worker downloads
the job's inputs and uploads its results, and the app's host reads the report from the database
and the models from its own copy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from curation.io import load_annotations
from curation.store import AccessError, Project
from curation.workspace import demo_label_set

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "curation" / "demo" / "bank_demo.csv"
STALL = "4"   # seconds without a heartbeat before a worker counts as dead (30 in use)


@pytest.fixture
def pg_project(tmp_path, monkeypatch):
    """A PostgreSQL team project with the demo's annotations (lead lena, annotator ann), its
    app-side home, and the shared artifact root as a file:// URL."""
    base = os.environ.get("CURATION_TEST_PG_URL")
    if not base:
        if os.environ.get("CI"):
            pytest.fail("CURATION_TEST_PG_URL is not set: .ci/run starts PostgreSQL")
        pytest.skip("no PostgreSQL server (CURATION_TEST_PG_URL unset; scripts/pg_test_server.sh)")
    from conftest import _postgres_database

    databases = _postgres_database(base)
    url = next(databases)
    artifacts = (tmp_path / "artifacts").as_uri()
    monkeypatch.setenv("CURATION_HOME", str(tmp_path / "app-host"))
    monkeypatch.setenv("CURATION_ARTIFACTS", artifacts)
    monkeypatch.setenv("CURATION_WORKER_STALL_SECONDS", STALL)
    monkeypatch.delenv("CURATION_JOBS", raising=False)
    with Project(url) as project:
        project.import_annotations(load_annotations(DEMO), label_set=demo_label_set())
        project.set_member("lena", "lead", actor="lena")
        project.set_member("ann", "annotator", actor="lena")
        yield project, url, tmp_path
    for _ in databases:  # drop the database
        pass


def _worker(url: str, tmp_path: Path, *extra: str) -> subprocess.Popen:
    """``curation worker`` in its own process, with a home of its own (another host)."""
    env = {**os.environ, "CURATION_HOME": str(tmp_path / "worker-host")}
    log = open(tmp_path / f"worker-{time.time_ns()}.log", "wb")
    return subprocess.Popen([sys.executable, "-m", "commands.curation", "worker", "--project", url,
                             *extra], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def _once(url: str, tmp_path: Path, queue: str, read) -> dict:
    """A ``--once`` worker on ``queue``: the job's final status once the worker has stopped."""
    worker = _worker(url, tmp_path, "--once", "--queue", queue)
    try:
        done = _until(read, ("done", "failed", "cancelled"), 300)
        assert worker.wait(timeout=60) == 0  # --once: it stops when the queue is empty
    finally:
        worker.kill()
    return done


def _until(read, states, timeout: float) -> dict:
    deadline = time.time() + timeout
    while True:
        status = read()
        if status is not None and status["state"] in states:
            return status
        if time.time() > deadline:
            raise AssertionError(f"still {status} after {timeout:.0f} s")
        time.sleep(0.5)


def _tiny(tiny_model: str, **more) -> dict:
    return {"model": tiny_model, "epochs": 1, "batch_size": 32, "max_length": 32,
            "learning_rate": 1e-3, "warmup_ratio": 0.0, "early_stopping_patience": 0,
            "save_checkpoints": False, **more}


def test_a_lead_s_job_runs_in_a_separate_worker_and_its_report_shows_in_the_app(
        pg_project, tiny_model, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from actions import jobs

    project, url, tmp_path = pg_project
    with pytest.raises(AccessError):  # an annotator does not start a training
        jobs.start_compare(project, actor="ann", config=_tiny(tiny_model), seeds=(0,))
    status = jobs.start_compare(project, actor="lena", config=_tiny(tiny_model), seeds=(0,))
    assert status["state"] == "queued" and status["queue"] == "gpu"
    assert "curation worker --project URL --queue gpu" in status["message"]  # no worker yet
    run = project.runs().iloc[-1]
    assert run["status"] == "running" and run["params"]["artifacts"].startswith("file://")
    worker = _worker(url, tmp_path, "--once", "--queue", "gpu")
    try:
        seen = {_until(lambda: jobs.latest_compare(project), ("running", "done", "failed"),
                       120)["state"]}
        done = _until(lambda: jobs.latest_compare(project), ("done", "failed", "cancelled"), 400)
        assert worker.wait(timeout=60) == 0  # --once: it stops when the queue is empty
    finally:
        worker.kill()
    assert done["state"] == "done", done
    report = done["report"]
    assert report["verdict"] and len(report["per_seed"]) == 1
    assert seen <= {"running", "done"}
    # the models and report files came back through the artifact root to this host's own copy
    app_copy = tmp_path / "app-host" / "jobs"
    assert Path(done["folder"]).parent == app_copy
    assert set(done["models"]) == {"before", "after"}
    names = [name for name, _, _ in jobs.report_files(done)]
    assert "report.md" in names and "model_card_after.md" in names
    # the worker trained in its own scratch folder, not in the app host's
    assert (tmp_path / "worker-host" / "worker" / Path(done["folder"]).name / "report.json").is_file()
    run = project.get_run(done["run_id"])
    assert run["status"] == "done" and run["progress"]["worker"].startswith("worker ")
    # the app, started on the project as the lead, shows the report
    monkeypatch.setenv("CURATION_URL", url)
    monkeypatch.setenv("CURATION_USER", "lena")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.switch_page("app_pages/retrain.py").run()
    assert not at.exception, at.exception
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.subheader, *at.info, *at.success,
                                              *at.warning, *at.error])
    verdict = report["verdict"].replace("_", " ")
    assert f"Verdict: {verdict}." in shown and "Per seed" in shown
    assert "files are not on this host" not in shown
    # a third host whose copy cannot be made (the artifact root is not where it was): the report
    # still shows, and the page says why the models and files are missing instead of hiding them
    monkeypatch.setenv("CURATION_HOME", str(tmp_path / "third-host"))
    (tmp_path / "artifacts").rename(tmp_path / "artifacts-moved")
    missing = jobs.latest_compare(project)
    assert missing["state"] == "done" and missing["models"] == {}
    assert "could not be copied to this host" in missing["files_error"]
    assert "CURATION_ARTIFACTS" in missing["files_error"]
    at.run()
    assert not at.exception, at.exception
    warned = " ".join(str(w.value) for w in at.warning)
    assert "files are not on this host" in warned and "could not be copied" in warned
    assert f"Verdict: {verdict}." in " ".join(str(e.value) for e in [
        *at.markdown, *at.info, *at.success, *at.warning, *at.error])
    assert "not on this host" in jobs.misclassified(missing).why_none  # not "kept no model"
    problems: list[str] = []
    assert jobs.saved_models(project, problems=problems) is None  # the attention view's source
    assert problems and "could not be copied to this host" in problems[0]
    # back: the next read after the retry wait fetches (the wait is tested in test_fine_tune_jobs)
    (tmp_path / "artifacts-moved").rename(tmp_path / "artifacts")
    import fine_tune.queue as job_queue

    monkeypatch.setattr(job_queue, "COPY_RETRY_S", 0.0)
    again = jobs.latest_compare(project)
    assert "files_error" not in again and set(again["models"]) == {"before", "after"}


def test_killing_the_worker_leaves_the_job_failed_and_stops_its_training(pg_project):
    from actions import review

    project, url, tmp_path = pg_project
    review.start_folds(project, actor="lena")  # 5 folds of MiniLM on the demo: minutes here
    run_id = int(project.runs()["run_id"].iloc[-1])
    worker = _worker(url, tmp_path, "--queue", "gpu")
    try:
        running = _until(lambda: review.folds_job(project), ("running", "failed", "done"), 120)
        assert running["state"] == "running", running
        time.sleep(2)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        failed = _until(lambda: review.folds_job(project), ("failed", "done", "cancelled"), 60)
    finally:
        worker.kill()
    assert failed["state"] == "failed", failed
    assert "stopped sending heartbeats" in failed["message"]
    assert project.get_run(run_id)["status"] == "failed"   # in the project, not only shown
    # the job's training process did not outlive its worker
    folder = Path(failed["folder"]).name
    deadline = time.time() + 15
    while time.time() < deadline and _processes_naming(folder):
        time.sleep(0.5)
    assert not _processes_naming(folder)
    # a lead resumes it: queued again as a new run, from this host's copy of its inputs
    from actions import jobs

    resumed = jobs.resume(project, failed, actor="lena")
    assert resumed["state"] == "queued" and resumed["run_id"] != run_id
    assert project.get_run(resumed["run_id"])["params"]["resumed"] is True
    jobs.cancel(project, resumed, actor="lena")
    assert review.folds_job(project)["state"] == "cancelled"


def _processes_naming(text: str) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "fine_tune.jobs" in cmdline and text in cmdline:
                found.append(int(proc.name))
    return found


def test_cancel_is_a_lead_s_act_at_once_while_queued_and_through_the_worker_while_running(
        pg_project):
    from actions import jobs, review

    project, url, tmp_path = pg_project
    waiting = review.start_folds(project, actor="lena")
    with pytest.raises(AccessError):
        jobs.cancel(project, waiting, actor="ann")
    jobs.cancel(project, waiting, actor="lena")
    assert review.folds_job(project)["state"] == "cancelled"  # no worker needed
    assert project.runs()["status"].iloc[-1] == "cancelled"
    log = project.audit()
    assert log[log["action"] == "cancel"]["actor"].tolist() == ["lena"]
    # a running job: the worker passes the request on and the job ends cancelled
    review.start_folds(project, actor="lena")
    worker = _worker(url, tmp_path, "--queue", "gpu")
    try:
        running = _until(lambda: review.folds_job(project), ("running", "failed", "done"), 120)
        assert running["state"] == "running", running
        jobs.cancel(project, running, actor="lena")
        ended = _until(lambda: review.folds_job(project), ("cancelled", "failed", "done"), 240)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
    assert ended["state"] == "cancelled", ended


def test_flagging_is_a_cpu_job_whose_flags_land_in_the_project(pg_project):
    from actions import jobs, review

    project, url, tmp_path = pg_project
    assert jobs.runs_on_workers(project)
    queued = review.start_flags(project, actor="ann")  # a member's act, as in the page
    assert queued["state"] == "queued" and queued["queue"] == "cpu"
    done = _once(url, tmp_path, "cpu", lambda: review.flags_job(project))
    assert done["state"] == "done", done
    assert done["report"]["flagged"] > 0
    flags = project.latest_flags()
    assert len(flags) and flags["item_id"].isin(project.annotations()["item_id"]).all()


def test_sqlite_projects_keep_the_local_runner(tmp_path, monkeypatch):
    from fine_tune.queue import uses_queue

    monkeypatch.delenv("CURATION_JOBS", raising=False)
    with Project(tmp_path / "p.sqlite") as project:
        assert not uses_queue(project)
        monkeypatch.setenv("CURATION_JOBS", "queue")
        with pytest.raises(ValueError, match="needs a PostgreSQL project"):
            uses_queue(project)
        monkeypatch.setenv("CURATION_JOBS", "sometimes")
        with pytest.raises(ValueError, match="use 'queue'"):
            uses_queue(project)
    out = subprocess.run([sys.executable, "-m", "commands.curation", "worker", "--project",
                          str(tmp_path / "p.sqlite")], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 2 and "needs a PostgreSQL project URL" in out.stderr


def test_progress_is_kept_while_running_and_never_written_over_the_end(pg_project):
    project, _url, _tmp = pg_project
    run_id = project.start_run("x", {}, actor="ann")
    assert project.set_run_progress(run_id, {"fraction": 0.5, "message": "half"})
    project.finish_run(run_id, status="done")
    assert not project.set_run_progress(run_id, {"fraction": 0.9})  # the end is not overwritten
    runs = project.runs()
    assert runs.set_index("run_id").at[run_id, "progress"] == {"fraction": 0.5, "message": "half"}


def test_a_worker_shut_down_stops_its_job_after_the_step_and_says_why(pg_project):
    from actions import review

    project, url, tmp_path = pg_project
    review.start_folds(project, actor="lena")
    worker = _worker(url, tmp_path, "--queue", "gpu")
    try:
        running = _until(lambda: review.folds_job(project), ("running", "failed", "done"), 120)
        assert running["state"] == "running", running
        worker.send_signal(signal.SIGTERM)  # a host shutting down
        assert worker.wait(timeout=120) == 0
    finally:
        worker.kill()
    ended = review.folds_job(project)
    assert ended["state"] == "cancelled", ended
    assert "was shut down" in ended["message"] and "Resume" in ended["message"]


def test_the_review_page_queues_flagging_and_shows_the_job(pg_project, monkeypatch):
    from streamlit.testing.v1 import AppTest

    project, url, _tmp = pg_project
    monkeypatch.setenv("CURATION_URL", url)
    monkeypatch.setenv("CURATION_USER", "ann")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.switch_page("app_pages/review.py").run()
    assert not at.exception, at.exception
    next(b for b in at.button if b.label == "Find items to review").click().run()
    assert not at.exception, at.exception
    shown = " ".join(str(e.value) for e in [*at.info, *at.markdown, *at.caption])
    assert "Flagging runs on a worker" in shown
    runs = project.runs()
    assert runs["kind"].iloc[-1] == "flag_job" and runs["params"].iloc[-1]["queue"] == "cpu"
    assert runs["params"].iloc[-1]["actor"] == "ann"


def test_augmentation_by_a_worker_gives_the_candidates_the_page_would(pg_project, monkeypatch):
    from streamlit.testing.v1 import AppTest

    from actions import augment

    project, url, tmp_path = pg_project
    glossary = ROOT / "guidelines" / "glossary_bank_support.yaml"
    choices = {"seed": 0, "top_k": 5, "max_share": 0.15, "allow": []}
    checks = augment.CheckSettings()
    with pytest.raises(AccessError):  # a stranger does not augment a team project
        augment.start_augment(project, actor="bob", method="glossary", choices=choices,
                              glossary_file=str(glossary), max_per_item=1, checks=checks)
    queued = augment.start_augment(project, actor="ann", method="glossary", choices=choices,
                                   glossary_file=str(glossary), max_per_item=1, checks=checks)
    assert queued["state"] == "queued" and queued["queue"] == "cpu"  # glossary: no model to run
    done = _once(url, tmp_path, "cpu", lambda: augment.augment_job(project))
    assert done["state"] == "done", done
    by_worker = augment.augment_job_result(done)
    # the same augmenter and checks in this process: the same candidates, the same picks
    here = augment.augment(project, augment.augmenter_for(
        "glossary", glossary=augment.load_glossary(str(glossary)), **choices),
        actor="ann", max_per_item=1, checks=checks)
    assert by_worker.summary["accepted"] == here.summary["accepted"] > 0
    columns = ["source_id", "text", "status", "label"]
    pd.testing.assert_frame_equal(by_worker.candidates[columns].reset_index(drop=True),
                                  here.candidates[columns].astype(object).reset_index(drop=True),
                                  check_dtype=False)
    assert project.augmentations().empty  # nothing saved until a person accepts rows
    # the Augment page reads the job's candidates
    monkeypatch.setenv("CURATION_URL", url)
    monkeypatch.setenv("CURATION_USER", "ann")
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.switch_page("app_pages/augment.py").run()
    assert not at.exception, at.exception
    picked = next(m for m in at.metric if m.label == "Picked")
    assert int(picked.value) == by_worker.summary["accepted"]
    # and its button queues a new job (the glossary the page offers by default)
    next(b for b in at.button if b.label == "Generate candidates").click().run()
    assert not at.exception, at.exception
    assert any("generated by a worker" in str(i.value) for i in at.info)
    newest = project.runs().iloc[-1]
    assert newest["kind"] == "augment_job" and newest["params"]["actor"] == "ann"
    assert newest["params"]["glossary_name"] == "glossary_bank_support.yaml"
