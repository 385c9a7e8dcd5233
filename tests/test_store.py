"""Tests for curation.store: tiny hand-checkable projects with exact expected values."""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading

import pandas as pd
import pytest
import sqlalchemy as sa

from curation.store import BATCH_SIZE, ImportResult, Project
from curation.store.migrate import SCHEMA_VERSION


def _frame(rows: list[tuple]) -> pd.DataFrame:
    cols = ["item_id", "text", "annotator_id", "label", "gold"]
    return pd.DataFrame([r + (None,) * (5 - len(r)) for r in rows], columns=cols)


#: 3 items, 5 annotations; i1 has gold "pos", i2 an empty gold, i3 none.
BASE = _frame([
    ("i1", "good film", "ann", "pos", "pos"),
    ("i1", "good film", "bob", "pos", "pos"),
    ("i2", "bad film", "ann", "neg", ""),
    ("i2", "bad film", "bob", "pos", ""),
    ("i3", "so-so", "ann", "neu"),
])


def _big(n: int, prefix: str = "b") -> pd.DataFrame:
    return _frame([(f"{prefix}{i // 4}", f"text {i // 4}", f"a{i % 4}", "pos") for i in range(n)])


def _snapshot(project: Project) -> dict:
    return {"annotations": project.annotations().to_dict("list"),
            "items": project.items().to_dict("list"), "labels": project.label_set(),
            "imports": len(project.imports()), "decisions": len(project.decisions())}


@pytest.fixture
def project(store_url):
    with Project(store_url) as proj:
        yield proj


@pytest.fixture
def loaded(project):
    project.import_annotations(BASE, source="base.csv", label_set=["pos", "neg", "neu"])
    return project


# --------------------------------------------------------------------------- opening


def test_path_creates_sqlite_file_with_wal_and_meta(tmp_path):
    path = tmp_path / "nested" / "dir" / "demo.sqlite"
    with Project(path) as proj:
        assert path.is_file()
        assert proj.url == f"sqlite:///{path}"
        assert repr(proj) == f"Project('sqlite:///{path}')"
        assert proj.name == "demo"
        assert proj.is_empty() and proj.n_items() == 0 and proj.n_annotations() == 0
        with proj.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
            meta = dict(conn.exec_driver_sql("SELECT key, value FROM meta").all())
    assert meta == {"schema_version": SCHEMA_VERSION, "name": "demo"}


def test_sqlalchemy_url_and_memory(tmp_path):
    with Project(f"sqlite:///{tmp_path / 'u.sqlite'}", name="mine") as proj:
        assert proj.name == "mine"
        assert (tmp_path / "u.sqlite").is_file()
    with Project(":memory:") as mem:
        mem.import_annotations(BASE)
        assert mem.n_annotations() == 5


def test_bad_targets_raise_value_error(tmp_path):
    junk = tmp_path / "notes.sqlite"
    junk.write_text("this is not a database " * 100)
    with pytest.raises(ValueError, match="notes.sqlite"):
        Project(junk)
    with pytest.raises(ValueError, match="is a folder"):
        Project(tmp_path)
    with pytest.raises(ValueError, match="driver"):
        Project("nosuchdialect://host/db")


def test_other_schema_version_is_refused(tmp_path):
    path = tmp_path / "old.sqlite"
    Project(path).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(ValueError, match="schema version '99'"):
        Project(path)


# --------------------------------------------------------------------------- import


def test_round_trip(project):
    result = project.import_annotations(BASE, source="base.csv", label_set=["pos", "neg", "neu"])
    assert result == ImportResult(import_id=1, n_rows=5, n_new_items=3, n_new_annotations=5,
                                  n_unchanged=0, n_replaced=0, n_kept=0)
    frame = project.annotations()
    assert list(frame.columns) == ["item_id", "text", "annotator_id", "label", "gold"]
    assert frame["item_id"].tolist() == ["i1", "i1", "i2", "i2", "i3"]
    assert frame["text"].tolist() == ["good film"] * 2 + ["bad film"] * 2 + ["so-so"]
    assert frame["annotator_id"].tolist() == ["ann", "bob", "ann", "bob", "ann"]
    assert frame["label"].tolist() == ["pos", "pos", "neg", "pos", "neu"]
    assert frame["gold"].tolist() == ["pos", "pos", None, None, None]
    items = project.items()
    assert items.to_dict("list") == {"item_id": ["i1", "i2", "i3"],
                                     "text": ["good film", "bad film", "so-so"],
                                     "gold": ["pos", None, None], "n_annotations": [2, 2, 1]}
    assert (project.n_items(), project.n_annotations(), project.is_empty()) == (3, 5, False)
    imports = project.imports()
    assert imports[["import_id", "source", "n_rows", "n_new_annotations"]].values.tolist() == [
        [1, "base.csv", 5, 5]]


def test_frame_without_gold_column(project):
    result = project.import_annotations(BASE.drop(columns="gold"))
    assert result.n_new_annotations == 5
    assert project.annotations()["gold"].tolist() == [None] * 5


