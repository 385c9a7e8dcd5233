"""Uploads and models never run code: pickled weights are refused with the fix; uploads have a limit."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.io import AnnotationFileError, load_annotations


@pytest.fixture(scope="module")
def pickled_model(tmp_path_factory, tiny_model) -> str:
    """The tiny BERT saved again as pytorch_model.bin only (a pickle)."""
    import shutil

    import torch
    from safetensors.torch import load_file

    folder = tmp_path_factory.mktemp("pickled")
    for path in Path(tiny_model).iterdir():
        if path.suffix != ".safetensors":
            shutil.copy(path, folder / path.name)
    torch.save(load_file(Path(tiny_model) / "model.safetensors"), folder / "pytorch_model.bin")
    assert (folder / "pytorch_model.bin").is_file() and not list(folder.glob("*.safetensors"))
    return str(folder)


def test_fine_tune_refuses_pickled_weights_and_says_how_to_convert(pickled_model, tiny_model):
    from fine_tune._model import load_model
    from fine_tune.config import TrainConfig

    with pytest.raises(ValueError) as caught:
        load_model(TrainConfig(model=pickled_model), 2)
    message = str(caught.value)
    assert "pytorch_model.bin" in message and "never loaded" in message
    assert "safe_serialization=True" in message
    assert load_model(TrainConfig(model=tiny_model), 2) is not None  # the safetensors copy loads


def test_augmenter_refuses_pickled_weights(pickled_model):
    from curation.augment import AugmenterError
    from curation.augment._models import _build

    with pytest.raises(AugmenterError, match="pytorch_model.bin.*never loaded"):
        _build(pickled_model, "cpu", "fill-mask")


@pytest.mark.parametrize("name", ["rows.pkl", "rows.pickle", "rows.npy", "rows.joblib"])
def test_code_executing_formats_are_not_read(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(b"\x80\x04not really")
    with pytest.raises(AnnotationFileError, match="cannot tell the file type"):
        load_annotations(path)


def test_upload_limit_on_the_page(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    monkeypatch.setenv("CURATION_URL", str(tmp_path / "p.sqlite"))
    monkeypatch.setenv("CURATION_MAX_UPLOAD_MB", "0.001")  # about 1 KiB
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"),
                           default_timeout=60)
    at.run()
    body = b"item_id,text,annotator_id,label\n" + b"".join(
        f"{i},some text {i},ann,pos\n".encode() for i in range(100))
    at.file_uploader[0].set_value(("big.csv", body, "text/csv")).run()
    at.button(key="FormSubmitter:import-Import").click().run()
    assert not at.exception, at.exception
    message = at.error[0].value.replace("\\", "")  # as Markdown shows it (plain() escapes)
    assert "Nothing was imported. big.csv: is 2.4 KiB, over the 1.0 KiB limit" in message
    assert {m.label: m.value for m in at.metric}["Annotations"] == "0"


def test_bad_upload_limit_setting_is_named(monkeypatch):
    from curation.workspace import upload_limit_bytes

    monkeypatch.setenv("CURATION_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ValueError, match="CURATION_MAX_UPLOAD_MB='lots'"):
        upload_limit_bytes()
    monkeypatch.setenv("CURATION_MAX_UPLOAD_MB", "50")
    assert upload_limit_bytes() == 50 * 2**20


def test_projects_are_offered_by_name_and_a_name_cannot_smuggle_a_path(tmp_path, monkeypatch):
    from curation.store import Project
    from curation.workspace import available_projects, new_project_url

    home = tmp_path / "home"
    monkeypatch.setenv("CURATION_HOME", str(home))
    monkeypatch.delenv("CURATION_URL", raising=False)
    assert available_projects() == {"demo": str(home / "demo.sqlite")}
    home.mkdir()
    Project(home / "bank.sqlite").close()
    (home / "projects.toml").write_text('[projects]\nshared = "postgresql+psycopg://c@db/shared"\n')
    monkeypatch.setenv("CURATION_URL", str(tmp_path / "elsewhere" / "team.sqlite"))
    assert available_projects() == {"demo": str(home / "demo.sqlite"),
                                     "bank": str(home / "bank.sqlite"),
                                     "shared": "postgresql+psycopg://c@db/shared",
                                     "team": str(tmp_path / "elsewhere" / "team.sqlite")}
    assert new_project_url("bank-2") == str(home / "bank-2.sqlite")
    for bad in ("../escape", "/tmp/x", "a/b", "", " ", ".hidden", "x" * 65, "sqlite:///tmp/x"):
        with pytest.raises(ValueError, match="is not a project name"):
            new_project_url(bad)
    with pytest.raises(ValueError, match="a project called 'bank' exists already"):
        new_project_url("bank")
    (home / "projects.toml").write_text("[projects\n")
    with pytest.raises(ValueError, match="projects.toml is not valid TOML"):
        available_projects()
    (home / "projects.toml").write_text('[projects]\n"../x" = "sqlite:///tmp/x.sqlite"\n')
    with pytest.raises(ValueError, match=r"\[projects\] name '../x' must be"):
        available_projects()


def test_the_project_page_opens_and_creates_projects_by_name_only(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    home = tmp_path / "home"
    monkeypatch.setenv("CURATION_HOME", str(home))
    monkeypatch.delenv("CURATION_URL", raising=False)
    monkeypatch.delenv("CURATION_USER", raising=False)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"),
                           default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    assert not [t for t in at.text_input if "path" in t.label.lower() or "url" in t.label.lower()]
    assert at.selectbox(key="open_name").options == ["demo"]
    # a name that tries to leave the folder is refused, and nothing is created anywhere
    at.text_input(key="new_name").set_value("../../escape").run()
    next(b for b in at.button if b.label == "Create").click().run()
    assert not at.exception, at.exception
    assert any("is not a project name" in e.value.replace("\\", "") for e in at.error)
    assert not list(tmp_path.rglob("escape*"))
    at.text_input(key="new_name").set_value("bank-2").run()
    next(b for b in at.button if b.label == "Create").click().run()
    assert not at.exception, at.exception
    assert (home / "bank-2.sqlite").is_file()
    assert at.selectbox(key="open_name").options == ["demo", "bank-2"]
    assert at.session_state["project_name"] == "bank-2"
    assert any("This project is empty" in i.value for i in at.info)
    # a session cannot be pointed at a path: an unknown name falls back to the default
    at.session_state["project_name"] = str(tmp_path / "other.sqlite")
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["project_name"] == "demo" and not (tmp_path / "other.sqlite").exists()


def test_models_glossaries_and_rules_are_offered_by_name_from_the_operators_folders(tmp_path, monkeypatch):
    from curation.workspace import BUNDLED_MODEL, available_files, available_models

    home = tmp_path / "home"
    monkeypatch.setenv("CURATION_HOME", str(home))
    assert available_models() == {BUNDLED_MODEL: None}
    assert set(available_files("glossaries")) >= {"bank_support", "finance"}
    assert set(available_files("rules")) == {"bank_support_rules", "finance_rules"}
    for name in ("roberta", "not-a-model", ".hidden", "bad name"):
        (home / "models" / name).mkdir(parents=True)
        if name != "not-a-model":
            (home / "models" / name / "config.json").write_text("{}")
    (home / "rules").mkdir()
    (home / "rules" / "ours.yaml").write_text("rules: []\n")
    (home / "rules" / "x y.yaml").write_text("rules: []\n")
    (home / "projects.toml").write_text('[models]\nmpnet = "sentence-transformers/all-mpnet-base-v2"\n')
    assert available_models() == {BUNDLED_MODEL: None, "roberta": str(home / "models" / "roberta"),
                                  "mpnet": "sentence-transformers/all-mpnet-base-v2"}
    assert available_files("rules")["ours"] == str(home / "rules" / "ours.yaml")
    assert "x y" not in available_files("rules")
    (home / "projects.toml").write_text('[models]\n"../up" = "/etc"\n')
    with pytest.raises(ValueError, match=r"\[models\] name '../up' must be"):
        available_models()
    with pytest.raises(ValueError, match="kind='../etc' is not one of"):
        available_files("../etc")


def test_pages_that_read_server_files_offer_names_not_paths(tmp_path, monkeypatch):
    """Augment, Retrain and Experiments: no text box that takes a path, a URL or a model id."""
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    for var in ("CURATION_URL", "CURATION_USER", "CURATION_IDENTITY_HEADER"):
        monkeypatch.delenv(var, raising=False)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"),
                           default_timeout=120)
    at.run()
    for page in ("augment", "retrain", "experiments"):
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        typed = [t.label for t in at.text_input
                 if not t.label.lower().startswith(("your name", "name"))
                 and t.label not in NOT_PATHS]
        assert typed == [], (page, typed)
    # the one other text box is read as integer pairs only: a path is refused, never opened
    from actions.jobs import parse_schedule

    for value in ("/etc/passwd", "../x", "1:2;/tmp"):
        with pytest.raises(ValueError, match="write EPOCH:LAYERS pairs"):
            parse_schedule(value)


#: Text boxes of those pages that take no path, checked by what reads them.
NOT_PATHS = {"Unfreeze schedule"}  # actions.jobs.parse_schedule: "1:2, 3:2" -> ((1, 2), (3, 2))
