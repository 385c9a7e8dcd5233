"""Augmentation: protected words, the offline augmenters, each check on known answers, targets,
provenance in the store, and augmented rows only in train on export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from curation.augment import (AUGMENTERS, AugmenterError, Candidate, CheckSettings,
                              EmbeddingNeighbours, Glossary, GlossarySubstitution, LabelModel,
                              PolarityGuard, Protector, augment, check_candidates, class_targets,
                              load_glossary, make_augmenter, plan_requests, words)
from commands.curation import main

TEXTS = [
    "Operating profit rose to EUR 13.1 mn from EUR 8.7 mn in the corresponding period in 2007 .",
    "The company's net sales fell by 5 % and customers were not happy with the terrible service .",
    "Nokia said the agreement with its customers was expected to close in the first quarter .",
    "Sales did not rise , and the firm cut 120 jobs at its Tallinn plant .",
]


# --- protected words --------------------------------------------------------------------------

def _protected(text: str, protector: Protector) -> list[str]:
    return protector.protected_values(text)


@pytest.mark.parametrize("method", ["glossary", "embedding-neighbours"])
def test_offline_augmenters_never_touch_protected_words(method):
    augmenter = make_augmenter(method, seed=3, max_share=0.5)
    cands = augmenter.generate([f"t{i}" for i in range(len(TEXTS))], TEXTS, n=6)
    assert cands, "the augmenter proposed nothing"
    by_id = {f"t{i}": t for i, t in enumerate(TEXTS)}
    for cand in cands:
        assert cand.source_text == by_id[cand.source_id] and cand.text != cand.source_text
        assert augmenter.protector.lost(cand.source_text, cand.text) == []
        for value in ("13.1", "8.7", "2007", "5", "not", "nokia", "tallinn", "120", "eur"):
            assert cand.source_text.lower().count(value) <= cand.text.lower().count(value), (value, cand)


def test_protector_categories_and_allow():
    p = Protector(terms=["net sales"])
    changeable = [w.text for w in p.changeable(TEXTS[1])]
    assert changeable == ["company's", "fell", "customers", "happy", "terrible", "service"]
    assert "sales" in [w.text for w in Protector(allow=["terms"]).changeable(TEXTS[1])]
    assert "first" in [w.text for w in Protector(allow=["numbers"]).changeable(TEXTS[2])]
    assert "first" not in [w.text for w in Protector().changeable(TEXTS[2])]
    assert "Nokia" in [w.text for w in Protector(allow=["entities"]).changeable(TEXTS[2])]
    assert "not" in [w.text for w in words(TEXTS[3])]
    with pytest.raises(ValueError, match="unknown protection categories"):
        Protector(allow=["verbs"])


def test_lost_counts_repeated_values():
    p = Protector()
    assert p.lost("EUR 5 to EUR 5", "EUR 5 to EUR 6") == ["5"]
    assert p.lost("He did not go", "He didn't go") == ["not"]
    assert p.lost("Nokia grew", "Nokia grew quickly") == []


# --- glossary -------------------------------------------------------------------------------

def test_glossary_swaps_within_groups_and_keeps_case():
    glossary = Glossary([["net sales", "revenue"], ["company", "firm"]], ["EBIT"])
    aug = GlossarySubstitution(glossary, max_share=1.0, seed=0)
    out = aug.generate(["a"], ["Net sales of the company and EBIT rose ."], n=5)
    texts = {c.text for c in out}
    assert texts == {"Net sales of the firm and EBIT rose .",
                     "Revenue of the company and EBIT rose .",
                     "Revenue of the firm and EBIT rose ."}
    assert all(set(c.changes) <= {("company", "firm"), ("Net sales", "revenue")} for c in out)
    # a capitalised word away from the sentence start is a name: kept
    assert aug.generate(["b"], ["Shares of Company rose ."], n=3) == []


def test_glossary_files_and_errors(tmp_path):
    finance = load_glossary("finance")
    assert ("revenue" in finance.alternatives("net sales")) and "EBIT" in finance.protected
    assert load_glossary("bank_support").alternatives("ATM")
    with pytest.raises(AugmenterError, match=r"not found.*finance"):
        load_glossary(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  - [alone]\n", encoding="utf-8")
    with pytest.raises(AugmenterError, match=r"group 1 \(\['alone'\]\) must be a list of at least two"):
        load_glossary(bad)
    bad.write_text("name: x\n", encoding="utf-8")
    with pytest.raises(AugmenterError, match="needs a non-empty 'groups'"):
        load_glossary(bad)


# --- token-embedding neighbours ----------------------------------------------------------------

def test_neighbours_skip_forms_of_the_same_word_and_respect_the_cap():
    aug = EmbeddingNeighbours(top_k=5, max_share=0.2, seed=1)
    text = "customers were happy with the terrible service and the quick refund"
    opts = aug.options([text], [words(text)], [[0, 2, 5, 6]])[0]
    assert "customer" not in opts[0] and "clients" in opts[0]
    assert "horrible" in opts[5]
    for cand in aug.generate(["x"], [text], n=8):
        assert 1 <= len(cand.changes) <= 2  # floor(0.2 * 11 words)
    again = EmbeddingNeighbours(top_k=5, max_share=0.2, seed=1).generate(["x"], [text], n=8)
    assert [c.text for c in again] == [c.text for c in aug.generate(["x"], [text], n=8)]


def test_registry_and_unknown_method():
    assert {"glossary", "embedding-neighbours", "masked-lm", "back-translation"} <= set(AUGMENTERS)
    with pytest.raises(AugmenterError, match="unknown augmentation method 'glosary'.*did you mean 'glossary'"):
        make_augmenter("glosary")
    with pytest.raises(AugmenterError, match="does not take these settings"):
        make_augmenter("glossary", colour="red")


# --- checks on known answers -------------------------------------------------------------------

def test_polarity_guard():
    guard = PolarityGuard()
    assert guard.opposed("great", "bad") and guard.opposed("rose", "fell")
    assert guard.opposed("profit", "loss") and guard.opposed("rude", "polite")
    assert not guard.opposed("great", "excellent") and not guard.opposed("terrible", "horrible")
    assert guard.flipped("The service was great .", "The service was awful .").startswith("sentiment")
    assert guard.flipped("The service was great .", "The service was excellent .") is None


def _check(cands, *, emb, existing_emb, labels=None, model=None, settings=CheckSettings()):
    return check_candidates(cands, labels=labels or {"a": "pos", "b": "neg"},
                            candidate_embeddings=np.array(emb, float),
                            existing_ids=["a", "b"],
                            existing_texts=["the service was great", "the fees are a scandal"],
                            existing_embeddings=np.array(existing_emb, float),
                            label_model=model, settings=settings)


def test_each_check_rejects_with_its_reason():
    src = "the service was great"
    cands = [
        Candidate("a", src, "the service was excellent", "m", (("great", "excellent"),)),  # passes
        Candidate("a", src, "the weather was great", "m", (("service", "weather"),)),      # meaning
        Candidate("a", src, "The service was great!", "m", ()),                            # not new
        Candidate("a", src, "the fees are a scandal", "m", ()),                            # same as b
        Candidate("a", src, "the service was bad", "m", (("great", "bad"),)),              # polarity
        Candidate("a", "the service was not great", "the service was great", "m", ()),   # lost 'not'
        Candidate("a", src, "our service was great", "m", (("the", "our"),)),              # near-dup of b
        Candidate("a", src, "the service was not great", "m", ()),                         # adds 'not'
    ]
    existing = [[1, 0, 0], [0, 1, 0]]
    emb = [[0.95, 0.05, 0], [0.5, 0, 0.86], [1, 0, 0], [0, 1, 0], [0.9, 0.1, 0], [1, 0, 0],
           [0.6, 0.8, 0], [0.95, 0, 0.05]]
    out = _check(cands, emb=emb, existing_emb=existing,
                 settings=CheckSettings(max_neighbour_similarity=0.75))
    reasons = out["reason"].tolist()
    assert out["passed"].tolist() == [True, False, False, False, False, False, False, False]
    assert reasons[0] == "passes every check"
    assert reasons[1].startswith("meaning drifts: similarity 0.50 < 0.80")
    assert "not new: the same as its source" in reasons[2]
    assert "not new: the same text as item b" in reasons[3]
    assert "polarity: 'great' -> 'bad' points the other way" in reasons[4]
    assert "changed protected words: 'not'" in reasons[5]
    assert "not new: near-duplicate of item b (cosine 0.80 >= 0.75)" in reasons[6]
    assert "adds negations or numbers: 'not'" in reasons[7]


def test_label_check_uses_the_model_and_names_both_labels():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    model = LabelModel().fit(x, ["pos", "pos", "neg", "neg"])
    cands = [Candidate("a", "the service was great", "the service was superb", "m"),
             Candidate("a", "the service was great", "the service was dire", "m")]
    out = _check(cands, emb=[[1, 0.05], [0.2, 1]], existing_emb=[[1, 0], [0, 1]], model=model,
                 settings=CheckSettings(min_similarity=0.0))
    assert out["passed"].tolist() == [True, False]
    assert out["label_prob"].iloc[0] > 0.5 > out["label_prob"].iloc[1]
    assert "label not kept: the model gives 'pos'" in out["reason"].iloc[1]
    assert "predicts 'neg'" in out["reason"].iloc[1]


def test_label_check_compares_with_a_doubtful_source():
    x = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]])
    model = LabelModel().fit(x, ["pos", "pos", "neg", "neg"])
    # source "a" sits between the classes: the model gives its label 'pos' less than 0.5
    src = "the service was fine"
    cands = [Candidate("a", src, "the service was alright", "m"),
             Candidate("a", src, "the service was poor", "m")]
    out = check_candidates(cands, labels={"a": "pos", "b": "neg"},
                           candidate_embeddings=np.array([[0.45, 0.55], [0.1, 0.9]]),
                           existing_ids=["a", "b"], existing_texts=[src, "dire"],
                           existing_embeddings=np.array([[0.45, 0.55], [0, 1]]),
                           label_model=model, settings=CheckSettings(min_similarity=0.0))
    p_source = out["source_label_prob"].iloc[0]
    assert p_source < 0.5 and abs(out["label_prob"].iloc[0] - p_source) < 1e-9
    assert out["passed"].tolist() == [True, False]
    assert f"below its source's {p_source:.2f}" in out["reason"].iloc[1]


def test_check_settings_are_validated():
    with pytest.raises(ValueError, match="min_similarity must be a number in \\[0, 1\\]"):
        CheckSettings(min_similarity=1.5)


# --- targets ---------------------------------------------------------------------------------

def test_targets_lift_minorities_and_spread_over_items():
    assert class_targets(["a"] * 6 + ["b"] * 2) == {"a": 0, "b": 4}
    assert class_targets(["a"] * 6 + ["b"] * 1, max_per_item=2) == {"a": 0, "b": 2}
    with pytest.raises(ValueError, match="targets name labels not in the data: 'z'"):
        class_targets(["a", "b"], targets={"z": 3})
    df = pd.DataFrame({"item_id": list("pqrstu"), "text": list("pqrstu"),
                       "label": ["a"] * 4 + ["b"] * 2})
    assert plan_requests(df).to_dict() == {"t": 1, "u": 1}
    assert plan_requests(df, targets={"b": 5}).to_dict() == {"t": 2, "u": 1}
    assert plan_requests(df, items=["p", "q"], per_item=2).to_dict() == {"p": 2, "q": 2}
    with pytest.raises(ValueError, match="items 'nope' are not in the curated data"):
        plan_requests(df, items=["nope"])


# --- end to end with the real MiniLM -------------------------------------------------------------

@pytest.fixture(scope="module")
def small_curated():
    from curation.workspace import DEMO_CSV

    demo = pd.read_csv(DEMO_CSV)
    first = demo.drop_duplicates("item_id").head(160)
    votes = demo[demo["item_id"].isin(first["item_id"])]
    label = votes.groupby("item_id")["label"].agg(lambda s: s.value_counts().index[0])
    return first[["item_id", "text"]].assign(label=first["item_id"].map(label)).reset_index(drop=True)


def test_augment_end_to_end_lifts_minorities(small_curated):
    aug = GlossarySubstitution("bank_support", seed=0)
    result = augment(small_curated, aug, max_per_item=1)
    s = result.summary
    cands = result.candidates
    assert s["tried"] == len(cands) and s["accepted"] == len(result.accepted) > 0
    assert set(cands["status"]) <= {"accepted", "surplus", "rejected"}
    assert (cands.loc[cands["status"] != "rejected", "passed"]).all()
    assert not cands.loc[cands["status"] == "rejected", "passed"].any()
    counts = small_curated["label"].value_counts()
    for label, n in s["accepted_by_label"].items():
        assert n <= counts.max() - counts[label]  # never beyond the largest class
    assert result.accepted["params"].iloc[0]["glossary"].endswith("glossary_bank_support.yaml")
    again = augment(small_curated, GlossarySubstitution("bank_support", seed=0), max_per_item=1)
    assert again.accepted["text"].tolist() == result.accepted["text"].tolist()


def test_augment_refuses_bad_curated_frames(small_curated):
    aug = GlossarySubstitution("bank_support")
    with pytest.raises(ValueError, match=r"missing columns \['label'\]"):
        augment(small_curated.drop(columns="label"), aug)
    with pytest.raises(ValueError, match="repeated item ids 'msg-0001'"):
        augment(pd.concat([small_curated, small_curated.head(1)]), aug)


# --- provenance, the store and the export ---------------------------------------------------------

def test_saved_rows_join_train_only_and_follow_review(tmp_path):
    from curation.workspace import export_project, open_demo_project

    project = open_demo_project(tmp_path / "demo.sqlite")
    items = project.items()["item_id"].head(3).tolist()
    curated_label = {"msg-0001": None}
    rows = pd.DataFrame({"source_id": items, "text": ["aug one text", "aug two text", "aug three"],
                         "label": ["complaint", "request", "praise"], "method": "glossary",
                         "params": [{"seed": 0}] * 3, "similarity": 0.9, "label_prob": 0.8})
    from curation.curate import curate

    frame = project.annotations()
    labels = curate(frame).set_index("item_id")["label"]
    rows["label"] = [labels[i] for i in items]
    ids = project.save_augmentations(rows, actor="dana")
    assert project.save_augmentations(rows, actor="dana") == ids  # idempotent
    with pytest.raises(ValueError, match="reviewer name is required"):
        project.save_augmentations(rows, actor=" ")
    with pytest.raises(ValueError, match="augmentation source id.*'nope'"):
        project.save_augmentations(rows.assign(source_id="nope"), actor="dana")
    project.remove_augmentations([ids[2]], actor="lead")
    other = next(l for l in project.label_set() if l != labels[items[1]])
    project.record_decision(items[1], actor="lead", action="set_label", new_label=other)
    result = export_project(project, tmp_path / "out", use_model=False)
    splits = result.splits
    augmented = splits[splits["status"] == "augmented"]
    assert augmented["item_id"].tolist() == [ids[0]]  # removed and stale-label rows left out
    assert set(augmented["split"]) == {"train"}
    assert splits.loc[splits["item_id"] == items[0], "split"].item() == "train"
    facts = result.card["augmentation"]
    assert facts["rows_exported"] == 1 and facts["left_out_label_changed"] == 1
    assert json.loads((tmp_path / "out" / "data_card.json").read_text())["augmented_rows"] == 1
    assert curated_label  # keeps flake quiet about the placeholder


# --- CLI -------------------------------------------------------------------------------------

def test_cli_augment_writes_accepted_and_rejected(tmp_path, small_curated, capsys):
    src = tmp_path / "in.csv"
    small_curated.assign(annotator_id="a1").to_csv(src, index=False)
    out, rejected = tmp_path / "aug.csv", tmp_path / "rej.csv"
    code = main(["augment", str(src), "--method", "glossary", "--glossary", "bank_support",
                 "--out", str(out), "--rejected", str(rejected), "--max-per-item", "1"])
    assert code == 0, capsys.readouterr().err
    accepted = pd.read_csv(out)
    assert len(accepted) and {"source_id", "text", "label", "method", "similarity",
                              "label_prob", "params"} <= set(accepted.columns)
    assert json.loads(accepted["params"].iloc[0])["seed"] == 0
    assert "reason" in pd.read_csv(rejected).columns
    assert "accepted" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--method", "masked-lm"], "needs --model"),
    (["--method", "back-translation", "--forward", "x"], "needs --forward MODEL and --backward MODEL"),
    (["--method", "glossary", "--glossary", "nope"], "glossary 'nope' not found"),
    (["--method", "glossary", "--target", "complaint"], "must look like LABEL=N"),
    (["--method", "masked-lm", "--model", "/no/such/folder"], "/no/such/folder"),
])
def test_cli_augment_bad_settings_exit_2(tmp_path, small_curated, capsys, args, message):
    src = tmp_path / "in.csv"
    small_curated.head(20).assign(annotator_id="a1").to_csv(src, index=False)
    code = main(["augment", str(src), "--out", str(tmp_path / "o.csv"), *args])
    assert code == 2
    assert message in capsys.readouterr().err


def test_cli_augment_with_a_project_checks_the_role_and_never_creates_one(tmp_path, small_curated,
                                                                          capsys):
    """--project used to crash (no --as option: AttributeError) after creating an empty project."""
    from curation.store import Project

    src = tmp_path / "in.csv"
    small_curated.head(20).assign(annotator_id="a1").to_csv(src, index=False)
    args = ["augment", str(src), "--method", "glossary", "--glossary", "bank_support",
            "--out", str(tmp_path / "o.csv"), "--max-per-item", "1"]
    url = tmp_path / "p.sqlite"
    assert main([*args, "--project", str(url)]) == 2
    assert "there is no project at" in capsys.readouterr().err and not url.exists()
    with Project(url) as project:
        project.import_annotations(small_curated.head(20).assign(annotator_id="a1"))
        project.set_member("lena", "lead", actor="lena")
        project.set_member("ann", "annotator", actor="lena")
    assert main([*args, "--project", str(url), "--as", "ann"]) == 2
    assert "only a lead can export the curated data for augmenting" in capsys.readouterr().err
    assert not (tmp_path / "o.csv").exists()
    assert main([*args, "--project", str(url), "--as", "lena"]) == 0, capsys.readouterr().err
    with Project(url) as project:
        assert project.audit()["action"].iloc[-1] == "export"