def test_reimport_is_idempotent(loaded):
    again = loaded.import_annotations(BASE, source="base.csv")
    assert again == ImportResult(import_id=1, n_rows=5, n_new_items=0, n_new_annotations=0,
                                 n_unchanged=5, n_replaced=0, n_kept=0)
    shuffled = loaded.import_annotations(BASE.iloc[::-1], source="copy.csv")
    assert shuffled.import_id == 1 and shuffled.n_unchanged == 5
    assert len(loaded.imports()) == 1
    assert loaded.n_annotations() == 5 and loaded.decisions().empty


def test_new_rows_are_added_to_existing_items(loaded):
    more = _frame([("i3", "so-so", "bob", "neu"), ("i4", "meh", "ann", "neg")])
    result = loaded.import_annotations(more, source="more.csv")
    assert result == ImportResult(import_id=2, n_rows=2, n_new_items=1, n_new_annotations=2,
                                  n_unchanged=0, n_replaced=0, n_kept=0)
    assert loaded.items()["n_annotations"].tolist() == [2, 2, 2, 1]
    stored = loaded.engine.connect()
    try:
        by_import = stored.exec_driver_sql(
            "SELECT import_id, COUNT(*) FROM annotations GROUP BY import_id ORDER BY import_id").all()
    finally:
        stored.close()
    assert [tuple(r) for r in by_import] == [(1, 5), (2, 2)]


def test_text_conflict_names_items_and_fix(loaded):
    renamed = _frame([("i1", "GOOD FILM", "cid", "pos"), ("i2", "other", "cid", "neg"),
                      ("i9", "new", "cid", "neg")])
    before = _snapshot(loaded)
    with pytest.raises(ValueError) as err:
        loaded.import_annotations(renamed)
    message = str(err.value)
    assert "'i1'" in message and "'i2'" in message and "'i9'" not in message
    assert "item ids must be unique per text" in message
    assert "rename the new items or pass on_conflict='replace'" in message
    assert _snapshot(loaded) == before
    with pytest.raises(ValueError, match="unique per text"):
        loaded.import_annotations(renamed, on_conflict="keep")


def test_text_replace_is_logged(loaded):
    result = loaded.import_annotations(_frame([("i3", "so so", "ann", "neu")]),
                                       source="fix.csv", on_conflict="replace")
    assert (result.n_new_annotations, result.n_unchanged) == (0, 1)
    assert loaded.items()["text"].tolist() == ["good film", "bad film", "so so"]
    log = loaded.decisions()
    assert log[["item_id", "reviewer", "action", "note"]].values.tolist() == [
        ["i3", "import:fix.csv", "reimport", "text replaced; old text: so-so"]]


CHANGED = _frame([
    ("i1", "good film", "ann", "pos"),   # unchanged
    ("i2", "bad film", "cid", "neg"),    # new annotation
    ("i1", "good film", "bob", "neg"),   # stored 'pos'
    ("i3", "so-so", "ann", "pos"),       # stored 'neu'
])


def test_label_conflict_error_names_pairs_and_fix(loaded):
    before = _snapshot(loaded)
    with pytest.raises(ValueError) as err:
        loaded.import_annotations(CHANGED)
    message = str(err.value)
    assert message.startswith("2 stored label(s) differ from the new ones")
    assert "item 'i1' annotator 'bob': 'pos' -> 'neg'" in message
    assert "item 'i3' annotator 'ann': 'neu' -> 'pos'" in message
    assert "on_conflict='replace'" in message and "on_conflict='keep'" in message
    assert _snapshot(loaded) == before


def test_conflict_message_lists_at_most_five(loaded):
    many = _big(40, prefix="m")
    loaded.import_annotations(many)
    flipped = many.assign(label="neg")
    with pytest.raises(ValueError, match=r"and 35 more\. Pass on_conflict='replace'"):
        loaded.import_annotations(flipped)


def test_replace_updates_and_writes_audit_rows(loaded):
    result = loaded.import_annotations(CHANGED, source="second.csv", on_conflict="replace")
    assert result == ImportResult(import_id=2, n_rows=4, n_new_items=0, n_new_annotations=1,
                                  n_unchanged=1, n_replaced=2, n_kept=0)
    frame = loaded.annotations()
    labels = dict(zip(zip(frame["item_id"], frame["annotator_id"]), frame["label"]))
    assert labels == {("i1", "ann"): "pos", ("i1", "bob"): "neg", ("i2", "ann"): "neg",
                      ("i2", "bob"): "pos", ("i2", "cid"): "neg", ("i3", "ann"): "pos"}
    log = loaded.decisions()
    cols = ["decision_id", "item_id", "reviewer", "action", "old_label", "new_label", "note"]
    assert log[cols].values.tolist() == [
        [1, "i1", "import:second.csv", "reimport", "pos", "neg", "annotator bob"],
        [2, "i3", "import:second.csv", "reimport", "neu", "pos", "annotator ann"],
    ]
    assert loaded.latest_decisions().empty  # audit rows are not review decisions


