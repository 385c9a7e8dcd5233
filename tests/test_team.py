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
    team.record_decision("a", actor="anyone", action="keep")      # local: any name
    team.require_role(None, "lead", to="export")                      # local: allowed
    with pytest.raises(ValueError, match="first member must be a lead"):
        team.set_member("ann", "annotator", actor="ann")
    team.set_member("lena", "lead", actor="lena")
    assert team.team_mode and team.role("lena") == "lead"


def test_only_members_decide_and_only_leads_manage(team):
    team.set_member("lena", "lead", actor="lena")
    team.set_member("ann", "annotator", actor="lena")
    with pytest.raises(AccessError, match="only a lead can add members or change roles; 'ann' is an annotator"):
        team.set_member("eve", "lead", actor="ann")
    with pytest.raises(AccessError, match="'eve' is not a member of this team project"):
        team.record_decision("a", actor="eve", action="keep")
    decision = team.record_decision("a", actor="ann", action="set_label", new_label="neg")
    assert team.decisions().set_index("decision_id").at[decision, "reviewer"] == "ann"
    with pytest.raises(AccessError, match="not a member"):
        team.save_augmentations(pd.DataFrame({"source_id": ["a"], "text": ["fine"], "label": ["pos"],
                                              "method": ["glossary"]}), actor="eve")
    with pytest.raises(ValueError, match="only lead"):
        team.set_member("lena", "annotator", actor="lena")
    with pytest.raises(ValueError, match="unknown role 'admin'"):
        team.set_member("bob", "admin", actor="lena")
    team.remove_member("ann", actor="lena")
    assert team.members()["name"].tolist() == ["lena"]


def test_export_and_retrain_need_a_lead(team, tmp_path):
    from curation.workspace import export_project
    from fine_tune.jobs import start_compare_job, start_out_of_fold_job

    team.set_member("lena", "lead", actor="lena")
    team.set_member("ann", "annotator", actor="lena")
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


class _FakeEmbedder:
    """Two-dimensional vectors from the text length: flagging without loading a model."""

    model_key = "fake-embedder"

    def encode(self, texts, progress=None):
        import numpy as np

        return np.array([[len(t), 1.0] for t in texts], dtype="float32")


def test_runs_and_the_embedding_cache_are_written_by_members_only(team):
    """A flags run, a run of any kind and the embedding cache are shared data: in team mode a
    stranger (or no one) is refused in the write itself, and nothing is left behind."""
    from curation.embeddings import embed_texts
    from curation.workspace import flag_project

    team.set_member("lena", "lead", actor="lena")
    team.set_member("ann", "annotator", actor="lena")
    before = (len(team.runs()), team.n_embeddings(), len(team.audit()))
    for actor, who in (("eve", "'eve' is not a member"), (None, "no one is signed in")):
        with pytest.raises(AccessError, match=f"only a member can build the review queue.*{who}"):
            flag_project(team, embedder=_FakeEmbedder(), actor=actor)
        with pytest.raises(AccessError, match=f"only a member can start a consensus run.*{who}"):
            team.start_run("consensus", actor=actor)
        with pytest.raises(AccessError, match=f"only a member can cache embeddings.*{who}"):
            embed_texts(["good", "bad"], embedder=_FakeEmbedder(), project=team, actor=actor)
        with pytest.raises(AccessError, match=f"only a member can start a flags run.*{who}"):
            team.save_flags(pd.DataFrame({"item_id": ["a"], "kind": ["tie"], "score": [1.0],
                                          "reason": [""], "suggested_label": [None],
                                          "rule_id": [None]}), actor=actor)
    assert (len(team.runs()), team.n_embeddings(), len(team.audit())) == before
    flag_project(team, embedder=_FakeEmbedder(), use_model=True, actor="ann")  # a member may
    assert team.n_embeddings() == 2
    assert team.runs()["kind"].tolist() == ["flags"]
    assert team.audit()[["actor", "action"]].values.tolist()[-1] == ["ann", "run"]


