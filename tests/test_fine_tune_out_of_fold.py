"""Fine-tuned out-of-fold probabilities (``fine_tune.out_of_fold``) and the flaggers reading them.

Training runs the tiny BERT of tests/tiny_models.py on the toy task (the label is given by two
"good" or two "bad" words), with a few labels flipped: a model that never saw an item's label
should doubt the flipped ones.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

pytest.importorskip("transformers")

from curation.flags import flag_items  # noqa: E402
from commands.fine_tune import main as fine_tune_main  # noqa: E402
from fine_tune.config import TrainConfig  # noqa: E402
from fine_tune.out_of_fold import current_labels, fine_tuned_probabilities  # noqa: E402
from fine_tune.train import train_classifier  # noqa: E402
from tiny_models import toy  # noqa: E402

FLIPPED = ["t03", "t17", "t29", "t44", "t58", "t71"]


def _config(model: str) -> TrainConfig:
    return TrainConfig(model=model, epochs=8, learning_rate=1e-2, batch_size=8, max_length=16,
                       warmup_ratio=0.0, early_stopping_patience=0, save_checkpoints=False)


@pytest.fixture(scope="module")
def noisy() -> tuple[pd.DataFrame, pd.Series]:
    """80 toy items with ids, six of them carrying the wrong label; and the true labels."""
    frame = toy(80, 0).reset_index(drop=True)
    frame.insert(0, "item_id", [f"t{i:02d}" for i in range(len(frame))])
    truth = frame.set_index("item_id")["label"].copy()
    flip = frame["item_id"].isin(FLIPPED)
    frame.loc[flip, "label"] = frame.loc[flip, "label"].map({"pos": "neg", "neg": "pos"})
    return frame, truth


class Recording:
    """train_classifier, remembering which items each fold trained, validated and predicted."""

    def __init__(self) -> None:
        self.calls: list[dict[str, set[str]]] = []

    def __call__(self, train, validation, test, **kwargs):
        self.calls.append({"train": set(train["item_id"]), "validation": set(validation["item_id"]),
                           "test": set(test["item_id"])})
        return train_classifier(train, validation, test, **kwargs)


@pytest.mark.slow
def test_every_item_is_judged_by_a_model_that_never_saw_it(tiny_model, noisy):
    frame, truth = noisy
    trainer = Recording()
    out = fine_tuned_probabilities(frame, folds=3, seed=0, config=_config(tiny_model), trainer=trainer)
    assert not out.cancelled and out.folds == 3 and len(trainer.calls) == 3
    held = [call["test"] for call in trainer.calls]
    assert sorted(i for h in held for i in h) == sorted(frame["item_id"])  # each once
    for call in trainer.calls:
        assert not call["test"] & (call["train"] | call["validation"])
        assert call["validation"] and not call["validation"] & call["train"]
    probs = out.probs
    assert list(probs.columns) == ["neg", "pos"] and sorted(probs.index) == sorted(frame["item_id"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)
    # the models learned the words, not the flipped labels: they doubt the flipped items (the
    # tiny BERT is a weak learner, so a fold can stay near chance: ranks, not a threshold)
    given = frame.set_index("item_id")["label"]
    p_given = pd.Series([probs.loc[i, given[i]] for i in probs.index], index=probs.index)
    assert roc_auc_score(p_given.index.isin(FLIPPED), 1 - p_given) >= 0.8
    assert 0.6 <= np.mean(out.fold_agreement) < 1.0  # the flipped labels cap the agreement
    # and cleanlab on these probabilities finds flipped items far above their 6 in 80
    long = frame.assign(annotator_id="ann")
    report = flag_items(long, flaggers=["label_issue"], model_probs=probs, model_signal="fine-tuned")
    found = set(report.flags["item_id"])
    assert len(found & set(FLIPPED)) >= 3 and len(found & set(FLIPPED)) / len(found) >= 0.3
    assert (truth[FLIPPED] != given[FLIPPED]).all()


@pytest.mark.slow
def test_a_stop_keeps_nothing_half_done(tiny_model, noisy):
    frame, _ = noisy
    calls = []

    def stop_after_the_first_fold() -> bool:
        return len(calls) >= 1

    def trainer(train, validation, test, **kwargs):
        calls.append(1)
        return train_classifier(train, validation, test, **{**kwargs, "should_stop": None})

    out = fine_tuned_probabilities(frame, folds=3, config=_config(tiny_model), trainer=trainer,
                                   should_stop=stop_after_the_first_fold)
    assert out.cancelled and out.probs.empty and len(calls) == 1
    assert "cancelled after 1 of 3 folds" in out.summary()


def test_bad_frames_are_refused_with_the_fix(noisy):
    frame, _ = noisy
    with pytest.raises(ValueError, match="nothing to tell apart"):
        fine_tuned_probabilities(frame.assign(label="pos"), folds=3)
    with pytest.raises(ValueError, match="too few for 5 folds"):
        fine_tuned_probabilities(frame.head(12), folds=5)
    with pytest.raises(ValueError, match="item 't00' has more than one row"):
        fine_tuned_probabilities(pd.concat([frame, frame.head(1)]), folds=3)
    with pytest.raises(ValueError, match=r"labels \['pos'\] are not in the label set"):
        fine_tuned_probabilities(frame, labels=["neg", "other"], folds=3)


def test_current_labels_are_the_ones_the_flaggers_judge():
    df = pd.DataFrame({"item_id": ["a", "a", "a", "b", "b"], "text": ["x", "x", "x", "y", "y"],
                       "annotator_id": ["u", "v", "w", "u", "v"],
                       "label": ["p", "p", "n", "n", "n"]})
    assert current_labels(df).to_dict(orient="records") == [
        {"item_id": "a", "text": "x", "label": "p"}, {"item_id": "b", "text": "y", "label": "n"}]


@pytest.mark.slow
def test_cli_writes_probabilities_that_curation_flag_reads(tiny_model, noisy, tmp_path, capsys):
    from commands.curation import main as curation_main

    frame, _ = noisy
    annotations = tmp_path / "ann.csv"
    frame.assign(annotator_id="ann").to_csv(annotations, index=False)
    out = tmp_path / "probs.csv"
    code = fine_tune_main(["out-of-fold", "--annotations", str(annotations), "--out", str(out),
                           "--folds", "3", "--model", tiny_model, "--epochs", "8",
                           "--learning-rate", "0.01", "--batch-size", "8", "--max-length", "16",
                           "--patience", "0", "--warmup-ratio", "0"])
    assert code == 0, capsys.readouterr().err
    written = pd.read_csv(out)
    assert list(written.columns) == ["item_id", "neg", "pos"] and len(written) == 80
    assert "3 fine-tuned folds" in capsys.readouterr().out
    code = curation_main(["flag", str(annotations), "--no-model", "--model-probs", str(out),
                          "--model-signal", "fine-tuned", "--top", "3"])
    assert code == 0 and "label_issue" in capsys.readouterr().out
    # the ensemble needs the embeddings the fine-tuned signal is averaged with
    assert curation_main(["flag", str(annotations), "--no-model", "--model-probs", str(out)]) == 2
    assert "leave out --no-model" in capsys.readouterr().err