def test_keep_leaves_stored_labels(loaded):
    result = loaded.import_annotations(CHANGED, on_conflict="keep")
    assert result == ImportResult(import_id=2, n_rows=4, n_new_items=0, n_new_annotations=1,
                                  n_unchanged=1, n_replaced=0, n_kept=2)
    frame = loaded.annotations()
    assert frame["label"].tolist() == ["pos", "pos", "neg", "pos", "neg", "neu"]
    assert loaded.decisions().empty


def test_conflict_in_last_rows_writes_nothing(loaded):
    tail_conflict = pd.concat([_big(30, prefix="new"), _frame([("i3", "so-so", "ann", "neg")])],
                              ignore_index=True)
    before = _snapshot(loaded)
    with pytest.raises(ValueError, match="'i3'"):
        loaded.import_annotations(tail_conflict, label_set=["extra"])
    assert _snapshot(loaded) == before


def test_failure_midway_rolls_back_everything(loaded):
    before = _snapshot(loaded)
    calls = []

    def explode(fraction, message):
        calls.append(fraction)
        if len(calls) == 2:  # two batches already written
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        loaded.import_annotations(_big(3 * BATCH_SIZE), label_set=["extra"], progress=explode)
    assert _snapshot(loaded) == before
    assert loaded.n_annotations() == 5


def test_progress_reports_batches_then_one(project):
    calls = []
    project.import_annotations(_big(2 * BATCH_SIZE + 10), progress=lambda f, m: calls.append(f))
    # items (2503 rows, 1 batch) + annotations (10010 rows, 3 batches) = 12513 rows written
    assert calls == pytest.approx([2503 / 12513, 7503 / 12513, 12503 / 12513, 1.0])
    again = []
    project.import_annotations(_big(2 * BATCH_SIZE + 10), progress=lambda f, m: again.append(f))
    assert again == [1.0]


def test_import_uses_bulk_statements(project):
    statements = []
    sa.event.listen(project.engine, "before_cursor_execute",
                    lambda *args: statements.append(args[-1]))
    project.import_annotations(_big(4 * BATCH_SIZE))
    assert project.n_annotations() == 4 * BATCH_SIZE
    assert sum(statements) == 5  # 1 batch of items + 4 batches of annotations, executemany
    assert len(statements) < 60


def test_gold_is_set_but_never_erased(loaded):
    loaded.import_annotations(_frame([("i1", "good film", "cid", "pos", ""),
                                      ("i2", "bad film", "cid", "neg", None),
                                      ("i3", "so-so", "cid", "neu", "neu")]))
    assert loaded.items()["gold"].tolist() == ["pos", None, "neu"]
    loaded.import_annotations(_frame([("i1", "good film", "dan", "neg", "neg")]))
    assert loaded.items()["gold"].tolist() == ["neg", None, "neu"]


def test_label_set_order_and_union(project):
    project.import_annotations(BASE, label_set=["neu", "pos"])
    assert project.label_set() == ["neu", "pos", "neg"]
    assert project.set_label_set(["spam", "pos", "zzz", "spam"]) == ["neu", "pos", "neg", "spam",
                                                                     "zzz"]
    project.import_annotations(_frame([("i9", "x", "ann", "abc")]), label_set=["pos", "new"])
    assert project.label_set() == ["neu", "pos", "neg", "spam", "zzz", "new", "abc"]
    with pytest.raises(ValueError, match="list of label strings"):
        project.set_label_set("pos")
    with pytest.raises(ValueError, match="non-empty string"):
        project.set_label_set(["ok", " "])


def test_malformed_frames_are_refused(project):
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['annotator_id'\]"):
        project.import_annotations(BASE.drop(columns="annotator_id"))
    blank = BASE.copy()
    blank.loc[3, "label"] = None
    with pytest.raises(ValueError, match=r"column 'label' is empty in rows 3"):
        project.import_annotations(blank)
    with pytest.raises(ValueError, match=r"\('i1', 'ann'\)"):
        project.import_annotations(pd.concat([BASE, BASE.iloc[:1]], ignore_index=True))
    with pytest.raises(ValueError, match="on_conflict='merge' is not one of"):
        project.import_annotations(BASE, on_conflict="merge")
    with pytest.raises(ValueError, match="pandas DataFrame"):
        project.import_annotations([("i1", "t", "a", "pos")])
    assert project.is_empty()


# --------------------------------------------------------------------------- decisions


def test_decision_validation_errors(loaded):
    with pytest.raises(ValueError, match=r"unknown item id 'nope'; import it first"):
        loaded.record_decision("nope", actor="rita", action="keep")
    for reviewer in ("", "   "):
        with pytest.raises(ValueError, match="a reviewer name is required"):
            loaded.record_decision("i1", actor=reviewer, action="keep")
    with pytest.raises(ValueError) as err:
        loaded.record_decision("i1", actor="rita", action="approve")
    assert "'approve'" in str(err.value) and "'set_label', 'keep', 'drop'" in str(err.value)
    labels = r"\['pos', 'neg', 'neu'\]"
    with pytest.raises(ValueError, match=r"needs new_label, one of the label set " + labels):
        loaded.record_decision("i1", actor="rita", action="set_label")
    with pytest.raises(ValueError, match=r"'meh' is not in the label set " + labels):
        loaded.record_decision("i1", actor="rita", action="set_label", new_label="meh")
    with pytest.raises(ValueError, match="no decision left to undo"):
        loaded.record_decision("i1", actor="rita", action="undo")
    assert loaded.decisions().empty


