"""How big a project gets, and how long the whole agreement report takes, at scale (issue 19,
part 4: the README's scaling section reads these figures).

1. **Store size per 100,000 texts**: a SQLite project of ``--items`` items (the sentences of
   ``flags_speed.make_items``), 3 annotations each, one MiniLM-sized embedding per item in the
   cache (384 float32; random unit vectors: their size, not their values, is measured) and a
   flags run with its review order (the vote-based flaggers). Reported: the file's bytes in all
   and per item, and the time of each write. With a PostgreSQL server (``CURATION_TEST_PG_URL``,
   ``scripts/pg_test_server.sh start``) the same project is written there too and its tables'
   total size reported.
2. **Agreement on 1,000,000 annotations**: ``agreement_report`` (4 coefficients with 1,000
   bootstrap replicates, pairwise kappas, per-class and per-annotator tables, consensus) on
   100,000 items x 10 annotators, every slot filled (``benchmarks/agreement.py``'s data).

Run: ``python benchmarks/store_size.py [--items 100000]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agreement import make_data  # noqa: E402  (benchmarks/ is on the path)
from flags_speed import annotate, make_items  # noqa: E402

from curation.report import agreement_report  # noqa: E402
from curation.store import Project, text_sha1  # noqa: E402
from curation.workspace import flag_project  # noqa: E402


def fill(project: Project, items, annotations) -> dict[str, float]:
    times = {}
    start = time.perf_counter()
    project.import_annotations(annotations, source="scale")
    times["import"] = time.perf_counter() - start
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(len(items), 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    start = time.perf_counter()
    for lo in range(0, len(items), 20_000):
        project.store_embeddings("all-MiniLM-L6-v2|normalize=True|max_seq_length=128",
                                 {text_sha1(t): v for t, v in zip(items["text"][lo:lo + 20_000],
                                                                  vectors[lo:lo + 20_000])})
    times["embeddings"] = time.perf_counter() - start
    start = time.perf_counter()
    flag_project(project, use_model=False)
    times["flags"] = time.perf_counter() - start
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    args = parser.parse_args(argv)
    items = make_items(args.items)
    annotations = annotate(items)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "scale.sqlite"
        with Project(path) as project:
            times = fill(project, items, annotations)
        size = path.stat().st_size + sum(p.stat().st_size for p in Path(tmp).glob("scale.sqlite-*"))
    print(f"1. SQLite, {len(items):,} items, {len(annotations):,} annotations, {len(items):,} "
          f"embeddings, one flags run: {size / 2**20:,.0f} MiB ({size / len(items):,.0f} bytes "
          f"an item); import {times['import']:.1f} s, embeddings {times['embeddings']:.1f} s, "
          f"flags {times['flags']:.1f} s")
    url = os.environ.get("CURATION_TEST_PG_URL")
    if url:
        import sqlalchemy as sa

        name = f"scale_{os.getpid()}"
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        target = url.rsplit("/", 1)[0] + "/" + name
        try:
            with Project(target) as project:
                times = fill(project, items, annotations)
            engine = sa.create_engine(target)
            with engine.connect() as conn:
                total = conn.exec_driver_sql("SELECT pg_database_size(current_database())").scalar()
            engine.dispose()
            print(f"   PostgreSQL: {total / 2**20:,.0f} MiB ({total / len(items):,.0f} bytes an "
                  f"item, the empty database included); import {times['import']:.1f} s, "
                  f"embeddings {times['embeddings']:.1f} s, flags {times['flags']:.1f} s")
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            admin.dispose()
    frame, _ = make_data(100_000, per_item=10)
    start = time.perf_counter()
    report = agreement_report(frame, n_boot=1000, seed=0)
    took = time.perf_counter() - start
    print(f"2. agreement on {len(frame):,} annotations ({report.n_items:,} items x "
          f"{report.n_annotators} annotators): {took:.1f} s, the whole report ({report.judged_by} "
          f"{report.coefficients[report.judged_by]:.3f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
