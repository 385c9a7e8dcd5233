"""Atomic checkpoints and resuming from the last complete one (fine_tune.train, the CLI).

A run killed while it saves a checkpoint must leave no ``checkpoint-N`` folder that looks
usable, keep the previous checkpoint, and resume from that one. The kill is real: a child
process trains the tiny BERT (tests/tiny_models.py) and SIGKILLs itself half-way through
writing ``optimizer.pt`` of its second checkpoint (``checkpoint-16``: 64 rows, batch 8).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")

from safetensors.torch import load_file, save_file  # noqa: E402
from transformers import TrainerCallback  # noqa: E402

import fine_tune.train as train_module  # noqa: E402
from fine_tune.config import TrainConfig  # noqa: E402
from tiny_models import toy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
#: One recipe for the killed child and the resumed parent (the resume needs the same one).
SETTINGS = dict(epochs=3, learning_rate=1e-2, batch_size=8, max_length=16, warmup_ratio=0.0,
                early_stopping_patience=0, save_checkpoints=True, device="cpu")

CHILD = r'''
import io, json, os, signal, sys
import torch

mode, model, out = sys.argv[1:4]
if mode == "in_place":  # the Trainer's own save, straight into checkpoint-N (as before the fix)
    from transformers import Trainer
    import fine_tune.train
    fine_tune.train._Trainer._save_checkpoint = Trainer._save_checkpoint

real_save = torch.save


def save_then_die(obj, f, *args, **kwargs):
    """Write half of optimizer.pt of checkpoint-16, then die as `kill -9` would kill us."""
    if str(f).endswith("optimizer.pt") and "checkpoint-16" in str(f):
        buffer = io.BytesIO()
        real_save(obj, buffer, *args, **kwargs)
        with open(f, "wb") as fh:
            fh.write(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return real_save(obj, f, *args, **kwargs)


torch.save = save_then_die
from fine_tune.config import TrainConfig
from fine_tune.train import train_classifier
from tiny_models import toy

settings = json.loads(sys.argv[4])
train_classifier(toy(64, 0), toy(32, 1), config=TrainConfig(model=model, output_dir=out, **settings))
sys.exit("the save of checkpoint-16 was not reached")
'''

_KILLED: dict[str, Path] = {}


@pytest.fixture
def killed_run(tiny_model, tmp_path_factory, tmp_path):
    """``killed_run(mode)``: a fresh copy of the output folder of a run killed mid-save.

    ``mode`` "atomic" trains with fine_tune.train as it is; "in_place" restores the Trainer's
    own ``_save_checkpoint``, which leaves a partial ``checkpoint-16`` (as older versions did).
    """

    def make(mode: str) -> Path:
        if mode not in _KILLED:
            out = tmp_path_factory.mktemp(f"killed-{mode}")
            script = out.parent / f"child-{mode}.py"
            script.write_text(CHILD, encoding="utf-8")
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
            done = subprocess.run([sys.executable, str(script), mode, tiny_model, str(out),
                                   json.dumps(SETTINGS)], cwd=ROOT, env=env, capture_output=True,
                                  text=True, timeout=600)
            assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
            _KILLED[mode] = out
        copy = tmp_path / f"run-{mode}"
        shutil.copytree(_KILLED[mode], copy)
        return copy

    return make


class Steps(TrainerCallback):
    """Counts optimizer steps; keeps the weights the run starts from."""

    def __init__(self) -> None:
        self.steps, self.start = 0, None

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self.start = {n: p.detach().clone() for n, p in model.state_dict().items()}

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- a save killed mid-write ------------------------------------------------------------------

@pytest.mark.slow
def test_a_killed_save_leaves_only_a_staging_folder_and_the_previous_checkpoint(killed_run):
    out = killed_run("atomic")
    assert names(out) == [".tmp-checkpoint-16", "checkpoint-8"]   # no checkpoint-16 at all
    assert train_module.checkpoint_problems(out / "checkpoint-8") == []
    partial = out / ".tmp-checkpoint-16" / "checkpoint-16"
    assert (partial / "model.safetensors").is_file()          # it died after the weights ...
    assert "optimizer.pt is cut short" in train_module.checkpoint_problems(partial)  # ... mid-optimizer
    assert train_module.last_complete_checkpoint(out) == out / "checkpoint-8"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["atomic", "in_place"])
def test_resume_takes_the_last_complete_checkpoint_and_finishes(killed_run, tiny_model, mode, caplog):
    out = killed_run(mode)
    saved = load_file(out / "checkpoint-8" / "model.safetensors")
    steps = Steps()
    config = TrainConfig(model=tiny_model, output_dir=str(out), resume_from_checkpoint=True, **SETTINGS)
    with caplog.at_level(logging.WARNING, logger="fine_tune.train"):
        result = train_module.train_classifier(toy(64, 0), toy(32, 1), config=config,
                                               callbacks=[steps])
    assert steps.steps == 16                                  # epochs 2 and 3 only: from step 8
    for name, tensor in saved.items():                        # with checkpoint-8's weights
        torch.testing.assert_close(steps.start[name], tensor, rtol=0, atol=0)
    assert result.history.dropna(subset=["eval_loss"])["epoch"].tolist() == [1.0, 2.0, 3.0]
    assert not result.cancelled
    assert names(out) == ["checkpoint-24"]                    # staging folder and partial one gone
    assert train_module.checkpoint_problems(out / "checkpoint-24") == []
    state = json.loads((out / "checkpoint-24" / "trainer_state.json").read_text())
    assert state["global_step"] == 24
    if mode == "in_place":                                    # the partial checkpoint-16, named
        skipped = [r.getMessage() for r in caplog.records if "skipping checkpoint" in r.getMessage()]
        assert len(skipped) == 1 and "checkpoint-16: it is incomplete (" in skipped[0]
        assert "no trainer_state.json" in skipped[0] and "optimizer.pt is cut short" in skipped[0]
    else:
        assert any(".tmp-checkpoint-16: an unfinished checkpoint save" in r.getMessage()
                   for r in caplog.records)


@pytest.mark.slow  # killed_run starts (and kills) a training process
def test_resume_with_only_a_partial_checkpoint_names_the_folder_and_the_fix(killed_run, tiny_model):
    out = killed_run("in_place")
    shutil.rmtree(out / "checkpoint-8")
    config = TrainConfig(model=tiny_model, output_dir=str(out), resume_from_checkpoint=True, **SETTINGS)
    with pytest.raises(ValueError) as err:
        train_module.train_classifier(toy(64, 0), toy(32, 1), config=config)
    message = str(err.value)
    assert message.startswith(f"no checkpoint to resume from in output_dir={str(out)!r} "
                              "(incomplete: checkpoint-16: ")
    assert "no trainer_state.json" in message
    assert "set output_dir to the folder of the interrupted run" in message
    assert "resume_from_checkpoint=False to start afresh" in message


@pytest.mark.slow  # killed_run starts (and kills) a training process
def test_resume_from_a_named_partial_checkpoint_is_refused(killed_run, tiny_model):
    out = killed_run("in_place")
    config = TrainConfig(model=tiny_model, output_dir=str(out),
                         resume_from_checkpoint=str(out / "checkpoint-16"), **SETTINGS)
    with pytest.raises(ValueError, match=r"checkpoint-16' is an incomplete checkpoint \(.*no "
                                         r"trainer_state\.json.*pass resume_from_checkpoint=True"):
        train_module.train_classifier(toy(64, 0), toy(32, 1), config=config)


# --- the staging folder keeps the best checkpoint's path right ---------------------------------

@pytest.mark.slow
def test_best_checkpoint_is_tracked_through_the_staging_folder(tiny_model, tmp_path, caplog):
    """A plateau (learning rate 0): epoch 1 is best, epoch 2 does not improve, training stops.

    The best checkpoint's path is recorded while it still sits in its staging folder; it must
    name ``checkpoint-8``, or the Trainer cannot restore it and its end-of-run clean-up fails.
    """
    config = TrainConfig(model=tiny_model, output_dir=str(tmp_path),
                         **{**SETTINGS, "epochs": 6, "learning_rate": 0.0, "early_stopping_patience": 1})
    with caplog.at_level(logging.WARNING):
        result = train_module.train_classifier(toy(64, 0), toy(32, 1), config=config)
    assert result.best_epoch == 1.0
    assert names(tmp_path) == ["checkpoint-8"]                # the best one, restored and kept
    state = json.loads((tmp_path / "checkpoint-8" / "trainer_state.json").read_text())
    assert state["best_model_checkpoint"] == str(tmp_path / "checkpoint-8")
    assert not [r for r in caplog.records if "best" in r.getMessage().lower()]


# --- last_complete_checkpoint -----------------------------------------------------------------

def complete(folder: Path, step: int, *, weights: str = "model.safetensors") -> Path:
    """A checkpoint folder with every file a resume reads (tiny but real formats)."""
    folder.mkdir(parents=True)
    save_file({"w": torch.arange(6, dtype=torch.float32)}, folder / weights)
    torch.save({"state": {}, "param_groups": []}, folder / "optimizer.pt")
    torch.save({"last_epoch": step}, folder / "scheduler.pt")
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return folder


def cut(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_last_complete_checkpoint_skips_incomplete_ones_and_names_them(tmp_path, caplog):
    good = complete(tmp_path / "checkpoint-8", 8)
    (complete(tmp_path / "checkpoint-16", 16) / "trainer_state.json").unlink()
    cut(complete(tmp_path / "checkpoint-24", 24) / "optimizer.pt")
    cut(complete(tmp_path / "checkpoint-32", 32) / "model.safetensors")
    (complete(tmp_path / "checkpoint-40", 40) / "trainer_state.json").write_text('{"global_st')
    (complete(tmp_path / "checkpoint-48", 48) / "model.safetensors").unlink()
    complete(tmp_path / ".tmp-checkpoint-56" / "checkpoint-56", 56)   # a staging folder
    complete(tmp_path / "checkpoint-final", 64)                       # not checkpoint-N
    (tmp_path / "checkpoint-72").write_text("a file, not a folder")
    with caplog.at_level(logging.WARNING, logger="fine_tune.train"):
        assert train_module.last_complete_checkpoint(tmp_path) == good
    skipped = [r.getMessage() for r in caplog.records]
    assert [m.split(":")[0] for m in skipped] == [
        f"skipping checkpoint {tmp_path / f'checkpoint-{n}'}" for n in (48, 40, 32, 24, 16)]
    assert "(no model weights (model.safetensors or adapter_model.safetensors))" in skipped[0]
    assert "(trainer_state.json is not readable JSON)" in skipped[1]
    assert "(model.safetensors is cut short)" in skipped[2]
    assert "(optimizer.pt is cut short)" in skipped[3]
    assert "(no trainer_state.json)" in skipped[4]


def test_last_complete_checkpoint_orders_by_step_and_takes_lora_adapters(tmp_path):
    complete(tmp_path / "checkpoint-99", 99)
    newest = complete(tmp_path / "checkpoint-100", 100, weights="adapter_model.safetensors")
    assert train_module.last_complete_checkpoint(tmp_path) == newest   # 100 > 99, not "1" < "9"
    assert train_module.last_complete_checkpoint(str(tmp_path)) == newest


def test_last_complete_checkpoint_without_one(tmp_path):
    assert train_module.last_complete_checkpoint(tmp_path / "missing") is None
    assert train_module.last_complete_checkpoint(tmp_path) is None
    (tmp_path / "checkpoint-8").mkdir()                      # empty, as an early kill leaves it
    assert train_module.last_complete_checkpoint(tmp_path) is None
    assert train_module.checkpoint_problems(tmp_path / "checkpoint-8") == [
        "no model weights (model.safetensors or adapter_model.safetensors)", "no optimizer.pt",
        "no scheduler.pt", "no trainer_state.json"]


# --- the command line ---------------------------------------------------------------------------

@pytest.mark.slow
def test_cli_train_resume_continues_a_run_from_its_output_dir(tiny_model, tmp_path, monkeypatch, capsys):
    from fine_tune import compare as compare_module
    from commands.fine_tune import main

    runs: list[tuple[TrainConfig, Steps]] = []

    def counting(*args, config, **kwargs):
        steps = Steps()
        runs.append((config, steps))
        return train_module.train_classifier(*args, config=config, callbacks=[steps], **kwargs)

    monkeypatch.setattr(compare_module, "_default_trainer", lambda: counting)
    toy(64, 0).to_csv(tmp_path / "train.csv", index=False)
    toy(32, 1).to_csv(tmp_path / "val.csv", index=False)
    out = tmp_path / "run"
    base = ["train", "--train", str(tmp_path / "train.csv"), "--validation", str(tmp_path / "val.csv"),
            "--model", tiny_model, "--batch-size", "8", "--max-length", "16", "--learning-rate", "0.01",
            "--warmup-ratio", "0", "--patience", "0", "--device", "cpu"]
    assert main(base + ["--epochs", "1", "--output-dir", str(out)]) == 0
    assert names(out) == ["checkpoint-8"]
    assert main(base + ["--epochs", "2", "--output-dir", str(out), "--resume",
                        "--json", str(tmp_path / "run.json")]) == 0
    assert [config.resume_from_checkpoint for config, _ in runs] == [False, True]
    assert runs[1][1].steps == 8                              # only the second epoch
    history = json.loads((tmp_path / "run.json").read_text())["history"]
    assert [h["epoch"] for h in history if h.get("eval_loss") is not None] == [1.0, 2.0]
    capsys.readouterr()
    assert main(base + ["--epochs", "2", "--resume"]) == 2    # no --output-dir: said, not a traceback
    assert "--resume needs --output-dir" in capsys.readouterr().err


def test_checkpoint_problems_checks_every_shard_of_a_sharded_model(tiny_model, tmp_path):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=2)
    model.save_pretrained(tmp_path, max_shard_size="20KB")
    torch.save({"state": {}}, tmp_path / "optimizer.pt")
    torch.save({"last_epoch": 8}, tmp_path / "scheduler.pt")
    (tmp_path / "trainer_state.json").write_text(json.dumps({"global_step": 8}))
    shards = sorted(tmp_path.glob("model-*-of-*.safetensors"))
    assert len(shards) >= 2 and (tmp_path / "model.safetensors.index.json").is_file()
    assert train_module.checkpoint_problems(tmp_path) == []
    cut(shards[1])
    assert train_module.checkpoint_problems(tmp_path) == [f"{shards[1].name} is cut short"]
    shards[1].unlink()
    assert train_module.checkpoint_problems(tmp_path) == [f"no {shards[1].name}"]