def test_decisions_and_undo(loaded):
    first = loaded.record_decision("i2", actor="rita", action="set_label", new_label="neg")
    second = loaded.record_decision("i2", actor="sam", action="set_label", new_label="pos",
                                    note="sarcasm")
    loaded.record_decision("i1", actor="rita", action="keep")
    undo = loaded.record_decision("i2", actor="rita", action="undo", note="misclick")
    assert (first, second, undo) == (1, 2, 4)
    log = loaded.decisions()
    cols = ["decision_id", "item_id", "reviewer", "action", "old_label", "new_label", "note"]
    assert log[cols].values.tolist() == [
        [1, "i2", "rita", "set_label", None, "neg", ""],
        [2, "i2", "sam", "set_label", "neg", "pos", "sarcasm"],
        [3, "i1", "rita", "keep", None, None, ""],
        [4, "i2", "rita", "undo", "pos", "neg", "undo of #2: misclick"],
    ]
    created = log["created_at"].tolist()
    assert all(ts.tzinfo is not None and ts.utcoffset() == dt.timedelta(0) for ts in created)
    latest = loaded.latest_decisions()
    assert latest[["item_id", "decision_id", "action", "curated_label"]].values.tolist() == [
        ["i1", 3, "keep", None], ["i2", 1, "set_label", "neg"]]
    # the next decision sees the label restored by the undo; a second undo peels further back
    loaded.record_decision("i2", actor="rita", action="drop")
    assert loaded.decisions()["old_label"].tolist()[-1] == "neg"
    loaded.record_decision("i2", actor="rita", action="undo")
    loaded.record_decision("i2", actor="rita", action="undo")
    assert loaded.decisions()["note"].tolist()[-2:] == ["undo of #5", "undo of #1"]
    assert loaded.latest_decisions()["item_id"].tolist() == ["i1"]
    with pytest.raises(ValueError, match="no decision left to undo"):
        loaded.record_decision("i2", actor="rita", action="undo")
    assert not hasattr(loaded, "delete_decision") and not hasattr(loaded, "update_decision")


def test_old_label_is_the_label_the_reviewer_saw_until_a_decision_sets_one(loaded):
    loaded.record_decision("i1", actor="rita", action="keep", current_label="pos")
    loaded.record_decision("i2", actor="rita", action="set_label", new_label="neg",
                           current_label="pos")
    loaded.record_decision("i2", actor="sam", action="set_label", new_label="neu",
                           current_label="pos")  # the curated label wins over what was shown
    assert loaded.decisions()["old_label"].tolist() == ["pos", "pos", "neg"]
    with pytest.raises(ValueError, match="'maybe' is not in the label set"):
        loaded.record_decision("i3", actor="rita", action="keep", current_label="maybe")
    assert len(loaded.decisions()) == 3


def test_recent_decisions_are_the_ones_still_in_force_and_undo_of_guards_them(loaded):
    a = loaded.record_decision("i1", actor="rita", action="keep")
    b = loaded.record_decision("i2", actor="rita", action="set_label", new_label="neg")
    c = loaded.record_decision("i2", actor="sam", action="drop")  # decided after rita
    d = loaded.record_decision("i3", actor="rita", action="ambiguous")
    recent = loaded.recent_decisions("rita", 10)
    # newest first; i2 is no longer rita's (sam decided after her)
    assert recent[["decision_id", "item_id"]].values.tolist() == [[d, "i3"], [a, "i1"]]
    assert loaded.recent_decisions("rita", 1)["decision_id"].tolist() == [d]
    assert loaded.recent_decisions("sam", 10)["decision_id"].tolist() == [c]
    assert loaded.recent_decisions("nobody", 10).empty
    # undoing rita's #b is refused while sam's #c stands: nothing written, sam's decision kept
    n = len(loaded.decisions())
    with pytest.raises(ValueError, match=rf"#{b} on item 'i2' is no longer its latest"):
        loaded.record_decision("i2", actor="rita", action="undo", undo_of=b)
    assert len(loaded.decisions()) == n
    loaded.record_decision("i3", actor="rita", action="undo", undo_of=d)
    loaded.record_decision("i3", actor="rita", action="keep")
    with pytest.raises(ValueError, match="no longer its latest"):  # undone already: the keep stays
        loaded.record_decision("i3", actor="rita", action="undo", undo_of=d)
    assert loaded.latest_decisions().set_index("item_id").at["i3", "action"] == "keep"
    with pytest.raises(ValueError, match="undo_of goes with action='undo'"):
        loaded.record_decision("i1", actor="rita", action="keep", undo_of=a)
    # once sam's drop is undone, rita's set_label on i2 is in force again, and hers to undo
    loaded.record_decision("i2", actor="sam", action="undo", undo_of=c)
    assert [b, a] == [x for x in loaded.recent_decisions("rita", 10)["decision_id"] if x in (a, b)]


