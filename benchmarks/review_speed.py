"""How fast the review desk answers on a big project: every interaction a reviewer makes, timed.

A project of 100,000 items (3 of 5 simulated annotators each, the shared DynaSent and Financial
PhraseBank sentences as texts: :mod:`flags_speed`'s data) is flagged by the vote-based flaggers
(``flag_project(use_model=False)``: disagreement and low confidence, the real code path; the
model-based ones would need 100,000 MiniLM embeddings first and add nothing to what the page
reads). Then Streamlit's AppTest drives the Review page as a reviewer does and times each step:

open the page (the first time, with nothing cached, reported apart); next; previous; decide (Keep); a label key (set label); undo of the last
decision; filter by flag kind; search by a word; jump to an item id; sort by confidence.

AppTest reruns the whole script for every interaction (it does not run a fragment on its own),
so these are upper bounds for the browser, where a decision reruns only the desk. As the floor,
the same AppTest times a page that only writes one line (Streamlit's own cost per run), and the
ratio says how much of each interaction is ours.

Goal: every interaction under 1 s on 2 cores (``max interaction s``).
Run: ``python benchmarks/review_speed.py [--items N] [--repeat R]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flags_speed import LABELS, annotate, make_items  # noqa: E402  (benchmarks/ is on the path)

from curation.store import Project  # noqa: E402
from curation.workspace import flag_project  # noqa: E402

APP = str(ROOT / "streamlit_app.py")
#: Reading every annotation, the consensus (Dawid-Skene on the ties) and the queue, once per
#: change of the data: reported apart from the interactions, which reuse them.
COLD = "open, first time"


def timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def button(at, label=None, key=None):
    return next(b for b in at.button if (label is None or b.label == label)
                and (key is None or b.key == key))


def checked(at):
    if at.exception:
        raise RuntimeError(at.exception[0].value)
    return at


def build(home: Path, n_items: int) -> Path:
    items = make_items(n_items)
    frame = annotate(items)
    path = home / "speed.sqlite"
    with Project(path) as project:
        start = time.perf_counter()
        project.import_annotations(frame, label_set=LABELS)
        imported = time.perf_counter() - start
        start = time.perf_counter()
        report = flag_project(project, use_model=False)
        flagged = time.perf_counter() - start
    print(f"{len(items):,} items, {len(frame):,} annotations; import {imported:.1f} s, "
          f"vote-based flags {flagged:.1f} s: {len(report.flags):,} flags on "
          f"{len(report.queue):,} items")
    return path


def journey(repeat: int) -> dict[str, list[float]]:
    from streamlit.testing.v1 import AppTest

    times: dict[str, list[float]] = {}

    def add(name, seconds):
        times.setdefault(name, []).append(seconds)

    for n in range(repeat + 1):
        at = AppTest.from_file(APP, default_timeout=600)
        at.run()
        checked(at)
        at.switch_page("app_pages/review.py")
        if n == 0:  # the first open of the project in this process: nothing cached yet
            add(COLD, timed(lambda: checked(at.run())))
            continue
        add("open", timed(lambda: checked(at.run())))
        add("next", timed(lambda: checked(button(at, "Next").click().run())))
        add("previous", timed(lambda: checked(button(at, "Previous").click().run())))
        add("decide (keep)", timed(lambda: checked(button(at, "Keep").click().run())))
        add("label key", timed(lambda: checked(button(at, key="pick-2").click().run())))
        add("undo last", timed(lambda: checked(button(at, "Undo my last decision").click().run())))
        add("undo last", timed(lambda: checked(button(at, "Undo my last decision").click().run())))
        kinds = at.sidebar.multiselect[0]
        add("filter by kind", timed(lambda: checked(kinds.set_value(kinds.options[:1]).run())))
        at.sidebar.multiselect[0].set_value([]).run()
        add("search", timed(lambda: checked(
            at.sidebar.text_input(key="queue-search").set_value("service").run())))
        at.sidebar.text_input(key="queue-search").set_value("").run()
        target = "t000123"
        add("jump to id", timed(lambda: checked(at.text_input(key="jump-to").set_value(target).run())))
        add("sort by confidence", timed(lambda: checked(
            at.sidebar.selectbox(key="queue-sort").set_value("confidence").run())))
    return times


def floor(repeat: int) -> float:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string("import streamlit as st\nst.write('one line')\n")
    at.run()
    runs = [timed(at.run) for _ in range(max(repeat, 3) * 5)]
    return statistics.median(runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        url = build(home, args.items)
        os.environ.update({"CURATION_HOME": str(home), "CURATION_URL": str(url),
                           "CURATION_USER": "bench"})
        os.environ.pop("CURATION_IDENTITY_HEADER", None)
        times = journey(args.repeat)
        base = floor(args.repeat)
    print(f"\nStreamlit floor (a one-line page, AppTest): {base * 1000:.0f} ms per run")
    print(f"{'interaction':<22}{'median s':>10}{'max s':>8}{'x floor':>9}")
    for name, runs in times.items():
        print(f"{name:<22}{statistics.median(runs):>10.2f}{max(runs):>8.2f}"
              f"{statistics.median(runs) / base:>9.0f}")
    worst = max((max(r), n) for n, r in times.items() if n != COLD)
    print(f"\nmax interaction s: {worst[0]:.2f} ({worst[1]}; goal < 1 s); the first open "
          f"after the data changed: {max(times[COLD]):.2f} s")


if __name__ == "__main__":
    main()
