"""Tests of fine_tune.multitask, the ``multitask`` command and the experiments page.

Training uses the tiny BERT of tests/tiny_models.py (2 layers, hidden size 32) on two toy tasks
whose labels a few epochs learn: sentiment (the "good" or "bad" words, tiny_models.toy) and topic
(which of three topic words the text holds, independent of its sentiment words).
"""

from __future__ import annotations

import time

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from commands.fine_tune import main  # noqa: E402
from fine_tune.config import TrainConfig  # noqa: E402
from fine_tune.multitask import (  # noqa: E402
    MultiTaskComparison,
    batch_plan,
    build_model,
    compare_multitask,
    split_train_test,
    train_multitask,
    train_single_task,
)
from tiny_models import toy, topic  # noqa: E402

@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one thread is faster, and much faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tasks() -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    return {"sentiment": (toy(64, 0), toy(40, 2)), "topic": (topic(72, 0), topic(45, 2))}


def cfg(model: str, **kwargs) -> TrainConfig:
    settings = dict(model=model, epochs=3, learning_rate=1e-2, batch_size=8, max_length=16,
                    warmup_ratio=0.0, early_stopping_patience=0, save_checkpoints=False)
    return TrainConfig(**{**settings, **kwargs})


# --- the batch plan and the budget ----------------------------------------------------------

@pytest.mark.parametrize("schedule", ["proportional", "round_robin"])
@pytest.mark.parametrize("epochs", [2, 1.5])
def test_one_task_alone_gets_exactly_its_batches_of_the_joint_plan(schedule, epochs):
    rows = {"a": 23, "b": 9, "c": 40}
    joint = batch_plan(rows, batch_size=4, epochs=epochs, seed=7, schedule=schedule)
    for name, n in rows.items():
        alone = batch_plan({name: n}, batch_size=4, epochs=epochs, seed=7, schedule=schedule)
        mine = [idx for task, idx in joint if task == name]
        assert len(alone) == len(mine)
        assert all(np.array_equal(x, y) for (_, x), y in zip(alone, mine))
        seen = np.bincount(np.concatenate(mine), minlength=n)
        if float(epochs).is_integer():
            assert (seen == epochs).all()  # every row, `epochs` times
        else:
            assert seen.min() >= 1 and seen.max() <= 2
    assert len(joint) == sum(len(batch_plan({k: v}, batch_size=4, epochs=epochs, seed=7)) for k, v in rows.items())


def test_schedules_interleave_as_documented():
    rr = [t for t, _ in batch_plan({"a": 6, "b": 2}, batch_size=2, epochs=1, seed=0,
                                   schedule="round_robin")]
    assert rr == ["a", "b", "a", "a"]
    prop = [t for t, _ in batch_plan({"a": 40, "b": 40}, batch_size=2, epochs=1, seed=0)]
    assert sorted(prop) == ["a"] * 20 + ["b"] * 20 and prop != sorted(prop)  # mixed, not blocked
    again = [t for t, _ in batch_plan({"a": 40, "b": 40}, batch_size=2, epochs=1, seed=0)]
    other = [t for t, _ in batch_plan({"a": 40, "b": 40}, batch_size=2, epochs=1, seed=1)]
    assert prop == again and prop != other
    with pytest.raises(ValueError, match="schedule"):
        batch_plan({"a": 4}, batch_size=2, epochs=1, seed=0, schedule="random")


@pytest.mark.slow
def test_multitask_model_has_one_head_per_task_and_learns_both(tiny_model, tasks):
    run = train_multitask(tasks, cfg(tiny_model), seed=0)
    model = run.model
    assert model.task_names == ["sentiment", "topic"] and len(model.heads) == 2
    assert model.head("sentiment").out_features == 2 and model.head("topic").out_features == 3
    assert model.head("sentiment") is not model.head("topic")
    n_encoder = sum(p.numel() for p in model.encoder.parameters())
    n_heads = sum(p.numel() for p in model.heads.parameters())
    assert sum(p.numel() for p in model.parameters()) == n_encoder + n_heads  # one shared encoder
    assert run.labels == {"sentiment": ["neg", "pos"], "topic": ["day", "food", "movie"]}
    scores = run.scores()
    assert scores["sentiment"]["accuracy"] >= 0.8  # chance 0.5
    assert scores["topic"]["accuracy"] >= 0.6  # chance 1/3
    assert run.test_proba["topic"].shape == (45, 3)
    np.testing.assert_allclose(run.test_proba["topic"].sum(axis=1), 1.0, rtol=1e-6)
    # predictions are in the test frame's order
    truth = tasks["sentiment"][1]["label"].map({"neg": 0, "pos": 1}).to_numpy()
    np.testing.assert_array_equal(run.test_truth["sentiment"], truth)
    with pytest.raises(ValueError, match="no head for task 'nope'"):
        model.head("nope")