# --------------------------------------------------------------------------- runs


def test_runs_round_trip(project):
    run_id = project.start_run("consensus", {"method": "dawid_skene", "iters": 50})
    run = project.get_run(run_id)
    assert (run["run_id"], run["kind"], run["status"]) == (1, "consensus", "running")
    assert run["params"] == {"iters": 50, "method": "dawid_skene"}
    assert run["result"] is None and run["finished_at"] is None
    assert run["created_at"].tzinfo == dt.timezone.utc
    project.finish_run(run_id, status="done", result={"n_items": 3, "labels": ["a", "b"]})
    run = project.get_run(run_id)
    assert run["status"] == "done" and run["result"] == {"labels": ["a", "b"], "n_items": 3}
    assert run["finished_at"] >= run["created_at"]
    with project.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT params FROM runs").scalar()
    assert stored == '{"iters": 50, "method": "dawid_skene"}'
    other = project.start_run("flags", {})
    project.finish_run(other, status="failed")
    runs = project.runs()
    assert runs[["run_id", "kind", "status"]].values.tolist() == [[1, "consensus", "done"],
                                                                  [2, "flags", "failed"]]
    assert runs["params"].tolist() == [{"iters": 50, "method": "dawid_skene"}, {}]


def test_run_errors(project):
    run_id = project.start_run("consensus", {})
    allowed = r"\['done', 'failed', 'cancelled'\]"
    with pytest.raises(ValueError, match=r"status 'ok' is not one of " + allowed):
        project.finish_run(run_id, status="ok")
    project.finish_run(run_id, status="cancelled")
    with pytest.raises(ValueError, match="run #1 already finished with status 'cancelled'"):
        project.finish_run(run_id, status="done")
    with pytest.raises(ValueError, match="no run #7"):
        project.finish_run(7, status="done")
    with pytest.raises(ValueError, match="no run #7"):
        project.get_run(7)
    with pytest.raises(ValueError, match="run params cannot be stored as JSON"):
        project.start_run("x", {"when": object()})
    with pytest.raises(ValueError, match="run kind"):
        project.start_run("", {})


# --------------------------------------------------------------------------- persistence


