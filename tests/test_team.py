"""Team mode: members and roles in the store (SQLite and PostgreSQL) and in the app."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from curation.store import AccessError, Project

BASE = pd.DataFrame({"item_id": ["a", "a", "b"], "text": ["good", "good", "bad"],
                     "annotator_id": ["x", "y", "x"], "label": ["pos", "pos", "neg"]})


@pytest.fixture
def team(store_url):
    with Project(store_url) as project:
        project.import_annotations(BASE, label_set=["pos", "neg"])
        yield project


def test_local_mode_until_a_first_lead(team):
    assert not team.team_mode and team.members().empty
    team.record_decision("a", reviewer="anyone", action="keep")      # local: any name
    team.require_role(None, "lead", to="export")                      # local: allowed
    with pytest.raises(ValueError, match="first member must be a lead"):
        team.set_member("ann", "annotator", by="ann")
    team.set_member("lena", "lead", by="lena")
    assert team.team_mode and team.role("lena") == "lead"


def test_only_members_decide_and_only_leads_manage(team):
    team.set_member("lena", "lead", by="lena")
    team.set_member("ann", "annotator", by="lena")
    with pytest.raises(AccessError, match="only a lead can add members or change roles; 'ann' is an annotator"):
        team.set_member("eve", "lead", by="ann")
    with pytest.raises(AccessError, match="'eve' is not a member of this team project"):
        team.record_decision("a", reviewer="eve", action="keep")
    decision = team.record_decision("a", reviewer="ann", action="set_label", new_label="neg")
    assert team.decisions().set_index("decision_id").at[decision, "reviewer"] == "ann"
    with pytest.raises(AccessError, match="not a member"):
        team.save_augmentations(pd.DataFrame({"source_id": ["a"], "text": ["fine"], "label": ["pos"],
                                              "method": ["glossary"]}), reviewer="eve")
    with pytest.raises(ValueError, match="only lead"):
        team.set_member("lena", "annotator", by="lena")
    with pytest.raises(ValueError, match="unknown role 'admin'"):
        team.set_member("bob", "admin", by="lena")
    team.remove_member("ann", by="lena")
    assert team.members()["name"].tolist() == ["lena"]


def test_export_and_retrain_need_a_lead(team, tmp_path):
    from curation.workspace import export_project
    from fine_tune.jobs import start_compare_job, start_out_of_fold_job

    team.set_member("lena", "lead", by="lena")
    team.set_member("ann", "annotator", by="lena")
    for actor, who in (("ann", "'ann' is an annotator"), (None, "no one is signed in"),
                       ("eve", "'eve' is not a member")):
        with pytest.raises(AccessError, match=f"only a lead can export splits.*{who}"):
            export_project(team, tmp_path / "out", use_model=False, actor=actor)
        with pytest.raises(AccessError, match=f"only a lead can retrain and compare.*{who}"):
            start_compare_job(team, tmp_path / "job", actor=actor)
        with pytest.raises(AccessError, match=f"only a lead can fine-tune the review queue's model"
                                              f".*{who}"):
            start_out_of_fold_job(team, tmp_path / "job", actor=actor)
    assert not (tmp_path / "out").exists() and not (tmp_path / "job").exists()
    assert team.runs().empty


# --------------------------------------------------------------------------- in the app

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def _app(tmp_path, monkeypatch, user: str | None):
    from streamlit.testing.v1 import AppTest

    from curation.workspace import open_demo_project

    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    monkeypatch.delenv("CURATION_URL", raising=False)
    monkeypatch.delenv("CURATION_IDENTITY_HEADER", raising=False)
    if user:
        monkeypatch.setenv("CURATION_USER", user)
    else:
        monkeypatch.delenv("CURATION_USER", raising=False)
    with open_demo_project(str(tmp_path / "demo.sqlite")) as project:
        if project.members().empty:
            project.set_member("lena", "lead", by="lena")
            project.set_member("ann", "annotator", by="lena")
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def test_annotator_decides_only_under_their_own_name(tmp_path, monkeypatch):
    from curation.workspace import flag_project, open_demo_project

    with open_demo_project(str(tmp_path / "demo.sqlite")) as project:
        flag_project(project)
    at = _app(tmp_path, monkeypatch, "ann")
    at.switch_page("app_pages/review.py").run()
    assert not at.exception, at.exception
    assert not [t for t in at.text_input if t.key == "reviewer"]   # no name box to type another name
    assert "Signed in as **ann** (annotator" in at.sidebar.success[0].value
    item = at.session_state["review_item"]
    next(b for b in at.button if b.label == "Keep").click().run()
    assert not at.exception, at.exception
    with Project(tmp_path / "demo.sqlite") as project:
        log = project.decisions()
    assert log[["item_id", "reviewer", "action"]].values.tolist() == [[item, "ann", "keep"]]


def test_stranger_cannot_decide_and_annotator_cannot_export(tmp_path, monkeypatch):
    from curation.workspace import flag_project, open_demo_project

    with open_demo_project(str(tmp_path / "demo.sqlite")) as project:
        flag_project(project)
    at = _app(tmp_path, monkeypatch, "eve")
    at.switch_page("app_pages/review.py").run()
    assert "'eve' (via CURATION_USER) is not a member" in at.sidebar.error[0].value
    next(b for b in at.button if b.label == "Keep").click().run()
    assert not at.exception, at.exception
    assert "Sign in first" in at.error[0].value
    with Project(tmp_path / "demo.sqlite") as project:
        assert project.decisions().empty

    at = _app(tmp_path, monkeypatch, "ann")
    at.switch_page("app_pages/curated.py").run()
    assert "only a lead exports splits" in at.warning[0].value
    at.button(key="FormSubmitter:export-Export").click().run()
    assert not at.exception, at.exception
    assert "only a lead can export splits" in at.error[0].value
    assert not (tmp_path / "exports").exists()


def test_members_cli_and_export_as_a_lead(tmp_path, capsys):
    from curation.cli import main

    url = str(tmp_path / "t.sqlite")
    with Project(url) as project:
        project.import_annotations(BASE, label_set=["pos", "neg"])
    assert main(["members", url, "--add", "lena", "--role", "lead"]) == 0
    assert main(["members", url, "--add", "ann", "--as", "lena"]) == 0
    assert main(["members", url, "--add", "eve", "--role", "lead", "--as", "ann"]) == 2
    assert "only a lead can add members" in capsys.readouterr().err
    data = tmp_path / "a.csv"
    BASE.to_csv(data, index=False)
    args = ["export", str(data), "--out", str(tmp_path / "out"), "--project", url]
    assert main([*args, "--as", "ann"]) == 2
    assert "only a lead can export splits" in capsys.readouterr().err
    assert main([*args, "--as", "lena"]) == 0
    assert main(["members", url]) == 0
    assert capsys.readouterr().out.splitlines()[-2:] == ["ann\tannotator\tadded by lena",
                                                         "lena\tlead\tadded by lena"]


def test_review_page_records_decisions_on_each_back_end(store_url, monkeypatch, tmp_path):
    """The Review page, unchanged, on SQLite and on PostgreSQL (CURATION_URL)."""
    from streamlit.testing.v1 import AppTest

    from curation.io import load_annotations
    from curation.workspace import DEMO_CSV, flag_project

    with Project(store_url) as project:
        frame = load_annotations(DEMO_CSV)
        project.import_annotations(frame, source="bank_demo.csv", label_set=frame.attrs["label_set"])
        flag_project(project, use_model=False)
    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    monkeypatch.setenv("CURATION_URL", store_url)
    for var in ("CURATION_USER", "CURATION_IDENTITY_HEADER"):
        monkeypatch.delenv(var, raising=False)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/review.py").run()
    assert not at.exception, at.exception
    at.sidebar.text_input(key="reviewer").set_value("rita").run()
    first = at.session_state["review_item"]
    next(b for b in at.button if b.label == "Drop").click().run()
    second = at.session_state["review_item"]
    next(b for b in at.button if b.label == "Keep").click().run()
    assert not at.exception, at.exception
    with Project(store_url) as project:
        log = project.decisions()
    assert log[["item_id", "reviewer", "action"]].values.tolist() == [
        [first, "rita", "drop"], [second, "rita", "keep"]]
