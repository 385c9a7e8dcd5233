"""Tests of fine_tune.continual (A then B, plain and EWC) and the ``continual`` command.

The tiny BERT of tests/tiny_models.py learns A = the toy sentiment task (tiny_models.toy), then
B = a topic task (which topic word the text holds, independent of its sentiment words), which
pulls the shared encoder away from what A needs.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from commands.fine_tune import main  # noqa: E402
from fine_tune.config import TrainConfig  # noqa: E402
from fine_tune.continual import (  # noqa: E402
    DEFAULT_EWC_LAMBDA,
    METRICS,
    ContinualComparison,
    compare_continual,
    ewc_penalty,
    fisher_diagonal,
    train_continual,
)
from fine_tune.multitask import build_model  # noqa: E402
from tiny_models import toy  # noqa: E402
from tiny_models import topic as _topic  # noqa: E402

def topic(n: int, seed: int) -> pd.DataFrame:
    """Two topics (food, movie) among filler and sentiment words."""
    return _topic(n, seed, topics=("food", "movie"), filler=("the", "a", "it", "was", "is", "day"))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny tensors: one thread is faster, and much faster on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def data():
    return {"a": (toy(64, 0), toy(40, 2)), "b": (topic(64, 0), topic(40, 2))}


def cfg(model: str, **kwargs) -> TrainConfig:
    settings = dict(model=model, epochs=3, learning_rate=1e-2, batch_size=8, max_length=16,
                    warmup_ratio=0.0, early_stopping_patience=0, save_checkpoints=False)
    return TrainConfig(**{**settings, **kwargs})


def _anchor(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters() if p.requires_grad}


# --- the penalty and the Fisher information -------------------------------------------------

def test_ewc_penalty_is_zero_at_the_anchor_and_grows_quadratically(tiny_model):
    model = build_model(cfg(tiny_model), {"A": 2})
    encoder = model.encoder
    anchor = _anchor(encoder)
    gen = torch.Generator().manual_seed(0)
    fisher = {n: torch.rand(p.shape, generator=gen) for n, p in anchor.items()}
    assert float(ewc_penalty(encoder, fisher, anchor, 100.0).detach()) == 0.0
    direction = {n: torch.randn(p.shape, generator=gen) for n, p in anchor.items()}

    def at(step: float) -> float:
        with torch.no_grad():
            for n, p in encoder.named_parameters():
                p.copy_(anchor[n] + step * direction[n])
        return float(ewc_penalty(encoder, fisher, anchor, 100.0).detach())

    small, double, far = at(1e-3), at(2e-3), at(1e-2)
    assert 0 < small < double < far
    assert double == pytest.approx(4 * small, rel=1e-3) and far == pytest.approx(100 * small, rel=1e-3)
    expected = 0.5 * 100.0 * sum(float((fisher[n] * (1e-2 * direction[n]) ** 2).sum()) for n in anchor)
    assert far == pytest.approx(expected, rel=1e-4)
    assert float(ewc_penalty(encoder, fisher, anchor, 0.0).detach()) == 0.0
    # its gradient is lambda * F * (theta - theta*)
    penalty = ewc_penalty(encoder, fisher, anchor, 100.0)
    penalty.backward()
    name, param = next(iter(encoder.named_parameters()))
    torch.testing.assert_close(param.grad, 100.0 * fisher[name] * (param.detach() - anchor[name]))
    with pytest.raises(ValueError, match="ewc_lambda must be a finite number >= 0"):
        ewc_penalty(encoder, fisher, anchor, -1.0)
    with pytest.raises(ValueError, match="shape"):
        ewc_penalty(encoder, {name: torch.ones(3)}, anchor, 1.0)


def test_fisher_is_non_negative_with_the_encoder_parameter_shapes(tiny_model):
    config = cfg(tiny_model)
    model = build_model(config, {"A": 2})
    fisher = fisher_diagonal(model, "A", toy(24, 0), config=config, max_samples=12)
    shapes = {n: p.shape for n, p in model.encoder.named_parameters() if p.requires_grad}
    assert set(fisher) == set(shapes)
    assert all(fisher[n].shape == shapes[n] for n in shapes)
    assert all(bool((f >= 0).all()) for f in fisher.values())
    assert sum(float(f.sum()) for f in fisher.values()) > 0
    assert all(not n.startswith("heads") for n in fisher)  # the encoder only
    # frozen parameters have no Fisher information (they cannot move)
    frozen_cfg = cfg(tiny_model, freeze_embeddings=True)
    frozen = build_model(frozen_cfg, {"A": 2})
    partial = fisher_diagonal(frozen, "A", toy(8, 0), config=frozen_cfg)
    assert partial and not any(n.startswith("embeddings.") for n in partial)
    with pytest.raises(ValueError, match="the head of 'A' has 2 classes"):
        fisher_diagonal(model, "A", toy(8, 0), config=config, labels=["neg", "pos", "meh"])


# --- training -------------------------------------------------------------------------------

@pytest.mark.slow
def test_plain_run_scores_a_before_and_after_and_b(tiny_model, data):
    config = cfg(tiny_model)
    run = train_continual(data["a"], data["b"], config, seed=0, ewc_lambda=0.0)
    assert run.fisher is None and run.fisher_distance is None and run.seconds["fisher"] == 0.0
    assert run.acc_a_after_a >= 0.8  # A was learned (chance 0.5)
    assert run.acc_b >= 0.7  # then B
    assert run.forgetting == pytest.approx(run.acc_a_after_a - run.acc_a_after_b)
    assert set(run.metrics()) == set(METRICS)
    assert run.examples_seen == {"A": 3 * 64, "B": 3 * 64}
    assert run.model.task_names == ["A", "B"] and run.labels == {"A": ["neg", "pos"], "B": ["food", "movie"]}
    assert run.encoder_drift > 0


@pytest.mark.slow
def test_huge_lambda_keeps_the_encoder_and_a_where_plain_moves(tiny_model, data):
    report = compare_continual(data["a"], data["b"], cfg(tiny_model), seeds=(1,), ewc_lambda=1e9,
                               fisher_samples=32, n_boot=200)
    plain, ewc = report.runs["plain"][0], report.runs["ewc"][0]
    assert plain.acc_a_after_a == ewc.acc_a_after_a  # phase 1 is shared
    # in the directions that matter to A the encoder barely moves under EWC
    assert plain.fisher_distance > 0
    assert ewc.fisher_distance < 0.05 * plain.fisher_distance
    assert ewc.encoder_drift < plain.encoder_drift
    # so A is kept; plain fine-tuning on B loses some of it
    assert ewc.acc_a_after_b >= ewc.acc_a_after_a - 0.05
    assert ewc.forgetting < plain.forgetting - 0.1  # plain forgets (0.45 here), EWC does not
    assert report.forgetting_reduction == pytest.approx(plain.forgetting - ewc.forgetting)


@pytest.mark.slow
def test_compare_continual_report(tiny_model, data):
    calls = []
    report = compare_continual(data["a"], data["b"], cfg(tiny_model, epochs=2), seeds=(0, 1),
                               ewc_lambda=1e4, names=("sentiment", "topic"), fisher_samples=16,
                               n_boot=300, progress=lambda f, m: calls.append(f))
    assert isinstance(report, ContinualComparison)
    d = report.to_dict()
    json.dumps(d)
    assert d["kind"] == "continual" and d["ewc_lambda"] == 1e4 and d["seeds"] == [0, 1]
    assert d["A"]["name"] == "sentiment" and d["B"]["labels"] == ["food", "movie"]
    for method in ("plain", "ewc"):
        assert set(d[method]["summary"]) == set(METRICS)
        assert [r["seed"] for r in d[method]["per_seed"]] == [0, 1]
        for r in d[method]["per_seed"]:
            assert r["forgetting"] == pytest.approx(r["acc_A_after_A"] - r["acc_A_after_B"])
        mean_f = np.mean([r["forgetting"] for r in d[method]["per_seed"]])
        assert d[method]["summary"]["forgetting"]["mean"] == pytest.approx(mean_f)
    reduction = (d["plain"]["summary"]["forgetting"]["mean"] - d["ewc"]["summary"]["forgetting"]["mean"])
    assert d["forgetting_reduction"] == pytest.approx(reduction, abs=1e-9)
    low, high = d["forgetting_reduction_ci"]
    assert low <= d["forgetting_reduction"] <= high
    assert d["ewc"]["per_seed"][0]["fisher_distance"] is not None
    assert calls == sorted(calls) and calls[-1] == pytest.approx(1.0)
    md = report.to_markdown()
    assert "| plain |" in md and "| ewc |" in md and "acc sentiment after topic" in md


def test_bad_settings_are_value_errors(tiny_model, data):
    config = cfg(tiny_model)
    with pytest.raises(ValueError, match="ewc_lambda must be > 0"):
        compare_continual(data["a"], data["b"], config, ewc_lambda=0)
    with pytest.raises(ValueError, match="ewc_lambda must be a finite number"):
        train_continual(data["a"], data["b"], config, ewc_lambda=math.inf)
    with pytest.raises(ValueError, match="names must be two different"):
        train_continual(data["a"], data["b"], config, names=("A", "A"))
    with pytest.raises(ValueError, match="task 'B' has no test rows"):
        train_continual(data["a"], (data["b"][0], None), config)
    with pytest.raises(ValueError, match="fisher_samples"):
        train_continual(data["a"], data["b"], config, fisher_samples=0)
    assert DEFAULT_EWC_LAMBDA > 0


# --- the command line -----------------------------------------------------------------------

def _files(tmp_path, data) -> dict[str, str]:
    out = {}
    for key, (train, test) in data.items():
        train.to_csv(tmp_path / f"{key}_train.csv", index=False)
        test.to_csv(tmp_path / f"{key}_test.csv", index=False)
        out[key] = f"{tmp_path / f'{key}_train.csv'},{tmp_path / f'{key}_test.csv'}"
    return out


@pytest.mark.slow
def test_cli_continual_writes_the_report(tiny_model, data, tmp_path, capsys):
    files = _files(tmp_path, data)
    out = tmp_path / "c.json"
    code = main(["continual", "--a", files["a"], "--b", files["b"], "--seeds", "1",
                 "--ewc-lambda", "1e5", "--fisher-samples", "8", "--n-boot", "100",
                 "--model", tiny_model, "--epochs", "2", "--learning-rate", "1e-2",
                 "--batch-size", "8", "--max-length", "16", "--json", str(out)])
    assert code == 0
    d = json.loads(out.read_text())
    assert {"kind", "A", "B", "plain", "ewc", "forgetting_reduction", "forgetting_reduction_ci",
            "b_accuracy_change", "ewc_lambda", "config"} <= set(d)
    assert d["ewc_lambda"] == 1e5 and d["fisher_samples"] == 8
    assert set(d["plain"]["summary"]) == {"acc_A_after_A", "acc_A_after_B", "acc_B", "forgetting"}
    assert "| ewc |" in capsys.readouterr().out


def test_cli_continual_bad_input_exits_2_naming_the_file(tiny_model, data, tmp_path, capsys):
    files = _files(tmp_path, data)
    missing = tmp_path / "gone.csv"
    code = main(["continual", "--a", files["a"], "--b", f"{missing},{tmp_path / 'b_test.csv'}",
                 "--model", tiny_model])
    err = capsys.readouterr().err
    assert code == 2 and str(missing) in err and "no such file" in err and "Traceback" not in err
    empty_label = tmp_path / "blank.csv"
    pd.DataFrame({"text": ["good day", "bad day"], "label": ["pos", ""]}).to_csv(empty_label, index=False)
    assert main(["continual", "--a", f"{empty_label},{tmp_path / 'a_test.csv'}", "--b", files["b"]]) == 2
    err = capsys.readouterr().err
    assert str(empty_label) in err and "empty label" in err
    assert main(["continual", "--a", files["a"].split(",")[0], "--b", files["b"]]) == 2
    assert "--a" in capsys.readouterr().err
    assert main(["continual", "--a", files["a"], "--b", files["b"], "--ewc-lambda", "-3",
                 "--model", tiny_model]) == 2
    assert "ewc_lambda" in capsys.readouterr().err