@pytest.mark.slow
def test_single_task_budget_equals_the_multitask_budget(tiny_model, tasks):
    config = cfg(tiny_model, epochs=2)
    multi = train_multitask(tasks, config, seed=3, schedule="round_robin", keep_model=False)
    assert multi.model is None
    total_steps = 0
    for name, (train, test) in tasks.items():
        single = train_single_task(name, train, test, config, seed=3, keep_model=False)
        assert single.tasks == [name]
        np.testing.assert_array_equal(single.seen[name], multi.seen[name])  # the same examples
        assert (single.seen[name] == 2).all()  # each row once per epoch
        assert single.examples_seen[name] == multi.examples_seen[name] == 2 * len(train)
        assert single.batches[name] == multi.batches[name] == 2 * int(np.ceil(len(train) / 8))
        total_steps += single.optimizer_steps
    assert multi.optimizer_steps == total_steps  # the multi-task encoder gets all tasks' updates


def test_heads_start_from_the_same_weights_in_both_models(tiny_model):
    config = cfg(tiny_model)
    joint = build_model(config, {"x": 2, "y": 3}, seed=5)
    alone = build_model(config, {"y": 3}, seed=5)
    other = build_model(config, {"y": 3}, seed=6)
    assert torch.equal(joint.head("y").weight, alone.head("y").weight)
    assert not torch.equal(alone.head("y").weight, other.head("y").weight)
    assert torch.count_nonzero(alone.head("y").bias) == 0


@pytest.mark.slow
def test_compare_multitask_reports_per_task_and_seed(tiny_model, tasks):
    calls = []
    report = compare_multitask(tasks, cfg(tiny_model, epochs=2), seeds=(0, 1), n_boot=300,
                               progress=lambda f, m: calls.append(f))
    assert isinstance(report, MultiTaskComparison)
    d = report.to_dict()
    json.dumps(d)  # JSON-able
    assert d["kind"] == "multitask" and d["seeds"] == [0, 1] and "same" in d["budget"]
    for name in tasks:
        t = d["tasks"][name]
        assert set(t) >= {"multi", "single", "delta_accuracy", "delta_accuracy_ci", "per_seed"}
        assert [r["seed"] for r in t["per_seed"]] == [0, 1]
        for r in t["per_seed"]:
            assert r["examples_seen"]["multi"] == r["examples_seen"]["single"]
            assert 0 <= r["multi"]["accuracy"] <= 1 and 0 <= r["single"]["macro_f1"] <= 1
        multi_mean = t["multi"]["accuracy"]["mean"]
        single_mean = t["single"]["accuracy"]["mean"]
        assert t["delta_accuracy"] == pytest.approx(multi_mean - single_mean)
        low, high = t["delta_accuracy_ci"]
        assert low <= t["delta_accuracy"] <= high
    assert calls and calls == sorted(calls) and calls[-1] == pytest.approx(1.0)
    md = report.to_markdown()
    assert "| sentiment | multi |" in md and "| topic | single |" in md and "95% CI" in md


def test_bad_input_is_a_value_error_naming_the_problem(tiny_model, tasks):
    config = cfg(tiny_model)
    with pytest.raises(ValueError, match="at least 2 task"):
        compare_multitask({"sentiment": tasks["sentiment"]}, config)
    bad = tasks["topic"][0].rename(columns={"label": "category"})
    with pytest.raises(ValueError, match=r"task 'topic': train lacks column\(s\) 'label'"):
        train_multitask({"sentiment": tasks["sentiment"], "topic": (bad, None)}, config)
    with pytest.raises(ValueError, match="task 'topic' has no test rows"):
        compare_multitask({"sentiment": tasks["sentiment"], "topic": (tasks["topic"][0], None)}, config)
    with pytest.raises(ValueError, match="lora=True is not supported"):
        train_multitask(tasks, cfg(tiny_model, lora=True))
    with pytest.raises(ValueError, match="seeds must be distinct"):
        compare_multitask(tasks, config, seeds=(0, 0))
    with pytest.raises(ValueError, match="pooling"):
        train_multitask(tasks, config, pooling="max")


def test_split_train_test_is_stratified_and_seeded():
    frame = topic(60, 0)
    train, test = split_train_test(frame, 0.25, seed=1, name="t.csv")
    assert len(test) == 15 and len(train) == 45
    assert test["label"].value_counts().to_dict() == {"food": 5, "movie": 5, "day": 5}
    again = split_train_test(frame, 0.25, seed=1)[1]
    assert test["text"].tolist() == again["text"].tolist()
    lonely = pd.concat([frame, pd.DataFrame({"text": ["odd one"], "label": ["rare"]})])
    with pytest.raises(ValueError, match="t.csv: label\\(s\\) 'rare' have a single row"):
        split_train_test(lonely, 0.25, name="t.csv")
    with pytest.raises(ValueError, match="t.csv: test share"):
        split_train_test(frame, 1.5, name="t.csv")


