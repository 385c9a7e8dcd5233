"""The review order learns from decisions: a changed label = wrong, a kept one = not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curation.flags import learn_order
from curation.flags._learn import decision_outcomes


def _latest(rows):
    """rows: (item, action, old_label, curated_label) in decision order."""
    return pd.DataFrame([{"decision_id": i + 1, "item_id": item, "action": action,
                          "old_label": old, "curated_label": new}
                         for i, (item, action, old, new) in enumerate(rows)])


def test_decision_outcomes():
    latest = _latest([("a", "set_label", "x", "y"), ("b", "keep", "x", None),
                      ("c", "set_label", "x", "x"), ("d", "drop", "x", None),
                      ("e", "ambiguous", "x", None)])
    assert decision_outcomes(latest).to_dict() == {"a": 1, "b": 0, "c": 0}
    assert decision_outcomes(latest.iloc[::-1]).index.tolist() == ["a", "b", "c"]


def _case(n=200, seed=0):
    """A queue whose static priority knows nothing, and a 'boundary' flag that marks the items
    that are really wrong (half of them)."""
    rng = np.random.default_rng(seed)
    items = [f"i{j:03d}" for j in range(n)]
    wrong = rng.random(n) < 0.3
    queue = pd.DataFrame({"item_id": items, "priority": rng.uniform(0.2, 0.8, n)})
    queue = queue.sort_values(["priority", "item_id"], ascending=[False, True]).reset_index(drop=True)
    flags = pd.DataFrame({"item_id": items, "kind": "disagreement", "score": rng.uniform(0, 1, n)})
    marked = [i for i, w in zip(items, wrong) if w and rng.random() < 0.8]
    flags = pd.concat([flags, pd.DataFrame({"item_id": marked, "kind": "boundary", "score": 0.9})])
    return queue, flags, pd.Series(wrong, index=items)


def _review(queue, truth, n):
    """A reviewer decides the first n items of the queue as it stands."""
    rows = [(item, "set_label" if truth[item] else "keep", "x", "y" if truth[item] else None)
            for item in queue["item_id"][:n]]
    return _latest(rows)


def test_below_the_first_refit_the_order_is_the_flaggers():
    queue, flags, truth = _case()
    learned = learn_order(queue, flags, _review(queue, truth, 19))
    assert not learned.active
    assert learned.queue["item_id"].tolist() == queue["item_id"].tolist()
    assert "re-ranks after 20 decisions (1 to go)" in learned.describe()


def test_the_order_learns_the_sign_that_marks_wrong_labels():
    queue, flags, truth = _case()
    decided = _review(queue, truth, 40)
    learned = learn_order(queue, flags, decided)
    assert learned.active and learned.n_used == 40
    # the fit on the first 20 predicted the next 20 better than the flaggers' order did
    assert learned.ranked_by == "learned" and learned.check[1] < learned.check[0]
    assert learned.check[2] == 20
    weights = learned.weights
    assert weights.at["boundary", "weight"] > weights.at["boundary", "prior"] + 1
    rest = learned.queue[~learned.queue["item_id"].isin(decided["item_id"])]
    static_rest = queue[~queue["item_id"].isin(decided["item_id"])]
    top = 30
    hits_learned = truth[rest["item_id"][:top]].mean()
    hits_static = truth[static_rest["item_id"][:top]].mean()
    assert hits_learned > hits_static + 0.3
    text = learned.describe()
    assert "Re-ranked on your first 40 decisions" in text and "boundary more" in text
    assert "on 20 decisions made after each fit" in text


def test_a_pattern_of_the_top_items_alone_does_not_reorder_the_rest():
    """The flaggers' order knows which items are wrong; among the first 20 a 'boundary' flag
    happens to mark exactly the wrong ones, below them it marks items at random. A fit on the
    first 20 would count the boundary flag; it predicts the next 20 worse than the flaggers'
    order, so the flaggers' order stands (without the check it would have been replaced)."""
    rng = np.random.default_rng(0)
    n = 300
    items = [f"i{j:03d}" for j in range(n)]
    priority = np.linspace(0.6, 0.05, n)
    wrong = pd.Series(rng.random(n) < priority, index=items)
    queue = pd.DataFrame({"item_id": items, "priority": priority})
    top = set(items[:20])
    marked = [i for i in items if (wrong[i] if i in top else rng.random() < 0.5)]
    flags = pd.concat([
        pd.DataFrame({"item_id": items, "kind": "disagreement", "score": priority}),
        pd.DataFrame({"item_id": marked, "kind": "boundary", "score": 0.9})])
    after_20 = learn_order(queue, flags, _review(queue, wrong, 20))
    assert after_20.check is None and after_20.ranked_by == "flaggers"
    assert after_20.weights.at["boundary", "weight"] > 0.5  # the fit read the pattern
    assert after_20.queue["item_id"].tolist() == items
    assert "once it has predicted decisions it had not seen better" in after_20.describe()
    learned = learn_order(queue, flags, _review(queue, wrong, 40))
    assert learned.ranked_by == "flaggers" and learned.check[0] < learned.check[1]
    assert learned.queue["item_id"].tolist() == items
    text = learned.describe()
    assert "The flaggers' order stands" in text and "boundary more" in text
    assert "predicted your later decisions worse" in text