def test_imports_and_the_label_set_need_a_lead_and_a_refusal_changes_nothing(team):
    team.set_member("lena", "lead", actor="lena")
    team.set_member("ann", "annotator", actor="lena")
    before = (team.data_version(), team.label_set(), team.annotations(), len(team.audit()))
    flipped = BASE.assign(label=["neg", "neg", "pos"])
    for actor, who in (("ann", "'ann' is an annotator"), (None, "no one is signed in"),
                       ("eve", "'eve' is not a member")):
        with pytest.raises(AccessError, match=f"only a lead can replace stored labels.*; {who}"):
            team.import_annotations(flipped, source="evil.csv", on_conflict="replace", actor=actor)
        with pytest.raises(AccessError, match=f"only a lead can import annotations.*; {who}"):
            team.import_annotations(BASE.assign(item_id=["c", "c", "d"]), label_set=["pos", "evil"],
                                    actor=actor)
        with pytest.raises(AccessError, match=f"only a lead can change the label set.*; {who}"):
            team.set_label_set(["pos", "neg", "evil"], actor=actor)
    assert (team.data_version(), team.label_set(), len(team.audit())) == (before[0], before[1], before[3])
    pd.testing.assert_frame_equal(team.annotations(), before[2])
    # a lead may, and the audit log names the person for every kind of write
    assert team.import_annotations(flipped, source="fix.csv", on_conflict="replace",
                                   actor="lena").n_replaced == 3
    team.set_label_set(["pos", "neg", "mixed"], actor="lena")
    team.remove_member("ann", actor="lena")
    audit = team.audit()
    assert [(r.actor, r.action) for r in audit.itertuples()] == [
        (None, "create"), (None, "import"), ("lena", "member"), ("lena", "member"),
        ("lena", "import"), ("lena", "label_set"), ("lena", "member_removed")]
    assert audit["detail"].iloc[4] | {"import_id": 0} == {
        "import_id": 0, "source": "fix.csv", "on_conflict": "replace", "rows": 3,
        "new_annotations": 0, "replaced": 3, "new_labels": []}
    assert audit["detail"].iloc[5] == {"added": ["mixed"]}
    assert audit["detail"].iloc[6] == {"name": "ann", "role": "annotator"}


def test_jobs_are_cancelled_by_a_lead_of_their_own_project(team, tmp_path):
    """A job's Cancel is a lead's act, checked in the library, logged; a folder that is not one
    of the project's jobs is refused."""
    from fine_tune.jobs import cancel_job

    team.set_member("lena", "lead", actor="lena")
    team.set_member("ann", "annotator", actor="lena")
    folder = tmp_path / "job"
    folder.mkdir()
    run_id = team.start_run("retrain_compare", {"folder": str(folder.resolve())}, actor="lena")
    for actor, who in (("ann", "'ann' is an annotator"), (None, "no one is signed in")):
        with pytest.raises(AccessError, match=f"only a lead can cancel a training job.*{who}"):
            cancel_job(team, folder, actor=actor)
    assert not (folder / "cancel").exists()
    with pytest.raises(ValueError, match="is not a job of"):
        cancel_job(team, tmp_path / "elsewhere", actor="lena")
    cancel_job(team, folder, actor="lena")
    assert (folder / "cancel").is_file()
    rows = team.audit().tail(2)
    assert rows["action"].tolist() == ["run", "cancel"] and rows["actor"].tolist() == ["lena", "lena"]
    assert rows["detail"].iloc[1] == {"run_id": run_id, "folder": str(folder)}


def test_import_cli_mirrors_the_project_page(tmp_path, capsys, monkeypatch):
    from commands.curation import main

    url = str(tmp_path / "new" / "t.sqlite")
    data, flipped = tmp_path / "a.csv", tmp_path / "b.csv"
    BASE.to_csv(data, index=False)
    BASE.assign(label=["neg", "neg", "pos"]).to_csv(flipped, index=False)
    bad = tmp_path / "bad.csv"
    bad.write_text("item_id,text\na,hello\n")
    # a bad file never creates the project (nor its folder)
    assert main(["import", str(bad), "--project", url]) == 2
    assert "bad.csv" in capsys.readouterr().err and not (tmp_path / "new").exists()
    monkeypatch.setenv("CURATION_USER", "lena")
    assert main(["import", str(data), "--project", url]) == 0
    assert "2 new items, 3 new annotations" in capsys.readouterr().out
    assert main(["members", url, "--add", "lena", "--role", "lead"]) == 0
    assert main(["members", url, "--add", "ann"]) == 0
    capsys.readouterr()
    with Project(url) as project:
        before = (project.data_version(), project.annotations())
    monkeypatch.setenv("CURATION_USER", "ann")
    assert main(["import", str(flipped), "--project", url, "--replace"]) == 2
    assert "only a lead can replace stored labels in this team project; 'ann' is an annotator" \
        in capsys.readouterr().err
    assert main(["import", str(flipped), "--project", url, "--as", "eve"]) == 2
    assert "only a lead can import annotations" in capsys.readouterr().err
    with Project(url) as project:
        assert project.data_version() == before[0]
        pd.testing.assert_frame_equal(project.annotations(), before[1])
    assert main(["import", str(flipped), "--project", url, "--replace", "--as", "lena"]) == 0
    assert "3 replaced" in capsys.readouterr().out
    with Project(url) as project:
        assert project.annotations()["label"].tolist() == ["neg", "neg", "pos"]
        audit = project.audit()
    assert [(r.actor, r.action) for r in audit.itertuples()] == [
        ("lena", "create"), ("lena", "import"), ("lena", "member"), ("lena", "member"),
        ("lena", "import")]
    # commands that read a project never create one
    assert main(["members", str(tmp_path / "nope.sqlite")]) == 2
    assert "there is no project at" in capsys.readouterr().err
    assert not (tmp_path / "nope.sqlite").exists()


