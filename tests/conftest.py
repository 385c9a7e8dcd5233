"""Shared fixtures: the real data sets in ../shared/data, expanded to long frames."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _own_curation_home(tmp_path_factory, monkeypatch):
    """No test writes to the user's ~/.curation (projects, jobs, the compare run cache): each
    test gets a fresh CURATION_HOME unless it sets its own."""
    monkeypatch.setenv("CURATION_HOME", str(tmp_path_factory.mktemp("curation-home")))


# --------------------------------------------------------------------------- markers, enforced
#: What a test did that makes it slow: filled by the hooks below during each test.
_HEAVY: list[str] = []
#: ``CURATION_AUDIT_SLOW=FILE`` lists the offenders in FILE instead of failing them (to mark many).
_AUDIT_ENV = "CURATION_AUDIT_SLOW"


def _watch_heavy_work() -> None:
    """Note every optimizer step and every subprocess started, whoever starts it."""
    import subprocess

    original = subprocess.Popen.__init__

    def popen_init(self, args, *a, **kw):
        _HEAVY.append(f"starts a subprocess ({str(args)[:80]})")
        original(self, args, *a, **kw)

    subprocess.Popen.__init__ = popen_init
    try:
        from torch.optim.optimizer import register_optimizer_step_pre_hook
    except ImportError:  # pragma: no cover - torch is a dependency
        return
    register_optimizer_step_pre_hook(lambda *_: _HEAVY.append("trains a model (an optimizer step)"))


def pytest_configure(config):
    _watch_heavy_work()


def pytest_collection_modifyitems(config, items):
    """``postgres`` on every test that takes the PostgreSQL back end; ``slow`` on browser tests."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("store_url") == "postgresql":
            item.add_marker(pytest.mark.postgres)
        if item.get_closest_marker("browser") is not None:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    _HEAVY.clear()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that trains or starts a subprocess without ``@pytest.mark.slow`` fails, so that
    ``-m "not slow"`` stays a quick run."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not _HEAVY or item.get_closest_marker("slow") is not None:
        return
    what = sorted(set(_HEAVY))[0]
    audit = os.environ.get(_AUDIT_ENV)
    if audit:
        with open(audit, "a", encoding="utf-8") as fh:
            fh.write(f"{item.nodeid}\t{what}\n")
        return
    if report.passed:
        report.outcome = "failed"
        report.longrepr = (f"{item.nodeid} {what} but is not marked slow: add @pytest.mark.slow "
                           "(or pytestmark = pytest.mark.slow for the module)")


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    return path


def amazon_long() -> pd.DataFrame:
    """Amazon crowd sentiment: vote counts expanded to anonymous annotator slots s1..s5.

    The file has counts, no annotator ids: each item's votes go to the slots in a seeded random
    order. (Until 2026-11-30 they went in label order, negatives first, so "s1" looked like an
    annotator who says negative whenever anyone does: a fake annotator that per-annotator models,
    Dawid-Skene and CROWDLAB, took at face value.)
    """
    raw = pd.read_csv(_need(SHARED / "amazon-crowd-sentiment" / "1k_amazon_reviews_crowdsourced.csv"))
    rows = []
    rng = np.random.default_rng(0)
    for r in raw.itertuples():
        votes = ["negative"] * r.is_negative_in + ["not_negative"] * r.is_negative_out
        votes = [votes[k] for k in rng.permutation(len(votes))]
        gold = "negative" if r.is_negative else "not_negative"
        rows += [(str(r.item_id), r.text, f"s{j + 1}", lab, gold) for j, lab in enumerate(votes)]
    return pd.DataFrame(rows, columns=["item_id", "text", "annotator_id", "label", "gold"])


def dynasent_long(name: str = "dynasent-v1.1-round02-dynabench-dev.jsonl") -> pd.DataFrame:
    """DynaSent: one row per (sentence, real worker id)."""
    rows = []
    with open(_need(SHARED / "dynasent" / name), encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            for label, workers in rec["label_distribution"].items():
                rows += [(rec["text_id"], rec["sentence"], w, label) for w in workers]
    return pd.DataFrame(rows, columns=["item_id", "text", "annotator_id", "label"])


@pytest.fixture(scope="session")
def amazon() -> pd.DataFrame:
    return amazon_long()


@pytest.fixture(scope="session")
def dynasent() -> pd.DataFrame:
    return dynasent_long()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    """A randomly initialised 2-layer BERT and its tokenizer in a folder (see tiny_models.py)."""
    pytest.importorskip("transformers")
    from tiny_models import build_tiny_bert

    return build_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


# --------------------------------------------------------------------------- store back ends
#: Set by ``scripts/pg_test_server.sh`` (and so by .ci/run): a PostgreSQL server for team mode.
PG_URL_ENV = "CURATION_TEST_PG_URL"


def _postgres_database(base_url: str):
    """A fresh, empty database on the test server; dropped afterwards."""
    import uuid

    import sqlalchemy as sa

    name = f"curation_t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(base_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.make_url(base_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A project URL on each back end: a SQLite file, and a new PostgreSQL database.

    Without ``CURATION_TEST_PG_URL`` the PostgreSQL case is skipped, except under CI, where a
    missing server is a failure (``.ci/run`` starts one).
    """
    import os

    if request.param == "sqlite":
        yield str(tmp_path / "p.sqlite")
        return
    base = os.environ.get(PG_URL_ENV)
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_URL_ENV} is not set: .ci/run starts PostgreSQL with scripts/pg_test_server.sh")
        pytest.skip(f"no PostgreSQL server ({PG_URL_ENV} unset; see scripts/pg_test_server.sh)")
    yield from _postgres_database(base)
