"""The application layer (actions/): role rules, the review queue's view, decisions, exports and
what a job's kept models show, on tiny hand-made projects (SQLite and PostgreSQL)."""

from __future__ import annotations

import pandas as pd
import pytest

from actions import NEEDS, AccessError, export, identity, jobs, may, projects, require, review
from actions.review import QueueFilters
from curation.store import Project

#: Items a..f; c and f have tied votes (no majority); e is voted neg by y only.
ROWS = [("a", "x", "pos"), ("a", "y", "pos"), ("b", "x", "neg"), ("b", "y", "neg"),
        ("c", "x", "pos"), ("c", "y", "neg"), ("d", "x", "pos"), ("d", "y", "pos"),
        ("e", "x", "pos"), ("e", "y", "neg"), ("e", "z", "pos"), ("f", "x", "neg"), ("f", "z", "pos")]
FRAME = pd.DataFrame([(i, f"text {i}", a, lab) for i, a, lab in ROWS],
                     columns=["item_id", "text", "annotator_id", "label"])


@pytest.fixture
def project(store_url):
    with Project(store_url) as p:
        p.import_annotations(FRAME, label_set=["pos", "neg"])
        yield p


def _flag(p: Project, priorities: dict[str, float], kinds: dict[str, str]) -> None:
    """A flags run as flag_project stores one, without a model: the queue's order as priorities."""
    flags = pd.DataFrame({"item_id": list(kinds), "kind": list(kinds.values()),
                          "score": [0.5] * len(kinds), "reason": ["r"] * len(kinds),
                          "suggested_label": [None] * len(kinds), "rule_id": [None] * len(kinds)})
    order = pd.DataFrame({"item_id": list(priorities), "priority": list(priorities.values())})
    p.save_flags(flags, priorities=order, params={"model_signal": "embedding"})


@pytest.mark.parametrize("action", sorted(NEEDS))
def test_every_action_in_local_mode_is_anyones(project, action):
    assert may(project, None, action) and may(project, "anyone", action)
    require(project, None, action)


def test_roles_in_team_mode_follow_the_table(project):
    projects.set_member(project, "lena", "lead", actor=None)   # the first lead: by anyone
    projects.set_member(project, "ann", "annotator", actor="lena")
    for action, needed in NEEDS.items():
        assert may(project, "lena", action)
        assert may(project, "ann", action) == (needed == "annotator"), action
        assert not may(project, "eve", action) and not may(project, None, action)
    with pytest.raises(AccessError, match="only a lead can export splits"):
        require(project, "ann", "export splits")
    with pytest.raises(ValueError, match="unknown action 'fly'"):
        may(project, "lena", "fly")
    assert identity(project, "ann").may_sign and identity(project, "ann").role == "annotator"
    assert not identity(project, "eve").may_sign and identity(project, "eve").role is None
    with pytest.raises(AccessError):
        projects.set_member(project, "eve", "lead", actor="ann")


def test_the_queue_view_orders_sections_and_filters(project):
    frame = projects.annotations(project)
    cons = projects.consensus(frame, projects.label_set(project))
    assert set(cons.index[cons["method"] != "majority"]) == {"c", "f"}
    _flag(project, {"a": 0.9, "c": 0.8, "e": 0.7, "f": 0.1},
          {"a": "disagreement", "c": "disagreement", "e": "near_duplicate", "f": "disagreement"})
    view = review.review_queue(project, frame, cons, QueueFilters(learn=False))
    assert view.queue["item_id"].tolist() == ["a", "c", "e", "f"]
    assert view.ids() == ["a", "e"] and view.tied == {"c", "f"} and view.n_tied == 2
    assert review.review_queue(project, frame, cons, QueueFilters(section="ties", learn=False)).ids() == ["c", "f"]
    assert review.review_queue(project, frame, cons, QueueFilters(kinds=["near_duplicate"],
                                                                  learn=False)).ids() == ["e"]
    assert review.review_queue(project, frame, cons, QueueFilters(annotators=["z"], learn=False)).ids() == ["e"]
    assert review.review_queue(project, frame, cons, QueueFilters(labels=["neg"], learn=False)).ids() == []
    assert review.flag_kinds(project) == ["disagreement", "near_duplicate"]
    review.decide(project, "a", actor="rita", action="keep")
    after = review.review_queue(project, frame, cons, QueueFilters(learn=False))
    assert after.ids() == ["e"] and after.n_done == 1
    assert review.review_queue(project, frame, cons, QueueFilters(show_decided=True,
                                                                  learn=False)).ids() == ["a", "e"]
    assert review.item_history(project, "a")["reviewer"].tolist() == ["rita"]


def test_the_queue_has_no_ties_section_without_ties_in_it(project):
    frame = projects.annotations(project)
    _flag(project, {"a": 0.9, "e": 0.7}, {"a": "disagreement", "e": "disagreement"})
    view = review.review_queue(project, frame, projects.consensus(frame, projects.label_set(project)), QueueFilters(section="ties"))
    assert view.n_tied == 0 and view.ids() == ["a", "e"]  # a stale "ties" choice shows the ranking


def test_an_unsigned_decision_is_refused_before_the_store(project):
    with pytest.raises(ValueError, match="Enter your name"):
        review.decide(project, "a", actor="", action="keep")
    projects.set_member(project, "lena", "lead", actor=None)
    with pytest.raises(ValueError, match="Sign in first"):
        review.decide(project, "a", actor=None, action="keep")
    with pytest.raises(AccessError, match="'eve' is not a member"):
        review.decide(project, "a", actor="eve", action="keep")
    assert project.decisions().empty