def test_a_project_url_password_is_never_shown_or_stored(tmp_path, capsys):
    from commands.curation import main
    from curation.store import redact_url

    secret = "postgresql+psycopg://bob:s3cret@db.internal:5432/bank"
    assert redact_url(secret) == "postgresql+psycopg://bob:***@db.internal:5432/bank"
    assert redact_url("projects/p.sqlite") == "projects/p.sqlite"
    with pytest.raises(ValueError) as err:
        Project("no such://bob:s3cret@host/db")
    assert "s3cret" not in str(err.value) and "bob:***@host" in str(err.value)
    assert main(["members", "bad scheme://bob:s3cret@host/db"]) == 2
    assert "s3cret" not in capsys.readouterr().err


@pytest.mark.slow
def test_job_settings_and_runs_keep_the_password_hidden(store_url, tiny_model, tmp_path,
                                                        monkeypatch):
    """A project URL with a password: the runs table and settings.json hide it, the worker still
    reaches the project (it records the cancelled run) through its environment. (The local
    runner on PostgreSQL: tests/test_job_queue.py has the queue's workers.)"""
    monkeypatch.setenv("CURATION_JOBS", "local")
    import json
    import time

    import sqlalchemy as sa

    from fine_tune.jobs import cancel_job, job_status, start_out_of_fold_job

    if not store_url.startswith("postgresql"):
        pytest.skip("SQLite files have no password")
    url = sa.make_url(store_url).set(password="s3cret").render_as_string(hide_password=False)
    folder = tmp_path / "job"
    with Project(url) as project:
        project.import_annotations(pd.concat([BASE.assign(item_id=BASE["item_id"] + str(i))
                                              for i in range(20)]), label_set=["pos", "neg"])
        start_out_of_fold_job(project, folder, folds=2, config={
            "model": tiny_model, "epochs": 200, "batch_size": 8, "max_length": 16})
        stored = json.dumps(project.runs()["params"].tolist()) + (folder / "settings.json").read_text()
        assert "s3cret" not in stored and ":***@" in stored
        deadline = time.time() + 180
        while job_status(folder)["state"] not in ("running", "done", "failed") and time.time() < deadline:
            time.sleep(0.5)
        cancel_job(project, folder)
        while job_status(folder)["state"] not in ("done", "failed", "cancelled") and time.time() < deadline:
            time.sleep(0.5)
        assert job_status(folder)["state"] == "cancelled", job_status(folder)
        deadline = time.time() + 30
        while project.runs()["status"].iloc[-1] == "running" and time.time() < deadline:
            time.sleep(0.5)
        assert project.runs()["status"].iloc[-1] == "cancelled"


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
            project.set_member("lena", "lead", actor="lena")
            project.set_member("ann", "annotator", actor="lena")
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
    assert "'eve' (via CURATION_USER) is not a member" in at.sidebar.error[0].value.replace("\\", "")
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


def test_only_a_lead_may_import_on_the_project_page(tmp_path, monkeypatch):
    for user in ("ann", "eve", None):
        at = _app(tmp_path, monkeypatch, user)
        at.switch_page("app_pages/project.py").run()
        assert not at.exception, at.exception
        assert any("Only a lead of this team project can import" in c.value for c in at.caption)
        assert at.button(key="FormSubmitter:import-Import").disabled
    at = _app(tmp_path, monkeypatch, "lena")
    at.switch_page("app_pages/project.py").run()
    assert not any("Only a lead of this team project can import" in c.value for c in at.caption)


def test_members_cli_and_export_as_a_lead(tmp_path, capsys):
    from commands.curation import main

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


def test_the_identity_header_is_trusted_only_with_the_proxy_secret():
    from app_pages._state import identity_from_headers

    env = {"CURATION_IDENTITY_HEADER": "X-Forwarded-Email"}
    claim = {"X-Forwarded-Email": "lena@bank.example"}
    assert identity_from_headers(claim, {}) == (None, "", None)
    name, how, problem = identity_from_headers(claim, env)
    assert name is None and "CURATION_PROXY_SECRET is not" in problem
    env["CURATION_PROXY_SECRET"] = "s3cret-token"
    for sent in ({}, {"X-Curation-Proxy-Secret": "guess"}, {"X-Curation-Proxy-Secret": "s3cret-tokenX"}):
        name, how, problem = identity_from_headers({**claim, **sent}, env)
        assert name is None and "did not come through the configured proxy" in problem
        assert "s3cret" not in problem
    assert identity_from_headers({**claim, "X-Curation-Proxy-Secret": "s3cret-token"}, env) == (
        "lena@bank.example", "the X-Forwarded-Email header", None)
    assert identity_from_headers({"X-Curation-Proxy-Secret": "s3cret-token"}, env)[0] is None


def test_the_shipped_server_config_listens_on_loopback_only():
    import tomllib

    config = tomllib.loads((Path(__file__).resolve().parents[1] / ".streamlit" / "config.toml")
                           .read_text())
    assert config["server"]["address"] == "127.0.0.1"
