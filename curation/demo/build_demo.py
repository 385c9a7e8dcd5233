"""Build the bundled bank-support demo project from hand-written messages.

``source_texts.csv`` holds customer messages written by us, each with its true
label and, for the boundary cases, the guideline rule (R1..R6 in
``guidelines/bank_support.md``) that decides it.  This script simulates five
annotators (``alice, bilal, chen, dana, emeka``) labelling every message three
times and plants known problems for the curation tools to find:

(a) ``dana`` is lenient: she downgrades severity, fraud_alert -> complaint and
    complaint -> request, on about a quarter of the items she sees that way;
(b) boundary items are confusable: on R1 items (complaint vs request) each
    annotator picks the other label of the pair 35% of the time, on the other
    rules' items 30% of the time;
(c) ordinary items: each annotator errs 4% of the time, towards a plausible
    neighbouring label (request <-> complaint, complaint <-> fraud_alert,
    praise <-> request), never uniformly at random;
(d) praise is the skewed, rare class (about 6% of items);
(e) near-duplicate pairs: a trivially changed copy of an ordinary message is
    added as a new item whose votes lean to a different label than the truth;
(f) a systematic error: ``bilal`` and ``chen`` learnt the labels on an earlier
    guideline that had no ``fraud_alert``, so both answer ``complaint`` wherever
    they would have said ``fraud_alert``, every time. Where both label an item
    (3 of the 10 triples) they outvote the third annotator: the majority label
    of those fraud reports is wrong, and a model trained on them learns to call
    fraud reports complaints.

It writes ``bank_demo.csv`` (long format: item_id, text, annotator_id, label,
gold) and ``planted.json`` (what was planted, for tests), then prints summary
figures.  The output is deterministic (numpy Generator, seed 20261128).

Run from the repository root with ``python -m curation.demo.build_demo`` or
``python curation/demo/build_demo.py``.
"""

from __future__ import annotations

import json
import logging
import re
from collections import Counter
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "SEED", "ANNOTATORS", "LABELS", "COLUMNS", "RULE_PAIRS", "NEIGHBOURS",
    "SOURCE_CSV", "DEMO_CSV", "PLANTED_JSON",
    "load_source", "perturb", "make_items", "assign_annotators", "simulate",
    "pick_gold", "planted_record", "fleiss_kappa", "summarise", "build", "main",
]

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SOURCE_CSV = HERE / "source_texts.csv"
DEMO_CSV = HERE / "bank_demo.csv"
PLANTED_JSON = HERE / "planted.json"

SEED = 20261128
ANNOTATORS = ("alice", "bilal", "chen", "dana", "emeka")
LABELS = ("fraud_alert", "complaint", "request", "praise")
COLUMNS = ("item_id", "text", "annotator_id", "label", "gold")
SOURCE_COLUMNS = ("text_id", "text", "true_label", "rule_id")

LENIENT_ANNOTATOR = "dana"
LENIENT_RATE = 0.25
DOWNGRADE = {"fraud_alert": "complaint", "complaint": "request"}
ORDINARY_ERROR = 0.04
BOUNDARY_ERROR = {"R1": 0.35, "R2": 0.30, "R3": 0.30, "R4": 0.30, "R5": 0.30, "R6": 0.30}
#: The two labels each guideline rule decides between (see bank_support.yaml).
RULE_PAIRS = {
    "R1": ("complaint", "request"),
    "R2": ("fraud_alert", "complaint"),
    "R3": ("praise", "complaint"),
    "R4": ("fraud_alert", "request"),
    "R5": ("praise", "request"),
    "R6": ("complaint", "praise"),
}
#: Where an ordinary slip goes, with weights: plausible neighbours only.
NEIGHBOURS = {
    "request": {"complaint": 0.7, "praise": 0.2, "fraud_alert": 0.1},
    "complaint": {"request": 0.6, "fraud_alert": 0.3, "praise": 0.1},
    "fraud_alert": {"complaint": 0.7, "request": 0.3},
    "praise": {"request": 0.7, "complaint": 0.3},
}
N_NEAR_DUPLICATES = 9
DUPLICATE_LEAN = 0.8
N_GOLD = 150
#: (f) the annotators trained on the earlier guideline, the label it lacked, and what they
#: gave instead.
OLD_GUIDELINE_ANNOTATORS = ("bilal", "chen")
MISSING_LABEL, STAND_IN = "fraud_alert", "complaint"
WORD_SWAPS = (("hi", "hello"), ("hello", "hi"), ("thanks", "thank you"), ("thank you", "thanks"),
              ("please", "pls"), ("can", "could"), ("could", "can"))


