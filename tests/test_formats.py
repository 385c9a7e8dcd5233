"""The ecosystem's formats (issue 18): a Hugging Face DatasetDict export read back, and a Label
Studio round trip (the review queue out as tasks with predictions, completed tasks back in as
decisions under their annotators' names)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from curation.export_history import verify_export
from curation.io import load_annotations
from test_pairs import MAP, nli_file


def test_export_as_hf_keeps_the_pair_and_the_label_set_and_reads_back(tmp_path, capsys):
    import datasets

    from commands.curation import main

    src = nli_file(tmp_path)
    out = tmp_path / "v1"
    args = ["export", str(src), "--format", "wide", "--encoding", "gb18030", "--out", str(out),
            "--formats", "csv,hf", "--labels", "entailment,neutral,contradiction,unrelated",
            "--test-size", "0.2", "--val-size", "0.1"]
    for column, name in MAP.items():
        args += ["--map", f"{column}={name}"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "hf/ (" in printed and "DatasetDict" in printed
    assert verify_export(out) == []  # every file of hf/ is in the manifest, checksummed
    loaded = datasets.load_from_disk(str(out / "hf"))
    assert set(loaded) == {"train", "validation", "test"}
    features = loaded["train"].features
    assert features["label"].names == ["entailment", "neutral", "contradiction", "unrelated"]
    assert {"item_id", "text", "text_pair"} <= set(features)
    csv = pd.read_csv(out / "train.csv")
    assert sorted(loaded["train"]["item_id"]) == sorted(csv["item_id"])
    assert sum(len(s) for s in loaded.values()) == 60
    card = (out / "hf" / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(card.split("---")[1])
    assert header["task_categories"] == ["text-classification"]
    assert "sentence-pair" in header["tags"]
    names = header["dataset_info"]["features"][-1]["dtype"]["class_label"]["names"]
    assert names == {"0": "entailment", "1": "neutral", "2": "contradiction", "3": "unrelated"}
    assert "# Data card" in card
    # read back: the folder (or its hf/) is a file the loader knows, one label per item
    back = load_annotations(out)
    assert back["item_id"].nunique() == 60 and set(back["annotator_id"]) == {"hf:v1"}
    assert {"text", "text_pair"} <= set(back.columns)
    by_id = back.set_index("item_id")
    assert by_id.loc[csv["item_id"].astype(str), "label"].tolist() == csv["label"].tolist()
    # exporting again replaces the hf folder, never leaves an old split behind
    assert main(args) == 0
    assert verify_export(out) == []
    # the loader's limits hold for a datasets folder too, before it is read into memory
    from curation.io import AnnotationFileError

    with pytest.raises(AnnotationFileError, match="max_rows"):
        load_annotations(out, max_rows=10)


def test_a_folder_that_is_not_a_dataset_is_refused_by_name(tmp_path):
    from curation.io import AnnotationFileError

    (tmp_path / "empty").mkdir()
    with pytest.raises(AnnotationFileError, match="not a Hugging Face dataset saved with save_to_disk"):
        load_annotations(tmp_path / "empty")


def _completed(tasks: list[dict], choose) -> list[dict]:
    """What Label Studio's JSON export gives back for our tasks: its own task ids, and each
    annotation with its annotator (``choose(k, task) -> (completed_by, label or None)``)."""
    out = []
    for k, task in enumerate(tasks):
        who, label = choose(k, task)
        annotations = [] if label is None else [{
            "id": 500 + k, "completed_by": who, "was_cancelled": False,
            "result": [{"from_name": "label", "to_name": "text", "type": "choices",
                        "value": {"choices": [label]}}]}]
        if k == 0:  # a skipped task: cancelled, never a decision
            annotations = [{"id": 499, "completed_by": who, "was_cancelled": True, "result": []}]
        out.append({"id": 9000 + k, "data": task["data"], "annotations": annotations,
                    "predictions": task.get("predictions", [])})
    return out


def test_label_studio_round_trip_turns_completed_tasks_into_signed_decisions(tmp_path, capsys):
    import xml.etree.ElementTree as ET

    from commands.curation import main
    from curation.store import Project
    from curation.workspace import flag_project

    nli = load_annotations(nli_file(tmp_path), format="wide", columns=MAP, encoding="gb18030")
    path = tmp_path / "nli.sqlite"
    with Project(path) as project:
        project.import_annotations(nli)
        flag_project(project, use_model=False)
        project.record_decision("p000", actor="lena", action="keep")  # decided: not sent out
    assert main(["label-studio-tasks", str(path), "--out", str(tmp_path / "tasks.json"),
                 "--config", str(tmp_path / "config.xml")]) == 0
    assert "open review items as Label Studio tasks" in capsys.readouterr().out
    tasks = json.loads((tmp_path / "tasks.json").read_text(encoding="utf-8"))
    assert tasks and all({"item_id", "text", "text_pair", "flag_reasons", "votes"}
                         <= set(t["data"]) for t in tasks)
    assert "p000" not in {t["data"]["item_id"] for t in tasks}
    with_prediction = [t for t in tasks if t.get("predictions")]
    assert with_prediction
    choice = with_prediction[0]["predictions"][0]["result"][0]
    assert choice["from_name"] == "label" and choice["type"] == "choices"
    config = ET.fromstring((tmp_path / "config.xml").read_text(encoding="utf-8"))
    assert [c.get("value") for c in config.iter("Choice")] == sorted(set(nli["label"]))
    assert {t.get("name") for t in config.iter("Text")} >= {"text", "text_pair", "flag_reasons"}

    def choose(k, task):  # every other task relabelled to "neutral", the rest kept
        who = {"id": 3, "email": "li@example.org"} if k % 3 else 7
        current = task["data"]["current_label"]
        return who, ("neutral" if current != "neutral" else "entailment") if k % 2 else current

    export = tmp_path / "project-1-at-2026-12-01.json"
    export.write_text(json.dumps(_completed(tasks, choose), ensure_ascii=False), encoding="utf-8")
    assert main(["label-studio-import", str(path), str(export)]) == 0
    out = capsys.readouterr().out
    assert f"imported {len(tasks) - 1} decisions" in out and "li@example.org" in out
    with Project(path) as project:
        log = project.decisions()
        imported = log[log["note"].str.startswith("from Label Studio")]
        assert len(imported) == len(tasks) - 1  # the cancelled one is not a decision
        assert set(imported["reviewer"]) == {"li@example.org", "label-studio-user-7"}
        assert set(imported["action"]) == {"keep", "set_label"}
        relabelled = imported[imported["action"] == "set_label"]
        assert (relabelled["old_label"] != relabelled["new_label"]).all()
        assert project.audit()["action"].tolist()[-1] == "decisions_import"
        # team mode: a lead imports, and an annotator Label Studio names must be a member
        project.set_member("lena", "lead", actor="lena")
        before = len(project.decisions())
    assert main(["label-studio-import", str(path), str(export), "--as", "lena"]) == 2
    assert "'li@example.org' is not a member" in capsys.readouterr().err
    with Project(path) as project:
        assert len(project.decisions()) == before  # all or nothing


def test_label_studio_decisions_refuse_labels_outside_the_set(tmp_path):
    from actions.review import import_label_studio, label_studio_tasks
    from curation.store import Project
    from curation.workspace import flag_project

    nli = load_annotations(nli_file(tmp_path), format="wide", columns=MAP, encoding="gb18030")
    with Project(tmp_path / "p.sqlite") as project:
        project.import_annotations(nli)
        flag_project(project, use_model=False)
        tasks, _ = label_studio_tasks(project)
        export = tmp_path / "done.json"
        export.write_text(json.dumps(_completed(tasks, lambda k, t: ("ann", "maybe"))),
                          encoding="utf-8")
        with pytest.raises(ValueError, match="'maybe' is not in the label set"):
            import_label_studio(project, export, name="done.json", actor=None)
        assert project.decisions().empty


def test_the_review_page_prepares_tasks_and_imports_them_back(tmp_path, monkeypatch):
    from test_pairs import app_on

    nli = load_annotations(nli_file(tmp_path), format="wide", columns=MAP, encoding="gb18030")
    at = app_on(tmp_path, monkeypatch, nli, page="app_pages/review.py", flag=True)
    at.sidebar.button(key="ls-prepare").click().run()
    assert not at.exception, at.exception
    assert "ls-tasks" in at.session_state
    body, config, n_tasks = at.session_state["ls-tasks"]
    assert n_tasks == len(json.loads(body)) > 0 and "<Choices" in config
    # Label Studio's export of them comes back through the same sidebar, as decisions
    done = _completed(json.loads(body), lambda k, t: ({"id": 3, "email": "li@example.org"},
                                                      t["data"]["current_label"]))
    upload = json.dumps(done, ensure_ascii=False).encode("utf-8")
    at.sidebar.file_uploader(key="ls-upload").set_value(("export.json", upload,
                                                         "application/json")).run()
    at.sidebar.button(key="ls-import").click().run()
    assert not at.exception, at.exception
    assert any(f"Imported {n_tasks - 1} decisions" in s.value for s in at.success)
