"""Is the verdict calibrated? Forty real comparisons where nothing changed.

A tiny BERT (tests/tiny_models.py) trains on a toy task it learns gradually; both sides of each
comparison get the same data, and the after side other seeds (``AfterSeedsDiffer``), so any
change the verdict claims is training noise or the luck of the test items. The verdict may
claim a change (``better`` or ``worse``) in at most 5% of them. The same runs judged the old way
(a bootstrap over test items alone) must claim more, or the test would prove nothing.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("transformers")

from tiny_models import same_data_comparisons  # noqa: E402

REPEATS = 40


@pytest.mark.slow
def test_the_verdict_claims_a_change_in_at_most_5_percent_of_same_data_comparisons(tiny_model):
    runs = same_data_comparisons(REPEATS, tiny_model)  # independent: one process per core
    verdicts = [run["verdict"] for run in runs]
    spreads = [run["spread"] for run in runs]
    learned = sum(run["learned"] for run in runs)
    item_only_claims = sum(run["item_only_claim"] for run in runs)
    claims = sum(v in ("better", "worse") for v in verdicts)
    counts = {v: verdicts.count(v) for v in sorted(set(verdicts))}
    print(f"\n{REPEATS} same-data comparisons: verdicts {counts}; claimed a change "
          f"{claims}/{REPEATS} = {claims / REPEATS:.3f}; the item-only bootstrap {item_only_claims}"
          f"/{REPEATS}; median seed spread {np.median(spreads):.3f}; both sides learned in {learned}")
    # the runs differ (there is training noise to see past) and at least half the comparisons
    # reach the interval (a run that barely trained, about 1 in 18 here, keeps its side out)
    assert np.median(spreads) > 0.005
    assert learned >= 0.5 * REPEATS
    assert claims <= 0.05 * REPEATS
    # the old way, on the very same runs, is fooled more often: this test can fail
    assert item_only_claims > claims
