"""The two data sets whose true labels are known, for the benchmarks of the review order.

- ``../shared/data/amazon-crowd-sentiment``: 1,000 reviews, 5 crowd votes each (expanded to
  anonymous annotator slots), gold labels.
- the bundled demo project: 553 messages, the true label of every item known from how it was
  made (``curation/demo/planted.json``), with its guideline.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from conftest import amazon_long  # noqa: E402

from curation.guidelines import load_guideline  # noqa: E402
from curation.io import load_annotations  # noqa: E402


def run_on_truth_sets(run: Callable[..., dict], description: str) -> None:
    """Call ``run(name, frame, truth, guideline)`` on each data set; ``--json OUT`` saves all."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, help="write every figure as JSON")
    args = parser.parse_args()
    amazon = amazon_long()
    results = {"amazon": run("amazon-crowd-sentiment", amazon,
                             amazon.drop_duplicates("item_id").set_index("item_id")["gold"], None)}
    demo = load_annotations(ROOT / "curation" / "demo" / "bank_demo.csv")
    planted = json.loads((ROOT / "curation" / "demo" / "planted.json").read_text())
    results["demo"] = run("bundled demo (bank support)", demo, pd.Series(planted["true_labels"]),
                          load_guideline(ROOT / "guidelines" / "bank_support.yaml"))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
