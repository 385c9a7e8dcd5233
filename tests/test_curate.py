"""Curated dataset: decisions applied over consensus, the latest effective one wins."""

from __future__ import annotations

import pandas as pd
import pytest

from curation.curate import changes, curate
from curation.store import Project


def frame():
    rows = [("1", "a", "x", "p"), ("1", "a", "y", "p"), ("1", "a", "z", "n"),
            ("2", "b", "x", "n"), ("2", "b", "y", "n"),
            ("3", "c", "x", "p"), ("3", "c", "y", "n"),
            ("4", "d", "x", "n")]
    df = pd.DataFrame(rows, columns=["item_id", "text", "annotator_id", "label"]).assign(gold=None)
    return df


@pytest.fixture
def project(tmp_path):
    with Project(tmp_path / "p.sqlite") as p:
        p.import_annotations(frame(), label_set=["n", "p"])
        yield p


def test_without_decisions_is_consensus():
    out = curate(frame())
    assert out["label"].tolist()[:2] == ["p", "n"] and out["status"].unique().tolist() == ["consensus"]
    assert out.loc[2, "consensus_method"] == "dawid-skene tie-break"  # item 3 is a 1-1 tie


def test_decisions_applied(project):
    project.record_decision("1", actor="ann", action="set_label", new_label="n", note="R1")
    project.record_decision("2", actor="ann", action="drop")
    project.record_decision("3", actor="bo", action="ambiguous")
    project.record_decision("4", actor="bo", action="set_label", new_label="p")
    project.record_decision("4", actor="bo", action="undo")
    out = curate(frame(), project.latest_decisions()).set_index("item_id")
    assert "2" not in out.index
    assert out.loc["1", ["label", "status", "reviewer", "note"]].tolist() == ["n", "relabelled", "ann", "R1"]
    assert out.loc["3", "status"] == "ambiguous"
    assert out.loc["4", ["label", "status"]].tolist() == ["n", "consensus"]
    everything = curate(frame(), project.latest_decisions(), include_dropped=True)
    assert everything.set_index("item_id").loc["2", "status"] == "dropped"
    log = changes(everything, project.decisions())
    assert log["action"].tolist() == ["undo", "set_label", "ambiguous", "drop", "set_label"]
    assert log.loc[4, ["item_id", "consensus_label", "curated_label"]].tolist() == ["1", "p", "n"]


def test_keep_and_relabel_to_same_label_confirm(project):
    project.record_decision("1", actor="ann", action="set_label", new_label="p")
    project.record_decision("2", actor="ann", action="keep")
    project.record_decision("3", actor="ann", action="note", note="ask lead")
    out = curate(frame(), project.latest_decisions()).set_index("item_id")
    assert out.loc[["1", "2", "3"], "status"].tolist() == ["confirmed", "confirmed", "consensus"]
    assert out.loc["3", "note"] == "ask lead"


def test_decisions_for_unknown_items_are_refused():
    bad = pd.DataFrame({"item_id": ["zz"], "action": ["drop"], "curated_label": [None],
                        "reviewer": ["a"], "note": [""], "created_at": [None]})
    with pytest.raises(ValueError, match="zz"):
        curate(frame(), bad)


def test_the_label_set_is_an_argument_never_a_frame_attribute(tmp_path):
    """A project's label set (declared order, an unused label included) reaches the agreement
    report, the data card and the consensus only as ``labels=``: the frame the store hands out
    carries nothing, and a frame without the argument falls back to the labels seen, sorted."""
    from curation.report import agreement_report
    from curation.workspace import data_card_facts, project_annotations

    with Project(tmp_path / "p.sqlite") as p:
        p.import_annotations(frame(), label_set=["p", "n", "z"])
        labels, annotations = p.label_set(), project_annotations(p)
    assert labels == ["p", "n", "z"] and annotations.attrs == {}
    report = agreement_report(annotations, labels=labels, n_boot=20)
    assert list(report.per_class.index) == ["p", "n", "z"]
    assert list(agreement_report(annotations, n_boot=20).per_class.index) == ["n", "p"]
    everything = curate(annotations, labels=labels, include_dropped=True)
    facts = data_card_facts(annotations, everything, None, target=0.9, labels=labels)
    assert facts["agreement"]["target"] == 0.9
    # the tie of item 3 (one p, one n) goes to a label of the set either way
    assert everything.loc[everything["item_id"] == "3", "label"].item() in ("p", "n")
