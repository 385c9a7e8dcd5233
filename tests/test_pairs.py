"""Sentence pairs end to end (issue 18): a Chinese NLI file with a premise and a hypothesis per
item, five annotators and a stray label, saved in GBK, through load, store, agreement, flags,
augmentation, export, fine-tuning, the attention view and the review page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from curation.io import AnnotationFileError, load_annotations
from curation.store import Project
from tiny_models import ZH_LABELS, build_tiny_chinese_bert, chinese_nli

MAP = {"pair_id": "item_id", "premise": "text", "hypothesis": "text_pair"}


def nli_file(folder: Path, n: int = 60, *, encoding: str = "gbk") -> Path:
    """Wide: ``pair_id, premise, hypothesis, w1..w5``; a wrong label for every 7th item from
    w5 and one stray label ("unrelated") from w4, as a real crowd gives."""
    pairs = chinese_nli(n, seed=3)
    rows = []
    for i, r in enumerate(pairs.itertuples(index=False)):
        votes = [r.label] * 5
        if i % 7 == 0:
            votes[4] = ZH_LABELS[(ZH_LABELS.index(r.label) + 1) % 3]
        if i == 5:
            votes[3] = "unrelated"
        rows.append([f"p{i:03d}", r.premise, r.hypothesis, *votes])
    frame = pd.DataFrame(rows, columns=["pair_id", "premise", "hypothesis",
                                        "w1", "w2", "w3", "w4", "w5"])
    path = folder / "nli.csv"
    path.write_bytes(frame.to_csv(index=False).encode(encoding))
    return path


@pytest.fixture
def nli(tmp_path) -> pd.DataFrame:
    return load_annotations(nli_file(tmp_path), format="wide", columns=MAP, encoding="gb18030")


def test_a_gbk_pair_file_loads_with_two_text_columns(tmp_path, nli):
    with pytest.raises(AnnotationFileError, match="looks like gb18030: pass encoding='gb18030'"):
        load_annotations(nli_file(tmp_path), format="wide", columns=MAP)  # the fix is named
    assert list(nli.columns) == ["item_id", "text", "text_pair", "annotator_id", "label", "gold"]
    assert len(nli) == 300 and nli["item_id"].nunique() == 60
    first = nli[nli["item_id"] == "p000"].iloc[0]
    assert first["text"].endswith("。") and "\ufffd" not in first["text"]  # GBK read as GBK
    assert "unrelated" in set(nli["label"])
    with pytest.raises(AnnotationFileError, match="outside the label set.*unrelated"):
        load_annotations(nli_file(tmp_path), format="wide", columns=MAP, label_set=ZH_LABELS,
                         encoding="gb18030")
    # both texts mapped to 'text': the error says how to map a pair
    with pytest.raises(AnnotationFileError, match="--map hypothesis=text_pair"):
        load_annotations(nli_file(tmp_path), format="wide",
                         columns={"pair_id": "item_id", "premise": "text", "hypothesis": "text"},
                         encoding="gb18030")
    # a pair needs both texts, named by row
    blank = tmp_path / "blank.csv"
    blank.write_text("item_id,text,text_pair,annotator_id,label\n1,a,,x,p\n2,b,c,x,p\n",
                     encoding="utf-8")
    with pytest.raises(AnnotationFileError, match=r"empty second text of the pair \(text_pair\) at line 2"):
        load_annotations(blank)
    # one item id, two different pairs
    clash = tmp_path / "clash.csv"
    clash.write_text("item_id,text,text_pair,annotator_id,label\n1,a,b,x,p\n1,a,c,y,p\n",
                     encoding="utf-8")
    with pytest.raises(AnnotationFileError, match="different texts"):
        load_annotations(clash)


def test_the_store_keeps_pairs_and_refuses_to_mix_them_with_single_texts(tmp_path, nli):
    with Project(tmp_path / "nli.sqlite") as project:
        result = project.import_annotations(nli, source="nli.csv")
        assert result.n_new_items == 60
        back = project.annotations()
        assert list(back.columns) == ["item_id", "text", "text_pair", "annotator_id", "label", "gold"]
        pd.testing.assert_frame_equal(
            back.drop(columns="gold"),
            nli.drop(columns="gold").sort_values(["item_id", "annotator_id"], ignore_index=True),
            check_dtype=False)
        assert "text_pair" in project.items().columns
        singles = pd.DataFrame({"item_id": ["s1"], "text": ["a"], "annotator_id": ["x"],
                                "label": ["entailment"]})
        with pytest.raises(ValueError, match="items are sentence pairs.*text_pair"):
            project.import_annotations(singles)
        # a changed second text is a changed item: refused, or replaced and logged
        changed = nli.copy()
        changed.loc[changed["item_id"] == "p001", "text_pair"] = "我们买了茶。"
        with pytest.raises(ValueError, match="different text"):
            project.import_annotations(changed)
        project.import_annotations(changed, on_conflict="replace")
        assert set(project.annotations().query("item_id == 'p001'")["text_pair"]) == {"我们买了茶。"}
        assert "old text" in project.decisions().query("item_id == 'p001'")["note"].iloc[-1]
    with Project(tmp_path / "single.sqlite") as project:
        project.import_annotations(singles)
        assert "text_pair" not in project.annotations().columns  # single texts look as before
        with pytest.raises(ValueError, match="items are single texts"):
            project.import_annotations(nli)


def test_schema_3_cannot_go_back_while_items_are_pairs(tmp_path, nli, capsys):
    from commands.curation import main

    path = tmp_path / "nli.sqlite"
    with Project(path) as project:
        project.import_annotations(nli)
    assert main(["migrate", str(path), "--to", "0002"]) == 2
    assert "60 items are sentence pairs" in capsys.readouterr().err
    single = tmp_path / "single.sqlite"
    with Project(single) as project:
        project.import_annotations(nli.drop(columns="text_pair"))
    assert main(["migrate", str(single), "--to", "0002"]) == 0


def test_agreement_and_flags_read_pairs_and_warn_about_the_language(tmp_path, nli, capsys):
    from commands.curation import main
    from curation.embeddings import embed_items, embed_texts
    from curation.flags import flag_items
    from curation.report import agreement_report

    report = agreement_report(nli, n_boot=50)
    assert report.n_items == 60 and report.n_annotators == 5
    embeddings = embed_items(nli)
    assert embeddings.shape == (60, 768)  # both sides of the MiniLM, side by side
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    # two pairs that share a premise: their cosine is the mean of the two sides' cosines
    first = nli.drop_duplicates("item_id").reset_index(drop=True)
    shared = first[first.duplicated("text", keep=False)].sort_values("text")
    assert len(shared) >= 2
    a, b = shared.index[:2]
    sides = embed_texts([first.at[a, "text_pair"], first.at[b, "text_pair"]])
    assert embeddings[a] @ embeddings[b] == pytest.approx((1 + sides[0] @ sides[1]) / 2, abs=1e-5)
    # flagged as pairs, far fewer near-duplicates than when the hypothesis is left out (the
    # issue's 1,271 of 3,000): a shared premise is half of a pair
    near = flag_items(nli, embeddings=embeddings).flags.query("kind == 'near_duplicate'")
    premises = nli.drop(columns="text_pair")
    alone = flag_items(premises, embeddings=embed_items(premises)).flags
    assert len(near) < len(alone.query("kind == 'near_duplicate'"))
    path = nli_file(tmp_path)
    assert main(["flag", str(path), "--format", "wide", "--encoding", "gb18030",
                 "--map", "pair_id=item_id",
                 "--map", "premise=text", "--map", "hypothesis=text_pair",
                 "--json", str(tmp_path / "flags.json")]) == 0
    err = capsys.readouterr().err
    assert "Han script" in err and "--model" in err
    assert (tmp_path / "flags.json").is_file()


def test_augmenting_a_pair_rewrites_one_side_and_keeps_the_other(tmp_path):
    from curation.augment import CheckSettings, augment, glossary_from_yaml, make_augmenter
    from curation.curate import curate

    # English pairs: the glossary swaps whole words, and Chinese has no spaces between words
    glossary = glossary_from_yaml("groups: [[cat, kitten], [dog, puppy], [sits, rests]]\n",
                                  name="en.yaml")
    premises = ["a cat sits on the mat", "a dog sits by the door", "the cat sleeps"]
    rows = [(f"i{k}", p, h, w, lab) for k, (p, h, lab) in enumerate(
        [(p, h, lab) for p in premises for h, lab in
         ((p.replace("a ", "the "), "entailment"), ("the sky is green", "neutral"))])
        for w in ("x", "y")]
    nli = pd.DataFrame(rows, columns=["item_id", "text", "text_pair", "annotator_id", "label"])
    curated = curate(nli)
    assert "text_pair" in curated.columns
    result = augment(curated, make_augmenter("glossary", glossary=glossary, max_share=1.0),
                     items=curated["item_id"].tolist(), per_item=1,
                     checks=CheckSettings(min_label_prob=0.0, min_similarity=0.0))
    cands = result.candidates
    assert set(cands["side"]) == {"text_pair"} and len(cands)
    source = curated.set_index("item_id")
    assert (cands["kept_text"] == cands["source_id"].map(source["text"])).all()
    assert (cands["source_text"] == cands["source_id"].map(source["text_pair"])).all()
    accepted = result.accepted
    assert len(accepted) and {"text", "text_pair"} <= set(accepted.columns)
    assert (accepted["text"] == accepted["source_id"].map(source["text"])).all()  # kept
    assert (accepted["text_pair"] != accepted["source_id"].map(source["text_pair"])).all()
    other = augment(curated, make_augmenter("glossary", glossary=glossary, max_share=1.0),
                    items=curated["item_id"].tolist(), per_item=1, side="text",
                    checks=CheckSettings(min_label_prob=0.0, min_similarity=0.0)).accepted
    assert (other["text_pair"] == other["source_id"].map(source["text_pair"])).all()
    with Project(tmp_path / "p.sqlite") as project:
        project.import_annotations(nli)
        project.save_augmentations(accepted, actor="ann")
        stored = project.augmentations()
        assert (stored["text_pair"].to_numpy() == accepted["text_pair"].to_numpy()).all()
    with pytest.raises(ValueError, match="side='both'"):
        augment(curated, make_augmenter("glossary", glossary=glossary), side="both")


def test_export_keeps_the_pair_and_groups_whole_pairs(tmp_path, nli):
    from curation.workspace import export_curated

    result = export_curated(nli, tmp_path / "out", formats=("csv",), test_size=0.2, val_size=0.1)
    train = pd.read_csv(tmp_path / "out" / "train.csv")
    assert {"text", "text_pair"} <= set(train.columns)
    splits = result.splits
    # items sharing a premise are not one leakage group unless the whole pair repeats
    by_premise = splits.groupby("text")["leakage_group"].nunique()
    assert (by_premise > 1).any()


@pytest.mark.slow
def test_retrain_and_compare_and_attention_on_pairs(tmp_path, nli):
    from fine_tune._inputs import encode
    from fine_tune.attention import attention_for
    from fine_tune.compare import compare
    from fine_tune.config import TrainConfig
    from fine_tune.data import compare_data
    from fine_tune.train import train_classifier
    from transformers import AutoTokenizer

    (tmp_path / "zh-bert").mkdir()
    model = build_tiny_chinese_bert(tmp_path / "zh-bert")
    frame = nli.assign(gold=nli.groupby("item_id")["label"].transform(
        lambda s: s.mode().iloc[0]).where(nli["item_id"].str[-1].isin(list("02468"))))
    frame = frame[frame["label"] != "unrelated"]
    data = compare_data(frame, labels=list(ZH_LABELS))
    assert "text_pair" in data.before.columns and "text_pair" in data.test.columns
    tokenizer = AutoTokenizer.from_pretrained(model)
    dataset, _ = encode(data.test, tokenizer, list(ZH_LABELS), 64)
    row = dataset[0]
    assert row["input_ids"].count(tokenizer.sep_token_id) == 2  # [CLS] a [SEP] b [SEP]
    assert 1 in row["token_type_ids"]  # the second text is segment B
    config = TrainConfig(model=model, epochs=2, batch_size=16, learning_rate=3e-3,
                         save_checkpoints=False, max_length=32)
    report = compare(data.before, data.after, data.test, config=config, seeds=[0, 1], n_boot=200)
    assert report.verdict in {"better", "worse", "no_real_change", "inconclusive"}
    assert report.test_size == len(data.test)
    kept = tmp_path / "kept"
    train_classifier(data.after[["text", "text_pair", "label"]], None, None,
                     config=TrainConfig(model=model, epochs=1, save_checkpoints=False,
                                        max_length=32),
                     labels=list(ZH_LABELS), save_to=kept)
    att = attention_for(kept, "我喜欢猫。", text_pair="我不喜欢猫。")
    assert att.tokens.count("[SEP]") == 2 and "不" in att.tokens


def app_on(home: Path, monkeypatch, frame: pd.DataFrame, *, page: str | None = None,
           flag: bool = False):
    """The app in ``home`` (local mode) on a project ``nli`` of ``frame`` (its review queue built
    from the votes when ``flag``), opened at ``page``: a Streamlit AppTest."""
    from streamlit.testing.v1 import AppTest

    from curation.workspace import flag_project

    monkeypatch.setenv("CURATION_HOME", str(home))
    for var in ("CURATION_URL", "CURATION_USER", "CURATION_IDENTITY_HEADER"):
        monkeypatch.delenv(var, raising=False)
    with Project(home / "nli.sqlite") as project:
        project.import_annotations(frame)
        if flag:
            flag_project(project, use_model=False)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"),
                           default_timeout=120)
    at.session_state["project_name"] = "nli"
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def test_the_review_page_shows_both_texts(tmp_path, monkeypatch, nli):
    at = app_on(tmp_path, monkeypatch, nli, page="app_pages/review.py", flag=True)
    captions = [c.value for c in at.caption]
    assert "Text" in captions and "Second text (text_pair)" in captions
    texts = [m.value for m in at.markdown]
    item = nli.drop_duplicates("item_id").set_index("item_id")
    assert any(t in texts for t in item["text_pair"]) and any(t in texts for t in item["text"])


def test_chinese_augmentation_segments_words_and_keeps_negations_numbers_and_polarity():
    from curation.augment import (CheckSettings, PolarityGuard, Protector, augment,
                                  glossary_from_yaml, make_augmenter, words)
    from curation.curate import curate

    assert [w.text for w in words("我不喜欢这家银行，等了三十分钟。")] == [
        "我", "不", "喜欢", "这家", "银行", "，", "等", "了", "三十分钟", "。"]
    protector = Protector(terms=["信用卡"])
    changeable = [w.text for w in protector.changeable("我的信用卡被盗了，我不喜欢这家银行，等了三十分钟。")]
    assert "喜欢" in changeable and "银行" in changeable
    assert not {"不", "三十分钟", "信用卡", "我", "的"} & set(changeable)  # negation, number, term, function words
    assert protector.lost("我不喜欢等三十分钟", "我喜欢等二十分钟") == ["不", "三十分钟"]
    assert protector.gained("我喜欢这家银行", "我没有喜欢这家银行") == ["没有"]
    guard = PolarityGuard()
    assert guard.opposed("满意", "失望") and not guard.opposed("满意", "满足")
    assert guard.flipped("服务很好，我很满意。", "服务很好，我不满意。") is not None
    assert guard.flipped("服务很好。", "服务不错。") is None
    # a Chinese glossary swap, end to end: synonyms pass, an antonym in the glossary is refused
    glossary = glossary_from_yaml("groups: [[喜欢, 喜爱], [银行, 银行机构], [满意, 失望]]\n",
                                  name="zh.yaml")
    rows = [(f"z{i}", text, a, label) for i, (text, label) in enumerate(
        [("我很喜欢这家银行。", "正面"), ("我对这家银行很满意。", "正面"), ("银行的服务太慢了。", "负面")])
        for a in ("x", "y")]
    frame = pd.DataFrame(rows, columns=["item_id", "text", "annotator_id", "label"])
    result = augment(curate(frame), make_augmenter("glossary", glossary=glossary, max_share=1.0),
                     items=["z0", "z1"], per_item=2,
                     checks=CheckSettings(min_label_prob=0.0, min_similarity=0.0))
    cands = result.candidates.set_index("text")
    # (the bundled English MiniLM finds every Chinese text a near-duplicate of every other: the
    # language warning's point; the novelty check is not what this test reads)
    assert "我很喜爱这家银行。" in cands.index and "polarity" not in cands.loc["我很喜爱这家银行。", "reason"]
    assert "我对这家银行很失望。" in cands.index
    assert "polarity: '满意' -> '失望'" in cands.loc["我对这家银行很失望。", "reason"]


def test_a_local_model_passed_with_model_flags_pairs_without_the_warning(tmp_path, capsys):
    from commands.curation import main
    from tiny_models import build_tiny_sentence_model

    model = build_tiny_sentence_model(tmp_path / "tiny-zh")
    path = nli_file(tmp_path)
    args = ["flag", str(path), "--format", "wide", "--encoding", "gb18030", "--model", model,
            "--json", str(tmp_path / "flags.json")]
    for column, name in MAP.items():
        args += ["--map", f"{column}={name}"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "Han script" not in err  # a model the user chose is taken as chosen
    import json

    kinds = {f["kind"] for f in json.loads((tmp_path / "flags.json").read_text())}
    assert "label_issue" in kinds or "crowdlab" in kinds or "boundary" in kinds  # model-based ran


def test_the_augment_page_asks_which_text_of_a_pair_to_rewrite(tmp_path, monkeypatch, nli):
    at = app_on(tmp_path, monkeypatch, nli, page="app_pages/augment.py")
    choice = next(r for r in at.radio if r.label == "Rewrite which text of each pair")
    assert choice.value == "text_pair" and choice.options == [
        "the second (kept: the first)", "the first (kept: the second)"]


def test_the_project_page_imports_a_pair_file_with_the_text_pair_field(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CURATION_HOME", str(tmp_path))
    for var in ("CURATION_URL", "CURATION_USER", "CURATION_IDENTITY_HEADER"):
        monkeypatch.delenv(var, raising=False)
    Project(tmp_path / "pairs.sqlite").close()  # an empty project
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "streamlit_app.py"),
                           default_timeout=120)
    at.session_state["project_name"] = "pairs"
    at.run()
    body = ("id,premise,hypothesis,worker,label\n"
            "q1,我喜欢猫。,我不喜欢猫。,x,contradiction\nq1,我喜欢猫。,我不喜欢猫。,y,contradiction\n")
    at.file_uploader[0].set_value(("nli.csv", body.encode("utf-8"), "text/csv")).run()
    fields = {t.label: t for t in at.text_input}
    for field, column in (("item_id", "id"), ("text", "premise"), ("text_pair", "hypothesis"),
                          ("annotator_id", "worker")):
        fields[field].set_value(column)
    at.button(key="FormSubmitter:import-Import").click().run()
    assert not at.exception, at.exception
    assert not at.error, at.error[0].value
    assert "1 new items, 2 new annotations" in at.success[0].value
    assert any("sentence pairs (text, text_pair)" in t.value for t in at.text)
