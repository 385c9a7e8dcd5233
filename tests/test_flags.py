"""Each flagger on a fixture whose right answer is known by construction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curation.flags import (
    FLAG_COLUMNS,
    BoundaryFlagger,
    FLAGGERS,
    Flagger,
    FlagContext,
    NearDuplicateFlagger,
    flag_items,
    register_flagger,
    review_queue,
)
from curation.flags._base import empty_flags
from curation.guidelines import Guideline, LabelDefinition, Rule

GUIDE = Guideline("g", (LabelDefinition("n", ""), LabelDefinition("p", "")),
                  (Rule("R1", frozenset({"n", "p"}), "Mixed messages", "If in doubt, n."),))


def long(rows):
    return pd.DataFrame(rows, columns=["item_id", "text", "annotator_id", "label"])


def clusters(n_per=40, flip="p7", boundary="b0", seed=0, split="p3"):
    """Two tight clusters of texts (p around e0, n around e1), 3 annotators who agree.

    Item ``flip`` sits in the p cluster but everybody labelled it n; item
    ``split`` sits in the p cluster too, labelled n by x and y and p by z;
    item ``boundary`` sits halfway between the clusters.
    """
    rng = np.random.default_rng(seed)
    rows, vecs = [], []
    for cls, centre in (("p", 0), ("n", 1)):
        for i in range(n_per):
            item = f"{cls}{i}"
            label = "n" if item == flip else cls
            rows += [(item, f"text {item}", a, label) for a in ("x", "y", "z")]
            if item == split:
                rows[-3:-1] = [(item, f"text {item}", a, "n") for a in ("x", "y")]
            v = np.zeros(8)
            v[centre] = 1.0
            vecs.append(v + rng.normal(0, 0.05, 8))
    rows += [(boundary, "halfway", a, "p") for a in ("x", "y", "z")]
    vecs.append(np.r_[0.5, 0.5, np.zeros(6)] + rng.normal(0, 0.01, 8))
    emb = np.asarray(vecs)
    return long(rows), emb / np.linalg.norm(emb, axis=1, keepdims=True)


def by_kind(report, kind):
    return report.flags[report.flags["kind"] == kind].set_index("item_id")


def test_registry_lists_the_builtins():
    assert set(FLAGGERS) == {"disagreement", "low_confidence", "label_issue", "crowdlab",
                             "near_duplicate", "boundary"}


def test_disagreement_minority_share_reason_and_rule():
    df = long([("a", "t1", "x", "p"), ("a", "t1", "y", "p"), ("a", "t1", "z", "p"),
               ("b", "t2", "x", "p"), ("b", "t2", "y", "p"), ("b", "t2", "z", "n"),
               ("c", "t3", "x", "p")])
    report = flag_items(df, guideline=GUIDE, flaggers=["disagreement"])
    flags = by_kind(report, "disagreement")
    assert flags.index.tolist() == ["b"]
    assert flags.loc["b", "score"] == pytest.approx(1 / 3, abs=1e-6)
    assert flags.loc["b", "suggested_label"] == "p" and flags.loc["b", "rule_id"] == "R1"
    assert flags.loc["b", "reason"] == "Annotators disagree: 2 of 3 said p (x, y); 1 of 3 said n (z)."
    assert list(report.flags.columns) == list(FLAG_COLUMNS)


def test_low_confidence_on_a_tie_between_equals():
    rows = [(f"i{k}", f"t{k}", a, "p") for k in range(20) for a in ("x", "y")]
    rows += [("tie", "tt", "x", "p"), ("tie", "tt", "y", "n")]
    report = flag_items(long(rows), flaggers=["low_confidence"])
    flags = by_kind(report, "low_confidence")
    assert "tie" in flags.index
    assert not any(i.startswith("i") for i in flags.index)
    assert 0.3 < flags.loc["tie", "score"] <= 0.5
    assert "sure of" in flags.loc["tie", "reason"]


def test_label_issue_and_crowdlab_find_the_flipped_item():
    df, emb = clusters()
    report = flag_items(df, embeddings=emb, flaggers=["label_issue", "crowdlab"], guideline=GUIDE)
    issues = by_kind(report, "label_issue")
    assert sorted(issues.index) == ["p3", "p7"]
    assert issues.loc["p7", "suggested_label"] == "p" and issues.loc["p7", "rule_id"] == "R1"
    assert "trained on the other items" in issues.loc["p7", "reason"]
    # CROWDLAB trusts three agreeing annotators over the model (p7), but sides with the model
    # and the minority annotator when the annotators split (p3)
    crowd = by_kind(report, "crowdlab")
    assert crowd.index.tolist() == ["p3"] and crowd.loc["p3", "suggested_label"] == "p"
    assert set(report.queue["item_id"][:2]) == {"p3", "p7"}


def test_boundary_finds_the_item_between_clusters():
    df, emb = clusters()
    report = flag_items(df, embeddings=emb, flaggers=[BoundaryFlagger(margin=0.25)])
    flags = by_kind(report, "boundary")
    assert flags.index.tolist() == ["b0"]
    assert "torn between" in flags.loc["b0", "reason"]


def test_model_flaggers_are_skipped_without_embeddings():
    df, _ = clusters()
    report = flag_items(df)
    assert report.skipped == {"label_issue": "needs model", "crowdlab": "needs model",
                              "boundary": "needs model"}


def test_custom_flagger_needs_only_registration():
    @register_flagger
    class LongTextFlagger(Flagger):
        kind = "long_text_test"

        def flag(self, context):
            long_ones = [i for i, t in context.texts.items() if len(t) > 5]
            return pd.DataFrame({"item_id": long_ones, "kind": self.kind, "score": 0.5,
                                 "reason": "long", "suggested_label": None, "rule_id": None})

    try:
        df = long([("a", "short", "x", "p"), ("b", "much longer", "x", "p")])
        report = flag_items(df)
        assert by_kind(report, "long_text_test").index.tolist() == ["b"]
        with pytest.raises(ValueError, match="already registered"):
            register_flagger(type("Other", (Flagger,), {"kind": "long_text_test"}))
    finally:
        FLAGGERS.pop("long_text_test")


def test_unknown_flagger_name_is_refused():
    with pytest.raises(ValueError, match="choose from"):
        flag_items(long([("a", "t", "x", "p")]), flaggers=["nope"])


def test_embeddings_of_the_wrong_shape_are_refused():
    df, emb = clusters()
    with pytest.raises(ValueError, match="one row per item"):
        FlagContext(df, embeddings=emb[:-1])


def test_queue_pools_the_doubt_signs_and_adds_near_duplicates():
    flags = pd.DataFrame({"item_id": ["a", "b", "c"], "kind": ["disagreement", "boundary", "near_duplicate"],
                          "score": [0.4, 0.5, 0.5], "reason": ["r1", "r2", "r3"],
                          "suggested_label": ["p", None, None], "rule_id": [None, "R1", None]})
    doubt = pd.DataFrame({"minority": [0.4, 0.0, 0.0], "model": [0.5, 0.2, 0.1],
                          "dawid_skene": [1.0, np.nan, 0.1]}, index=["a", "b", "c"])
    queue = review_queue(flags, doubt=doubt).set_index("item_id")
    from scipy.special import expit, logit

    def pooled(*signs):  # the mean of the log-odds, each sign clipped to [0.001, 0.999]
        return expit(np.mean([logit(min(max(s, 1e-3), 1 - 1e-3)) for s in signs]))

    # a: its signs pooled (the one at 1.0 does not decide alone: a is below 0.9); b: the
    # boundary flag adds nothing, the NaN sign is left out; c: near-duplicate 0.5 joins its
    # pooled doubt by a noisy-OR
    assert queue.loc["a", "priority"] == pytest.approx(pooled(0.4, 0.5, 1.0), abs=1e-6)
    assert 0.5 < queue.loc["a", "priority"] < 0.9
    assert queue.loc["b", "priority"] == pytest.approx(pooled(0.0, 0.2), abs=1e-6)
    assert queue.loc["c", "priority"] == pytest.approx(1 - (1 - pooled(0.0, 0.1, 0.1)) * 0.5, abs=1e-6)
    assert queue.index.tolist() == ["a", "c", "b"]
    assert review_queue(empty_flags()).empty


def test_near_duplicates_with_conflicting_labels():
    df = long([("a", "My card was stolen!", "x", "n"), ("a", "My card was stolen!", "y", "n"),
               ("b", "my card  was STOLEN", "x", "p"), ("b", "my card  was STOLEN", "y", "p"),
               ("c", "My card was stolen", "x", "n"),
               ("d", "Thanks for the help", "x", "p"), ("e", "thanks, for the help", "x", "p")])
    report = flag_items(df, guideline=GUIDE, flaggers=["near_duplicate"])
    flags = by_kind(report, "near_duplicate")
    # a/c agree (n) but b says p: b conflicts with both; d/e agree: not flagged
    assert sorted(flags.index) == ["a", "b", "c"]
    assert flags.loc["b", "reason"].startswith("Near-duplicate of item a (same text once normalised)")
    assert flags.loc["b", "rule_id"] == "R1" and flags.loc["b", "score"] == 0.5


def test_near_duplicates_by_embedding_cosine():
    df = long([("a", "one text", "x", "n"), ("b", "other words", "x", "p"), ("c", "third", "x", "p")])
    emb = np.array([[1.0, 0.0, 0.0], [0.99, 0.141, 0.0], [0.0, 0.0, 1.0]])
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    flags = by_kind(flag_items(df, embeddings=emb, flaggers=["near_duplicate"]), "near_duplicate")
    assert sorted(flags.index) == ["a", "b"] and "cosine 0.99" in flags.loc["a", "reason"]
    strict = flag_items(df, embeddings=emb, flaggers=[NearDuplicateFlagger(threshold=0.995)])
    assert strict.flags.empty


def _given_probs(df, shift_to=None):
    """One-hot probabilities of each item's majority label (``shift_to``: item -> other label)."""
    majority = df.groupby("item_id")["label"].agg(lambda s: s.mode().iloc[0])
    for item, label in (shift_to or {}).items():
        majority[item] = label
    return pd.get_dummies(majority).astype(float).reindex(columns=["n", "p"], fill_value=0.0)


