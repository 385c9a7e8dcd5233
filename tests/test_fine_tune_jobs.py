"""Retrain-and-compare as a background job on the demo project, with the tiny BERT.

A real worker process is started each time (``python -m fine_tune.jobs``); the tests poll its
status file as the app does.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("transformers")

from curation.workspace import open_demo_project  # noqa: E402
from fine_tune.config import TrainConfig  # noqa: E402
from fine_tune.data import project_compare_data  # noqa: E402
from fine_tune.jobs import cancel_job, job_status, latest_job, start_compare_job  # noqa: E402

REPORT_KEYS = {"accuracy_before", "accuracy_after", "delta", "delta_ci", "mcnemar_p",
               "macro_f1_before", "macro_f1_after", "per_seed", "before", "after", "verdict",
               "verdict_reason", "settings", "size_notes", "reused", "learning"}


@pytest.fixture
def demo(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    monkeypatch.delenv("CURATION_URL", raising=False)
    with open_demo_project() as project:
        yield project


def tiny(model: str, **kwargs) -> TrainConfig:
    settings = dict(model=model, epochs=1, batch_size=32, max_length=32, learning_rate=1e-3,
                    warmup_ratio=0.0, early_stopping_patience=0, save_checkpoints=False)
    return TrainConfig(**{**settings, **kwargs})


def wait(folder, states, timeout=240.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = job_status(folder)
        if status["state"] in states:
            return status
        time.sleep(0.3)
    log = (folder / "worker.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"job still {status['state']} after {timeout} s; log:\n{log}")


def test_demo_compare_data_holds_the_test_set_out(demo):
    data = project_compare_data(demo)
    assert data.info["test_source"] == "gold" and len(data.test) == data.info["test_items"] > 0
    test_ids = set(data.test["item_id"])
    assert not test_ids & set(data.before["item_id"]) and not test_ids & set(data.after["item_id"])
    assert set(data.after["label"]) <= set(demo.label_set())


def test_compare_data_counts_as_the_curated_page_and_says_why_augmented_rows_are_left_out(demo):
    data = project_compare_data(demo)
    train = data.after[data.after["augmented_from"].isna()]
    test_item = data.test["item_id"].iloc[0]
    kept, dropped, ambiguous, relabelled = train["item_id"].iloc[:4]
    labels = demo.label_set()
    label_of = train.set_index("item_id")["label"]
    demo.record_decision(dropped, actor="ann", action="drop")
    demo.record_decision(ambiguous, actor="ann", action="ambiguous")
    rows = pd.DataFrame({
        "source_id": [kept, dropped, ambiguous, relabelled, test_item],
        "text": [f"a paraphrase number {k}" for k in range(5)],
        "label": [label_of[kept], label_of[dropped], label_of[ambiguous], label_of[relabelled],
                  data.test.set_index("item_id").at[test_item, "label"]],
        "method": ["rules"] * 5})
    demo.save_augmentations(rows, actor="ann")
    other = next(lab for lab in labels if lab != label_of[relabelled])
    demo.record_decision(relabelled, actor="ann", action="set_label", new_label=other)
    info = project_compare_data(demo).info
    # as the Curated data page counts: dropped and ambiguous apart
    assert (info["relabelled"], info["dropped"], info["ambiguous"]) == (1, 1, 1)
    assert info["augmented_saved"] == 5 and info["augmented_rows"] == 1
    assert info["augmented_left_out"] == {"source dropped or ambiguous": 2,
                                          "source relabelled since": 1,
                                          "source or text in the test set": 1}
    assert info["augmented_rows"] + sum(info["augmented_left_out"].values()) == 5


@pytest.mark.slow
def test_job_runs_in_the_background_and_records_the_run(demo, tiny_model, tmp_path):
    folder = tmp_path / "job"
    first = start_compare_job(demo, folder, seeds=(0,), config=tiny(
        tiny_model, report_to=("mlflow",), tracking_dir=str(folder / "tracking")))
    assert first["state"] in ("starting", "running")
    status = wait(folder, ("done", "failed", "cancelled"))
    assert status["state"] == "done", status.get("message")
    report = status["report"]
    # each kept model has its card: the comparison, the data's facts, the labels
    card = (folder / "models" / "after" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlibrary_name: transformers") and "## Retrain and compare" in card
    assert f"verdict: **{report['verdict']}".replace("_", "\\_") in card
    assert "test source: gold" in card and "agreement:" in card
    from actions.jobs import report_files

    assert [n for n, _, _ in report_files(status)][-2:] == ["model_card_before.md",
                                                            "model_card_after.md"]
    # and every run was tracked in the job's own MLflow store, named by side and seed
    from mlflow.tracking import MlflowClient

    from fine_tune.tracking import mlflow_uri

    client = MlflowClient(tracking_uri=mlflow_uri(folder / "tracking"))
    runs = client.search_runs([client.get_experiment_by_name("curation").experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["after-seed0", "before-seed0"]
    assert all("train_loss" in r.data.metrics or "loss" in r.data.metrics for r in runs)
    assert REPORT_KEYS <= set(report)
    assert 0 <= report["accuracy_before"] <= 1 and 0 <= report["accuracy_after"] <= 1
    assert report["delta"] == pytest.approx(report["accuracy_after"] - report["accuracy_before"])
    assert len(report["per_seed"]) == 1
    assert (folder / "report.md").read_text().startswith("#")
    assert "<table" in (folder / "report.html").read_text()
    # the run survives a "page reload": a fresh look through the project finds it finished
    again = latest_job(demo)
    assert again["state"] == "done" and again["report"]["verdict"] == report["verdict"]
    run = demo.get_run(again["run_id"])
    assert run["status"] == "done" and run["result"]["accuracy_after"] == report["accuracy_after"]
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["config"]["model"] == tiny_model and settings["seeds"] == [0]


@pytest.mark.slow
def test_a_second_job_after_more_review_reuses_the_before_runs(demo, tiny_model, tmp_path):
    first = tmp_path / "job1"
    start_compare_job(demo, first, config=tiny(tiny_model), seeds=(0, 1))
    one = wait(first, ("done", "failed", "cancelled"))
    assert one["state"] == "done", one.get("message")
    assert one["report"]["reused"] == [] and set(one["models"]) == {"before", "after"}
    # the settings were given whole: every one is the caller's, and the report says so
    assert {c["source"] for c in one["report"]["settings"]["chosen"]} == {"given"}
    # more review: one training item relabelled (the demo has gold, so the test set stays)
    data = project_compare_data(demo)
    item = data.after["item_id"].iloc[0]
    other = next(lab for lab in demo.label_set() if lab != data.after["label"].iloc[0])
    demo.record_decision(item, actor="ann", action="set_label", new_label=other)
    second = tmp_path / "job2"
    start_compare_job(demo, second, config=tiny(tiny_model), seeds=(0, 1))
    two = wait(second, ("done", "failed", "cancelled"))
    assert two["state"] == "done", two.get("message")
    reused = two["report"]["reused"]
    assert [(r["side"], r["seed"]) for r in reused] == [("before", 0), ("before", 1)]
    assert all(r["origin"]["folder"] == str(first) for r in reused)
    # the reused runs are the same runs; the after side trained again on the new data
    assert two["report"]["before"]["per_seed"] == one["report"]["before"]["per_seed"]
    assert two["report"]["after"]["n_train"] == one["report"]["after"]["n_train"]
    assert two["report"]["after"]["class_counts"] != one["report"]["after"]["class_counts"]
    # the before model of seed 0 came along from the first job, for the attention view
    assert set(two["models"]) == {"before", "after"}
    assert (second / "models" / "before" / "predictions.csv").read_text() == \
        (first / "models" / "before" / "predictions.csv").read_text()
    assert "Runs reused, not trained again" in (second / "report.md").read_text()


@pytest.mark.slow
def test_cancel_stops_the_job_and_marks_the_run(demo, tiny_model, tmp_path):
    folder = tmp_path / "job"
    start_compare_job(demo, folder, config=tiny(tiny_model, epochs=200), seeds=(0, 1))
    running = wait(folder, ("running", "done", "failed", "cancelled"))
    assert running["state"] == "running", running.get("message")
    cancel_job(demo, folder)
    status = wait(folder, ("done", "failed", "cancelled"), timeout=120)
    assert status["state"] == "cancelled", status.get("message")
    assert demo.get_run(latest_job(demo)["run_id"])["status"] == "cancelled"


@pytest.mark.slow
def test_a_finished_worker_leaves_no_zombie_child(demo, tmp_path):
    """A job that ends (here it fails at once: the model folder does not exist) is reaped by
    the process that started it, though nobody asks for its status again."""
    folder = tmp_path / "job"
    start_compare_job(demo, folder, config=tiny(str(tmp_path / "no-such-model")), seeds=(0,))
    pid = int((folder / "pid").read_text())
    deadline = time.time() + 120
    state = "Z"
    while time.time() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            state = "gone"
        if state == "gone":
            break
        time.sleep(0.2)
    assert state == "gone", f"the worker {pid} is still a child in state {state}"
    assert job_status(folder)["state"] == "failed"


@pytest.mark.slow
def test_lr_range_test_runs_as_a_job_on_the_curated_rows(demo, tiny_model, tmp_path):
    from actions.jobs import latest_lr_range
    from fine_tune.jobs import start_lr_range_job

    folder = tmp_path / "lr"
    with pytest.raises(ValueError, match="num_steps=2 must be between 5 and 1000"):
        start_lr_range_job(demo, folder, config={"model": tiny_model}, num_steps=2)
    start_lr_range_job(demo, folder, config={"model": tiny_model, "max_length": 32},
                       num_steps=12)
    status = wait(folder, ("done", "failed", "cancelled"))
    assert status["state"] == "done", status.get("message")
    result = status["report"]
    assert 1e-7 <= result["suggested_lr"] <= 1e-2 and 2 <= len(result["lrs"]) <= 12
    assert result["lrs"] == sorted(result["lrs"])  # the rate only rises
    latest = latest_lr_range(demo)
    assert latest["state"] == "done" and latest["report"]["suggested_lr"] == result["suggested_lr"]
    settings = json.loads((folder / "settings.json").read_text())
    assert settings["config"]["model"] == tiny_model and settings["rows"] > 0


@pytest.mark.slow
def test_lr_search_ranks_rates_on_a_validation_split(demo, tiny_model, tmp_path):
    from fine_tune.jobs import start_lr_search_job

    folder = tmp_path / "search"
    with pytest.raises(ValueError, match="between 1e-8 and 0.1"):
        start_lr_search_job(demo, folder, center=1.0)
    start_lr_search_job(demo, folder, center=1e-3, config={
        "model": tiny_model, "epochs": 1, "max_length": 32, "batch_size": 32})
    status = wait(folder, ("done", "failed", "cancelled"), timeout=600)
    assert status["state"] == "done", status.get("message")
    report = status["report"]
    rates = [r["learning_rate"] for r in report["runs"]]
    assert rates == pytest.approx([1e-3 / 3, 1e-3, 3e-3])
    best = max(report["runs"], key=lambda r: r["best_macro_f1"])
    assert report["best_learning_rate"] == best["learning_rate"]
    assert report["n_validation"] > 0 and report["n_train"] > report["n_validation"]


def test_search_split_keeps_augmented_rows_out_of_validation_and_away_from_its_sources():
    from fine_tune.jobs import _search_split  # noqa: PLC2701 (the split is the claim tested)

    after = pd.DataFrame({"item_id": [f"i{k}" for k in range(20)] + ["a1", "a2"],
                          "text": [f"t{k}" for k in range(22)],
                          "label": ["x", "y"] * 10 + ["x", "y"],
                          "augmented_from": [""] * 20 + ["i0", "i1"]})
    train, validation = _search_split(after, 0.5, seed=0)
    assert not validation["item_id"].isin(["a1", "a2"]).any()
    assert not set(train["item_id"]) & set(validation["item_id"])
    for aug, source in (("a1", "i0"), ("a2", "i1")):
        assert (aug in set(train["item_id"])) == (source in set(train["item_id"]))


def test_unfreeze_schedules_are_read_as_pairs_or_refused_with_the_form():
    from actions.jobs import parse_schedule

    assert parse_schedule("1:2, 3:2") == ((1, 2), (3, 2)) and parse_schedule(" ") == ()
    with pytest.raises(ValueError, match="write EPOCH:LAYERS pairs"):
        parse_schedule("1-2")


@pytest.mark.slow
def test_killed_worker_reads_as_failed_and_the_project_stays_usable(demo, tiny_model, tmp_path):
    folder = tmp_path / "job"
    start_compare_job(demo, folder, config=tiny(tiny_model, epochs=200), seeds=(0,))
    wait(folder, ("running",))
    os.killpg(int((folder / "pid").read_text()), signal.SIGKILL)
    status = wait(folder, ("failed",), timeout=30)
    assert "ended without a result" in status["message"]
    latest = latest_job(demo)
    assert latest["state"] == "failed"
    assert demo.get_run(latest["run_id"])["status"] == "failed"  # not "running" for ever
    assert len(demo.annotations()) > 0  # stored work intact


@pytest.mark.slow
def test_a_killed_compare_job_resumes_and_reuses_the_runs_it_finished(demo, tiny_model, tmp_path):
    from fine_tune.jobs import resume_job

    folder = tmp_path / "job"
    start_compare_job(demo, folder, config=tiny(tiny_model, epochs=6), seeds=(0, 1))
    with pytest.raises(ValueError, match="is running: only a failed or cancelled job"):
        wait(folder, ("running",))
        resume_job(demo, folder)
    cache = Path(json.loads((folder / "settings.json").read_text())["cache_dir"])
    deadline = time.time() + 600
    while not list(cache.rglob("*.json")) and time.time() < deadline:  # one run finished
        time.sleep(0.2)
    os.killpg(int((folder / "pid").read_text()), signal.SIGKILL)
    assert wait(folder, ("failed",), timeout=30)["state"] == "failed"
    finished = len(list(cache.rglob("*.json")))
    assert 1 <= finished < 4
    resume_job(demo, folder)
    status = wait(folder, ("done", "failed", "cancelled"), timeout=900)
    assert status["state"] == "done", status.get("message")
    assert len(status["report"]["reused"]) >= finished  # nothing finished was trained again
    deadline = time.time() + 30  # the worker records the run after its status file
    while demo.runs()["status"].iloc[-1] == "running" and time.time() < deadline:
        time.sleep(0.2)
    assert demo.runs()["status"].tolist()[-2:] == ["failed", "done"]
    assert (demo.audit()["action"] == "run").sum() >= 2
    with pytest.raises(ValueError, match="is done: only a failed or cancelled job"):
        resume_job(demo, folder)
    with pytest.raises(ValueError, match="is not a job of"):
        resume_job(demo, tmp_path)


def test_without_gold_or_adjudicated_items_no_job_starts(tmp_path, tiny_model):
    import pandas as pd

    from curation.store import Project

    frame = pd.DataFrame({"item_id": [f"i{i // 2}" for i in range(40)],
                          "text": [f"text number {i // 2}" for i in range(40)],
                          "annotator_id": ["a", "b"] * 20, "label": ["pos", "neg", "pos", "pos"] * 10})
    with Project(tmp_path / "p.sqlite") as project:
        project.import_annotations(frame, source="t.csv", label_set=["pos", "neg"])
        with pytest.raises(ValueError, match="no gold labels and only 0 adjudicated items"):
            start_compare_job(project, tmp_path / "job", config=tiny(tiny_model))
        assert latest_job(project) is None and not (tmp_path / "job").exists()


@pytest.mark.slow
def test_fine_tuned_folds_run_in_the_background_and_feed_the_flags(demo, tiny_model, tmp_path):
    from curation.workspace import flag_project
    from fine_tune.jobs import OOF_KIND, latest_model_probs, start_out_of_fold_job

    assert latest_model_probs(demo) is None
    folder = tmp_path / "folds"
    start_out_of_fold_job(demo, folder, folds=2, config={
        "model": tiny_model, "epochs": 1, "batch_size": 32, "max_length": 32,
        "learning_rate": 1e-3, "early_stopping_patience": 0})
    status = wait(folder, {"done", "failed", "cancelled"})
    assert status["state"] == "done", status.get("message")
    assert "553 items, 2 fine-tuned folds on cpu" in status["message"]
    assert latest_job(demo, kind=OOF_KIND)["state"] == "done"
    probs, info = latest_model_probs(demo)
    assert len(probs) == 553 and list(probs.columns) == demo.label_set() and not info["stale"]
    report = flag_project(demo, use_model=False, model_probs=probs, model_signal="fine-tuned")
    assert "label_issue" in set(report.flags["kind"]) and "label_issue" not in report.skipped
    flags_run = demo.get_run(int(demo.latest_flags()["run_id"].iloc[0]))
    assert flags_run["params"]["model_signal"] == "fine-tuned"
    # a new item has no probabilities: the folds are stale and flagging with them says so
    import pandas as pd

    demo.import_annotations(pd.DataFrame({"item_id": ["new-1"], "text": ["Where is my new card?"],
                                          "annotator_id": ["zoe"], "label": [demo.label_set()[0]]}))
    assert latest_model_probs(demo)[1]["stale"]
    with pytest.raises(ValueError, match="no row for 1 of the 554 items \\(first: 'new-1'\\)"):
        flag_project(demo, use_model=False, model_probs=latest_model_probs(demo)[0],
                     model_signal="fine-tuned")
    # the file is read once per version of it: a changed file is read again, and what a
    # caller does to the table it got does not reach the next caller
    first = latest_model_probs(demo)[0]
    first.iloc[:, :] = "0"  # read as text, as every user file (check_model_probs converts)
    assert latest_model_probs(demo)[0].equals(probs)
    path = folder / "probs.csv"
    changed = probs.copy()
    changed.iloc[0] = ["1.0"] + ["0.0"] * (changed.shape[1] - 1)
    changed.rename_axis("item_id").to_csv(path)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    assert latest_model_probs(demo)[0].iloc[0].tolist() == changed.iloc[0].tolist()
    # a damaged file names the run and the file, and the fix
    path.write_text("nothing,here\n1,2\n")
    run_id = latest_job(demo, kind=OOF_KIND)["run_id"]
    with pytest.raises(ValueError, match=f"folds of run #{run_id} cannot be read .*probs.csv.*needs "
                                         "an item_id column.*Fine-tune again"):
        latest_model_probs(demo)


def test_a_job_copy_that_cannot_be_fetched_says_why(tmp_path, monkeypatch):
    """A finished job kept at an artifact URL this host cannot read: its folder is still named,
    the reason is given (not swallowed), and the augmentation's candidates error carries it."""
    from fine_tune.jobs import augment_candidates
    from fine_tune.queue import local_folder

    monkeypatch.setenv("CURATION_HOME", str(tmp_path / "home"))
    root = tmp_path / "root"
    params = {"folder": "/elsewhere/compare-1", "artifacts": (root / "jobs" / "compare-1").as_uri()}
    problems: list[str] = []
    folder = local_folder(params, problems=problems)
    assert folder == tmp_path / "home" / "jobs" / "compare-1"
    assert len(problems) == 1 and "could not be copied to this host" in problems[0]
    assert "CURATION_ARTIFACTS" in problems[0]
    status = {"state": "done", "folder": str(folder), "files_error": problems[0]}
    with pytest.raises(ValueError, match="candidates are not on this host: the job's files"):
        augment_candidates(status)
    # drawn again within COPY_RETRY_S: the same reason, without another try (no network wait
    # per finished job on every page draw)
    import fine_tune.queue as job_queue

    tries = []
    real_download = job_queue._download
    monkeypatch.setattr(job_queue, "_download", lambda *a: (tries.append(a), real_download(*a)))
    (root / "jobs" / "compare-1").mkdir(parents=True)
    (root / "jobs" / "compare-1" / "outcome.json").write_text("{}", encoding="utf-8")
    problems.clear()
    assert local_folder(params, problems=problems) == folder and tries == []
    assert len(problems) == 1 and "could not be copied to this host" in problems[0]
    assert not (folder / "outcome.json").exists()
    # once the wait is over and the files are there, the copy is made and marked, and nothing
    # is reported
    monkeypatch.setattr(job_queue, "COPY_RETRY_S", 0.0)
    problems.clear()
    assert local_folder(params, problems=problems) == folder and problems == []
    assert (folder / "outcome.json").is_file() and (folder / ".fetched").is_file()
    assert len(tries) == 1