def load_source(path: Path = SOURCE_CSV) -> pd.DataFrame:
    """Read and check the hand-written source messages."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    if tuple(frame.columns) != SOURCE_COLUMNS:
        raise ValueError(f"{path}: columns {list(frame.columns)} != {list(SOURCE_COLUMNS)}")
    if frame["text"].duplicated().any() or frame["text_id"].duplicated().any():
        raise ValueError(f"{path}: duplicate text or text_id")
    unknown = set(frame["true_label"]) - set(LABELS)
    bad_rules = set(frame["rule_id"]) - set(RULE_PAIRS) - {""}
    if unknown or bad_rules:
        raise ValueError(f"{path}: unknown labels {unknown} or rules {bad_rules}")
    for rule, label in zip(frame["rule_id"], frame["true_label"]):
        if rule and label not in RULE_PAIRS[rule]:
            raise ValueError(f"{path}: label {label} is not in the pair of {rule}")
    log.info("read %d source messages from %s", len(frame), path.name)
    return frame


def _neighbour(label: str, rng: np.random.Generator) -> str:
    """A plausible wrong label for ``label``, drawn with NEIGHBOURS weights."""
    options = list(NEIGHBOURS[label])
    weights = np.array([NEIGHBOURS[label][o] for o in options])
    return options[rng.choice(len(options), p=weights / weights.sum())]


def _other(rule_id: str, label: str) -> str:
    """The other label of the pair that ``rule_id`` decides."""
    first, second = RULE_PAIRS[rule_id]
    return second if label == first else first


def _swap_word(text: str) -> str:
    """Swap one common word (``hi`` -> ``hello``...), else prefix a greeting."""
    for old, new in WORD_SWAPS:
        match = re.search(rf"\b{re.escape(old)}\b", text, flags=re.IGNORECASE)
        if match:
            word = new.capitalize() if match.group(0)[0].isupper() else new
            return text[: match.start()] + word + text[match.end():]
    return "Hi, " + text[0].lower() + text[1:]


def perturb(text: str, kind: int) -> str:
    """A trivially different copy of ``text``: case, punctuation, spacing or a word."""
    kind %= 4
    if kind == 0:
        copy = text.lower() if text != text.lower() else text.upper()
    elif kind == 1:
        stripped = text.rstrip(".!? ")
        copy = stripped + ("??" if text.endswith("?") else "!!")
    elif kind == 2:
        copy = text.replace(" ", "  ", 2)
    else:
        copy = _swap_word(text)
    return copy if copy != text else text + " ..."


def _plan_duplicates(records: list[dict], rng: np.random.Generator) -> list[dict]:
    """Pick ordinary messages and make near-duplicate copies that lean elsewhere."""
    ordinary = [r for r in records if not r["rule_id"]]
    picks = sorted(rng.choice(len(ordinary), size=N_NEAR_DUPLICATES, replace=False))
    seen = {r["text"] for r in records}
    copies = []
    for kind, index in enumerate(picks):
        orig = ordinary[index]
        text = perturb(orig["text"], kind)
        while text in seen:
            text += "!"
        seen.add(text)
        lean = max(NEIGHBOURS[orig["true_label"]].items(), key=lambda kv: kv[1])[0]
        copies.append({"text_id": orig["text_id"] + "-copy", "text": text,
                       "true_label": orig["true_label"], "rule_id": "",
                       "copy_of": orig["text_id"], "lean": lean})
        log.info("near-duplicate of %s (%s) leans to %s",
                 orig["text_id"], orig["true_label"], lean)
    return copies


def make_items(source: pd.DataFrame, rng: np.random.Generator) -> list[dict]:
    """Shuffle sources and planted copies into items ``msg-0001``..."""
    records = [dict(r, copy_of="", lean="") for r in source.to_dict("records")]
    pool = records + _plan_duplicates(records, rng)
    items = []
    for number, index in enumerate(rng.permutation(len(pool)), start=1):
        items.append(dict(pool[index], item_id=f"msg-{number:04d}"))
    item_of_source = {it["text_id"]: it["item_id"] for it in items}
    for item in items:
        item["copy_of"] = item_of_source.get(item["copy_of"], "")
    log.info("made %d items (%d near-duplicate copies)", len(items), len(pool) - len(records))
    return items


def assign_annotators(n_items: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """Three of five annotators per item, cycling through all 10 triples in shuffled blocks."""
    triples = list(combinations(ANNOTATORS, 3))
    out: list[tuple[str, ...]] = []
    while len(out) < n_items:
        out.extend(triples[i] for i in rng.permutation(len(triples)))
    return out[:n_items]


def _vote(item: dict, annotator: str, rng: np.random.Generator) -> str:
    """One simulated label: boundary confusion or ordinary slip, then leniency."""
    truth, rule = item["true_label"], item["rule_id"]
    if rule:
        label = _other(rule, truth) if rng.random() < BOUNDARY_ERROR[rule] else truth
    else:
        label = _neighbour(truth, rng) if rng.random() < ORDINARY_ERROR else truth
    if annotator == LENIENT_ANNOTATOR and label in DOWNGRADE and rng.random() < LENIENT_RATE:
        label = DOWNGRADE[label]
    return label


def _copy_votes(item: dict, triple: tuple[str, ...], rng: np.random.Generator) -> list[str]:
    """Votes on a near-duplicate copy: mostly the lean label, at least two of three."""
    lean = item["lean"]
    votes = [lean if rng.random() < DUPLICATE_LEAN else _vote(item, a, rng) for a in triple]
    for position in range(len(votes)):
        if votes.count(lean) >= 2:
            break
        votes[position] = lean
    return votes


def simulate(items: list[dict], rng: np.random.Generator, gold: set[str]) -> pd.DataFrame:
    """The long annotation frame: one row per (item, annotator)."""
    rows = []
    for item, triple in zip(items, assign_annotators(len(items), rng)):
        if item["lean"]:
            votes = _copy_votes(item, triple, rng)
        else:
            votes = [_vote(item, a, rng) for a in triple]
        # (f) after the draws, so (a)-(e) keep theirs
        votes = [STAND_IN if a in OLD_GUIDELINE_ANNOTATORS and v == MISSING_LABEL else v
                 for a, v in zip(triple, votes)]
        gold_label = item["true_label"] if item["item_id"] in gold else ""
        rows += [(item["item_id"], item["text"], a, v, gold_label) for a, v in zip(triple, votes)]
    log.info("simulated %d annotations", len(rows))
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _quotas(counts: Counter, total: int) -> dict[str, int]:
    """Split ``total`` over labels in proportion to ``counts`` (largest remainder)."""
    n = sum(counts.values())
    exact = {label: total * counts[label] / n for label in LABELS}
    quota = {label: int(share) for label, share in exact.items()}
    by_remainder = sorted(LABELS, key=lambda lab: exact[lab] - quota[lab], reverse=True)
    for label in by_remainder[: total - sum(quota.values())]:
        quota[label] += 1
    return quota


def pick_gold(items: list[dict], rng: np.random.Generator) -> set[str]:
    """A fixed, label-stratified subset of N_GOLD original items that a lead adjudicated."""
    pool = [it for it in items if not it["lean"]]
    quota = _quotas(Counter(it["true_label"] for it in pool), N_GOLD)
    chosen: set[str] = set()
    for label in LABELS:
        ids = sorted(it["item_id"] for it in pool if it["true_label"] == label)
        chosen.update(str(i) for i in rng.choice(ids, size=quota[label], replace=False))
    log.info("gold subset: %s", quota)
    return chosen


def planted_record(items: list[dict]) -> dict:
    """What was planted, keyed by item id, for tests of the flaggers."""
    return {
        "lenient_annotator": LENIENT_ANNOTATOR,
        "confusable_pair": ["complaint", "request"],
        "skewed_class": "praise",
        "near_duplicate_pairs": sorted(
            [it["copy_of"], it["item_id"]] for it in items if it["lean"]),
        "systematic_error": {
            "annotators": list(OLD_GUIDELINE_ANNOTATORS), "from": MISSING_LABEL, "to": STAND_IN,
            "what": f"{' and '.join(OLD_GUIDELINE_ANNOTATORS)} answer '{STAND_IN}' wherever "
                    f"they would have said '{MISSING_LABEL}' (an earlier guideline without it)"},
        "boundary_items": {it["item_id"]: it["rule_id"] for it in items if it["rule_id"]},
        "true_labels": {it["item_id"]: it["true_label"] for it in items},
    }


def fleiss_kappa(long: pd.DataFrame) -> float:
    """Fleiss' kappa over items (statsmodels when importable, else the same formula here)."""
    counts = pd.crosstab(long["item_id"], long["label"])
    counts = counts.reindex(columns=list(LABELS), fill_value=0)
    table = counts.to_numpy(dtype=float)
    try:
        from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss
    except ImportError:
        log.warning("statsmodels not importable; computing Fleiss' kappa directly")
        raters = table.sum(axis=1)[0]
        p_item = ((table * (table - 1)).sum(axis=1) / (raters * (raters - 1))).mean()
        p_label = table.sum(axis=0) / table.sum()
        expected = (p_label**2).sum()
        return float((p_item - expected) / (1 - expected))
    return float(sm_fleiss(table, method="fleiss"))