def test_the_order_learns_a_doubt_sign_the_pool_underweights():
    """Wrong labels every annotator agreed on show in the model's doubt, not in the flags:
    given the doubt signs, the decisions teach the queue to count that sign."""
    queue, _flags, truth = _case(seed=3)
    flags = _flags[_flags["kind"] == "disagreement"]  # no flag marks the wrong items
    rng = np.random.default_rng(3)
    doubt = pd.DataFrame({"minority": rng.uniform(0, 0.3, len(truth)),
                          "model": np.where(truth, rng.uniform(0.5, 1.0, len(truth)),
                                            rng.uniform(0.0, 0.6, len(truth)))}, index=truth.index)
    decided = _review(queue, truth, 40)
    without = learn_order(queue, flags, decided)
    learned = learn_order(queue, flags, decided, doubt=doubt)
    assert learned.weights.at["doubt: model", "prior"] == 0
    assert learned.weights.at["doubt: model", "weight"] > 0.5
    assert "doubt: model more" in learned.describe()

    def hits(order):
        rest = order.queue[~order.queue["item_id"].isin(decided["item_id"])]
        return truth[rest["item_id"][:30]].mean()

    assert hits(learned) > hits(without) + 0.2


def test_few_noisy_decisions_barely_move_the_order():
    """Twenty decisions that say nothing (wrong at random) leave the order much as it was."""
    queue, flags, _truth = _case()
    rng = np.random.default_rng(1)
    noise = pd.Series(rng.random(len(queue)) < 0.3, index=queue["item_id"])
    learned = learn_order(queue, flags, _review(queue, noise, 20))
    rank_static = queue.reset_index().set_index("item_id")["index"]
    rank_learned = learned.queue.reset_index().set_index("item_id")["index"]
    rho = rank_static.corr(rank_learned.reindex(rank_static.index), method="spearman")
    assert rho > 0.6


def test_refits_only_at_multiples():
    queue, flags, truth = _case()
    first = _review(queue, truth, 40)
    learned = learn_order(queue, flags, first)
    rest = learned.queue[~learned.queue["item_id"].isin(first["item_id"])]
    # five more decisions in the learned order: the fit still stands on the first 40
    extra = _review(rest, truth, 5).assign(decision_id=lambda f: f["decision_id"] + 40)
    more = learn_order(queue, flags, pd.concat([first, extra], ignore_index=True))
    assert more.n_used == 40 and more.recent == (int(truth[rest["item_id"][:5]].sum()), 5)
    assert more.queue["item_id"].tolist() == learned.queue["item_id"].tolist()
    assert more.before == (int(truth[queue["item_id"][20:40]].sum()), 20)


def test_bad_refit_interval():
    queue, flags, truth = _case()
    with pytest.raises(ValueError, match="refit_every must be at least 1"):
        learn_order(queue, flags, _review(queue, truth, 5), refit_every=0)
