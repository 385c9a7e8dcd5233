"""Agreement page: the verdict against the target, coefficients with intervals, pairs, classes, people."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from actions.agreement import (
    COEFFICIENT_NAMES,
    CONSENSUS_METHODS,
    JUDGES,
    AgreementReport,
    agreement,
)
from actions.projects import label_set
from app_pages._charts import coefficient_chart, gauge, kappa_heatmap
from app_pages._state import annotations, current_project, current_url
from app_pages._text import plain

st.title("Agreement")


@st.cache_data(show_spinner="Computing agreement...", max_entries=16)
def _report(url: str, version: int, frame: pd.DataFrame, labels: list[str], target: float,
            judge_by: str, consensus: str) -> AgreementReport:
    return agreement(frame, labels=labels or None, target=target, judge_by=judge_by,
                     consensus=consensus, top_k=25)


frame = annotations()
if frame.empty:
    st.info("The project has no annotations yet: import a file on the Project page.")
    st.stop()

with st.sidebar:
    target = st.slider("Agreement target", 0.50, 1.00, 0.90, 0.01)
    judge_by = st.selectbox("Judge by", JUDGES, format_func=lambda k: COEFFICIENT_NAMES.get(k, "auto"))
    consensus = st.selectbox("Consensus for per-annotator agreement", list(CONSENSUS_METHODS))

try:
    report = _report(current_url(), len(frame), frame, label_set(current_project()), target,
                     judge_by, consensus)
except ValueError as err:
    st.error(plain(err))
    st.stop()

left, right = st.columns([1, 2])
low, high = report.ci[report.judged_by]
left.altair_chart(gauge(report.judged_value, report.target, low=low, high=high,
                        title=COEFFICIENT_NAMES[report.judged_by]))
with right:
    (st.success if report.meets_target else st.error)(plain(report.verdict()))
    st.caption(plain(f"Why this coefficient: {report.judged_reason}"))
    st.text(f"{report.n_items} items, {report.n_annotators} annotators, "
            f"{report.n_annotations} annotations; labels: {', '.join(report.labels)}.")
    for note in report.notes:
        st.caption(plain(f"Note: {note}"))

st.subheader("Coefficients with 95% bootstrap intervals")
st.altair_chart(coefficient_chart(report.coefficients, report.ci, report.target, COEFFICIENT_NAMES),
                width="stretch")
st.dataframe(pd.DataFrame([{"coefficient": COEFFICIENT_NAMES[k], "value": v,
                            "CI low": report.ci[k][0], "CI high": report.ci[k][1]}
                           for k, v in report.coefficients.items()]).round(3), hide_index=True)
st.caption(f"{report.n_boot} bootstrap resamples of items, seed {report.seed}.")

st.subheader("Pairwise Cohen's kappa")
if report.pairwise.empty:
    st.info("No two annotators share an item.")
else:
    st.altair_chart(kappa_heatmap(report.pairwise))
    st.caption(f"Pairs share a median of {report.pairwise['n'].median():.0f} items "
               f"(range {report.pairwise['n'].min()}-{report.pairwise['n'].max()}); "
               "hover a cell for its count.")

st.subheader("Per class")
st.dataframe(report.per_class.round(3), width="stretch")
st.caption("specific agreement: given one annotator chose the label, the chance another did too; "
           "kappa: Fleiss' kappa of this label against all others.")
st.subheader("Per annotator")
st.dataframe(report.per_annotator.round(3), width="stretch")
if report.per_annotator["agreement_with_others"].notna().any():
    worst = report.per_annotator["agreement_with_others"].idxmin()
    st.caption(plain(f"Lowest agreement with the others' majority: {worst} "
                     f"({report.per_annotator.at[worst, 'agreement_with_others']:.3f}; median "
                     f"{report.per_annotator['agreement_with_others'].median():.3f})."))

st.subheader("Items with the most disagreement")
st.dataframe(report.disagreements[["item_id", "votes", "agreement", "entropy", "text"]].round(3),
             hide_index=True, width="stretch")
