"""The attention view shared by the Review and Retrain pages: what a fine-tuned model looks at.

The models come from the newest finished retrain-and-compare job, which keeps its seed-0
models before and after curation (:func:`actions.jobs.saved_models`).
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from actions import jobs
from app_pages._text import plain

__all__ = ["EXPANDER_LABEL", "attention_expander", "attention_view", "misclassified_section",
           "no_model_info"]

EXPANDER_LABEL = "What the fine-tuned model looks at"
_ROLLOUT, _MEAN = "rollout", "mean of heads"


def no_model_info(what: str = "No fine-tuned model yet.") -> None:
    st.info(f"{plain(what)} Run **Retrain and compare** (on its page): each job keeps the models of "
            "its first seed (before and after curation), and this view then shows which tokens "
            "the after model attends to.")


def _pick_model(models: dict[str, str], key: str) -> tuple[str, str]:
    """The model to look at: the after model unless the user picks the before one."""
    sides = [s for s in ("after", "before") if s in models]
    if len(sides) == 1:
        return sides[0], models[sides[0]]
    side = st.radio("Model", sides, horizontal=True, key=f"{key}-side",
                    format_func=lambda s: f"{s} curation")
    return side, models[side]


def attention_view(model_dir: str, text: str, *, key: str, max_length: int = 128,
                   text_pair: str | None = None) -> None:
    """Layer/head selectors, the chart and the model's prediction for ``text`` (and a pair's
    second text: both in one input, as the model was trained)."""
    try:
        with st.spinner("Running the model..."):
            att = jobs.attention(model_dir, text, max_length=max_length, text_pair=text_pair)
    except ValueError as err:
        st.error(plain(err))
        return
    left, right = st.columns(2)
    layer = left.selectbox("Layer", [_ROLLOUT] + list(range(att.n_layers)), key=f"{key}-layer",
                           format_func=lambda v: "rollout (all layers)" if v == _ROLLOUT
                           else f"layer {v}",
                           help="rollout: heads averaged, identity added, layers multiplied "
                                "(Abnar & Zuidema 2020)")
    head = right.selectbox("Head", [_MEAN] + list(range(att.n_heads)), key=f"{key}-head",
                           format_func=lambda v: v if v == _MEAN else f"head {v}",
                           disabled=layer == _ROLLOUT)
    layer_i = None if layer == _ROLLOUT else int(layer)
    head_i = None if layer_i is None or head == _MEAN else int(head)
    proba = pd.DataFrame({"label": att.labels, "probability": att.probabilities})
    top = att.top_tokens(5, layer=layer_i, head=head_i)
    st.markdown(f"The model predicts **{plain(att.predicted)}** "
                f"({float(proba['probability'].max()):.0%}). \\[CLS\\] takes most from: "
                + ", ".join(f"{plain(repr(tok))} ({w:.2f})" for _, tok, w in top))
    c1, c2 = st.columns([3, 1])
    c1.altair_chart(jobs.attention_chart(att, layer_i, head_i), use_container_width=False)
    c2.dataframe(proba.round(3), hide_index=True)
    st.caption("Attention shows which tokens the model mixed into [CLS], the token its "
               "classifier reads; it is a hint, not a full explanation of the decision.")


def attention_expander(project, text: str, *, key: str, text_pair: str | None = None) -> None:
    """The Review page's expander for the current item (an st.info when no model is kept)."""
    with st.expander(EXPANDER_LABEL):
        problems: list[str] = []
        found = jobs.saved_models(project, problems=problems)
        if found is None and problems:
            no_model_info(f"The kept models are not on this host: {problems[0]}")
            return
        if found is None:
            no_model_info()
            return
        side, folder = _pick_model(found["models"], key)
        st.caption(f"The {side}-curation model of retrain-and-compare run #{found['run_id']} "
                   "(seed 0).")
        attention_view(folder, text, key=f"{key}-{side}", text_pair=text_pair)


def misclassified_section(status: dict) -> None:
    """The Retrain page's list of test items the after model got wrong, with the attention view."""
    st.subheader("Misclassified by the after model")
    found = jobs.misclassified(status)
    if found.wrong is None:
        no_model_info(found.why_none)
        return
    wrong, after = found.wrong, found.model
    st.caption(f"{len(wrong)} of {found.n_test} test items wrong (the after model of seed 0; the "
               "report's numbers are over all seeds).")
    if wrong.empty:
        st.success("The after model got every test item right.")
        return
    st.dataframe(wrong, hide_index=True, height=min(35 * (len(wrong) + 1), 300))
    names = wrong["item_id"] if "item_id" in wrong.columns else wrong.index.astype(str)

    def describe(i: int) -> str:
        text = wrong.at[i, "text"]
        return (f"{names[i]}: {wrong.at[i, 'label']} -> {wrong.at[i, 'predicted']} · "
                f"{text[:70]}{'…' if len(text) > 70 else ''}")

    i = st.selectbox("Look at", list(range(len(wrong))), format_func=describe,
                     key="attn-retrain-item")
    report = jobs.report_of(status)
    config = (report.config if report is not None else None) or {}
    attention_view(after, str(wrong.at[i, "text"]), key="attn-retrain",
                   max_length=int(config.get("max_length") or 128),
                   text_pair=str(wrong.at[i, "text_pair"]) if "text_pair" in wrong.columns else None)
