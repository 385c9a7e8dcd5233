"""Post-processing rules: loading, matching in order, overrides recorded, helped/hurt on known answers."""

from __future__ import annotations

from pathlib import Path

import pytest

from fine_tune.rules import Rule, RuleSet, load_rules

ROOT = Path(__file__).resolve().parents[1]


def test_first_matching_rule_decides_and_overrides_are_recorded():
    rules = RuleSet([
        Rule.build("A", "fraud", "not made", keywords=["didn't make"], when_predicted=["complaint"]),
        Rule.build("B", "complaint", "fee", keywords=["fee"]),
        Rule.build("C", "praise", "thanks", pattern=r"\bthanks?\b", unless=["but"]),
    ])
    texts = ["I didn't make this payment, and a fee too", "a fee again", "thanks a lot",
             "thanks but no", "I didn't make it", "hello"]
    model = ["complaint", "request", "praise", "praise", "request", "request"]
    out = rules.apply(texts, model)
    assert out.labels == ["fraud", "complaint", "praise", "praise", "request", "request"]
    fired = out.fired
    assert fired["rule_id"].tolist() == ["A", "B", "C"]           # row 0: A first, B never sees it
    assert fired["changed"].tolist() == [True, True, False]       # C only confirms
    assert out.overrides["row"].tolist() == [0, 1]


def test_evaluate_counts_helped_and_hurt():
    rules = RuleSet([Rule.build("H", "neg", "awful", keywords=["awful"]),
                     Rule.build("X", "pos", "bad rule", keywords=["not"])])
    texts = ["awful day", "awful? not at all", "not good", "fine"]
    model = ["pos", "pos", "neg", "pos"]
    truth = ["neg", "pos", "neg", "pos"]
    result = rules.evaluate(texts, model, truth)
    assert result["accuracy_without"] == 0.75 and result["accuracy_with"] == 0.5
    assert [o["effect"] for o in result["overrides"]] == ["helped", "hurt", "hurt"]
    assert result["per_rule"]["H"] == {"fired": 2, "overrides": 2, "helped": 1, "hurt": 1, "net": 0,
                                       "reason": "awful"}
    assert result["per_rule"]["X"]["hurt"] == 1 and result["per_rule"]["X"]["net"] == -1


def test_keywords_are_whole_words_and_case_insensitive():
    rule = Rule.build("K", "x", "r", keywords=["fee", "lay off"])
    assert rule.matches("A FEE was taken") and rule.matches("they lay  off staff")
    assert not rule.matches("coffee") and not rule.matches("feel")


@pytest.mark.parametrize("text, message", [
    ("rules: []", "at least one rule"),
    ("rules:\n  - {id: A, label: x}", "needs a non-empty 'reason'"),
    ("rules:\n  - {id: A, label: x, reason: r}", "has no condition"),
    ("rules:\n  - {id: A, label: x, reason: r, keywords: [a]}\n  - {id: A, label: y, reason: r, keywords: [b]}",
     "used twice"),
    ("rules:\n  - {id: A, label: x, reason: r, pattern: '(unclosed'}", "not a valid regular expression"),
    ("rules:\n  - {id: A, label: x, reason: r, keyword: [a]}", "unknown key(s) ['keyword']"),
    ("rules: [", "not valid YAML"),
])
def test_bad_rule_files_name_the_rule_and_the_fix(tmp_path, text, message):
    path = tmp_path / "r.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError) as caught:
        load_rules(path)
    assert message in str(caught.value) and str(path) in str(caught.value)


def test_shipped_rule_files_load_and_use_their_labels():
    demo = load_rules(ROOT / "guidelines" / "bank_support_rules.yaml")
    demo.check_labels(["fraud_alert", "complaint", "request", "praise"])
    assert [r.id for r in demo.rules] == ["P1", "P2", "P3"]
    finance = load_rules(ROOT / "guidelines" / "finance_rules.yaml")
    finance.check_labels(["negative", "neutral", "positive"])
    with pytest.raises(ValueError, match="rule 'P1' uses label"):
        demo.check_labels(["pos", "neg"])
    out = finance.apply(["Operating profit fell to EUR 3.1 mn", "Net sales rose by 5 %",
                         "Net sales rose but the loss widened", "The company will lay off 40 people"],
                        ["neutral", "neutral", "neutral", "neutral"])
    assert out.labels == ["negative", "positive", "negative", "negative"]


def test_rules_cli_scores_predictions_and_names_bad_files(tmp_path, capsys):
    import json

    import pandas as pd

    from commands.fine_tune import main

    preds = tmp_path / "p.csv"
    pd.DataFrame({"text": ["Net sales rose by 5 %", "Operating profit fell", "The board met"],
                  "predicted": ["neutral", "neutral", "neutral"],
                  "label": ["positive", "neutral", "neutral"]}).to_csv(preds, index=False)
    rules = str(ROOT / "guidelines" / "finance_rules.yaml")
    assert main(["rules", "--rules", rules, "--predictions", str(preds), "--json",
                 str(tmp_path / "r.json"), "--out", str(tmp_path / "o.csv")]) == 0
    result = json.loads((tmp_path / "r.json").read_text())
    assert (result["accuracy_without"], result["accuracy_with"]) == (2 / 3, 2 / 3)
    assert [(o["rule_id"], o["effect"]) for o in result["overrides"]] == [("F2", "helped"), ("F1", "hurt")]
    out = pd.read_csv(tmp_path / "o.csv", keep_default_na=False)
    assert out["rule_id"].tolist() == ["F2", "F1", ""]
    assert "F1: fired 1, overrides 1, helped 0, hurt 1" in capsys.readouterr().out
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"text": ["x"], "pred": ["a"]}).to_csv(bad, index=False)
    assert main(["rules", "--rules", rules, "--predictions", str(bad)]) == 2
    assert "lacks column(s) ['predicted']" in capsys.readouterr().err


def test_a_rule_made_directly_matches_like_one_from_a_file():
    direct = Rule("D", "neg", "awful", keywords=("awful",), unless=("not",))
    assert direct.matches("an awful day") and not direct.matches("a fine day")
    assert not direct.matches("not awful at all")
    assert direct == Rule.build("D", "neg", "awful", keywords=["awful"], unless=["not"])
