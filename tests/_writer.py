"""A separate process that writes to a project, for the durability tests (not a test module).

    python tests/_writer.py decide URL REVIEWER N      N set_label decisions, one line per commit
    python tests/_writer.py import URL N_ITEMS          one import of N_ITEMS x 3 annotations

``decide`` prints ``ready``, waits for a line on stdin (so that several writers start together),
then prints ``committed <decision_id> <i>`` after each decision returns (so the parent knows which
ones were acknowledged); it cycles through items i0..i9 and labels.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pandas as pd  # noqa: E402

from curation.store import Project  # noqa: E402

LABELS = ("pos", "neg", "neu")
ITEMS = [f"i{k}" for k in range(10)]


def seed_frame(n_items: int, prefix: str = "i") -> pd.DataFrame:
    rows = [(f"{prefix}{k}", f"text number {k} " + "x" * (k % 50), f"a{j}", LABELS[(k + j) % 3])
            for k in range(n_items) for j in range(3)]
    return pd.DataFrame(rows, columns=["item_id", "text", "annotator_id", "label"])


def decide(url: str, reviewer: str, n: int) -> None:
    with Project(url) as project:
        print("ready", flush=True)
        sys.stdin.readline()  # "go": the parent starts every writer at the same moment
        for i in range(n):
            decision_id = project.record_decision(ITEMS[i % len(ITEMS)], actor=reviewer,
                                                  action="set_label", new_label=LABELS[i % 3],
                                                  note=f"{reviewer}:{i}")
            print(f"committed {decision_id} {i}", flush=True)


def import_many(url: str, n_items: int) -> None:
    with Project(url) as project:
        print("ready", flush=True)
        project.import_annotations(seed_frame(n_items, prefix="big"), source="big.csv",
                                   progress=lambda f, _m: print(f"progress {f:.3f}", flush=True))
        print("committed import", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "decide":
        decide(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        import_many(sys.argv[2], int(sys.argv[3]))