def _planted_rates(long: pd.DataFrame, planted: dict) -> dict:
    """Measured rates of the planted problems (copies of near-duplicates left out)."""
    copies = [pair[1] for pair in planted["near_duplicate_pairs"]]
    whole = long[~long["item_id"].isin(copies)]
    old = whole["annotator_id"].isin(OLD_GUIDELINE_ANNOTATORS)
    truth_all = whole["item_id"].map(planted["true_labels"])
    fraud_all = whole[truth_all == MISSING_LABEL]
    majority = fraud_all.groupby("item_id")["label"].agg(lambda v: v.value_counts().index[0])
    # (a)-(c) measured where (f) does not act: the other annotators, and every label but the
    # old-guideline annotators' on fraud reports
    frame = whole[~(old & (truth_all == MISSING_LABEL))]
    truth = frame["item_id"].map(planted["true_labels"])
    rule = frame["item_id"].map(planted["boundary_items"]).fillna("")
    label, wrong = frame["label"], frame["label"] != truth
    dana = frame["annotator_id"] == LENIENT_ANNOTATOR
    fraud, complaint = truth == "fraud_alert", (truth == "complaint") & (rule == "")

    def rate(mask: pd.Series, hit: pd.Series) -> float:
        return round(float(hit[mask].mean()), 3)

    return {
        "dana_fraud_to_complaint": rate(dana & fraud, label == "complaint"),
        "others_fraud_to_complaint": rate(~dana & fraud, label == "complaint"),
        "dana_complaint_to_request": rate(dana & complaint, label == "request"),
        "others_complaint_to_request": rate(~dana & complaint, label == "request"),
        "error_R1_items": rate((rule == "R1") & ~dana, wrong),
        "error_other_boundary_items": rate(~rule.isin(["", "R1"]) & ~dana, wrong),
        "error_ordinary_items": rate((rule == "") & ~dana, wrong),
        "old_guideline_fraud_to_complaint": rate(old & (truth_all == MISSING_LABEL),
                                                 whole["label"] == STAND_IN),
        "fraud_items_majority_complaint": int((majority == STAND_IN).sum()),
        "fraud_items": int(fraud_all["item_id"].nunique()),
    }