# --- the command line -----------------------------------------------------------------------

def _write_csvs(folder: Path, tasks) -> dict[str, tuple[Path, Path]]:
    out = {}
    for name, (train, test) in tasks.items():
        paths = folder / f"{name}_train.csv", folder / f"{name}_test.csv"
        train.to_csv(paths[0], index=False)
        test.to_csv(paths[1], index=False)
        out[name] = paths
    return out


def _tiny_options(model: str) -> list[str]:
    return ["--model", model, "--epochs", "2", "--learning-rate", "1e-2", "--batch-size", "8",
            "--max-length", "16", "--warmup-ratio", "0"]


@pytest.mark.slow
def test_cli_multitask_writes_the_report(tiny_model, tasks, tmp_path, capsys):
    files = _write_csvs(tmp_path, tasks)
    out = tmp_path / "out" / "mt.json"
    args = ["multitask", "--seeds", "1", "--n-boot", "200", "--json", str(out)]
    for name, (train, test) in files.items():
        args += ["--task", f"{name}={train},{test}"]
    assert main(args + _tiny_options(tiny_model)) == 0
    d = json.loads(out.read_text())
    assert {"kind", "tasks", "seeds", "budget", "config", "schedule"} <= set(d)
    assert set(d["tasks"]) == {"sentiment", "topic"} and d["config"]["epochs"] == 2
    assert set(d["tasks"]["topic"]) >= {"multi", "single", "delta_accuracy", "delta_accuracy_ci"}
    assert "| topic | multi |" in capsys.readouterr().out


def test_cli_multitask_bad_input_exits_2_naming_the_file(tiny_model, tasks, tmp_path, capsys):
    files = _write_csvs(tmp_path, tasks)
    (s_train, s_test), (t_train, _) = files["sentiment"], files["topic"]
    missing = tmp_path / "nope.csv"
    code = main(["multitask", "--task", f"sentiment={s_train},{s_test}",
                 "--task", f"topic={t_train},{missing}", *_tiny_options(tiny_model)])
    err = capsys.readouterr().err
    assert code == 2 and str(missing) in err and "no such file" in err and "Traceback" not in err
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"sentence": ["a"], "label": ["x"]}).to_csv(bad, index=False)
    assert main(["multitask", "--task", f"sentiment={s_train},{s_test}",
                 "--task", f"topic={bad},{s_test}"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "no column 'text'" in err
    assert main(["multitask", "--task", f"sentiment={s_train}"]) == 2
    assert "TRAIN.csv,TEST.csv" in capsys.readouterr().err
    assert main(["multitask", "--task", f"sentiment={s_train},{s_test}"]) == 2
    assert "at least two --task" in capsys.readouterr().err


# --- the page -------------------------------------------------------------------------------

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "experiments.py")


def _page():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(PAGE, default_timeout=120)
    at.run()
    assert not at.exception, at.exception
    return at


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode("utf-8")


def test_experiments_page_renders_and_asks_for_files():
    at = _page()
    assert at.title[0].value == "Experiments"
    assert [t.label for t in at.tabs] == ["Multi-task", "Continual learning"]
    at.button(key="mt-run").click().run()
    assert not at.exception, at.exception
    assert any("Upload a labelled CSV for Task 1" in e.value for e in at.error)


def test_experiments_page_shows_the_file_problem_not_a_traceback(tasks):
    at = _page()
    bad = tasks["topic"][0].rename(columns={"label": "category"})
    at.file_uploader(key="cl-a-train").set_value(("good.csv", _csv(pd.concat(tasks["sentiment"])), "text/csv"))
    at.file_uploader(key="cl-b-train").set_value(("bad.csv", _csv(bad), "text/csv"))
    at.run()
    at.button(key="cl-run").click().run()
    assert not at.exception, at.exception
    # as Markdown shows it: the page escapes user data (file and column names) in messages
    assert [e.value.replace("\\", "") for e in at.error] == [
        "bad.csv: no column 'label' (columns: text, category); rename a column to 'label'."]


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["mt", "cl"])
def test_experiments_page_runs_a_comparison(tiny_model, tasks, kind, tmp_path, monkeypatch):
    monkeypatch.setenv("CURATION_HOME", str(tmp_path))  # the operator offers the tiny model by name
    (tmp_path / "projects.toml").write_text(f'[models]\ntiny = "{tiny_model}"\n')
    at = _page()
    at.file_uploader(key=f"{kind}-a-train").set_value(
        ("sentiment.csv", _csv(pd.concat(tasks["sentiment"])), "text/csv"))
    at.file_uploader(key=f"{kind}-b-train").set_value(("topic.csv", _csv(tasks["topic"][0]), "text/csv"))
    at.file_uploader(key=f"{kind}-b-test").set_value(("topic_test.csv", _csv(tasks["topic"][1]), "text/csv"))
    at.selectbox(key=f"{kind}-model").set_value("tiny")
    at.number_input(key=f"{kind}-seeds").set_value(1)
    at.number_input(key=f"{kind}-len").set_value(16)
    at.run()
    at.button(key=f"{kind}-run").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    # a background job of the current project: the page is free while it trains
    from actions import experiments
    from curation.store import Project

    with Project(tmp_path / "demo.sqlite") as project:
        deadline = time.time() + 600
        while (status := experiments.latest(project))["state"] in ("starting", "running"):
            assert time.time() < deadline, status
            time.sleep(0.5)
    assert status["state"] == "done", status.get("message")
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    if kind == "mt":
        assert table["task"].tolist() == ["task1", "task1", "task2", "task2"]
        assert table["test rows"].tolist()[2:] == [45, 45]  # topic's own test file
        assert table["test rows"].tolist()[0] == 21  # 20% of sentiment's 104 rows, held out
    else:
        assert table["method"].tolist() == ["plain", "ewc"] and "forgetting" in table.columns
    assert status["report"]["kind"] == ("multitask" if kind == "mt" else "continual")
    assert status["experiment"] == status["report"]["kind"]
    assert isinstance(status["report"]["warnings"], list)
    assert [b.proto.label for b in at.get("download_button")] == ["Download the JSON"]


