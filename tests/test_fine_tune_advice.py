"""Model-selection advice: traits measured on real data, recommendations with reasons, applied."""

from __future__ import annotations

import pandas as pd
import pytest

from fine_tune.advice import LONG_MODEL, MULTILINGUAL_MODEL, advise
from fine_tune.config import ClassWeights, TrainConfig


class WordTokenizer:
    """One token per word (plus [CLS]/[SEP]), so lengths are known exactly."""

    def __call__(self, texts, truncation=False):
        return {"input_ids": [[0] + t.split() + [0] for t in texts]}


def _settings(advice):
    return {r.setting: r.value for r in advice.recommendations if r.setting}


def test_demo_project_gets_small_data_settings():
    from curation.io import load_annotations
    from curation.workspace import DEMO_CSV

    frame = load_annotations(DEMO_CSV).drop_duplicates("item_id")  # one row per item, first label
    advice = advise(frame[["text", "label"]])   # the bundled MiniLM's tokenizer
    t = advice.traits
    assert t["n_rows"] == 553 and t["language"] == "English" and t["share_over_512"] == 0
    settings = _settings(advice)
    # 553 rows: 498 train at batch 16 = 32 updates an epoch; 400 updates need 13 epochs
    assert settings["epochs"] == 13 and settings["learning_rate"] == 1e-4
    assert settings["class_weights"] == "balanced"            # praise is ~6%
    assert settings["max_length"] == 32 * -(-t["tokens_p95"] // 32) < 128
    config = advice.apply(TrainConfig())
    assert (config.epochs, config.learning_rate, config.class_weights) == (13, 1e-4, ClassWeights.BALANCED)
    assert config.model is None                              # the bundled model stays
    only = advice.apply(TrainConfig(), accept={"epochs"})
    assert only.epochs == 13 and only.learning_rate == TrainConfig().learning_rate
    assert "underfit" not in advice.to_markdown() and "553 rows" in advice.to_markdown()


def test_phrasebank_keeps_the_defaults_for_size(tmp_path):
    from conftest import SHARED

    path = SHARED / "financial-phrasebank-50agree"
    files = sorted(p for p in path.glob("*.txt")) if path.exists() else []
    if not files:
        pytest.skip("financial-phrasebank not found in ../shared/data")
    rows = [line.rsplit("@", 1) for line in files[0].read_text(encoding="utf-8-sig").splitlines() if "@" in line]
    frame = pd.DataFrame(rows, columns=["text", "label"])
    settings = _settings(advise(frame))
    assert "epochs" not in settings and "lora" not in settings   # 4,800+ rows
    assert settings.get("max_length", 128) <= 96                 # short news sentences


def test_long_and_non_english_texts_get_other_backbones():
    long = pd.DataFrame({"text": ["word " * 700] * 30 + ["short text here"] * 70,
                         "label": ["a", "b"] * 50})
    advice = advise(long, tokenizer=WordTokenizer())
    assert _settings(advice)["model"] == LONG_MODEL
    assert advice.apply(TrainConfig()).model is None             # not local: not taken
    german = pd.DataFrame({"text": ["Die Karte wurde gestohlen und ich brauche eine neue"] * 50,
                           "label": ["x", "y"] * 25})
    assert _settings(advise(german, tokenizer=WordTokenizer()))["model"] == MULTILINGUAL_MODEL
    cyrillic = pd.DataFrame({"text": ["Моя карта украдена"] * 10, "label": ["x", "y"] * 5})
    advice = advise(cyrillic, tokenizer=WordTokenizer())
    assert "Cyrillic" in advice.traits["language"]


def test_bad_frames_are_named():
    with pytest.raises(ValueError, match="lacks column 'label'"):
        advise(pd.DataFrame({"text": ["a"]}), tokenizer=WordTokenizer())
    with pytest.raises(ValueError, match="no rows"):
        advise(pd.DataFrame({"text": [], "label": []}), tokenizer=WordTokenizer())


def test_advise_cli(tmp_path, capsys):
    import json

    from commands.fine_tune import main

    path = tmp_path / "t.csv"
    pd.DataFrame({"text": ["my card was stolen", "thank you so much"] * 20,
                  "label": ["fraud", "praise"] * 20}).to_csv(path, index=False)
    assert main(["advise", "--train", str(path), "--json", str(tmp_path / "a.json")]) == 0
    out = capsys.readouterr().out
    # 40 rows are 3 updates an epoch: the epochs stop at the cap, 20
    assert "**40 rows, 2 labels**" in out and "`epochs = 20`" in out
    d = json.loads((tmp_path / "a.json").read_text())
    assert d["traits"]["n_rows"] == 40 and d["recommendations"][0]["setting"] == "epochs"
    assert main(["advise", "--train", str(tmp_path / "missing.csv")]) == 2


def test_a_stray_label_does_not_ask_for_class_weights():
    """One row of 'mixed' among 1,000 (a stray label, as a crowd worker gives) made the
    largest/smallest ratio 382 and the advice weigh that row 250 times; the weights are advised
    from the classes with enough rows to learn, and the note names the stray class."""
    frame = pd.DataFrame({"text": [f"text {i}" for i in range(1000)],
                          "label": ["positive"] * 382 + ["neutral"] * 372 + ["negative"] * 245 + ["mixed"]})
    advice = advise(frame, tokenizer=WordTokenizer())
    assert advice.traits["imbalance"] == 382.0  # the trait stays what it is
    assert "class_weights" not in _settings(advice)
    notes = [r.reason for r in advice.recommendations if r.setting is None]
    assert any("['mixed']" in n and "drop them if they are stray labels" in n
               and "left out of the class-weight advice" in n and "1.6" in n for n in notes)
    # a minority that can be learnt still gets its weights, named, beside the stray
    skewed = frame.assign(label=["positive"] * 800 + ["negative"] * 199 + ["mixed"])
    skewed_advice = advise(skewed, tokenizer=WordTokenizer())
    assert _settings(skewed_advice)["class_weights"] == "balanced"
    reason = next(r.reason for r in skewed_advice.recommendations if r.setting == "class_weights")
    assert "4.0x" in reason and "'negative'" in reason
    # every class small: weighed as before
    small = pd.DataFrame({"text": [f"t {i}" for i in range(25)], "label": ["a"] * 20 + ["b"] * 5})
    assert _settings(advise(small, tokenizer=WordTokenizer()))["class_weights"] == "balanced"