def summarise(long: pd.DataFrame, planted: dict) -> dict:
    """Headline figures for the demo: shares, accuracy, unanimity, kappa."""
    truth = long["item_id"].map(planted["true_labels"])
    correct = long["label"] == truth
    per_item = long.groupby("item_id")["label"].nunique()
    boundary = per_item.index.isin(list(planted["boundary_items"]))
    true_series = pd.Series(planted["true_labels"])
    on_gold = long[long["gold"] != ""]
    gold_hits = (on_gold["label"] == on_gold["gold"]).groupby(on_gold["annotator_id"]).mean()
    return {
        "items": int(long["item_id"].nunique()),
        "annotations": len(long),
        "gold_items": int(long.loc[long["gold"] != "", "item_id"].nunique()),
        "boundary_items": len(planted["boundary_items"]),
        "near_duplicate_pairs": len(planted["near_duplicate_pairs"]),
        "true_label_shares": true_series.value_counts(normalize=True).round(3).to_dict(),
        "annotation_label_shares": long["label"].value_counts(normalize=True).round(3).to_dict(),
        "annotator_accuracy": correct.groupby(long["annotator_id"]).mean().round(3).to_dict(),
        "annotator_accuracy_on_gold": gold_hits.round(3).to_dict(),
        "fraction_unanimous": round(float((per_item == 1).mean()), 3),
        "unanimous_boundary": round(float((per_item[boundary] == 1).mean()), 3),
        "unanimous_ordinary": round(float((per_item[~boundary] == 1).mean()), 3),
        "fleiss_kappa": round(fleiss_kappa(long), 3),
        **_planted_rates(long, planted),
    }


def build(seed: int = SEED, source: Path = SOURCE_CSV) -> tuple[pd.DataFrame, dict]:
    """Make the long demo frame and the planted-problems record (no files written)."""
    # One independent stream per step, so changing one step leaves the others' draws alone.
    items_rng, gold_rng, votes_rng = (
        np.random.default_rng(child) for child in np.random.SeedSequence(seed).spawn(3))
    items = make_items(load_source(source), items_rng)
    gold = pick_gold(items, gold_rng)
    long = simulate(items, votes_rng, gold)
    return long, planted_record(items)


def main() -> None:
    """Build, write ``bank_demo.csv`` and ``planted.json``, print the summary."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    long, planted = build()
    long.to_csv(DEMO_CSV, index=False, encoding="utf-8")
    PLANTED_JSON.write_text(json.dumps(planted, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s and %s", DEMO_CSV.name, PLANTED_JSON.name)
    for key, value in summarise(long, planted).items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
