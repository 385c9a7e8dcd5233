"""Retrain page parts: model-selection advice and post-processing rules (choice and results)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from actions import jobs
from actions.jobs import CompareReport
from app_pages._choices import UPLOADED, chosen_file, file_choice, uploaded_yaml
from app_pages._text import plain


@st.cache_data(show_spinner="Measuring the data set...", max_entries=4)
def _advice(url: str, version: tuple, texts: tuple, labels: tuple) -> dict:
    return jobs.advice_for(pd.DataFrame({"text": texts, "label": labels}))


def advice_panel(url: str, version: tuple, after: pd.DataFrame) -> None:
    """The whole advice for the curated training data: what it measured, every recommendation
    (the form already holds the settings it may set; a backbone or LoRA is left to you)."""
    with st.expander("The full advice (measured traits, backbone and settings)"):
        try:
            d = _advice(url, version, tuple(after["text"]), tuple(after["label"]))
        except ValueError as err:
            st.info(f"No advice: {plain(err)}")
            return
        t = d["traits"]
        st.caption(plain(f"{t['n_rows']:,} rows, {t['n_labels']} labels (largest/smallest class "
                         f"{t['imbalance']:.1f}), median {t['tokens_median']:.0f} tokens, 95th "
                         f"percentile {t['tokens_p95']:.0f}, language: {t['language']}."))
        st.dataframe(pd.DataFrame([{"setting": r["setting"] or "note", "value": str(r["value"]),
                                    "why": r["reason"]} for r in d["recommendations"]]),
                     hide_index=True, use_container_width=True)


def rules_choice() -> dict:
    """The rules chosen in the form: an offered file by name, none, or an upload (a form cannot
    show the uploader only after the choice, so it is always there). Read it with
    :func:`chosen_rules` once the form is submitted."""
    name = file_choice("rules", "Post-processing rules (applied after the model; the report shows "
                       "their effect)", key="retrain-rules", none="none")
    upload = st.file_uploader(f"Rules YAML (read when '{UPLOADED}' is chosen)", type=["yaml", "yml"],
                              key="retrain-rules-upload")
    return {"name": name, "upload": upload}


def chosen_rules(choice: dict) -> str | dict | list | None:
    """None, an offered file's path, or an upload's checked content (ValueError naming it)."""
    if choice["name"] == "none":
        return None
    if choice["name"] != UPLOADED:
        return chosen_file("rules", choice["name"])
    return jobs.check_rules(uploaded_yaml(choice["upload"]), name=choice["upload"].name)


def rules_section(report: CompareReport) -> None:
    """Accuracy with and without the rules, each rule's tally and every override."""
    rules = report.rules
    if not rules:
        return
    st.subheader(plain(f"Post-processing rules ({Path(rules.get('source') or 'rules').name})"))
    rows = [{"side": side, "accuracy without rules": rules[side]["accuracy_without"],
             "with rules": rules[side]["accuracy_with"],
             "change": rules[side]["accuracy_with"] - rules[side]["accuracy_without"],
             "overrides": rules[side]["n_overrides"]} for side in ("before", "after") if side in rules]
    st.dataframe(pd.DataFrame(rows).round(4), hide_index=True)
    if "after" in rules:
        per_rule = pd.DataFrame([{"rule": k, **v} for k, v in rules["after"]["per_rule"].items()])
        hurting = per_rule[per_rule["net"] < 0]["rule"].tolist()
        if hurting:
            st.warning(plain(f"Rule(s) {', '.join(hurting)} hurt more than they help on this "
                             "test set."))
        st.dataframe(per_rule, hide_index=True)
        overrides = pd.DataFrame(rules["after"]["overrides"])
        if len(overrides):
            st.caption("Every override on the test set (after side)")
            st.dataframe(overrides, hide_index=True)
