"""Retrain-and-compare without training: statistics with hand-checked answers, ``compare()``
with a fake trainer (a test double returning fixed predictions), the reports and the CLI."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from sklearn.metrics import f1_score

from fine_tune import compare as compare_module
from commands.fine_tune import main
from fine_tune.compare import compare, split_validation
from fine_tune.stats import (
    accuracy_and_macro_f1,
    ensemble_predictions,
    mcnemar_exact,
    mean_and_spread,
    paired_bootstrap_delta,
    per_class_f1,
)

LABELS = ["neg", "pos"]
N_TEST = 40
BEFORE_WRONG = range(10)   # before misses test items 0..9 in every seed: accuracy 0.75
AFTER_WRONG = (0,)         # after misses only item 0: accuracy 0.975


# --- statistics -----------------------------------------------------------------------------

def test_accuracy_and_macro_f1_by_hand_and_against_sklearn():
    acc, f1 = accuracy_and_macro_f1(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert acc == 0.75 and f1 == pytest.approx((2 / 3 + 0.8) / 2)
    rng = np.random.default_rng(1)
    y, p = rng.integers(0, 4, 200), rng.integers(0, 4, 200)
    assert accuracy_and_macro_f1(y, p)[1] == pytest.approx(f1_score(y, p, average="macro"))
    # a declared label nobody used counts as F1 = 0 in the macro average
    assert accuracy_and_macro_f1(["a", "a"], ["a", "a"], labels=["a", "b"]) == (1.0, 0.5)


def test_per_class_f1_and_length_check():
    assert per_class_f1(["a", "b", "b"], ["a", "a", "b"], labels=["b", "a"]) == {
        "b": pytest.approx(2 / 3), "a": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="y_pred has 2 items but y_true has 3"):
        per_class_f1(["a", "b", "b"], ["a", "b"], labels=["a", "b"])


def test_mcnemar_exact_b1_c9():
    y = ["x"] * 12
    before = ["x"] + ["y"] * 9 + ["x", "y"]   # right on 0 and 10
    after = ["y"] + ["x"] * 9 + ["x", "y"]    # right on 1..10
    got = mcnemar_exact(y, before, after)
    # p = 2 * (C(10,0) + C(10,1)) / 2**10
    assert got == {"b": 1, "c": 9, "p_value": 2 * (1 + 10) / 2 ** 10}
    assert got["p_value"] == 0.021484375


def test_mcnemar_no_discordant_pairs_and_symmetric_case():
    assert mcnemar_exact(["a", "b"], ["a", "a"], ["a", "a"]) == {"b": 0, "c": 0, "p_value": 1.0}
    y = ["a"] * 10
    res = mcnemar_exact(y, ["a"] * 5 + ["b"] * 5, ["b"] * 5 + ["a"] * 5)
    assert (res["b"], res["c"], res["p_value"]) == (5, 5, 1.0)


def test_bootstrap_identical_predictions_is_exactly_zero():
    y = np.array([0, 1, 1, 0, 1])
    pred = np.array([[0, 0, 1, 1, 1], [1, 1, 1, 0, 0]])
    assert paired_bootstrap_delta(y, pred, pred) == (0.0, (0.0, 0.0))


def test_bootstrap_after_fixes_every_error_gives_positive_interval():
    y = np.array([0, 1] * 20)
    before = y.copy()
    before[:8] = 1 - before[:8]
    delta, (low, high) = paired_bootstrap_delta(y, before, y, n_boot=2000, seed=3)
    assert delta == pytest.approx(8 / 40)
    assert 0 < low <= delta <= high <= 1
    # the same seed gives the same interval; the reverse change mirrors it
    assert paired_bootstrap_delta(y, before, y, n_boot=2000, seed=3)[1] == (low, high)
    back, (blow, bhigh) = paired_bootstrap_delta(y, y, before, n_boot=2000, seed=3)
    assert back == -delta and (blow, bhigh) == (pytest.approx(-high), pytest.approx(-low))


def test_bootstrap_two_dimensional_mean_over_seeds():
    y = np.array([0, 0, 0, 0])
    before = np.array([[0, 1, 1, 1], [0, 0, 1, 1]])   # accuracies 0.25, 0.50
    after = np.array([[0, 0, 0, 0], [0, 0, 0, 1]])    # accuracies 1.00, 0.75
    delta, (low, high) = paired_bootstrap_delta(y, before, after, n_boot=500)
    assert delta == pytest.approx(((1 - 0.25) + (0.75 - 0.5)) / 2)
    assert low <= delta <= high
    with pytest.raises(ValueError, match="same seeds"):
        paired_bootstrap_delta(y, before, after[:1])
    with pytest.raises(ValueError, match="n_boot"):
        paired_bootstrap_delta(y, before, after, n_boot=0)
    with pytest.raises(ValueError, match="alpha"):
        paired_bootstrap_delta(y, before, after, alpha=1.5)


def test_ensemble_and_mean_and_spread():
    probas = [np.array([[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]]),
              np.array([[0.2, 0.8], [0.45, 0.55], [0.3, 0.7]])]
    assert ensemble_predictions(probas).tolist() == [0, 1, 1]
    with pytest.raises(ValueError, match="same shape"):
        ensemble_predictions([np.ones((3, 2)), np.ones((2, 2))])
    assert mean_and_spread([1, 2, 3, 4]) == {"mean": 2.5, "std": pytest.approx(math.sqrt(5 / 3)),
                                             "min": 1.0, "max": 4.0}
    assert mean_and_spread([0.7]) == {"mean": 0.7, "std": 0.0, "min": 0.7, "max": 0.7}
    with pytest.raises(ValueError, match="non-empty"):
        mean_and_spread([])


# --- fixtures and the fake trainer ----------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class FakeConfig:
    """Stands in for TrainConfig: a dataclass with a seed."""

    epochs: int = 2
    seed: int = 42
    learning_rate: float = 5e-5


class FakeDiagnosis:
    def __init__(self, side: str, seed: int) -> None:
        self.messages = [f"{side} {seed}: the validation loss bottomed out at epoch 2."]

    def to_dict(self) -> dict:
        return {"codes": ["ok"], "messages": self.messages, "summary": self.messages[0]}


class FakeTrainer:
    """A test double for ``train_classifier``: records its inputs, returns fixed predictions.

    A side is recognised by its training texts; ``cancel_on`` makes that call (1-based)
    return a cancelled result.
    """

    def __init__(self, wrong=None, cancel_on=None, string_predictions=False):
        self.calls = []
        self.wrong = wrong or {"before": BEFORE_WRONG, "after": AFTER_WRONG}
        self.cancel_on = cancel_on
        self.string_predictions = string_predictions

    def __call__(self, train, validation, test, *, config, labels, progress=None, should_stop=None):
        side = "after" if train["text"].str.startswith("after").any() else "before"
        self.calls.append({"side": side, "seed": config.seed, "config": config, "train": train,
                           "validation": validation, "test": test.copy(), "labels": list(labels)})
        if progress is not None:
            progress(0.5, "epoch 1/2")
            progress(1.0, "epoch 2/2")
        codes = test["label"].map(list(labels).index).to_numpy().copy()
        wrong = list(self.wrong[side])
        codes[wrong] = 1 - codes[wrong]
        proba = np.eye(len(labels))[codes] * 0.8 + 0.1
        pred = np.asarray(labels)[codes] if self.string_predictions else codes
        history = pd.DataFrame({"epoch": [1.0, 2.0], "step": [5, 10], "train_loss": [0.7, 0.4],
                                "eval_loss": [0.6, float("nan")]})
        return SimpleNamespace(
            labels=list(labels), test_pred=pred, test_proba=proba, history=history,
            best_epoch=2.0, best_metric=0.9, train_seconds=1.5, train_samples_per_second=20.0,
            peak_memory_mb=None, diagnosis=FakeDiagnosis(side, config.seed), device="cpu",
            config=config, output_dir=None, cancelled=len(self.calls) == self.cancel_on)


def _frames():
    test = pd.DataFrame({"text": [f"test item {i}" for i in range(N_TEST)],
                         "label": [LABELS[i % 2] for i in range(N_TEST)]})
    before = pd.DataFrame({"item_id": [f"b{i}" for i in range(30)],
                           "text": [f"before text {i}" for i in range(30)],
                           "label": [LABELS[i % 2] for i in range(30)]})
    after = pd.DataFrame({"item_id": [f"a{i}" for i in range(30)],
                          "text": [f"after text {i}" for i in range(30)],
                          "label": [LABELS[(i // 3) % 2] for i in range(30)],
                          "augmented_from": None})
    aug = pd.DataFrame({"item_id": ["a1-aug", "a4-aug", "a7-aug"],
                        "text": ["after text one, reworded", "after text four, reworded",
                                 "after text seven, reworded"],
                        "label": [after.label[1], after.label[4], after.label[7]],
                        "augmented_from": ["a1", "a4", "a7"]})
    return before, pd.concat([after, aug], ignore_index=True), test


@pytest.fixture
def frames():
    return _frames()


def _run(frames, trainer=None, **kwargs):
    trainer = trainer or FakeTrainer()
    kwargs = {"config": FakeConfig(), "n_boot": 500, **kwargs}
    return compare(*frames, trainer=trainer, **kwargs), trainer


# --- compare --------------------------------------------------------------------------------

def test_same_test_set_seeds_and_config_reach_both_sides(frames):
    report, trainer = _run(frames, seeds=(0, 1, 2))
    assert [(c["side"], c["seed"]) for c in trainer.calls] == [
        (side, seed) for seed in (0, 1, 2) for side in ("before", "after")]
    for call in trainer.calls:
        pd.testing.assert_frame_equal(call["test"], frames[2])
        assert call["labels"] == LABELS
        assert call["config"] == dataclasses.replace(FakeConfig(), seed=call["seed"])
    assert report.seeds == [0, 1, 2] and report.test_size == N_TEST
    assert report.config == dataclasses.asdict(FakeConfig())


def test_headline_numbers_and_verdict(frames):
    report, _ = _run(frames)
    assert report.before.accuracy == {"mean": 0.75, "std": 0.0, "min": 0.75, "max": 0.75}
    assert report.after.accuracy["mean"] == 0.975
    assert report.delta == pytest.approx(0.225)
    low, high = report.delta_ci
    assert 0 < low <= 0.225 <= high
    # ensembles: before wrong on 0..9, after wrong on 0 -> b = 0, c = 9, p = 2 / 2**9
    assert report.mcnemar == {"b": 0, "c": 9, "p_value": 2 / 2 ** 9}
    # every seed gives the same predictions: the interval is the items' alone, exactly
    # d_i = +1 on items 1..9, else 0: var(d) = 0.225 * 0.775 * 40 / 39, over 40 items
    assert report.change["variance"]["seeds_before"] == report.change["variance"]["seeds_after"] == 0
    assert report.change["variance"]["test_items"] == pytest.approx(0.225 * 0.775 / 39)
    assert report.verdict == "better"
    assert report.verdict_reason.startswith(
        "Mean accuracy over 3 seeds rose from 0.750 to 0.975; better: the interval lies above 0 "
        "(+0.225, 95% interval +")
    # only the item part is non-zero, so the degrees of freedom are the items': 39
    se = math.sqrt(0.225 * 0.775 / 39)
    assert report.change["df"] == pytest.approx(39)
    assert report.p_value == pytest.approx(2 * scipy_stats.t.sf(0.225 / se, 39))
    assert report.delta_ci == pytest.approx((0.225 - scipy_stats.t.ppf(0.975, 39) * se,
                                             0.225 + scipy_stats.t.ppf(0.975, 39) * se))
    assert report.item_bootstrap["ci"][0] > 0
    assert report.learning["before"]["learned"] and report.learning["after"]["learned"]
    # test items alternate neg, pos; before flips items 0..9: five of each class
    assert report.before.confusion == [[15, 5], [5, 15]]
    assert report.after.confusion == [[19, 1], [0, 20]]
    assert report.after.per_class_f1 == {"neg": pytest.approx(2 * 19 / 39),
                                         "pos": pytest.approx(2 * 20 / 41)}
    assert report.after.class_counts == {"neg": 17, "pos": 16}
    assert report.after.n_augmented == 3 and report.before.n_augmented == 0


def test_no_change_says_no_evidence(frames):
    same = {"before": range(5), "after": range(5)}
    report, _ = _run(frames, FakeTrainer(wrong=same))
    assert report.delta == 0.0 and report.delta_ci == (0.0, 0.0)
    assert report.mcnemar["p_value"] == 1.0
    assert report.verdict == "no_real_change"
    assert "stayed at 0.875" in report.verdict_reason and "within +-0.020" in report.verdict_reason


def test_string_predictions_are_accepted(frames):
    report, _ = _run(frames, FakeTrainer(string_predictions=True), seeds=(0,))
    assert report.after.accuracy["mean"] == 0.975
    # one seed: inconclusive by construction, whatever the item-level figures say
    assert report.verdict == "inconclusive" and report.mcnemar["p_value"] < 0.01
    assert "one run per side cannot separate the change from training noise" in report.verdict_reason
    assert report.delta_ci is None and report.change is None


def test_validation_never_holds_augmented_rows_or_their_sources(frames):
    _, trainer = _run(frames, seeds=(0, 1, 2, 3, 4), validation_size=0.3)
    pinned = {"a1", "a4", "a7", "a1-aug", "a4-aug", "a7-aug"}
    for call in trainer.calls:
        val, train = call["validation"], call["train"]
        assert val is not None and len(val) > 0
        assert not pinned & set(val["item_id"])
        assert not set(val["item_id"]) & set(train["item_id"])
        assert len(val) + len(train) == (33 if call["side"] == "after" else 30)
        assert set(val["label"]) == set(LABELS)    # stratified
    seed0 = [c["validation"] for c in trainer.calls if c["seed"] == 0 and c["side"] == "after"]
    again, _ = split_validation(_frames()[1], validation_size=0.3, seed=0)
    assert len(again) + len(seed0[0]) == 33


def test_split_validation_keeps_duplicates_of_train_out_and_size_zero():
    frame = pd.DataFrame({"text": ["Same text", "same text!", "x", "y", "z", "w"],
                          "label": ["a", "a", "b", "b", "a", "b"]})
    for seed in range(10):
        train, val = split_validation(frame, validation_size=0.5, seed=seed)
        assert not ({"Same text", "same text!"} & set(val["text"])) or \
            {"Same text", "same text!"} <= set(val["text"])
    train, val = split_validation(frame, validation_size=0)
    assert val is None and len(train) == 6


def test_leakage_error_names_the_test_row(frames):
    before, after, test = frames
    test = test.copy()
    test.loc[3, "text"] = "Before  TEXT 7!"      # same as before's "before text 7" once normalised
    with pytest.raises(ValueError) as err:
        _run((before, after, test))
    msg = str(err.value)
    assert "test rows 3 ('Before  TEXT 7!')" in msg and "before training data" in msg
    assert "remove them from training or from the test set" in msg


@pytest.mark.parametrize("change, match", [
    (lambda b, a, t: (b.rename(columns={"label": "labels"}), a, t),
     "before: no column 'label'.*did you mean 'labels'"),
    (lambda b, a, t: (b, a.assign(text=a["text"].where(a.index != 2, "  ")), t),
     "after has an empty text in rows 2"),
    (lambda b, a, t: (b, a, t.assign(label=t["label"].where(t.index != 5, "neutral"))),
     "test labels 'neutral' \\(rows 5\\)"),
])
def test_bad_input_is_named(frames, change, match):
    with pytest.raises(ValueError, match=match):
        _run(change(*frames))


def test_bad_options(frames):
    with pytest.raises(ValueError, match="seeds"):
        _run(frames, seeds=())
    with pytest.raises(ValueError, match="validation_size"):
        _run(frames, validation_size=1.0)
    with pytest.raises(ValueError, match="n_boot"):
        _run(frames, n_boot=0)


def test_progress_runs_over_all_runs(frames):
    seen = []
    _run(frames, seeds=(0, 1), progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] > 0
    assert ("after, seed 1: epoch 2/2") in [m for _, m in seen]
    assert (0.125, "before, seed 0: epoch 1/2") == seen[0]


def test_should_stop_cancels_early_and_keeps_what_finished(frames):
    trainer = FakeTrainer()
    report, _ = _run(frames, trainer, seeds=(0, 1, 2), should_stop=lambda: len(trainer.calls) >= 3)
    assert len(trainer.calls) == 3 and report.cancelled
    assert [r["seed"] for r in report.before.per_seed] == [0, 1]
    assert [r["seed"] for r in report.after.per_seed] == [0]
    assert report.paired_seeds == [0]
    assert report.verdict == "inconclusive"
    assert report.verdict_reason.startswith(
        "Cancelled after 3 of 6 training runs; partial result: Accuracy (one seed) rose")
    d = report.to_dict()
    assert d["cancelled"] is True
    assert d["per_seed"][1] == {"seed": 1, "accuracy_before": 0.75, "accuracy_after": None,
                                "macro_f1_before": d["before"]["per_seed"][1]["macro_f1"],
                                "macro_f1_after": None}
    assert "cancelled" in report.to_markdown()


def test_cancelled_train_result_stops_at_once(frames):
    report, trainer = _run(frames, FakeTrainer(cancel_on=1))
    assert len(trainer.calls) == 1 and report.cancelled
    assert report.delta is None and report.before.accuracy["mean"] is None
    d = report.to_dict()
    assert d["accuracy_before"] is None and d["delta_ci"] is None and d["mcnemar_p"] is None
    json.dumps(d, allow_nan=False)
    assert "Nothing to compare" in report.to_markdown() or "nothing to compare" in report.to_markdown()
    report.to_html()


# --- report ---------------------------------------------------------------------------------

CLI_KEYS = {"accuracy_before", "accuracy_after", "delta", "delta_ci", "mcnemar_p",
            "macro_f1_before", "macro_f1_after", "per_seed"}


def test_to_dict_keys_and_json(frames):
    report, _ = _run(frames, seeds=(0, 1))
    d = report.to_dict()
    assert CLI_KEYS <= set(d)
    assert {"verdict", "verdict_reason", "labels", "test_size", "seeds", "config", "settings",
            "before", "after", "mcnemar", "item_bootstrap", "change", "macro_f1_change", "learning",
            "size_notes", "reused", "p_value", "macro_f1_delta", "cancelled"} <= set(d)
    assert d["verdict"] == "better" and list(d)[:2] == ["verdict", "verdict_reason"]
    # a whole config handed in is taken as given, no advice
    assert {c["source"] for c in d["settings"]["chosen"]} == {"given"}
    assert d["per_seed"] == [{"seed": s, "accuracy_before": 0.75, "accuracy_after": 0.975,
                              "macro_f1_before": d["before"]["per_seed"][i]["macro_f1"],
                              "macro_f1_after": d["after"]["per_seed"][i]["macro_f1"]}
                             for i, s in enumerate((0, 1))]
    side = d["after"]
    assert {"n_train", "class_counts", "accuracy", "macro_f1", "per_seed", "per_class_f1",
            "confusion", "diagnosis", "histories"} <= set(side)
    assert set(side["per_seed"][0]) >= {"seed", "accuracy", "macro_f1", "train_seconds",
                                        "samples_per_second", "best_epoch"}
    assert side["histories"][0][1]["eval_loss"] is None          # NaN -> null
    assert side["diagnosis"][1]["messages"] == ["after 1: the validation loss bottomed out at epoch 2."]
    assert json.loads(json.dumps(d, allow_nan=False))["delta"] == pytest.approx(0.225)


def test_markdown_and_html_hold_verdict_and_tables(frames):
    before, after, test = frames
    labels = {"neg": "neg <b>|</b>", "pos": "pos"}
    frames = tuple(f.assign(label=f["label"].map(labels)) for f in frames)
    report, _ = _run(frames, seeds=(0, 1))
    md = report.to_markdown()
    assert report.verdict_reason in md and "**Verdict: better**" in md
    for text in ("| before | 30 | 2 | 0.750 ± 0.000 | 0.750–0.750 |", "## Per-class F1",
                 "Confusion matrix, before", "Confusion matrix, after", "McNemar", "b = 0",
                 "c = 9", "after, seed 1: after 1: the validation loss", "## Training data",
                 "| learning_rate | 5e-05 |", "| seeds (one run per side each) | 0, 1 |",
                 "neg <b>\\|</b>", "augmented rows"):
        assert text in md, text
    page = report.to_html()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "http" not in page and "<script" not in page and "<link" not in page
    assert "neg &lt;b&gt;|&lt;/b&gt;" in page and "<b>" not in page
    # sides, per seed, per class, two confusion matrices, training data, settings
    assert page.count("<table>") == 7


# --- command line ---------------------------------------------------------------------------

@pytest.fixture
def cli_files(tmp_path, monkeypatch):
    """The fixture frames as files, and the fake trainer (and config, without fine_tune.config)."""
    trainer = FakeTrainer()
    monkeypatch.setattr(compare_module, "_default_trainer", lambda: trainer)
    if importlib.util.find_spec("fine_tune.config") is None:
        monkeypatch.setattr("commands.fine_tune._config_class", lambda: FakeConfig)
    before, after, test = _frames()
    paths = {"before": tmp_path / "b.csv", "after": tmp_path / "a.jsonl", "test": tmp_path / "t.parquet"}
    before.to_csv(paths["before"], index=False)
    after.to_json(paths["after"], orient="records", lines=True)
    try:
        test.to_parquet(paths["test"])
    except ImportError:
        paths["test"] = tmp_path / "t.csv"
        test.to_csv(paths["test"], index=False)
    return paths, trainer


def test_cli_compare_prints_and_writes_reports(cli_files, tmp_path, capsys):
    paths, trainer = cli_files
    out = tmp_path / "out"
    code = main(["compare", "--before", str(paths["before"]), "--after", str(paths["after"]),
                 "--test", str(paths["test"]), "--seeds", "2", "--epochs", "2", "--n-boot", "300",
                 "--json", str(out / "r.json"), "--markdown", str(out / "r.md"),
                 "--html", str(out / "r.html")])
    assert code == 0
    text = capsys.readouterr().out
    assert text.startswith("VERDICT: better\nMean accuracy over 2 seeds rose from 0.750 to 0.975")
    assert "before" in text and "0.975 ± 0.000" in text
    d = json.loads((out / "r.json").read_text())
    assert CLI_KEYS <= set(d) and d["seeds"] == [0, 1] and d["delta"] == pytest.approx(0.225)
    assert [c["seed"] for c in trainer.calls] == [0, 0, 1, 1]
    assert all(c["config"].epochs == 2 for c in trainer.calls)
    assert d["after"]["n_augmented"] == 3       # augmented_from survived the JSONL round trip
    assert d["verdict_reason"] in (out / "r.md").read_text()
    # the flags given are the user's, the rest came from the advice on the after data
    chosen = {c["setting"]: c for c in d["settings"]["chosen"]}
    assert chosen["epochs"]["source"] == "you" and chosen["epochs"]["value"] == 2
    assert chosen["max_length"]["source"] == "advice"          # short texts: 32 tokens
    assert "<table>" in (out / "r.html").read_text()


def test_cli_missing_column_exits_2_without_traceback(cli_files, tmp_path, capsys):
    paths, trainer = cli_files
    bad = tmp_path / "bad.csv"
    _frames()[0].rename(columns={"label": "labels"}).to_csv(bad, index=False)
    code = main(["compare", "--before", str(bad), "--after", str(paths["after"]),
                 "--test", str(paths["test"])])
    err = capsys.readouterr().err
    assert code == 2 and "bad.csv" in err and "'label'" in err and "did you mean 'labels'" in err
    assert "Traceback" not in err and not trainer.calls
    assert main(["compare", "--before", str(tmp_path / "none.csv"), "--after", str(paths["after"]),
                 "--test", str(paths["test"])]) == 2
    assert "no such file" in capsys.readouterr().err


def test_cli_leakage_exits_2(cli_files, tmp_path, capsys):
    paths, _ = cli_files
    test = _frames()[2]
    test.loc[0, "text"] = "after text 3"
    leaky = tmp_path / "leaky.csv"
    test.to_csv(leaky, index=False)
    assert main(["compare", "--before", str(paths["before"]), "--after", str(paths["after"]),
                 "--test", str(leaky)]) == 2
    assert "remove them from training or from the test set" in capsys.readouterr().err


def test_cli_train_prints_accuracy_and_diagnosis(cli_files, tmp_path, capsys):
    paths, trainer = cli_files
    out = tmp_path / "train.json"
    assert main(["train", "--train", str(paths["before"]), "--test", str(paths["test"]),
                 "--seed", "7", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "test accuracy 0.750" in text and "bottomed out" in text
    d = json.loads(out.read_text())
    assert d["accuracy"] == 0.75 and d["diagnosis"]["codes"] == ["ok"] and len(d["history"]) == 2
    assert trainer.calls[0]["seed"] == 7 and trainer.calls[0]["validation"] is None


def test_cli_train_empty_text_exits_2(cli_files, tmp_path, capsys):
    paths, trainer = cli_files
    bad = tmp_path / "empty.csv"
    bad.write_text("text,label\nfine,pos\n,neg\n")
    assert main(["train", "--train", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "empty.csv has an empty text in rows 1" in err and not trainer.calls


def test_cli_lr_find(cli_files, tmp_path, capsys, monkeypatch):
    lr_finder = pytest.importorskip("fine_tune.lr_finder")
    paths, _ = cli_files
    seen = {}

    def fake_range_test(train, *, config=None, **kwargs):
        seen.update(rows=len(train), config=config)
        return SimpleNamespace(suggested_lr=3e-5, lrs=np.array([1e-6, 1e-5, 1e-4]),
                               smoothed=np.array([0.7, 0.5, 0.9]))

    monkeypatch.setattr(lr_finder, "lr_range_test", fake_range_test)
    out = tmp_path / "lr.json"
    assert main(["lr-find", "--train", str(paths["before"]), "--json", str(out)]) == 0
    assert "suggested learning rate: 3e-05" in capsys.readouterr().out
    assert json.loads(out.read_text()) == {"suggested_lr": 3e-5, "lrs": [1e-6, 1e-5, 1e-4],
                                           "smoothed": [0.7, 0.5, 0.9]}
    assert seen["rows"] == 30


def test_cli_training_options_reach_the_config():
    from commands.fine_tune import build_config, build_parser
    from fine_tune.config import ClassWeights, Precision

    args = build_parser().parse_args([
        "train", "--train", "t.csv", "--epochs", "3", "--gradient-accumulation", "4",
        "--precision", "fp32", "--class-weights", "balanced", "--freeze-embeddings",
        "--freeze-layers", "4", "--unfreeze", "1:2,2:2", "--patience", "1",
        "--metric", "eval_macro_f1", "--warmup-ratio", "0.2", "--weight-decay", "0"])
    config = build_config(args, seed=3)
    assert (config.epochs, config.gradient_accumulation, config.seed) == (3, 4, 3)
    assert config.precision is Precision.FP32 and config.class_weights is ClassWeights.BALANCED
    assert config.freeze_embeddings and config.freeze_layers == 4
    assert config.unfreeze_schedule == ((1, 2), (2, 2)) and config.early_stopping_patience == 1
    assert config.early_stopping_metric == "eval_macro_f1" and not config.lora
    lora = build_config(build_parser().parse_args(["train", "--train", "t.csv", "--lora"]))
    assert lora.lora and lora.freeze_layers == 0
    assert (config.warmup_ratio, config.weight_decay) == (0.2, 0.0)


def test_cli_bad_schedule_exits_2(capsys):
    from commands.fine_tune import main

    with pytest.raises(SystemExit) as info:
        main(["train", "--train", "t.csv", "--unfreeze", "first"])
    assert info.value.code == 2 and "EPOCH:N pairs" in capsys.readouterr().err


def test_rules_in_the_report_with_and_without_and_every_override(frames):
    from fine_tune.rules import Rule, RuleSet

    rules = RuleSet([Rule.build("fix", "pos", "items 1 and 3 are pos", keywords=["test item 1", "test item 3"]),
                     Rule.build("bad", "pos", "item 2 is pos (wrong)", keywords=["test item 2"])],
                    source="t.yaml")
    report, _ = _run(frames, rules=rules)
    r = report.rules
    # before's ensemble is wrong on items 0..9: "fix" repairs 1 and 3, "bad" only confirms item 2
    assert (r["before"]["accuracy_without"], r["before"]["accuracy_with"]) == (0.75, 0.8)
    assert [(o["row"], o["effect"]) for o in r["before"]["overrides"]] == [(1, "helped"), (3, "helped")]
    # after is wrong only on item 0: "fix" confirms, "bad" turns a right answer wrong
    assert (r["after"]["accuracy_without"], r["after"]["accuracy_with"]) == (0.975, 0.95)
    assert r["after"]["per_rule"]["bad"] == {"fired": 1, "overrides": 1, "helped": 0, "hurt": 1,
                                             "net": -1, "reason": "item 2 is pos (wrong)"}
    markdown = report.to_markdown()
    assert "## Post-processing rules (t.yaml)" in markdown and "| bad | 1 | 1 | 0 | 1 | -1 |" in markdown
    assert report.to_dict()["rules"]["after"]["n_overrides"] == 1
    with pytest.raises(ValueError, match="rule 'odd' uses label"):
        _run(frames, rules=RuleSet([Rule.build("odd", "maybe", "r", keywords=["x"])]))


# --- learning checks, the cache and the plan, through compare() -------------------------------

class OneClassTrainer(FakeTrainer):
    """The after side answers 'neg' for every test item: it learned nothing."""

    def __call__(self, train, validation, test, *, config, labels, progress=None, should_stop=None):
        result = super().__call__(train, validation, test, config=config, labels=labels)
        if self.calls[-1]["side"] == "after":
            result.test_pred = np.zeros(len(test), dtype=int)
            result.test_proba = np.tile([0.9, 0.1], (len(test), 1))
        return result


def test_a_side_that_did_not_learn_gets_no_verdict_and_says_what_to_change(frames):
    report, _ = _run(frames, OneClassTrainer())
    assert report.verdict == "inconclusive"
    assert not report.learning["after"]["learned"] and report.learning["before"]["learned"]
    assert report.learning["after"]["failed_seeds"] == [0, 1, 2]
    why = report.verdict_reason
    assert "the after model did not learn (seed 0: it answered 'neg' for 100% of the test items, " \
           "which are 50% 'neg'" in why
    assert "train longer (epochs 2 -> 10)" in why and "no p-value is given" in why
    # no test is shown as a finding: none is computed
    assert report.p_value is None and report.delta_ci is None and report.mcnemar is None
    d = report.to_dict()
    assert d["mcnemar_p"] is None and d["p_value"] is None
    assert "Did each side learn?" in report.to_markdown()


def test_compare_reuses_cached_runs_and_says_so(frames, tmp_path):
    from fine_tune.run_cache import RunCache

    cache = RunCache(tmp_path / "cache", origin={"folder": "first"})
    first, trainer = _run(frames, seeds=(0, 1), cache=cache)
    assert len(trainer.calls) == 4 and first.reused == []
    # more review: one after label changes; the before runs are unchanged, so reused
    before, after, test = frames
    after = after.copy()
    after.loc[0, "label"] = "pos" if after.loc[0, "label"] == "neg" else "neg"
    again, trainer2 = _run((before, after, test), seeds=(0, 1), cache=RunCache(tmp_path / "cache"))
    assert [(c["side"], c["seed"]) for c in trainer2.calls] == [("after", 0), ("after", 1)]
    assert [(r["side"], r["seed"], r["origin"]) for r in again.reused] == [
        ("before", 0, {"folder": "first"}), ("before", 1, {"folder": "first"})]
    assert again.before.per_seed == first.before.per_seed
    assert again.verdict == first.verdict == "better"
    # nothing changed at all: every run comes from the cache, no training
    _, trainer3 = _run((before, after, test), seeds=(0, 1), cache=RunCache(tmp_path / "cache"))
    assert trainer3.calls == []


def test_on_start_gets_the_settings_and_the_size_notes_before_any_training(frames):
    seen = []
    trainer = FakeTrainer()
    _run(frames, trainer, seeds=(0,), on_start=lambda plan: seen.append((plan, len(trainer.calls))))
    plan, calls_then = seen[0]
    assert calls_then == 0
    assert plan["size_notes"][0].startswith("The test set has 40 items")
    assert "One seed per side" in plan["size_notes"][-1]
    assert {c["setting"] for c in plan["settings"]["chosen"]} >= {"epochs", "learning_rate"}


def test_min_effect_is_checked(frames):
    with pytest.raises(ValueError, match="min_effect"):
        _run(frames, min_effect=0)


def test_a_report_read_back_from_its_json_is_the_same_typed_report():
    """Pages read a job's report.json as the CompareReport compare returns (not a nested dict):
    from_dict(to_dict(r)) gives r's dict again, and an older report without the newer fields
    still reads (their defaults), while something that is no report is refused."""
    import json

    from fine_tune.compare import CompareReport, SideSummary

    side = SideSummary(n_train=10, class_counts={"a": 5, "b": 5},
                       accuracy={"mean": 0.8, "std": 0.01}, macro_f1={"mean": 0.79, "std": 0.02},
                       per_seed=[{"seed": 0, "accuracy": 0.8, "macro_f1": 0.79}],
                       per_class_f1={"a": 0.8, "b": 0.78}, confusion=[[4, 1], [1, 4]])
    after = SideSummary(**{**side.__dict__, "accuracy": {"mean": 0.9, "std": 0.01},
                           "per_seed": [{"seed": 0, "accuracy": 0.9, "macro_f1": 0.88}]})
    report = CompareReport(labels=["a", "b"], test_size=10, seeds=[0], config={"max_length": 64},
                           before=side, after=after, verdict="inconclusive",
                           verdict_reason="one seed", delta=0.1, delta_ci=(-0.05, 0.25),
                           rules={"source": "r.yaml"})
    again = CompareReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.to_dict() == report.to_dict()
    assert again.delta_ci == (-0.05, 0.25) and again.after.n_train == 10
    assert again.accuracy_before == 0.8 and again.accuracy_after == 0.9
    assert again.per_seed == [{"seed": 0, "accuracy_before": 0.8, "accuracy_after": 0.9,
                               "macro_f1_before": 0.79, "macro_f1_after": 0.88}]
    old = {k: v for k, v in report.to_dict().items()
           if k not in ("verdict_reason", "rules", "learning", "reused", "size_notes")}
    older = CompareReport.from_dict(old)
    assert older.verdict_reason is None and older.rules is None and older.reused == []
    with pytest.raises(ValueError, match="not a retrain-and-compare report"):
        CompareReport.from_dict({"verdict": "better"})