def test_two_projects_write_decisions_concurrently(store_url):
    path = store_url
    with Project(path) as setup:
        setup.import_annotations(BASE, label_set=["pos", "neg", "neu"])
    first, second = Project(path), Project(path)
    errors: list[BaseException] = []

    def work(proj: Project, reviewer: str) -> None:
        try:
            for i in range(50):
                proj.record_decision(f"i{i % 3 + 1}", actor=reviewer, action="set_label",
                                     new_label=("pos", "neg", "neu")[i % 3], note=str(i))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(first, "ann")),
               threading.Thread(target=work, args=(second, "bob"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first.close()
    second.close()
    assert errors == []
    with Project(path) as check:
        log = check.decisions()
    assert len(log) == 100
    assert log["decision_id"].tolist() == list(range(1, 101))
    assert sorted(log.loc[log["reviewer"] == "ann", "note"].astype(int)) == list(range(50))
    assert sorted(log.loc[log["reviewer"] == "bob", "note"].astype(int)) == list(range(50))


def test_reopen_finds_everything(store_url):
    path = store_url
    with Project(path, name="movies") as proj:
        proj.import_annotations(BASE, source="base.csv", label_set=["pos", "neg", "neu"])
        proj.set_label_set(["mixed"])
        proj.record_decision("i2", actor="rita", action="set_label", new_label="mixed")
        run_id = proj.start_run("consensus", {"k": 1})
        proj.finish_run(run_id, status="done", result={"ok": True})
        before = _snapshot(proj)
    with Project(str(path)) as again:
        assert again.name == "movies"
        assert _snapshot(again) == before
        assert again.label_set() == ["pos", "neg", "neu", "mixed"]
        assert again.latest_decisions()["curated_label"].tolist() == ["mixed"]
        assert again.get_run(run_id)["result"] == {"ok": True}
        assert again.import_annotations(BASE).import_id == 1


def test_data_version_changes_when_a_replace_keeps_the_counts(tmp_path):
    from curation.store import Project

    frame = pd.DataFrame({"item_id": ["1", "1"], "text": ["t", "t"], "annotator_id": ["a", "b"],
                          "label": ["x", "y"], "gold": [None, None]})
    with Project(tmp_path / "v.sqlite") as project:
        project.import_annotations(frame)
        first = project.data_version()
        assert project.data_version() == first
        changed = frame.assign(label=["y", "y"])
        project.import_annotations(changed, on_conflict="replace")
        assert project.n_annotations() == 2 and project.data_version() != first


# --------------------------------------------------------------------------- embeddings


def _vec(*values: float):
    import numpy as np

    return np.array(values, dtype=np.float32)


def test_text_sha1_is_the_items_digest(loaded):
    from curation.store import text_sha1

    assert text_sha1("hello") == "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
    with loaded.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT text_sha1 FROM items WHERE item_id = 'i1'").scalar()
    assert stored == text_sha1("good film")


def test_embedding_round_trip_is_exact(project):
    import numpy as np

    from curation.store import text_sha1

    key = text_sha1("good film")
    vector = _vec(0.1, -2.5, 3.0)
    assert project.store_embeddings("mini|n", {key: vector}) == 1
    got = project.cached_embeddings("mini|n", [key])
    assert list(got) == [key]
    assert got[key].dtype == np.float32 and got[key].shape == (3,)
    assert got[key].tobytes() == vector.tobytes()
    got[key][0] = 9.0  # a writable copy, not a view of the database bytes
    with project.engine.connect() as conn:
        row = conn.exec_driver_sql("SELECT model, dim, vector FROM embeddings").one()
    assert (row[0], row[1], bytes(row[2])) == ("mini|n", 3, vector.astype("<f4").tobytes())
    assert project.store_embeddings("mini|n", {text_sha1("x"): [1, 2, 3]}) == 1  # float64 in
    assert project.cached_embeddings("mini|n", [text_sha1("x")])[text_sha1("x")].tolist() == [
        1.0, 2.0, 3.0]


def test_partial_hits_and_models_are_separate(project):
    from curation.store import text_sha1

    a, b, c = (text_sha1(t) for t in ("a", "b", "c"))
    project.store_embeddings("m1", {a: _vec(1, 0), b: _vec(0, 1)})
    project.store_embeddings("m2", {a: _vec(5, 5, 5)})
    got = project.cached_embeddings("m1", [c, a, a])
    assert {k: v.tolist() for k, v in got.items()} == {a: [1.0, 0.0]}
    assert project.cached_embeddings("m2", [b]) == {}
    assert project.cached_embeddings("m3", [a, b]) == {}
    assert project.cached_embeddings("m1", []) == {}
    assert (project.n_embeddings(), project.n_embeddings("m1"), project.n_embeddings("m2"),
            project.n_embeddings("m3")) == (3, 2, 1, 0)


def test_store_embeddings_is_idempotent_and_keeps_first(project):
    from curation.store import text_sha1

    a, b = text_sha1("a"), text_sha1("b")
    assert project.store_embeddings("m", {a: _vec(1, 2)}) == 1
    assert project.store_embeddings("m", {a: _vec(7, 7), b: _vec(3, 4)}) == 1
    assert project.store_embeddings("m", {a: _vec(1, 2), b: _vec(3, 4)}) == 0
    assert project.store_embeddings("m", {}) == 0
    assert project.n_embeddings("m") == 2
    assert project.cached_embeddings("m", [a])[a].tolist() == [1.0, 2.0]


def test_embeddings_over_many_chunks(project):
    import numpy as np

    from curation.store import text_sha1

    keys = [text_sha1(f"text {i}") for i in range(2000)]
    vectors = {k: np.arange(4, dtype=np.float32) + i for i, k in enumerate(keys)}
    assert project.store_embeddings("m", vectors) == 2000
    statements: list[str] = []
    sa.event.listen(project.engine, "before_cursor_execute",
                    lambda *args: statements.append(args[2]))
    got = project.cached_embeddings("m", keys + [text_sha1("absent")])
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 3  # 2,001 ids in chunks of at most 900
    assert len(got) == 2000
    assert got[keys[1999]].tolist() == [1999.0, 2000.0, 2001.0, 2002.0]
    assert all(got[k][0] == i for i, k in enumerate(keys))


def test_bad_embeddings_are_refused(project):
    from curation.store import text_sha1

    a, b = text_sha1("a"), text_sha1("b")
    with pytest.raises(ValueError, match=r"1 key\(s\) are not SHA-1 hex digests .*'good film'"):
        project.cached_embeddings("m", [a, "good film"])
    with pytest.raises(ValueError, match="expected a sequence of SHA-1 hex digests"):
        project.cached_embeddings("m", a)
    with pytest.raises(ValueError, match=f"vectors '{b}' are not of shape \\(2,\\)"):
        project.store_embeddings("m", {a: _vec(1, 2), b: _vec(1, 2, 3)})
    with pytest.raises(ValueError, match=f"vectors '{b}' hold NaN or infinite"):
        project.store_embeddings("m", {a: _vec(1, 2), b: _vec(float("nan"), 2)})
    with pytest.raises(ValueError, match="must be 1-D and non-empty"):
        project.store_embeddings("m", {a: _vec()})
    with pytest.raises(ValueError, match="model key must be a non-empty string"):
        project.store_embeddings("", {a: _vec(1, 2)})
    project.store_embeddings("m", {a: _vec(1, 2)})
    with pytest.raises(ValueError, match="'m' already holds vectors of length 2, not 3"):
        project.store_embeddings("m", {b: _vec(1, 2, 3)})
    assert project.n_embeddings() == 1


# --------------------------------------------------------------------------- flags


def _flags(rows: list[tuple]) -> pd.DataFrame:
    cols = ["item_id", "kind", "score", "reason", "suggested_label", "rule_id"]
    return pd.DataFrame(rows, columns=cols)


FLAGS = _flags([
    ("i2", "disagreement", 0.5, "1 of 2 annotators said pos", "neg", "R3"),
    ("i1", "label_issue", 0.25, "model prefers neg", None, None),
    ("i2", "label_issue", 0.75, "", "neg", None),
])


def test_flags_round_trip(loaded):
    from curation.flags import FLAG_COLUMNS
    from curation.store.tables import FLAG_COLUMNS as STORED

    assert STORED == FLAG_COLUMNS
    run_id = loaded.save_flags(FLAGS, params={"seed": 0})
    assert run_id == 1
    run = loaded.get_run(run_id)
    assert (run["kind"], run["status"], run["params"]) == ("flags", "done", {"seed": 0})
    assert run["result"] == {"n_flags": 3, "n_items": 2}
    got = loaded.latest_flags()
    assert list(got.columns) == [*FLAG_COLUMNS, "run_id"]
    assert got.values.tolist() == [  # in the saved order
        ["i2", "disagreement", 0.5, "1 of 2 annotators said pos", "neg", "R3", 1],
        ["i1", "label_issue", 0.25, "model prefers neg", None, None, 1],
        ["i2", "label_issue", 0.75, "", "neg", None, 1],
    ]
    backwards = loaded.save_flags(FLAGS.iloc[::-1])
    assert loaded.latest_flags()[["item_id", "kind", "run_id"]].values.tolist() == [
        ["i2", "label_issue", backwards], ["i1", "label_issue", backwards],
        ["i2", "disagreement", backwards]]
    assert str(got["score"].dtype) == "float64" and str(got["run_id"].dtype) == "int64"


def test_latest_flags_newest_done_run_wins(loaded):
    empty = loaded.latest_flags()
    assert empty.empty and list(empty.columns) == [
        "item_id", "kind", "score", "reason", "suggested_label", "rule_id", "run_id"]
    loaded.save_flags(FLAGS)
    second = loaded.save_flags(FLAGS.iloc[:1].assign(score=0.9))
    loaded.start_run("flags", {})  # still running: ignored
    failed = loaded.start_run("flags", {})
    loaded.finish_run(failed, status="failed")
    got = loaded.latest_flags()
    assert got[["item_id", "kind", "score", "run_id"]].values.tolist() == [
        ["i2", "disagreement", 0.9, second]]
    empty_run = loaded.save_flags(FLAGS.iloc[:0])
    assert loaded.get_run(empty_run)["result"] == {"n_flags": 0, "n_items": 0}
    assert loaded.latest_flags().empty
    with loaded.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM flags").scalar() == 4


def test_flags_with_unknown_items_are_refused(loaded):
    bad = pd.concat([FLAGS, _flags([(f"x{i}", "label_issue", 0.1, "", None, None)
                                    for i in range(7)])], ignore_index=True)
    with pytest.raises(ValueError, match=r"7 flagged item id\(s\) are not in the project: "
                                         r"'x0', 'x1', 'x2', 'x3', 'x4' and 2 more; import"):
        loaded.save_flags(bad)
    assert loaded.runs().empty  # no run started


def test_malformed_flags_are_refused(loaded):
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['rule_id'\]"):
        loaded.save_flags(FLAGS.drop(columns="rule_id"))
    with pytest.raises(ValueError, match=r"'kind' of the flags is empty in rows 1 \(0-based\)"):
        loaded.save_flags(FLAGS.assign(kind=["a", " ", "b"]))
    with pytest.raises(ValueError, match=r"\('i1', 'label_issue'\): 'high'"):
        loaded.save_flags(FLAGS.assign(score=[0.1, "high", 0.2]))
    with pytest.raises(ValueError, match=r"more than once in the flags: \('i2', 'label_issue'\);"):
        loaded.save_flags(pd.concat([FLAGS, FLAGS.iloc[2:]], ignore_index=True))
    with pytest.raises(ValueError, match="expects a pandas DataFrame"):
        loaded.save_flags(FLAGS.to_dict("records"))
    assert loaded.runs().empty


def test_failed_flag_write_marks_the_run_failed(loaded):
    def boom(conn, cursor, statement, *args):
        if statement.startswith("INSERT INTO flags"):
            raise RuntimeError("disk full")

    sa.event.listen(loaded.engine, "before_cursor_execute", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        loaded.save_flags(FLAGS)
    sa.event.remove(loaded.engine, "before_cursor_execute", boom)
    assert loaded.runs()[["kind", "status"]].values.tolist() == [["flags", "failed"]]
    assert loaded.latest_flags().empty
    with loaded.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT COUNT(*) FROM flags").scalar() == 0


def test_reopen_rebuilds_a_table_lost_by_hand(tmp_path):
    """(Older schemas are upgraded by revisions: tests/test_migrations.py.)"""
    from curation.store import text_sha1

    path = tmp_path / "old.sqlite"
    with Project(path) as proj:
        proj.import_annotations(BASE)
        with proj.engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE flags")
            conn.exec_driver_sql("DROP TABLE embeddings")
    assert {"flags", "embeddings"}.isdisjoint(sa.inspect(sa.create_engine(f"sqlite:///{path}"))
                                              .get_table_names())
    with Project(path) as again:
        names = set(sa.inspect(again.engine).get_table_names())
        assert {"flags", "embeddings", "items", "runs"} <= names
        assert again.n_annotations() == 5
        assert again.store_embeddings("m", {text_sha1("a"): _vec(1.0)}) == 1
        assert again.save_flags(FLAGS) == 1


# --------------------------------------------------------------------------- what no database keeps

def _object_frame(**change) -> pd.DataFrame:
    """One good row with ``change`` applied, in object columns (pandas' default Arrow strings
    refuse a lone surrogate at construction, before the store is reached)."""
    row = {"item_id": "n1", "text": "new text", "annotator_id": "ann", "label": "pos", "gold": None}
    row.update(change)
    return pd.DataFrame({k: pd.Series([v], dtype=object) for k, v in row.items()})


UNSTORABLE = [
    ({"item_id": "n\x001"}, "column 'item_id' holds a NUL byte"),
    ({"text": "new\x00text"}, "column 'text' holds a NUL byte"),
    ({"annotator_id": "a\ud800nn"}, "column 'annotator_id' holds a NUL byte or a lone UTF-16 surrogate"),
    ({"label": "p\udfffos"}, "column 'label' holds a NUL byte or a lone UTF-16 surrogate"),
    ({"gold": "p\x00"}, "column 'gold' holds a NUL byte"),
    ({"item_id": 7 * 10**5000}, "column 'item_id' holds an integer too long to write as text"),
    ({"item_id": "x" * 2_001}, "column 'item_id' has a value of 2,001 bytes"),
    ({"annotator_id": "\u00e9" * 1_001}, "column 'annotator_id' has a value of 2,002 bytes"),
]


@pytest.mark.parametrize("change, message", UNSTORABLE, ids=[m[:32] for _, m in UNSTORABLE])
def test_values_no_database_keeps_are_refused_naming_the_column_on_both_back_ends(store_url, change,
                                                                                   message):
    """Called directly (not through curation.io, which refuses these in a file naming the line),
    the store still answers with its own message, never PostgreSQL's DataError echoing SQL."""
    with Project(store_url) as project:
        project.import_annotations(BASE, label_set=["pos", "neg", "neu"])
        before = _snapshot(project)
        with pytest.raises(ValueError, match="rows 0 \\(0-based\\)") as caught:
            project.import_annotations(_object_frame(**change), on_conflict="replace")
        assert message in str(caught.value)
        assert type(caught.value) is ValueError  # not sqlalchemy's DataError, not UnicodeEncodeError
        assert _snapshot(project) == before


def test_labels_names_and_notes_no_database_keeps_are_refused(store_url):
    with Project(store_url) as project:
        project.import_annotations(BASE, label_set=["pos", "neg", "neu"])
        before = (_snapshot(project), project.members().to_dict("list"))
        for call, what in [(lambda: project.set_label_set(["pos", "neg", "neu", "b\x00d"]), "labels: the label"),
                           (lambda: project.set_label_set(["l" * 2_001]), "has 2,001 bytes"),
                           (lambda: project.set_member("kim\ud800", "lead", actor="kim"), "the member name"),
                           (lambda: project.record_decision("i1", actor="ann\x00", action="keep"),
                            "the reviewer name"),
                           (lambda: project.record_decision("i1", actor="ann", action="note",
                                                            note="see \x00"), "the note"),
                           (lambda: project.save_augmentations(pd.DataFrame(
                               {"source_id": ["i1"], "text": ["good\ud83d film"], "label": ["pos"],
                                "method": ["rules"]}, dtype=object), actor="ann"),
                            "augmented row 0: the text")]:
            with pytest.raises(ValueError, match="NUL byte or a lone UTF-16 surrogate|bytes, over") as caught:
                call()
            assert what in str(caught.value)
        assert (_snapshot(project), project.members().to_dict("list")) == before
        assert len(project.augmentations()) == 0


def test_a_long_non_ascii_id_under_the_byte_limit_is_kept(store_url):
    with Project(store_url) as project:
        project.import_annotations(_object_frame(item_id="\u00e9" * 1_000))  # 2,000 bytes
        assert project.items()["item_id"].tolist() == ["\u00e9" * 1_000]


def test_a_note_decision_needs_its_text(store_url):
    """'Note only' with an empty note would count the item as decided (issue 17): refused,
    nothing written; a note with text is recorded and decides nothing else."""
    with Project(store_url) as project:
        project.import_annotations(BASE, label_set=["pos", "neg", "neu"])
        for note in ("", "   "):
            with pytest.raises(ValueError, match="a note needs its text"):
                project.record_decision("i1", actor="ann", action="note", note=note)
        assert project.decisions().empty
        project.record_decision("i1", actor="ann", action="note", note="ask the lead")
        assert project.latest_decisions()["note"].tolist() == ["ask the lead"]