def test_export_for_a_file_hands_out_decisions_to_a_lead_only_and_logs_it(project, tmp_path):
    project.record_decision("b", actor="rita", action="drop")
    projects.set_member(project, "lena", "lead", actor=None)
    projects.set_member(project, "ann", "annotator", actor="lena")
    with pytest.raises(AccessError, match="export the curated data for augmenting"):
        export.decisions_for(project, actor="ann", out_dir=tmp_path, what="augment")
    got = export.decisions_for(project, actor="lena", out_dir=tmp_path)
    assert got["item_id"].tolist() == ["b"]
    log = project.audit()
    assert log["action"].iloc[-1] == "export" and log["actor"].iloc[-1] == "lena"


def test_misclassified_reads_the_kept_after_model_and_says_why_not(tmp_path):
    assert jobs.misclassified({}).wrong is None
    assert "kept no after model" in jobs.misclassified({"models": {}}).why_none
    after = tmp_path / "after"
    after.mkdir()
    found = jobs.misclassified({"models": {"after": str(after)}})
    assert found.wrong is None and "predictions.csv is missing" in found.why_none
    pd.DataFrame({"item_id": ["1", "2", "3"], "text": ["t1", "t2", "t3"], "label": ["a", "b", "NA"],
                  "predicted": ["a", "a", "NA"]}).to_csv(after / "predictions.csv", index=False)
    found = jobs.misclassified({"models": {"after": str(after)}})
    assert found.n_test == 3 and found.model == str(after)
    assert found.wrong.to_dict("records") == [{"item_id": "2", "text": "t2", "label": "b", "predicted": "a"}]


def test_job_folders_are_named_by_the_layer_under_curation_home(project, tmp_path, monkeypatch):
    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    folder = jobs.job_folder(project, "folds")
    assert folder.parent == tmp_path / "jobs"
    assert folder.name.startswith(f"{project.url.rsplit('/', 1)[-1].rsplit('.', 1)[0]}-folds-")


def test_exports_are_versions_listed_compared_and_verified(project, tmp_path, monkeypatch):
    import zipfile
    from io import BytesIO

    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    options = {"use_model": False, "test_size": 0.0, "val_size": 0.0}
    first = export.export(project, actor=None, **options)
    assert first.out_dir.name == "v0001" and (first.out_dir / "manifest.json").is_file()
    project.record_decision("a", actor="rita", action="set_label", new_label="neg",
                            current_label="pos")
    project.record_decision("b", actor="rita", action="drop", current_label="neg")
    second = export.export(project, actor=None, **options)
    assert second.out_dir.name == "v0002"
    assert (first.out_dir / "train.csv").is_file()  # the first export is kept, not overwritten
    past = export.versions(project)
    assert past["version"].tolist() == [2, 1] and (past["problem"] == "").all()
    assert past["n_rows"].tolist() == [5, 6]
    diff = export.compare_versions(project, 1, 2)
    assert diff.removed["item_id"].tolist() == ["b"] and diff.added.empty
    assert diff.relabelled[["item_id", "old_label", "new_label"]].values.tolist() == [
        ["a", "pos", "neg"]]
    assert "1 removed, 1 relabelled" in diff.summary()
    with pytest.raises(ValueError, match="there is no export v0009"):
        export.compare_versions(project, 1, 9)
    # a past export downloads as it was; a file changed since is refused
    name, content = export.version_zip(project, 1)
    assert name.endswith("-export-v0001.zip")
    assert {"train.csv", "manifest.json", "manifest_items.csv"} <= set(
        zipfile.ZipFile(BytesIO(content)).namelist())
    (first.out_dir / "train.csv").write_text("item_id,text,label\nz,forged,pos\n")
    with pytest.raises(ValueError, match="train.csv: changed since the export"):
        export.version_zip(project, 1)
    # an export that fails leaves no empty version behind; a folder without manifest is listed
    with pytest.raises(ValueError):
        export.export(project, actor=None, formats=["xlsx"], use_model=False)
    assert not (tmp_path / "exports" / first.out_dir.parent.name / "v0003").exists()
    (first.out_dir.parent / "v0003").mkdir()
    assert "did not finish" in export.versions(project).set_index("version").at[3, "problem"]
    assert export.export(project, actor=None, **options).out_dir.name == "v0004"


def test_open_problems_count_the_flagged_items_still_undecided(project):
    _flag(project, {"a": 0.9, "c": 0.8, "e": 0.7}, {"a": "disagreement", "c": "disagreement",
                                                      "e": "label_issue"})
    assert export.open_problems(project) == (3, 3)
    project.record_decision("e", actor="rita", action="keep")
    assert export.open_problems(project) == (2, 3)


def test_next_step_follows_the_work(store_url, tmp_path, monkeypatch):
    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    with Project(store_url) as p:
        assert projects.next_step(p)[1] == "project"
        p.import_annotations(FRAME, label_set=["pos", "neg"])
        text, where = projects.next_step(p)
        assert where == "review" and "find the items to review" in text
        _flag(p, {"a": 0.9, "e": 0.7}, {"a": "disagreement", "e": "label_issue"})
        text, where = projects.next_step(p)
        assert where == "review" and "2 of 2 are still open" in text
        p.record_decision("a", actor="rita", action="keep")
        assert "1 of 2 are still open" in projects.next_step(p)[0]
        p.record_decision("e", actor="rita", action="set_label", new_label="pos")
        assert projects.next_step(p)[1] == "curated"
        export.export(p, actor=None, use_model=False, test_size=0.0, val_size=0.0)
        assert projects.next_step(p)[1] == "retrain"
        run = p.start_run("retrain_compare", {})
        p.finish_run(run, status="done", result={})
        assert projects.next_step(p)[1] == "project"
        p.record_decision("a", actor="rita", action="drop")  # a decision after the export
        assert projects.next_step(p)[1] == "curated"
