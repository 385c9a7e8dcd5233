"""Augment: generate candidates, see every check next to the original, keep the good ones."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from actions import augment, jobs
from actions.jobs import ACTIVE
from actions.augment import AUGMENTERS, CATEGORIES, AugmenterError, CheckSettings, has_pairs
from app_pages._choices import (
    UPLOADED,
    chosen_file,
    file_choice,
    model_choice,
    uploaded_text,
)
from app_pages._state import (
    annotations,
    current_project,
    job_progress,
    next_step_line,
    signed_in,
    who_is_working,
)
from app_pages._text import plain

_RESULT = "augment_result"
#: The run whose candidates _RESULT holds, when a queue worker made them.
_RESULT_RUN = "augment_result_run"
#: Candidates shown whole, one pair per row, under the table (the table cuts long texts).
_SIDE_BY_SIDE = 50
_SHOWN = ["keep", "status", "source_id", "label", "source_text", "text", "changes", "similarity",
          "label_prob", "source_label_prob", "predicted_label", "reason"]

st.title("Augment")
next_step_line("augment")
project = current_project()
frame = annotations()
if frame.empty:
    st.info("The project has no annotations yet: import a file on the Project page.")
    st.stop()
worker = who_is_working("save or remove augmented rows", key="augment-reviewer") or ""
st.caption("New training rows made from curated items. Every candidate is checked: meaning "
           "(sentence similarity to its source), label (a classifier over the curated data still "
           "gives the source's label), novelty, polarity (no antonym swaps) and protected words "
           "(numbers, names, negations, glossary terms). Saved rows only ever join the train split.")


def _method_settings(method: str) -> dict:
    if method == "glossary":
        name = file_choice("glossaries", "Glossary (groups of interchangeable terms)",
                           key="augment-glossary", default="bank_support")
        if name == UPLOADED:
            return {"glossary_upload": st.file_uploader("Glossary YAML", type=["yaml", "yml"],
                                                        key="augment-glossary-upload")}
        return {"glossary": name}
    if method == "masked-lm":
        return {"model": model_choice("Fill-mask model", key="augment-mlm", bundled=False)}
    if method == "back-translation":
        c1, c2 = st.columns(2)
        return {"forward": model_choice("Forward model (e.g. opus-mt-en-de)", key="augment-fwd",
                                        container=c1, bundled=False),
                "backward": model_choice("Backward model (e.g. opus-mt-de-en)", key="augment-bwd",
                                         container=c2, bundled=False)}
    return {}


def _glossary_source(settings: dict) -> dict:
    """Where the glossary comes from: an upload's text and name, or a file the app offers (what
    a queued job carries, and what the page loads itself)."""
    if "glossary_upload" in settings:
        upload = settings["glossary_upload"]
        return {"glossary_yaml": uploaded_text(upload), "glossary_name": upload.name}
    return {"glossary_file": chosen_file("glossaries", settings["glossary"])}


def _build(method: str, settings: dict, choices: dict):
    glossary = None
    if method == "glossary":
        source = _glossary_source(settings)
        glossary = (augment.load_glossary(source["glossary_file"]) if "glossary_file" in source
                    else augment.glossary_from_yaml(source["glossary_yaml"],
                                                    name=source["glossary_name"]))
    return augment.augmenter_for(method, glossary=glossary, **choices)


with st.expander("Settings", expanded=_RESULT not in st.session_state):
    methods = sorted(AUGMENTERS)
    method = st.selectbox("Method", methods, index=methods.index("glossary"),
                          format_func=lambda m: f"{m}: {AUGMENTERS[m].description}")
    settings = _method_settings(method)
    c1, c2, c3, c4 = st.columns(4)
    top_k = int(c1.number_input("Options per word (top-k)", 1, 50, 5))
    max_share = c2.slider("Largest share of words changed", 0.05, 1.0, 0.15, 0.05)
    seed = int(c3.number_input("Seed", 0, 2**31 - 1, 0))
    oversample = c4.number_input("Candidates per wanted row", 1.0, 10.0, 3.0, 0.5)
    c1, c2, c3, c4 = st.columns(4)
    min_similarity = c1.slider("Meaning: min similarity", 0.5, 1.0, 0.80, 0.01)
    min_label_prob = c2.slider("Label: min probability", 0.0, 1.0, 0.50, 0.05)
    label_tolerance = c3.slider("Label: tolerance below a doubtful source", 0.0, 0.5, 0.05, 0.01,
                                help="Where the model already gives the source less than the "
                                     "minimum, a candidate may be this much below the source")
    max_neighbour = c4.slider("Novelty: max similarity to other items", 0.8, 1.0, 0.97, 0.01)
    allow = st.multiselect("Let these change (protected by default)", list(CATEGORIES))
    side = "text_pair"
    if has_pairs(frame):
        side = st.radio("Rewrite which text of each pair", ["text_pair", "text"], horizontal=True,
                        format_func={"text_pair": "the second (kept: the first)",
                                     "text": "the first (kept: the second)"}.get,
                        help="The other text is kept word for word; the meaning and novelty "
                             "checks read the rewritten text, the label check the whole pair")
    mode = st.radio("What to add", ["Lift minority classes towards the largest",
                                    "Only chosen items"], horizontal=True)
    items, per_item, max_per_item = None, 1, 3
    if mode == "Only chosen items":
        ids = sorted(frame["item_id"].unique())
        items = st.multiselect("Items", ids, default=augment.reviewed_items(project)[:50],
                               help="Defaults to reviewed items (e.g. resolved boundary cases)")
        per_item = int(st.number_input("Rows per item", 1, 10, 2))
    else:
        max_per_item = int(st.number_input("At most new rows per existing row", 1, 10, 3))
    run = st.button("Generate candidates", type="primary")

by_workers = jobs.runs_on_workers(project)
# the augmenter's settings (the model ones from the method's own widgets) and the checks' bounds
choices = {"seed": seed, "top_k": top_k, "max_share": max_share, "allow": allow,
           **{k: v for k, v in settings.items() if k in ("model", "forward", "backward")}}
checks = CheckSettings(min_similarity=min_similarity, min_label_prob=min_label_prob,
                       label_tolerance=label_tolerance, max_neighbour_similarity=max_neighbour)
if run and by_workers:  # a queue worker generates them (a PostgreSQL project): its job below
    try:
        augment.start_augment(project, actor=signed_in()[0], method=method, choices=choices,
                              items=items, per_item=per_item, max_per_item=max_per_item,
                              oversample=oversample, checks=checks, side=side,
                              **(_glossary_source(settings) if method == "glossary" else {}))
    except (AugmenterError, ValueError, OSError) as err:
        st.error(f"Could not queue the augmentation: {plain(err)}")
    else:
        st.session_state.pop(_RESULT, None)
        st.rerun()
elif run:
    bar = st.progress(0.0, text="Starting...")
    try:
        augmenter = _build(method, settings, choices)
        result = augment.augment(project, augmenter, items=items, per_item=per_item,
                                 max_per_item=max_per_item, oversample=oversample, checks=checks,
                                 actor=signed_in()[0], side=side,
                                 progress=lambda f, msg: bar.progress(min(f, 1.0), text=msg))
    except (AugmenterError, ValueError, OSError) as err:
        bar.empty()
        st.error(f"Could not augment: {plain(err)}")
    else:
        bar.empty()
        st.session_state[_RESULT] = result

if by_workers:
    job = augment.augment_job(project)
    if job is not None and job["state"] in ACTIVE:
        st.info("The candidates are being generated by a worker (the project's job queue).")
        job_progress(lambda: augment.augment_job(project), key="cancel-augment")
    elif job is not None and job["state"] == "done" and \
            st.session_state.get(_RESULT_RUN) != job["run_id"]:
        try:
            st.session_state[_RESULT] = augment.augment_job_result(job)
            st.session_state[_RESULT_RUN] = job["run_id"]  # read once: ticks survive reruns
        except ValueError as err:
            st.error(plain(err))
    elif job is not None and job["state"] in ("failed", "cancelled"):
        st.warning(plain(f"The last augmentation job {job['state']}: {job.get('message', '')}"))

result = st.session_state.get(_RESULT)
if result is not None:
    s = result.summary
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Candidates tried", s["tried"])
    c2.metric("Passed every check", s["passed"])
    c3.metric("Picked", s["accepted"])
    c4.metric("Mean similarity (picked)", f"{s['mean_similarity_accepted'] or 0:.3f}")
    if s["rejections"]:
        st.caption(plain("Rejected for: " + ", ".join(f"{k} ({v})" for k, v in s["rejections"].items())))
    table = result.candidates.assign(keep=result.candidates["status"].eq("accepted"))
    show = st.radio("Show", ["picked", "passed but not picked", "rejected", "all"], horizontal=True)
    wanted = {"picked": ["accepted"], "passed but not picked": ["surplus"],
              "rejected": ["rejected"], "all": ["accepted", "surplus", "rejected"]}[show]
    table = table[table["status"].isin(wanted)]
    bulk = st.radio("Tick", ["as picked", "all shown", "none"], horizontal=True)
    if bulk != "as picked":
        table = table.assign(keep=bulk == "all shown")
    shown = _SHOWN if "kept_text" not in table.columns else [
        *_SHOWN[:_SHOWN.index("text") + 1], "kept_text", *_SHOWN[_SHOWN.index("text") + 1:]]
    edited = st.data_editor(
        table[shown], hide_index=True, width="stretch",
        disabled=[c for c in shown if c != "keep"], key=f"editor-{show}-{bulk}",
        column_config={"source_text": st.column_config.TextColumn("source", width="large"),
                       "text": st.column_config.TextColumn("candidate", width="large"),
                       "kept_text": st.column_config.TextColumn("other text (kept)",
                                                                width="medium"),
                       "reason": st.column_config.TextColumn("reason", width="medium")})
    with st.expander(f"Read source and candidate side by side ({min(len(table), _SIDE_BY_SIDE)} "
                     f"of {len(table)} shown)"):
        for row in table.head(_SIDE_BY_SIDE).itertuples():
            left, right = st.columns(2, border=True)
            left.caption(plain(f"source {row.source_id} ({row.label})"))
            left.markdown(plain(row.source_text))
            if "kept_text" in table.columns:  # a pair: the side kept as it is, under both
                for column in (left, right):
                    column.caption(plain(f"other text (kept): {row.kept_text}"))
            right.caption(plain(f"candidate: {row.status}, similarity {row.similarity:.3f}"
                                if pd.notna(row.similarity) else f"candidate: {row.status}"))
            right.markdown(plain(row.text))
    kept = table.loc[edited["keep"].to_numpy()]
    reviewer = worker
    if st.button(f"Save {len(kept)} ticked rows to the project", disabled=kept.empty):
        try:
            saved = augment.save_augmented(project, kept, actor=reviewer)
        except (ValueError, PermissionError) as err:
            st.error(f"Nothing was saved: {plain(err)}")
        else:
            st.success(f"Saved {len(saved)} augmented rows; they join the train split on export.")

st.subheader("Saved augmented rows")
stored = augment.augmented(project)
if stored.empty:
    st.info("None yet.")
else:
    st.dataframe(stored.drop(columns=["params", "removed_by", "removed_at"]), hide_index=True,
                 width="stretch")
    with st.form("remove"):
        gone = st.multiselect("Remove rows", stored["aug_id"].tolist())
        if st.form_submit_button("Remove") and gone:
            try:
                n = augment.remove_augmented(project, gone, actor=worker)
            except (ValueError, PermissionError) as err:
                st.error(f"Nothing was removed: {plain(err)}")
            else:
                st.success(f"Removed {n} rows (kept in the log as removed).")
                st.rerun()