def test_experiment_warnings_name_every_model_that_learned_only_the_majority_class():
    from fine_tune.jobs import experiment_warnings

    tests = {"a": pd.Series(["pos"] * 6 + ["neg"] * 4), "b": pd.Series(["x", "y", "z"] * 3)}
    trains = {"a": pd.Series(["pos", "neg"]), "b": pd.Series(["x", "y", "z"])}
    always_pos = (2 * 0.6 / 1.6) / 2  # macro-F1 of answering 'pos' every time
    result = {"kind": "multitask", "tasks": {
        "a": {"multi": {"macro_f1": {"mean": always_pos}}, "single": {"macro_f1": {"mean": 0.8}}},
        "b": {"multi": {"macro_f1": {"mean": 0.9}}, "single": {"macro_f1": {"mean": 0.7}}}}}
    warnings = experiment_warnings(result, tests, trains)
    assert len(warnings) == 1 and "multi-task model on 'a'" in warnings[0]
    assert "always answering 'pos'" in warnings[0]
    # every model degenerate: one more sentence says the comparison says nothing
    for task in result["tasks"].values():
        for side in ("multi", "single"):
            task[side]["macro_f1"]["mean"] = 0.1
    warnings = experiment_warnings(result, tests, trains)
    assert len(warnings) == 5 and "says nothing" in warnings[-1]
    continual = {"kind": "continual", "A": {"name": "a"}, "B": {"name": "b"},
                 "plain": {"per_seed": [{"macro_f1_A_after_A": 0.9, "macro_f1_B": 0.15}]},
                 "ewc": {"per_seed": [{"macro_f1_A_after_A": 0.9, "macro_f1_B": 0.8}]}}
    warnings = experiment_warnings(continual, tests, trains)
    assert len(warnings) == 1 and "plain (after b) model on 'b'" in warnings[0]


@pytest.mark.slow
def test_gradient_accumulation_comes_from_the_trainer(tiny_model, tasks):
    """Planned runs take the Trainer's gradient accumulation: half the updates with 2 batches
    per update, the same batches seen."""
    train, test = tasks["sentiment"]
    one = train_single_task("sentiment", train, test, cfg(tiny_model, epochs=1), seed=0,
                            keep_model=False)
    two = train_single_task("sentiment", train, test,
                            cfg(tiny_model, epochs=1, gradient_accumulation=2), seed=0,
                            keep_model=False)
    batches = int(np.ceil(len(train) / 8))
    assert one.optimizer_steps == batches and two.optimizer_steps == int(np.ceil(batches / 2))
    np.testing.assert_array_equal(one.seen["sentiment"], two.seen["sentiment"])


def test_multitask_and_continual_refuse_several_processes_by_name(monkeypatch, tiny_model):
    from fine_tune.config import TrainConfig
    from fine_tune.engine import setup_for

    monkeypatch.setenv("WORLD_SIZE", "2")  # what torchrun sets in each process
    with pytest.raises(ValueError, match="train in one process.*without torchrun"):
        setup_for(TrainConfig(model=tiny_model))
