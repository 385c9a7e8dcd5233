"""What the database job queue costs against the local runner, on the same job (issue 19, part 1).

The job: flagging the bundled demo project (553 texts; the embeddings cached after the first
run, so both runners do the same work: load the model, read the cache, run every flagger, store
the flags). On one PostgreSQL project (``CURATION_TEST_PG_URL``, ``scripts/pg_test_server.sh
start``), ``--runs`` times each, alternating:

- **local**: ``CURATION_JOBS=local``, the job a process of this host, its status in files;
- **queue**: the job queued in the database and taken by a ``curation worker`` already waiting
  (LISTEN/NOTIFY), its status relayed through the database.

Reported per runner: seconds from submitting to the job's first "running" status and to "done"
(read as the app reads it, polling every 0.1 s), medians, and the queue/local ratio. Then the
time from SIGKILL of a worker in the middle of a job to the job read as failed, with the stall
limit set to ``--stall`` seconds (30 in use).

Run: ``python benchmarks/job_queue.py [--runs 3] [--stall 5]``.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from actions import review  # noqa: E402
from curation.io import load_annotations  # noqa: E402
from curation.store import Project  # noqa: E402
from curation.workspace import demo_label_set, flag_project  # noqa: E402


def database(base: str) -> tuple[str, sa.Engine, str]:
    name = f"curation_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return sa.make_url(base).set(database=name).render_as_string(hide_password=False), admin, name


def timed(project: Project, states: tuple[str, ...] = ("done", "failed", "cancelled")):
    """Submit a flagging job; ``(seconds to running, seconds to the end, final status)``."""
    start = time.perf_counter()
    review.start_flags(project, actor=None, force=True)
    running = None
    while True:
        status = review.flags_job(project)
        if running is None and status["state"] in ("running", *states):
            running = time.perf_counter() - start
        if status["state"] in states:
            return running, time.perf_counter() - start, status
        time.sleep(0.1)


def worker(url: str, home: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "commands.curation", "worker", "--project", url,
                             "--queue", "cpu"], cwd=ROOT, env={**os.environ, "CURATION_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stall", type=float, default=5.0)
    args = parser.parse_args()
    base = os.environ.get("CURATION_TEST_PG_URL")
    if not base:
        print("needs PostgreSQL: eval \"$(scripts/pg_test_server.sh start)\" first", file=sys.stderr)
        return 2
    os.environ["CURATION_WORKER_STALL_SECONDS"] = str(args.stall)
    os.environ.pop("CURATION_ARTIFACTS", None)
    url, admin, name = database(base)
    home = Path(tempfile.mkdtemp())
    os.environ["CURATION_HOME"] = str(home / "app")
    try:
        with Project(url) as project:
            project.import_annotations(load_annotations(ROOT / "curation/demo/bank_demo.csv"),
                                       label_set=demo_label_set())
            flag_project(project)  # embeddings cached: both runners do the same work
            proc = worker(url, home / "worker")
            figures: dict[str, list[tuple[float, float]]] = {"local": [], "queue": []}
            try:
                for _ in range(args.runs):
                    for runner in ("local", "queue"):
                        os.environ["CURATION_JOBS"] = runner
                        running, done, status = timed(project)
                        assert status["state"] == "done", status
                        figures[runner].append((running, done))
                for runner, rows in figures.items():
                    print(f"{runner:6s} to running: median {statistics.median(r for r, _ in rows):5.2f} s;"
                          f" to done: median {statistics.median(d for _, d in rows):5.2f} s "
                          f"(runs: {', '.join(f'{d:.1f}' for _, d in rows)})")
                ratio = statistics.median(d for _, d in figures["queue"]) / \
                    statistics.median(d for _, d in figures["local"])
                print(f"queue / local, submit to done: {ratio:.2f}x")
                # a worker killed in the middle of a job
                os.environ["CURATION_JOBS"] = "queue"
                review.start_flags(project, actor=None, force=True)
                while review.flags_job(project)["state"] != "running":
                    time.sleep(0.1)
                proc.send_signal(signal.SIGKILL)
                killed = time.perf_counter()
                while review.flags_job(project)["state"] not in ("failed", "done"):
                    time.sleep(0.2)
                state = review.flags_job(project)["state"]
                print(f"worker killed mid-job: read as {state} after "
                      f"{time.perf_counter() - killed:.1f} s (stall limit {args.stall:.0f} s)")
            finally:
                proc.kill()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
