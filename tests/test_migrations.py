"""Schema migrations (curation.store.migrate, Alembic) on SQLite and PostgreSQL.

A project written before revisions existed (schema version 1: no ``alembic_version`` table, the
review order as JSON in the flags run's params) is built here by running the frozen revision
0001 alone and writing what the released code wrote; opening it with today's code must upgrade
it without losing a row."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from curation.store import SCHEMA_VERSION, Project, migrate
from curation.store.tables import metadata
from curation.workspace import load_queue

FRAME = pd.DataFrame({"item_id": ["a", "a", "b", "b", "c", "c"],
                      "text": ["x one", "x one", "y two", "y two", "z three", "z three"],
                      "annotator_id": ["u", "v"] * 3,
                      "label": ["pos", "neg", "pos", "pos", "neg", "neg"]})
OLD_PARAMS = {"fingerprint": "f", "model_signal": "embedding", "skipped": {},
              "priority": {"a": 0.9, "c": 0.2}, "rest_priority": {"b": 0.05}}


def _url(store_url: str) -> str:
    return store_url if "://" in store_url else f"sqlite:///{store_url}"


def _schema_1_project(store_url: str, *, with_audit: bool = True) -> None:
    """A project as curation wrote it before Alembic: revision 0001's tables, no revision record,
    ``meta.schema_version = '1'``, one flags run with its order in params."""
    engine = sa.create_engine(_url(store_url))
    try:
        with engine.begin() as conn:
            cfg = migrate._config(conn)
            from alembic import command
            command.upgrade(cfg, "0001")
            conn.exec_driver_sql("DROP TABLE alembic_version")
            if not with_audit:
                conn.exec_driver_sql("DROP TABLE audit")
            now = pd.Timestamp("2026-01-01", tz="UTC").to_pydatetime()
            conn.execute(sa.text("INSERT INTO meta (key, value) VALUES ('name', 'old')"))
            for item, text in (("a", "x one"), ("b", "y two"), ("c", "z three")):
                conn.execute(sa.text("INSERT INTO items (item_id, text, text_sha1, created_at) "
                                     "VALUES (:i, :t, :s, :n)"),
                             {"i": item, "t": text, "s": "0" * 40, "n": now})
            for position, label in enumerate(["pos", "neg"]):
                conn.execute(sa.text("INSERT INTO labels (label, position) VALUES (:l, :p)"),
                             {"l": label, "p": position})
            conn.execute(sa.text("INSERT INTO runs (run_id, kind, status, params, result, "
                                 "created_at) VALUES (1, 'flags', 'done', :p, '{}', :n)"),
                         {"p": json.dumps(OLD_PARAMS), "n": now})
            conn.execute(sa.text("INSERT INTO flags (run_id, item_id, kind, score, reason, "
                                 "position) VALUES (1, 'a', 'disagreement', 0.5, 'r', 0), "
                                 "(1, 'c', 'disagreement', 0.1, 'r', 1)"))
    finally:
        engine.dispose()


def _inspect(store_url: str, fn):
    engine = sa.create_engine(_url(store_url))
    try:
        with engine.connect() as conn:
            return fn(conn)
    finally:
        engine.dispose()


def test_revisions_build_exactly_the_tables_the_code_uses(store_url):
    """Every revision from an empty database == the live table definitions (what a new project
    gets from create_all): a change to curation/store/tables.py without a revision fails here."""
    engine = sa.create_engine(_url(store_url))
    try:
        with engine.begin() as conn:
            from alembic import command
            command.upgrade(migrate._config(conn), "head")
            diff = compare_metadata(MigrationContext.configure(
                conn, opts={"compare_type": True}), metadata)
    finally:
        engine.dispose()
    assert diff == []


def test_a_new_project_starts_at_the_newest_revision(store_url):
    with Project(store_url) as project:
        state = project.schema()
    assert state.current == migrate.head() and state.up_to_date and not state.pending
    meta = _inspect(store_url, lambda c: dict(c.execute(sa.text("SELECT key, value FROM meta")).all()))
    assert meta["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize("with_audit", [True, False], ids=["schema-1", "schema-1-before-audit"])
def test_a_schema_1_project_is_upgraded_on_open_without_losing_its_review_order(store_url, with_audit):
    _schema_1_project(store_url, with_audit=with_audit)
    with Project(store_url) as project:
        assert project.schema().current == migrate.head()
        assert project.name == "old"
        order = project.priorities()
        assert dict(zip(order["item_id"], order["priority"])) == {"a": 0.9, "c": 0.2, "b": 0.05}
        assert dict(zip(order["item_id"], order["flagged"])) == {"a": True, "c": True, "b": False}
        params = project.get_run(1)["params"]
        assert "priority" not in params and "rest_priority" not in params
        assert params["fingerprint"] == "f"  # everything else stays
        queue = load_queue(project, include_rest=True)
        assert queue["item_id"].tolist() == ["a", "c", "b"]
        project.import_annotations(FRAME, label_set=["pos", "neg"], on_conflict="keep")
        assert project.n_annotations() == 6
        assert "create" not in project.audit()["action"].tolist()  # an upgrade is no creation


def test_a_sqlite_project_is_copied_before_its_schema_is_upgraded(tmp_path):
    path = tmp_path / "old.sqlite"
    _schema_1_project(str(path))
    Project(path).close()
    backup = tmp_path / "old.sqlite.schema-1.bak"
    assert backup.is_file()
    with sqlite3.connect(backup) as conn:  # the copy is the file as it was, order and all
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        params = json.loads(conn.execute("SELECT params FROM runs").fetchone()[0])
    assert "alembic_version" not in tables and "priorities" not in tables
    assert params["priority"] == OLD_PARAMS["priority"]
    Project(path).close()  # up to date: no second copy
    assert sorted(p.name for p in tmp_path.glob("*.bak")) == ["old.sqlite.schema-1.bak"]


def test_downgrade_to_schema_1_and_back_keeps_the_order(store_url):
    _schema_1_project(store_url)
    Project(store_url).close()
    engine = sa.create_engine(_url(store_url))
    try:
        with engine.begin() as conn:
            before = migrate.downgrade(conn, "0001")
        assert before.current == migrate.head()
        with engine.connect() as conn:
            params = json.loads(conn.execute(sa.text("SELECT params FROM runs")).scalar_one())
            assert not sa.inspect(conn).has_table("priorities")
            version = conn.execute(sa.text("SELECT value FROM meta WHERE key = 'schema_version'"))
            assert version.scalar_one() == "1"
        assert params["priority"] == OLD_PARAMS["priority"]
        assert params["rest_priority"] == OLD_PARAMS["rest_priority"]
    finally:
        engine.dispose()
    with Project(store_url) as project:
        order = project.priorities()
    assert dict(zip(order["item_id"], order["priority"])) == {"a": 0.9, "c": 0.2, "b": 0.05}


def test_a_revision_from_a_newer_curation_is_refused_and_left_alone(store_url):
    Project(store_url).close()
    engine = sa.create_engine(_url(store_url))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    finally:
        engine.dispose()
    with pytest.raises(ValueError, match="'9999'.*newer curation"):
        Project(store_url)
    assert _inspect(store_url, lambda c: c.execute(
        sa.text("SELECT version_num FROM alembic_version")).scalar_one()) == "9999"


def test_two_openers_of_an_old_project_upgrade_it_once(store_url):
    _schema_1_project(store_url)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            Project(store_url).close()
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with Project(store_url) as project:
        assert len(project.priorities()) == 3
        assert project.schema().current == migrate.head()
    if "://" not in store_url:  # one copy, made by the one that upgraded (inside the write lock)
        assert len(list(Path(store_url).parent.glob("*.bak"))) == 1


def test_review_order_is_validated_and_read_per_run(store_url):
    with Project(store_url) as project:
        project.import_annotations(FRAME, label_set=["pos", "neg"])
        flags = pd.DataFrame({"item_id": ["a"], "kind": ["disagreement"], "score": [0.5],
                              "reason": ["r"], "suggested_label": [None], "rule_id": [None]})
        with pytest.raises(ValueError, match="not in the project: 'zz'"):
            project.save_flags(flags, priorities=pd.DataFrame({"item_id": ["zz"], "priority": [1.0]}))
        with pytest.raises(ValueError, match="finite.*'a'"):
            project.save_flags(flags, priorities=pd.DataFrame({"item_id": ["a"], "priority": [None]}))
        with pytest.raises(ValueError, match="more than once"):
            project.save_flags(flags, priorities=pd.DataFrame({"item_id": ["a", "a"],
                                                                "priority": [1.0, 0.5]}))
        assert project.runs().empty  # a refused save starts no run
        first = project.save_flags(flags, priorities=pd.DataFrame({"item_id": ["a", "b"],
                                                                    "priority": [0.3, 0.7],
                                                                    "flagged": [True, False]}))
        project.save_flags(flags)  # a run without an order
        assert project.priorities().empty
        order = project.priorities(first)
    assert order.to_dict("list") == {"item_id": ["b", "a"], "priority": [0.7, 0.3],
                                     "flagged": [False, True]}


def test_the_migrate_command_checks_upgrades_and_takes_back(store_url, capsys):
    from commands.curation import main

    _schema_1_project(store_url)
    assert main(["migrate", store_url, "--check"]) == 1
    out = capsys.readouterr().out
    pending = out.split("pending: ")[1].split(" (run")[0].split(", ")
    assert "schema version 1, before revisions" in out
    assert pending == [f"{n:04d}" for n in range(1, int(migrate.head()) + 1)]  # every revision
    assert main(["migrate", store_url]) == 0
    assert f"upgraded to revision {migrate.head()}" in capsys.readouterr().out
    assert main(["migrate", store_url, "--check"]) == 0
    assert "up to date" in capsys.readouterr().out
    with Project(store_url) as project:  # team mode: taking the schema back is a lead's act
        project.set_member("lena", "lead", actor="lena")
        project.set_member("ann", "annotator", actor="lena")
    assert main(["migrate", store_url, "--to", "0001", "--as", "ann"]) == 2
    assert "only a lead can take the schema back" in capsys.readouterr().err
    assert main(["migrate", store_url, "--to", "0001", "--as", "lena"]) == 0
    assert main(["migrate", store_url, "--check"]) == 1
    assert "pending: 0002" in capsys.readouterr().out
    copies = sorted(Path(store_url).parent.glob("*.bak")) if "://" not in store_url else []
    assert main(["migrate", store_url, "--to", "0042", "--as", "lena"]) == 2
    assert "unknown schema revision '0042'" in capsys.readouterr().err
    if "://" not in store_url:  # refused before anything was copied
        assert sorted(Path(store_url).parent.glob("*.bak")) == copies
    with Project(store_url) as project:
        log = project.audit()
    schema = log[log["action"] == "schema"]["detail"].tolist()
    assert [(d["before"], d["after"]) for d in schema][-3:] == [
        ("1 (before revisions)", migrate.head()), (migrate.head(), "0001"), ("0001", migrate.head())]


def test_migrate_names_a_missing_project(tmp_path, capsys):
    from commands.curation import main

    assert main(["migrate", str(tmp_path / "none.sqlite")]) == 2
    assert "there is no project at" in capsys.readouterr().err


def test_a_rollback_journal_file_opens_while_another_connection_writes_it(tmp_path):
    """The switch to WAL needs the exclusive lock and SQLite refuses it at once, busy timeout
    or not, while another connection holds the reserved lock (two openers of an older project
    switching together: CI met it as 'database is locked'). Opening waits for the writer."""
    path = tmp_path / "p.sqlite"
    _schema_1_project(str(path))
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    assert writer.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO meta (key, value) VALUES ('note', 'written meanwhile')")
    released = threading.Timer(0.5, lambda: writer.execute("COMMIT"))
    released.start()
    try:
        with Project(path) as project:
            assert project.schema().current == migrate.head()
            assert project.name == "old"
    finally:
        released.join()
        writer.close()
    with sqlite3.connect(path) as check:
        assert check.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert check.execute("SELECT value FROM meta WHERE key = 'note'").fetchone() == (
            "written meanwhile",)
