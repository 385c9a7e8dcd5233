"""Agreement page: the verdict against the target, coefficients with intervals, pairs, classes, people."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from actions.agreement import (
    COEFFICIENT_NAMES,
    CONSENSUS_METHODS,
    JUDGES,
    MIN_ITEMS,
    MIN_OVERLAP,
    TOP_ANNOTATORS,
    AgreementReport,
    agreement,
)
from actions.projects import label_set
from app_pages._charts import coefficient_chart, gauge, kappa_heatmap, kappa_histogram
from app_pages._state import annotations, current_project, current_url, next_step_line
from app_pages._text import plain

st.title("Agreement")
next_step_line("agreement")


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
    top_n = st.slider("Annotators in the heatmap and table (most labels first)", 5, 60,
                      TOP_ANNOTATORS, key="agreement-top-n")
    min_overlap = st.number_input("A pair's kappa counts from this many shared items",
                                  1, 10_000, MIN_OVERLAP, key="agreement-min-overlap")
    min_items = st.number_input("An annotator is named (lowest, outlier) from this many labels",
                                1, 10_000, MIN_ITEMS, key="agreement-min-items")

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
summary = report.pair_summary(min_overlap)
q = summary["quantiles"]
st.caption(f"{summary['n_pairs']:,} pairs share an item; {summary['n_used']:,} share "
           f"{min_overlap} or more, enough for a pair's kappa to mean something (set in the "
           "sidebar)."
           + (f" On those: median {q['median']:.3f}, middle half {q['q25']:.3f} to "
              f"{q['q75']:.3f}, range {q['min']:.3f} to {q['max']:.3f}." if q else
              " No pair shares that many: judge by the coefficients above and the "
              "per-annotator agreement below."))
if summary["n_used"] >= 2:
    st.altair_chart(kappa_histogram(report.used_pairs(min_overlap)["kappa"]), width="stretch")
if len(report.pairwise):
    top = report.busiest(top_n)
    st.caption(f"The {len(top)} annotators with most labels (of {report.n_annotators}; set N in the "
               f"sidebar); grey: the pair shares fewer than {min_overlap} items. Hover a cell for "
               "its count.")
    st.altair_chart(kappa_heatmap(report.busiest_pairs(top_n), min_overlap=min_overlap, order=top))

st.subheader("Per class")
st.dataframe(report.per_class.round(3), width="stretch")
st.caption("specific agreement: given one annotator chose the label, the chance another did too; "
           "kappa: Fleiss' kappa of this label against all others.")

st.subheader("Per annotator")
outliers = report.outliers(min_items)
enough = int((report.per_annotator["n_labels"] >= min_items).sum())
cells = st.columns(3)
cells[0].metric("Annotators", f"{report.n_annotators:,}")
cells[1].metric(f"With {min_items}+ labels", f"{enough:,}")
cells[2].metric("Outliers", f"{len(outliers):,}",
                help="Annotators with enough labels whose agreement with the others' majority "
                     "is below the lower fence (first quartile - 1.5 x IQR) of those annotators.")
lowest = report.lowest(min_items)
if lowest is not None:
    busy = report.per_annotator[report.per_annotator["n_labels"] >= min_items]
    st.caption(plain(f"Lowest agreement with the others' majority among annotators with "
                     f"{min_items}+ labels: {lowest[0]} ({lowest[1]:.3f}; median of them "
                     f"{busy['agreement_with_others'].median():.3f})."))
else:
    st.caption(f"No annotator has {min_items}+ labels to be named lowest or outlier.")
shown = report.listed(top_n, min_items)
show_all = st.toggle(f"All {report.n_annotators:,} annotators", value=report.n_annotators <= top_n,
                     help="Otherwise: the N with most labels, and the outliers.")
table = report.per_annotator if show_all else report.per_annotator.loc[shown]
st.dataframe(table.assign(outlier=table.index.isin(outliers.index)).round(3), width="stretch")

# from an annotator to the review queue of their items
names = list(dict.fromkeys(outliers.index.astype(str).tolist() + report.busiest(
    report.n_annotators)))
pick = st.columns([3, 2], vertical_alignment="bottom")
who = pick[0].selectbox("Review an annotator's items", names, format_func=lambda n: (
    f"{n} ({int(report.per_annotator.at[n, 'n_labels'])} labels"
    + (", outlier)" if n in outliers.index else ")")), key="agreement-annotator",
    help="Outliers first, then by number of labels.")
if pick[1].button("Open their items in Review", disabled=who is None):
    st.session_state["queue-annotators"] = [who]
    st.switch_page("app_pages/review.py")

st.subheader("Items with the most disagreement")
st.dataframe(report.disagreements[["item_id", "votes", "agreement", "entropy", "text"]].round(3),
             hide_index=True, width="stretch")
