"""Consensus estimators: majority vote with ties, Dawid-Skene through crowd-kit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curation.aggregation import DawidSkene, MajorityVote, consensus_frame, make_aggregator


def long(rows):
    return pd.DataFrame(rows, columns=["item_id", "annotator_id", "label"]).assign(text="t")


@pytest.fixture
def votes():
    return long([("1", "x", "a"), ("1", "y", "a"), ("1", "z", "b"),
                 ("2", "x", "a"), ("2", "y", "b"),
                 ("3", "x", "b"), ("3", "y", "b"), ("3", "z", "b")])


def test_majority_vote_reports_ties(votes):
    mv = MajorityVote().fit(votes)
    assert mv is not None and isinstance(mv, MajorityVote)
    assert mv.labels_.tolist() == ["a", None, "b"]
    assert mv.ties_.tolist() == [(), ("a", "b"), ()]
    assert mv.confidence_.tolist() == pytest.approx([2 / 3, 0.5, 1.0])
    # accuracy against consensus on non-tied items: x 2/2, y 2/2, z 1/2
    assert mv.annotator_accuracy_.to_dict() == {"x": 1.0, "y": 1.0, "z": 0.5}
    out = consensus_frame(mv)
    assert out.columns.tolist() == ["item_id", "label", "confidence", "tie"]
    assert out["tie"].tolist() == ["", "a|b", ""]


def test_init_only_stores_settings():
    mv = MajorityVote(labels=["b", "a"])
    assert vars(mv) == {"labels": ["b", "a"]}
    ds = DawidSkene(n_iter=5)
    assert not any(k.endswith("_") for k in vars(ds))


def test_dawid_skene_finds_the_spammer():
    """Three careful annotators and one who always says 'a': DS trusts the careful ones."""
    rng = np.random.default_rng(0)
    truth = rng.choice(["a", "b"], size=200)
    rows = []
    for i, t in enumerate(truth):
        for who in ("c1", "c2", "c3"):
            lab = t if rng.random() < 0.85 else ("a" if t == "b" else "b")
            rows.append((str(i), who, lab))
        rows.append((str(i), "spam", "a"))
    df = long(rows)
    ds = DawidSkene().fit(df)
    acc = ds.annotator_accuracy_
    assert acc["spam"] < 0.65 < min(acc["c1"], acc["c2"], acc["c3"])
    assert (ds.labels_.to_numpy() == truth).mean() > 0.9
    assert ds.confidence_.between(0, 1).all()
    assert ds.probas_.sum(axis=1).to_numpy() == pytest.approx(np.ones(200))
    assert ds.labels_.index.tolist() == [str(i) for i in range(200)]


def test_make_aggregator_rejects_unknown():
    with pytest.raises(ValueError, match="majority, dawid-skene"):
        make_aggregator("mode")


def test_dawid_skene_on_amazon_matches_majority_item_for_item(amazon):
    """The Amazon votes sit in anonymous, shuffled slots, so no slot is a better annotator than
    another and Dawid-Skene has nothing to learn beyond the vote: it must not do worse than the
    majority, on any item. (The old test asked only that both exceed 0.94, so it passed when
    Dawid-Skene was worse.) Measured: both 956 of 998 right, no item where they differ."""
    gold = amazon.drop_duplicates("item_id").set_index("item_id")["gold"]
    mv = MajorityVote().fit(amazon)
    ds = DawidSkene().fit(amazon)
    truth = gold.reindex(mv.labels_.index)
    mv_right = mv.labels_ == truth
    ds_right = ds.labels_.reindex(truth.index) == truth
    assert int(mv_right.sum()) == 956 and len(truth) == 998
    assert int(ds_right.sum()) >= int(mv_right.sum())
    assert not (mv_right & ~ds_right).any(), list(truth.index[mv_right & ~ds_right][:5])


def test_dawid_skene_beats_majority_where_annotators_differ_in_skill():
    """The case Dawid-Skene is for: two careful annotators and three who guess. On 300 items
    the majority is often carried by the guessers; Dawid-Skene learns whom to trust."""
    rng = np.random.default_rng(1)
    labels = ["a", "b", "c"]
    rows, truth = [], {}
    for i in range(300):
        item = f"i{i}"
        truth[item] = labels[i % 3]
        rows += [(item, w, truth[item] if rng.random() < 0.95 else str(rng.choice(labels)))
                 for w in ("good1", "good2")]
        rows += [(item, w, truth[item] if rng.random() < 0.4 else str(rng.choice(labels)))
                 for w in ("g1", "g2", "g3")]
    df = long(rows)
    truth = pd.Series(truth)
    mv_acc = (MajorityVote().fit(df).labels_.reindex(truth.index) == truth).mean()
    ds_acc = (DawidSkene().fit(df).labels_.reindex(truth.index) == truth).mean()
    assert ds_acc > mv_acc + 0.05, (ds_acc, mv_acc)


def test_a_tie_break_never_picks_a_label_outside_the_tie():
    """Annotators ``a`` and ``b`` are always right and four others guess: on an item voted
    2 pos, 2 neg (guessers) and 1 mix (a), Dawid-Skene's own top label is mix; the tie-break
    stays with pos or neg."""
    from curation.aggregation import consensus_labels
    from curation.flags import FlagContext

    rng = np.random.default_rng(0)
    labels = ["pos", "neg", "mix"]
    rows = []
    for i in range(150):
        truth = labels[i % 3]
        rows += [(f"i{i}", "a", truth), (f"i{i}", "b", truth)]
        rows += [(f"i{i}", w, str(rng.choice(labels))) for w in ("c", "d", "e", "f")]
    rows += [("tie", "c", "pos"), ("tie", "d", "pos"), ("tie", "e", "neg"), ("tie", "f", "neg"),
             ("tie", "a", "mix")]
    df = long(rows)
    assert DawidSkene().fit(df).labels_["tie"] == "mix"  # the case the rule is for
    out = consensus_labels(df)
    tied = MajorityVote().fit(df).ties_
    for item in tied[tied.map(len) > 0].index:
        assert out.at[item, "method"] == "dawid-skene tie-break"
        assert out.at[item, "label"] in tied[item], item
    ctx = FlagContext(df)
    given = pd.Series(np.asarray(ctx.labels, dtype=object)[ctx.given_codes], index=ctx.items)
    assert given["tie"] == out.at["tie", "label"] in ("pos", "neg")