def test_given_probabilities_drive_the_model_flaggers():
    """A fine-tuned model's out-of-fold probabilities (python -m fine_tune out-of-fold) replace
    or join the embedding model's; the flaggers read whichever the signal names."""
    df, emb = clusters()
    probs = _given_probs(df, {"n5": "p"})  # the given model doubts n5, not p7
    alone = flag_items(df, flaggers=["label_issue"], model_probs=probs, model_signal="fine-tuned")
    assert set(alone.flags["item_id"]) == {"n5"}  # and needs no embeddings
    both = flag_items(df, embeddings=emb, flaggers=["label_issue"], model_probs=probs,
                      model_signal="ensemble")
    context = both.context
    np.testing.assert_allclose(context.pred_probs,
                               (context.embedding_probs + probs.reindex(context.items).to_numpy()) / 2)
    doubt = context.doubt()["model"]  # the averaged doubt sits between the two models'
    assert 0.4 < doubt["n5"] < 0.6 and doubt.drop(["n5", "p7", "p3", "b0"]).max() < 0.1


def test_given_probabilities_are_checked_cell_by_cell():
    df, emb = clusters()
    probs = _given_probs(df)
    with pytest.raises(ValueError, match="no row for 1 of the 81 items \\(first: 'b0'\\)"):
        FlagContext(df, model_probs=probs.drop(index="b0"), model_signal="fine-tuned")
    with pytest.raises(ValueError, match=r"label columns n, q; the annotations' labels are n, p \(p missing\)"):
        FlagContext(df, model_probs=probs.rename(columns={"p": "q"}), model_signal="fine-tuned")
    bad = probs.copy()
    bad.loc["p4", "p"] = 0.5
    with pytest.raises(ValueError, match="item 'p4' has the probabilities \\[0.0, 0.5\\].*sum to 1"):
        FlagContext(df, model_probs=bad, model_signal="fine-tuned")
    with pytest.raises(ValueError, match="the embedding signal reads none"):
        FlagContext(df, model_signal="ensemble")
    with pytest.raises(ValueError, match="choose fine-tuned or ensemble"):
        FlagContext(df, model_probs=probs)
    with pytest.raises(ValueError, match="needs the embeddings too"):
        FlagContext(df, model_probs=probs, model_signal="ensemble")
    with pytest.raises(ValueError, match="unknown model signal 'bert'"):
        FlagContext(df, model_signal="bert")
