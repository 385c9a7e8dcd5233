"""The verdict of retrain-and-compare, without training: the interval over seeds and items
(fixtures with hand-computed answers and a simulation of its error rate), the learning checks,
the decision, the size notes, the settings resolver and the run cache."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from fine_tune.config import ClassWeights, TrainConfig
from fine_tune.run_cache import RunCache
from fine_tune.settings import resolve_settings
from fine_tune.stats import paired_bootstrap_delta, seed_item_change, smallest_detectable_change
from fine_tune.verdict import decide, learning_check, side_learning, size_notes


# --- the interval over seeds and test items ------------------------------------------------

def test_seed_item_change_by_hand():
    y = np.zeros(4, dtype=int)
    before = np.array([[0, 0, 1, 1], [0, 1, 1, 1]])     # accuracies 0.50, 0.25
    after = np.array([[0, 0, 0, 1], [0, 0, 0, 0]])      # accuracies 0.75, 1.00
    r = seed_item_change(y, before, after)
    assert r["delta"] == pytest.approx(0.5)
    # d_i = after's mean correctness minus before's, per item: 0, 0.5, 1, 0.5
    v_items = np.var([0, 0.5, 1, 0.5], ddof=1) / 4
    v_before = np.var([0.5, 0.25], ddof=1) / 2
    v_after = np.var([0.75, 1.0], ddof=1) / 2
    assert r["variance"] == pytest.approx({"test_items": v_items, "seeds_before": v_before,
                                           "seeds_after": v_after})
    total = v_items + v_before + v_after
    df = total ** 2 / (v_items ** 2 / 3 + v_before ** 2 / 1 + v_after ** 2 / 1)
    assert r["df"] == pytest.approx(df)
    half = scipy_stats.t.ppf(0.975, df) * math.sqrt(total)
    assert r["ci"] == pytest.approx((0.5 - half, 0.5 + half))
    assert r["p_value"] == pytest.approx(2 * scipy_stats.t.sf(0.5 / math.sqrt(total), df))


def test_seed_item_change_macro_f1_and_bad_input():
    y = np.array([0, 1] * 20)
    rng = np.random.default_rng(0)
    before = np.where(rng.random((3, 40)) < 0.3, 1 - y, y)
    after = np.where(rng.random((3, 40)) < 0.1, 1 - y, y)
    r = seed_item_change(y, before, after, metric="macro_f1", n_boot=400)
    assert r["metric"] == "macro_f1" and r["ci"][0] < r["delta"] < r["ci"][1]
    assert r["variance"]["test_items"] > 0
    with pytest.raises(ValueError, match="at least two runs"):
        seed_item_change(y, before[:1], after)
    with pytest.raises(ValueError, match="metric"):
        seed_item_change(y, before, after, metric="auc")
    with pytest.raises(ValueError, match="2-D"):
        seed_item_change(y, before[0], after)


def _random_effects(rng, n, seeds, seed_sd, run_sd, effect=0.0):
    """Correct / wrong per (run, item) from a logistic model with item, seed and run noise."""
    easy = rng.normal(1.5, 1.5, n)

    def side(shift):
        z = easy[None, :] + shift + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, run_sd, (seeds, n))
        return (rng.random((seeds, n)) < 1 / (1 + np.exp(-z))).astype(int)
    return side(0.0), side(effect)


@pytest.mark.parametrize("seed_sd, run_sd", [(0.0, 0.5), (0.3, 0.5), (0.6, 0.3)])
def test_the_interval_keeps_its_error_rate_where_item_resampling_does_not(seed_sd, run_sd):
    """No true change (both sides drawn alike), 300 items, 3 seeds, 300 simulated comparisons.

    Resampling test items alone treats each run as the model: once seeds differ it claims a
    change far more often than 5%. The interval over seeds and items stays at or under 5%.
    """
    rng = np.random.default_rng(7)
    claims = {"seed_item": 0, "items_only": 0}
    reps = 300
    for r in range(reps):
        right_b, right_a = _random_effects(rng, 300, 3, seed_sd, run_sd)
        y = np.zeros(300, dtype=int)
        before, after = 1 - right_b, 1 - right_a      # predictions: 0 where right
        low, high = seed_item_change(y, before, after)["ci"]
        claims["seed_item"] += low > 0 or high < 0
        _, (low, high) = paired_bootstrap_delta(y, before, after, n_boot=300, seed=r)
        claims["items_only"] += low > 0 or high < 0
    assert claims["seed_item"] / reps <= 0.05
    if seed_sd >= 0.3:
        assert claims["items_only"] / reps > 0.15


def test_the_interval_finds_a_real_change():
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(100):
        right_b, right_a = _random_effects(rng, 300, 3, 0.2, 0.5, effect=1.0)
        y = np.zeros(300, dtype=int)
        found += seed_item_change(y, 1 - right_b, 1 - right_a)["ci"][0] > 0
    assert found >= 90


def test_smallest_detectable_change_is_six_items():
    assert smallest_detectable_change(300) == 0.02
    assert smallest_detectable_change(6) == 1.0
    # 6 items all one way: McNemar's exact p = 2 / 2**6 < 0.05; 5 items: 2 / 2**5 > 0.05
    from fine_tune.stats import mcnemar_exact
    y = ["a"] * 6
    assert mcnemar_exact(y, ["b"] * 6, y)["p_value"] < 0.05
    assert mcnemar_exact(y[:5], ["b"] * 5, y[:5])["p_value"] > 0.05
    with pytest.raises(ValueError, match="n_items"):
        smallest_detectable_change(0)


# --- did a run learn? -----------------------------------------------------------------------

LABELS = ["neg", "neu", "pos"]


def _f1(truth, pred):
    from fine_tune.stats import accuracy_and_macro_f1
    return accuracy_and_macro_f1(truth, pred, labels=range(3))[1]


def test_a_run_that_answers_one_class_did_not_learn():
    truth = np.array([0] * 30 + [1] * 40 + [2] * 30)
    pred = np.array([1] * 99 + [2])
    check = learning_check(truth, pred, LABELS, macro_f1=_f1(truth, pred))
    # one lucky hit on "pos" lifts macro-F1 just above the baseline (0.213 > 0.190): the
    # collapse check is what catches it
    assert not check["learned"] and check["codes"] == ["one_class"]
    assert check["reasons"][0] == "it answered 'neu' for 99% of the test items, which are 40% 'neu'"


def test_a_test_set_that_is_nearly_one_class_does_not_trip_the_collapse_check():
    truth = np.array([1] * 97 + [0] * 3)
    pred = truth.copy()
    pred[0] = 0                         # 96% 'neu', finds every 'neg'
    check = learning_check(truth, pred, LABELS, macro_f1=_f1(truth, pred))
    assert check["learned"], check


def test_chance_and_flat_loss_are_reasons():
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    pred = rng.integers(0, 3, 300)       # guessing: macro-F1 ~ 0.33 > baseline ~ 0.2
    check = learning_check(truth, pred, LABELS, macro_f1=_f1(truth, pred), loss_codes=["flat"])
    assert "chance" in check["codes"] and "flat" in check["codes"]
    assert not check["learned"]
    good = learning_check(truth, truth, LABELS, macro_f1=1.0, loss_codes=["healthy"])
    assert good["learned"] and good["codes"] == []


def test_the_fixes_never_suggest_less_than_the_advice():
    truth = np.array([0] * 50 + [1] * 50)
    stuck = learning_check(truth, np.zeros(100, dtype=int), ["neg", "pos"], macro_f1=1 / 3)
    side = side_learning([(0, stuck)], config={"epochs": 1, "learning_rate": 1e-7},
                         class_counts={"neg": 50, "pos": 50},
                         advised={"epochs": 18, "learning_rate": 1e-4})
    assert side["fixes"][:2] == ["train longer (epochs 1 -> 18)",
                                 "raise the learning rate (1e-07 -> 0.0001), or run `python -m "
                                 "fine_tune lr-find` to pick one"]


def test_side_learning_names_the_fixes():
    truth = np.array([0] * 50 + [1] * 50)
    stuck = learning_check(truth, np.zeros(100, dtype=int), ["neg", "pos"], macro_f1=1 / 3)
    side = side_learning([(0, stuck)], config={"epochs": 1, "learning_rate": 1e-7,
                                               "class_weights": "none"},
                         class_counts={"neg": 90, "pos": 10})
    assert not side["learned"] and side["failed_seeds"] == [0]
    assert side["fixes"] == ["train longer (epochs 1 -> 10)",
                             "raise the learning rate (1e-07 -> 3e-07), or run `python -m fine_tune "
                             "lr-find` to pick one",
                             "weight the classes (class_weights = balanced): 'neg' dominates the "
                             "training data"]


# --- the decision ---------------------------------------------------------------------------

OK = {"learned": True}


def _change(delta, low, high, seeds=1e-5, items=1e-4):
    return {"delta": delta, "ci": (low, high), "p_value": 0.2,
            "variance": {"test_items": items, "seeds_before": seeds, "seeds_after": seeds}}


def test_decide_every_verdict():
    sides = {"before": OK, "after": OK}
    assert decide(_change(0.05, 0.01, 0.09), sides, n_seeds=3)[0] == "better"
    assert decide(_change(-0.05, -0.09, -0.01), sides, n_seeds=3)[0] == "worse"
    assert decide(_change(0.0, -0.015, 0.015), sides, n_seeds=3)[0] == "no_real_change"
    code, why = decide(_change(0.01, -0.03, 0.05, seeds=1e-3), sides, n_seeds=3)
    assert code == "inconclusive" and "changes of 0.050 or more" in why and "more seeds" in why
    code, why = decide(_change(0.01, -0.03, 0.05, seeds=1e-6), sides, n_seeds=3)
    assert "a larger test set" in why
    # a wider margin makes the same interval "no real change"
    assert decide(_change(0.01, -0.03, 0.05), sides, n_seeds=3, min_effect=0.06)[0] == "no_real_change"


def test_decide_one_seed_and_a_side_that_did_not_learn():
    code, why = decide(_change(0.2, 0.1, 0.3), {"before": OK, "after": OK}, n_seeds=1)
    assert code == "inconclusive" and "one run per side cannot separate" in why
    stuck = {"learned": False, "reasons": ["seed 0: its training loss stayed flat"],
             "fixes": ["train longer (epochs 1 -> 10)"]}
    code, why = decide(_change(0.2, 0.1, 0.3), {"before": OK, "after": stuck}, n_seeds=3)
    assert code == "inconclusive"
    assert "the after model did not learn (seed 0: its training loss stayed flat); to fix it: " \
           "train longer (epochs 1 -> 10)" in why
    assert "p =" not in why


def test_size_notes_before_training():
    notes = size_notes(150, {"a": 140, "b": 5, "c": 5}, n_seeds=1)
    assert "no change in accuracy smaller than 0.040" in notes[0]
    assert "at least 300 test items" in notes[0]
    assert "'b', 'c'" in notes[1] and "one run cannot separate" in notes[2]
    assert size_notes(300, {"a": 150, "b": 150}) == []
    assert size_notes(300, {"a": 150, "b": 150}, min_effect=0.01)[0].startswith("The test set has 300")


# --- settings -------------------------------------------------------------------------------

class WordTokenizer:
    def __call__(self, texts, truncation=False):
        return {"input_ids": [t.split() for t in texts]}


def _frame(n_major, n_minor):
    return pd.DataFrame({"text": [f"my card number {i} was stolen" for i in range(n_major)]
                         + [f"thank you {i}" for i in range(n_minor)],
                         "label": ["fraud"] * n_major + ["praise"] * n_minor})


def test_resolve_settings_fills_what_the_user_left_open():
    s = resolve_settings(_frame(160, 40), tokenizer=WordTokenizer())
    # 200 rows: 180 train / 16 = 12 updates an epoch; 400 updates need 34 epochs, capped at 20
    assert s.config.epochs == 20 and s.config.learning_rate == 1e-4
    assert s.config.class_weights == ClassWeights.BALANCED and s.config.max_length == 32
    chosen = {c["setting"]: c for c in s.chosen}
    assert chosen["epochs"]["source"] == "advice" and "12 optimizer updates" in chosen["epochs"]["reason"]
    assert chosen["batch_size"]["source"] == "default"
    # LoRA for so few rows is advice only: it changes the model, so it is not applied
    assert chosen["lora"]["source"] == "default" and s.config.lora is False
    assert chosen["lora"]["reason"].startswith("advice not applied (a change of model is yours to "
                                               "make): lora = True, because with 200 rows")
    assert len(s.chosen) == len(chosen)                 # one line per setting


def test_resolve_settings_keeps_the_users_choices_and_says_what_the_advice_was():
    s = resolve_settings(_frame(160, 40), {"epochs": 2, "class_weights": "none"},
                         tokenizer=WordTokenizer())
    assert s.config.epochs == 2 and s.config.class_weights == ClassWeights.NONE
    chosen = {c["setting"]: c for c in s.chosen}
    assert chosen["epochs"]["source"] == "you" and "the advice was 20" in chosen["epochs"]["reason"]
    whole = resolve_settings(_frame(160, 40), TrainConfig(epochs=1), tokenizer=WordTokenizer())
    assert whole.config.epochs == 1 and {c["source"] for c in whole.chosen} == {"given"}
    with pytest.raises(ValueError, match="unknown training setting"):
        resolve_settings(_frame(10, 10), {"epoch": 3}, tokenizer=WordTokenizer())
    with pytest.raises(ValueError, match="TrainConfig.epochs"):
        resolve_settings(_frame(10, 10), {"epochs": -1}, tokenizer=WordTokenizer())


def test_resolved_settings_round_trip():
    from fine_tune.settings import ResolvedSettings

    s = resolve_settings(_frame(160, 40), tokenizer=WordTokenizer())
    again = ResolvedSettings.from_dict(s.to_dict())
    assert again.config == s.config and again.chosen == s.chosen


# --- the run cache --------------------------------------------------------------------------

def _key(cache, frame, test, **config):
    settings = {"epochs": 3, "seed": 0, "model": None, "output_dir": "/tmp/x", **config}
    return cache.key(frame=frame, test=test, labels=["a", "b"], config=settings,
                     validation_size=0.1, trainer=_key)


def test_run_cache_keys_follow_everything_that_decides_a_run(tmp_path):
    cache = RunCache(tmp_path / "cache", origin={"folder": "job1"})
    frame = pd.DataFrame({"text": ["x", "y"], "label": ["a", "b"]})
    test = pd.DataFrame({"text": ["z"], "label": ["a"]})
    key = _key(cache, frame, test)
    assert key == _key(cache, frame.copy(), test.copy())
    assert key == _key(cache, frame, test, output_dir="/elsewhere")      # where checkpoints go
    for other in (_key(cache, frame.assign(label=["b", "b"]), test),     # a label
                  _key(cache, frame.iloc[::-1], test),                  # the order
                  _key(cache, frame, test.assign(label=["b"])),         # the test set
                  _key(cache, frame, test, seed=1),                     # the seed
                  _key(cache, frame, test, epochs=4),                   # a setting
                  _key(cache, frame, test, model=str(tmp_path))):       # the model
        assert other != key
    assert cache.get(key) is None
    cache.put(key, {"codes": [0], "record": {"accuracy": 1.0}})
    entry = cache.get(key)
    assert entry["run"]["record"] == {"accuracy": 1.0} and entry["origin"] == {"folder": "job1"}


def test_run_cache_ignores_a_damaged_entry_and_refuses_a_bad_key(tmp_path):
    cache = RunCache(tmp_path)
    key = "ab" * 32
    cache.put(key, {"codes": []})
    (tmp_path / "ab" / f"{key}.json").write_text("{not json", encoding="utf-8")
    assert cache.get(key) is None
    with pytest.raises(ValueError, match="not a run-cache key"):
        cache.get("../../etc/passwd")
