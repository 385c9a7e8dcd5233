"""The attention view: attention per layer and head and rollout of a saved fine-tuned model,
the chart, the CLI, the models a retrain-and-compare job keeps, and the Review page's expander.

The model is the tiny 2-layer, 2-head BERT (tests/tiny_models.py), trained for a few steps and
saved with ``train_classifier(save_to=...)``.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("transformers")

from fine_tune import attention as attention_module  # noqa: E402
from fine_tune.attention import (  # noqa: E402
    attention_chart,
    attention_for,
    attention_rollout,
)
from fine_tune.config import TrainConfig  # noqa: E402
from tiny_models import LAYERS, toy  # noqa: E402

TEXT = "the movie was good and great"
HEADS = 2


def tiny(model: str, **kwargs) -> TrainConfig:
    settings = dict(model=model, epochs=2, batch_size=16, max_length=32, learning_rate=1e-3,
                    warmup_ratio=0.0, early_stopping_patience=0, save_checkpoints=False)
    return TrainConfig(**{**settings, **kwargs})


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """``(folder, test frame, TrainResult)`` of the tiny BERT trained for 8 steps and saved."""
    from fine_tune.train import train_classifier

    folder = tmp_path_factory.mktemp("attention") / "saved"
    test = toy(12, 2)
    result = train_classifier(toy(64, 0), None, test, config=tiny(tiny_model),
                              save_to=folder)
    return str(folder), test.reset_index(drop=True), result


@pytest.fixture(scope="module")
def saved(trained) -> str:
    return trained[0]


# --- rollout by hand ------------------------------------------------------------------------

def test_rollout_matches_a_hand_computation_on_two_layers():
    layer1 = [[[0.5, 0.5], [0.5, 0.5]], [[1.0, 0.0], [0.0, 1.0]]]  # heads' mean + I, halved:
    layer2 = [[[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]]  # [[.875,.125],[.125,.875]]
    att = np.array([layer1, layer2])                                 # and [[.5,.5],[.25,.75]]
    expected = np.array([[0.5, 0.5], [0.3125, 0.6875]])  # layer 2 @ layer 1 (not 1 @ 2)
    assert np.allclose(attention_rollout(att), expected)
    assert np.allclose(attention_rollout(att).sum(axis=1), 1.0)
    with pytest.raises(ValueError, match=r"\(layers, heads, seq, seq\)"):
        attention_rollout(att[0])


# --- one text through the saved model -------------------------------------------------------

@pytest.mark.slow
def test_train_classifier_saves_a_loadable_model(saved):
    names = {p.name for p in Path(saved).iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    assert not any(n.endswith((".bin", ".pt", ".pth")) for n in names)


@pytest.mark.slow  # the module's model is trained by the first test that asks for it
def test_shapes_rows_and_tokens(saved):
    from transformers import AutoTokenizer

    att = attention_for(saved, TEXT)
    tokenizer = AutoTokenizer.from_pretrained(saved)
    ids = tokenizer(TEXT)["input_ids"]
    assert att.tokens == tokenizer.convert_ids_to_tokens(ids)
    assert att.tokens[0] == "[CLS]" and att.tokens[-1] == "[SEP]" and "good" in att.tokens
    assert att.special == [t in ("[CLS]", "[SEP]") for t in att.tokens]
    seq = len(ids)
    assert att.attentions.shape == (LAYERS, HEADS, seq, seq)
    assert np.allclose(att.attentions.sum(axis=-1), 1.0, atol=1e-5)
    rollout = att.rollout()
    assert rollout.shape == (seq, seq) and np.allclose(rollout.sum(axis=-1), 1.0)
    assert np.allclose(rollout, attention_rollout(att.attentions))
    assert np.allclose(att.matrix(1), att.attentions[1].mean(axis=0))
    assert np.array_equal(att.matrix(0, 1), att.attentions[0, 1])
    top = att.top_tokens(3)
    assert len(top) == 3 and all(not att.special[pos] for pos, _, _ in top)
    assert [w for _, _, w in top] == sorted((w for _, _, w in top), reverse=True)


@pytest.mark.slow  # the module's model is trained by the first test that asks for it
def test_prediction_is_the_trained_models(trained):
    """The saved weights are the final ones: the same probabilities the trainer predicted."""
    folder, test, result = trained
    assert result.labels == ["neg", "pos"]
    for i in (0, 5, 11):
        att = attention_for(folder, test["text"].iat[i])
        assert att.labels == ["neg", "pos"]
        assert np.allclose(att.probabilities, result.test_proba[i], atol=1e-4)
        assert att.predicted == result.labels[int(result.test_pred[i])]


@pytest.mark.slow  # the module's model is trained by the first test that asks for it
def test_models_are_cached_per_folder(saved):
    attention_module.clear_cache()
    attention_for(saved, TEXT)
    first = dict(attention_module._MODELS)
    attention_for(saved, "bad awful day")
    assert len(first) == 1 and attention_module._MODELS == first


@pytest.mark.slow  # the module's model is trained by the first test that asks for it
def test_bad_inputs_raise_value_errors_naming_the_fix(saved, tmp_path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ValueError, match="no-such-model") as err:
        attention_for(missing, TEXT)
    assert "save_to" in str(err.value) and "Retrain and compare" in str(err.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match=r"empty.*holds no saved model"):
        attention_for(empty, TEXT)
    with pytest.raises(ValueError, match="text is empty"):
        attention_for(saved, "   ")
    att = attention_for(saved, TEXT)
    with pytest.raises(ValueError, match=r"layer=2 is out of range: this model has 2 layers"):
        att.matrix(2)
    with pytest.raises(ValueError, match=r"head=5 is out of range"):
        attention_chart(att, 0, 5)


# --- the chart ------------------------------------------------------------------------------

def _chart_data(spec: dict) -> list[list[dict]]:
    return [spec["datasets"][part["data"]["name"]] for part in spec["vconcat"]]


@pytest.mark.slow  # the module's model is trained by the first test that asks for it
def test_chart_draws_the_chosen_head_and_the_cls_row(saved):
    att = attention_for(saved, TEXT)
    seq = len(att.tokens)
    words = [i for i, s in enumerate(att.special) if not s]
    spec = attention_chart(att, 1, 0).to_dict()
    heat, bars = _chart_data(spec)
    assert len(heat) == seq * seq and len(bars) == len(words) == seq - 2
    grid = np.zeros((seq, seq))
    for cell in heat:
        grid[cell["from_pos"], cell["to_pos"]] = cell["weight"]
    assert np.allclose(grid, att.attentions[1, 0])
    # the bars: the [CLS] row over the words; the special tokens' weights in the subtitle
    assert [b["pos"] for b in bars] == words and [b["token"] for b in bars] == [att.tokens[i] for i in words]
    assert np.allclose([b["weight"] for b in bars], att.attentions[1, 0][0, words])
    assert f"[SEP] {att.attentions[1, 0][0, -1]:.2f}" in json.dumps(spec["vconcat"][1]["title"])
    # the colour scale ends at the largest weight on a word
    scale = spec["vconcat"][0]["encoding"]["color"]["scale"]
    assert scale["domain"][1] == pytest.approx(att.attentions[1, 0][:, words].max())
    assert "layer 1, head 0" in json.dumps(spec["vconcat"][0]["title"])
    spec = attention_chart(att).to_dict()
    _, bars = _chart_data(spec)
    assert np.allclose([b["weight"] for b in bars], att.rollout()[0, words])
    assert "rollout" in json.dumps(spec["vconcat"][0]["title"])


# --- the command line -----------------------------------------------------------------------

@pytest.mark.slow  # the module's model is trained by the first test that asks for it
def test_cli_prints_top_tokens_and_writes_json(saved, tmp_path, capsys):
    from commands.fine_tune import main

    out = tmp_path / "att.json"
    assert main(["attention", "--model", saved, "--text", TEXT, "--layer", "1", "--head", "0",
                 "--top", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "top tokens by [CLS] attention (rollout)" in printed
    assert "(layer 1, head 0)" in printed and "predicted" in printed
    d = json.loads(out.read_text())
    att = attention_for(saved, TEXT)
    assert d["tokens"] == att.tokens and d["shape"] == [LAYERS, HEADS, len(att.tokens), len(att.tokens)]
    assert np.allclose(d["attentions"], att.attentions)
    assert np.allclose(d["rollout"], att.rollout()) and np.allclose(d["cls_rollout"], att.rollout()[0])
    assert np.allclose(d["selected"]["matrix"], att.attentions[1, 0])
    best = att.top_tokens(1)[0][1]
    assert f"{best}" in printed.split("(rollout):")[1].splitlines()[1]


def test_cli_missing_model_exits_2_naming_it(tmp_path, capsys):
    from commands.fine_tune import main

    assert main(["attention", "--model", str(tmp_path / "gone"), "--text", TEXT]) == 2
    assert "gone" in capsys.readouterr().err


# --- the job keeps its models ---------------------------------------------------------------

class _FakeResult:
    def __init__(self, test, save_to):
        self.labels, self.cancelled = ["neg", "pos"], False
        self.test_pred = np.zeros(len(test), dtype=int)
        self.test_proba = np.tile([0.9, 0.1], (len(test), 1))
        if save_to is not None:
            Path(save_to).mkdir(parents=True)
            (Path(save_to) / "config.json").write_text("{}")
            (Path(save_to) / "model.safetensors").write_bytes(b"x")


def test_keep_models_saves_one_seed_by_side(tmp_path):
    from fine_tune.compare import split_validation
    from fine_tune.jobs import _KeepModels, saved_models

    before, after, test = toy(30, 0), toy(40, 1), toy(6, 2).assign(item_id=[f"t{i}" for i in range(6)])
    calls = []

    def trainer(train, validation, test, *, config, save_to=None, **kwargs):
        calls.append((config.seed, save_to))
        return _FakeResult(test, save_to)

    keep = _KeepModels(trainer, tmp_path, {"before": before, "after": after}, seed=0)
    for seed in (1, 0):
        for side, frame in (("after", after), ("before", before)):  # sides told by the rows
            train, val = split_validation(frame, validation_size=0.2, seed=seed)
            keep(train, val, test, config=tiny("m", seed=seed), labels=["neg", "pos"])
    assert [c[1] is None for c in calls] == [True, True, False, False]
    assert saved_models(tmp_path) == keep.saved == {s: str(tmp_path / "models" / s)
                                                    for s in ("before", "after")}
    pred = pd.read_csv(tmp_path / "models" / "after" / "predictions.csv")
    assert pred.columns.tolist() == ["item_id", "text", "label", "predicted", "probability"]
    assert set(pred["predicted"]) == {"neg"} and np.allclose(pred["probability"], 0.9)
    assert not list((tmp_path / "models").glob(".*-partial"))

    # a trainer without save_to trains as before and keeps nothing
    def plain(train, validation, test, *, config, labels, progress=None, should_stop=None):
        return _FakeResult(test, None)

    other = _KeepModels(plain, tmp_path / "other", {"before": before, "after": after}, seed=0)
    other(before, None, test, config=tiny("m", seed=0), labels=["neg", "pos"])
    assert other.saved == {} and saved_models(tmp_path / "other") == {}


@pytest.fixture
def demo(tmp_path, monkeypatch):
    from curation.workspace import open_demo_project

    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    monkeypatch.delenv("CURATION_URL", raising=False)
    with open_demo_project() as project:
        yield project


@pytest.mark.slow
def test_job_keeps_the_seed_0_models(demo, tiny_model, tmp_path):
    from fine_tune.jobs import job_status, latest_job, latest_saved_models, start_compare_job

    folder = tmp_path / "job"
    start_compare_job(demo, folder, config=tiny(tiny_model, epochs=1, batch_size=32), seeds=(0,))
    deadline = time.time() + 240
    while job_status(folder)["state"] not in ("done", "failed", "cancelled"):
        assert time.time() < deadline, (folder / "worker.log").read_text()[-3000:]
        time.sleep(0.3)
    status = latest_job(demo)
    assert status["state"] == "done", status.get("message")
    models = {s: str(folder / "models" / s) for s in ("before", "after")}
    assert status["models"] == models and status["report"]["models"] == models
    found = latest_saved_models(demo)
    assert found == {"run_id": status["run_id"], "folder": str(folder.resolve()), "models": models}
    assert demo.get_run(status["run_id"])["result"]["models"] == models
    for side in ("before", "after"):
        assert (folder / "models" / side / "model.safetensors").is_file()
        pred = pd.read_csv(folder / "models" / side / "predictions.csv", keep_default_na=False)
        accuracy = float((pred["label"] == pred["predicted"]).mean())
        assert accuracy == pytest.approx(status["report"]["per_seed"][0][f"accuracy_{side}"])
    test = pd.read_csv(folder / "test.csv", keep_default_na=False)
    assert pred["item_id"].astype(str).tolist() == test["item_id"].astype(str).tolist()
    att = attention_for(models["after"], test["text"].iat[0], max_length=32)
    assert att.predicted == pred["predicted"].iat[0]
    assert set(att.labels) == set(demo.label_set())


# --- the Review page ------------------------------------------------------------------------

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    for var in ("CURATION_URL", "CURATION_USER", "CURATION_IDENTITY_HEADER"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


def _review_page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    at.switch_page("app_pages/review.py").run()
    assert not at.exception, at.exception
    return at


def _expander(at):
    from app_pages._attention import EXPANDER_LABEL

    found = [e for e in at.expander if e.label == EXPANDER_LABEL]
    assert len(found) == 1, [e.label for e in at.expander]
    return found[0]


@pytest.mark.slow  # the module's model is trained by the first test that asks for it
def test_review_page_shows_what_the_model_looks_at(home, saved):
    from curation.store import Project
    from curation.workspace import flag_project
    from fine_tune.jobs import RUN_KIND

    _review_page()  # creates the demo project
    with Project(home / "demo.sqlite") as project:
        flag_project(project, use_model=False)
    at = _review_page()
    box = _expander(at)
    assert "Run **Retrain and compare**" in box.info[0].value  # no model yet: how to get one
    assert not box.get("vega_lite_chart") and not box.get("arrow_vega_lite_chart")

    job = home / "jobs" / "j1"
    shutil.copytree(saved, job / "models" / "after")
    with Project(home / "demo.sqlite") as project:
        run_id = project.start_run(RUN_KIND, {"folder": str(job)})
        project.finish_run(run_id, status="done", result={"verdict": "test"})
    at = _review_page()
    box = _expander(at)
    assert not box.info
    assert f"run #{run_id}" in box.caption[0].value
    with Project(home / "demo.sqlite") as project:
        frame = project.annotations()
    text = frame.loc[frame["item_id"] == at.session_state["review_item"], "text"].iloc[0]
    att = attention_for(str(job / "models" / "after"), text)
    said = " ".join(m.value for m in box.markdown)
    assert f"The model predicts **{att.predicted}**" in said
    assert [s.label for s in box.selectbox] == ["Layer", "Head"]
    assert box.selectbox[1].disabled  # rollout: no head to pick
    charts = box.get("arrow_vega_lite_chart") or box.get("vega_lite_chart")
    assert len(charts) == 1 and "rollout" in charts[0].proto.spec
    box.selectbox[0].set_value(1).run()
    assert not at.exception, at.exception
    box = _expander(at)
    assert not box.selectbox[1].disabled
    box.selectbox[1].set_value(0).run()
    assert not at.exception, at.exception
    box = _expander(at)
    charts = box.get("arrow_vega_lite_chart") or box.get("vega_lite_chart")
    assert "layer 1, head 0" in charts[0].proto.spec
