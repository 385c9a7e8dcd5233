"""The two data sets whose true labels are known, for the benchmarks of the review order.

- ``../shared/data/amazon-crowd-sentiment``: 1,000 reviews, 5 crowd votes each (expanded to
  anonymous annotator slots), gold labels.
- the bundled demo project: 553 messages, the true label of every item known from how it was
  made (``curation/demo/planted.json``), with its guideline.
- a simulated double-annotated project (``_simulated_crowd.py``): 1,000 DynaSent sentences whose
  five real workers all agreed (their label the truth), each labelled again by two simulated
  annotators with real DynaSent workers' confusion matrices: far more wrong labels than the
  5-vote crowds above; and the same sentences labelled once each (single annotation, as many
  projects label most of their data: no vote can doubt a label, only the model).
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


DATA_SETS = ("amazon", "demo", "simulated", "simulated-single")


def truth_set(name: str) -> tuple[str, pd.DataFrame, pd.Series, object]:
    """(title, annotations, true label by item_id, guideline or None) of one data set."""
    if name == "amazon":
        amazon = amazon_long()
        return ("amazon-crowd-sentiment", amazon,
                amazon.drop_duplicates("item_id").set_index("item_id")["gold"], None)
    if name == "demo":
        demo = load_annotations(ROOT / "curation" / "demo" / "bank_demo.csv")
        planted = json.loads((ROOT / "curation" / "demo" / "planted.json").read_text())
        return ("bundled demo (bank support)", demo, pd.Series(planted["true_labels"]),
                load_guideline(ROOT / "guidelines" / "bank_support.yaml"))
    if name in ("simulated", "simulated-single"):
        from _simulated_crowd import build, describe

        single = name == "simulated-single"
        annotations, truth, _ = build(annotators=1 if single else 2)
        print(f"({name}: {describe(annotations, truth)})")
        return (f"simulated {'single' if single else 'double'} annotation (DynaSent workers)",
                annotations, truth, None)
    raise ValueError(f"unknown data set {name!r}: use one of {', '.join(DATA_SETS)}")


def run_on_truth_sets(run: Callable[..., dict], description: str,
                      parser: argparse.ArgumentParser | None = None) -> argparse.Namespace:
    """Call ``run(name, frame, truth, guideline)`` on each data set; ``--json OUT`` saves all."""
    parser = parser or argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, help="write every figure as JSON")
    parser.add_argument("--data", default=",".join(DATA_SETS),
                        help=f"comma-separated, of {', '.join(DATA_SETS)} (default: all)")
    args = parser.parse_args()
    results = {}
    for key in args.data.split(","):
        title, frame, truth, guideline = truth_set(key.strip())
        results[key.strip()] = run(title, frame, truth, guideline)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    return args
