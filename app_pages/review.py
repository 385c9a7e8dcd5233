"""Review queue: flagged items in priority order; decide, undo, and every decision is logged at once.

Keyboard: s set the chosen label, k keep, d drop, a ambiguous, u undo, j next, p previous.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from actions import projects, review
from actions.review import REFIT_EVERY, SIGNALS, QueueFilters
from app_pages._attention import attention_expander
from app_pages._state import (
    annotations,
    cancel_button,
    consensus,
    current_project,
    known_truth,
    signed_in,
    who_is_working,
)
from app_pages._text import plain

st.title("Review")
project = current_project()
frame = annotations()
if frame.empty:
    st.info("The project has no annotations yet: import a file on the Project page.")
    st.stop()

reviewer = who_is_working("decide", key="reviewer") or ""


def run_flags(signal: str = "embedding", probs: pd.DataFrame | None = None) -> bool:
    """Flag the project; False (and the error shown, not wiped by a rerun) when it cannot."""
    bar = st.progress(0.0, text="Finding items to review...")
    try:
        report = review.flag(project, signal=signal, probs=probs, actor=signed_in()[0],
                             progress=lambda f, msg: bar.progress(min(f, 1.0), text=msg))
    except (ValueError, PermissionError) as err:  # PermissionError: AccessError, a non-member
        bar.empty()
        st.error(plain(err))
        return False
    bar.empty()
    st.toast(f"{len(report.queue)} items flagged ({len(report.flags)} flags).")
    st.session_state.pop("review_item", None)
    return True


def queue_check_panel() -> None:
    """How well this queue finds wrong labels here, next to the usual tools (on known labels)."""
    truth, source = known_truth()
    if truth.empty:
        return
    with st.expander(f"How far to trust this queue: measured on {len(truth):,} items with a known label"):
        st.caption(plain(f"Truth: {source}. Every ordering is scored on the same items from one "
                         "flagging pass: random, the share of minority votes, Dawid-Skene, cleanlab's "
                         "find_label_issues and CROWDLAB. An item is wrong when its majority label "
                         "differs from the truth; tied votes are counted apart."))
        key = ("queue_check", projects.data_version(project), len(truth), signal)
        if st.button("Measure", key="queue-check"):
            with st.spinner("Flagging again on the cached embeddings..."):
                try:
                    st.session_state[key] = review.measure_queue(
                        project, signal=signal, probs=probs, actor=signed_in()[0])
                except (ValueError, PermissionError) as err:
                    st.session_state[key] = str(err)
        result = st.session_state.get(key)
        if isinstance(result, str):
            st.warning(plain(result))
        elif result is not None:
            st.info(plain(result.summary()))
            st.dataframe(result.table().round(3), hide_index=True, width="stretch")
            if result.ties["n"]:
                st.caption(plain(f"Tied votes, left out of the ranking: {result.ties['n']} items; the "
                                 f"truth is among the tied labels for {result.ties['truth_in_tie']}, "
                                 f"and the label they carry now is right for "
                                 f"{result.ties['tie_break_right']}."))
            for name, why in result.missing.items():
                st.caption(plain(f"Not computed: {name} ({why})."))
            if result.calibration:
                st.caption("Is each consensus right as often as it is sure? (ECE: the average gap "
                           "between confidence and accuracy; lower is better)")
                st.dataframe(pd.DataFrame(result.calibration).T.rename_axis("consensus")
                             .reset_index().round(3), hide_index=True, width="stretch")


@st.fragment(run_every=2.0)
def _fine_tune_progress() -> None:
    status = review.folds_job(project)
    if status is None or status["state"] not in ("starting", "running"):
        st.rerun()  # finished: redraw the page with the probabilities
        return
    left = status.get("seconds_left")
    st.progress(min(float(status.get("fraction") or 0.0), 1.0),
                text=plain(status.get("message", "") + (f" - about {left:.0f} s left" if left else "")))
    cancel_button(status, key="cancel-folds")


def fine_tuned_signal() -> pd.DataFrame | None:
    """The fine-tuned folds' probabilities when there are any; their job's state and buttons."""
    status = review.folds_job(project)
    if status is not None and status["state"] in ("starting", "running"):
        _fine_tune_progress()
        return None
    try:
        found = review.fine_tuned_probs(project)
    except ValueError as err:  # a probs.csv damaged or edited by hand: say so, offer a new one
        st.error(plain(err))
        found = None
    if found is not None:
        probs, info = found
        st.caption(plain(f"Fine-tuned folds (run #{info['run_id']}): {info['summary']}."))
        if info["stale"]:
            st.warning("The annotations changed since these folds were trained: fine-tune again "
                       "so that every item has probabilities.")
    elif status is not None:
        st.caption(plain(f"The last fine-tuning {status['state']}: {status.get('message', '')}"))
    label = "Fine-tune again" if found is not None else "Fine-tune 5 folds in the background"
    if st.button(label, key="start-folds", help="Trains the classifier 5 times, each time on 4/5 "
                 "of the items with their current labels, with the Retrain page's advised "
                 "settings; each item's probabilities come from the model that did not see it."):
        try:
            review.start_folds(project, actor=signed_in()[0])
        except (ValueError, OSError) as err:  # AccessError is an OSError (PermissionError)
            st.error(f"Could not start: {plain(err)}")
        else:
            st.rerun()
    return None if found is None else found[0]


with st.sidebar.expander("Flags"):
    signal = st.selectbox("Model signal", list(SIGNALS), format_func=SIGNALS.get, key="model-signal",
                          help="What the model-based flaggers (cleanlab, CROWDLAB, boundary) read: "
                               "out-of-fold probabilities of a logistic regression on the sentence "
                               "embeddings, of the fine-tuned classifier, or the mean of both. "
                               "README: 'The model signal' has what each adds, measured.")
    probs = fine_tuned_signal() if signal != "embedding" else None
    if st.button("Re-run flags", help="embeds new texts (cached), reruns every flagger",
                 disabled=signal != "embedding" and probs is None):
        run_flags(signal, probs)
    signal_note = st.empty()  # filled below, once the latest flags run is read

go_on = st.sidebar.toggle("Go on past the flagged items", value=False, key="include-rest",
                          help="After the flagged items, the ones no flagger raised, most "
                               "doubtful first: a label every annotator got wrong can still be "
                               "doubted by the model and CROWDLAB.")
learning = st.sidebar.toggle("Learn the order from decisions", value=True, key="learn-order",
                             help=f"Every {REFIT_EVERY} decisions the queue re-ranks the items "
                                  "left: a changed label counts as 'was wrong', a kept one as "
                                  "'was right'. Off: the flaggers' own order.")
cons = consensus()
labels = projects.label_set(project)
with st.sidebar:
    kinds = st.multiselect("Flag kinds", review.flag_kinds(project))
    by_label = st.multiselect("Consensus label", labels)
    by_annotator = st.multiselect("Annotated by", sorted(frame["annotator_id"].unique()))
    show_decided = st.toggle("Show decided items", value=False)
filters = QueueFilters(kinds=kinds, labels=by_label, annotators=by_annotator,
                       show_decided=show_decided, include_rest=go_on, learn=learning,
                       section=st.session_state.get("queue-section", "ranked"))
qv = review.review_queue(project, frame, cons, filters)
if qv.empty:
    st.info("No flags yet. Flagging embeds the texts with the bundled MiniLM model (cached in the "
            "project), trains a classifier on them and runs every flagger.")
    if st.button("Find items to review", type="primary") and run_flags(
            signal if probs is not None else "embedding", probs):
        st.rerun()
    st.stop()

if qv.signal != signal:
    signal_note.caption(f"The queue shown comes from the signal '{SIGNALS.get(qv.signal, qv.signal)}': "
                        "press Re-run flags to use the one chosen above.")
learned, latest, tied = qv.learned, qv.latest, qv.tied
guideline = projects.guideline(project)

# ----------------------------------------------------------------- sections and progress
# items whose vote ties have no majority to be wrong: a section of their own, not in the ranking
if qv.n_tied:
    st.radio("Section", ["ranked", "ties"], horizontal=True, key="queue-section",
             format_func=lambda s: ("Likely wrong labels, most likely first" if s == "ranked"
                                    else f"No majority: decide ({qv.n_tied})"))
n_queue = len(qv.queue)
st.progress(qv.n_done / n_queue, text=f"{qv.n_done} of {n_queue} flagged items decided" if not go_on
            else f"{qv.n_done} of {n_queue} items decided ({qv.n_flagged} flagged, "
                 f"{n_queue - qv.n_flagged} more by doubt)")
if learning:
    st.caption(plain(learned.describe()))
queue_check_panel()
if qv.items.empty:
    st.success("Nothing left to review with these filters.")
    st.stop()

ids = qv.ids()
refit = learning and st.session_state.get("learned_n_used", learned.n_used) != learned.n_used
st.session_state["learned_n_used"] = learned.n_used
if refit or st.session_state.get("review_item") not in ids:
    st.session_state["review_item"] = ids[0]  # after a re-ranking: the new top
pos = ids.index(st.session_state["review_item"])


def go(step: int) -> None:
    st.session_state["review_item"] = ids[(pos + step) % len(ids)]


nav = st.columns([1, 1, 6])
nav[0].button("Previous", on_click=go, args=(-1,), shortcut="p", width="stretch")
nav[1].button("Next", on_click=go, args=(1,), shortcut="j", width="stretch")
nav[2].caption(f"Item {pos + 1} of {len(ids)} in this view")

# ----------------------------------------------------------------- the item
item = ids[pos]
row = qv.row(item)
votes = frame[frame["item_id"] == item]
st.subheader(f"{plain(item)}  ·  priority {row['priority']:.2f}")
st.markdown(f"> {plain(votes['text'].iloc[0])}")
left, right = st.columns([1, 2])
with left:
    st.caption("Annotations")
    st.dataframe(votes[["annotator_id", "label"]], hide_index=True, width="stretch")
    st.markdown(f"Consensus: **{plain(cons.at[item, 'label'])}** ({cons.at[item, 'confidence']:.0%}, "
                f"{plain(cons.at[item, 'method'])})")
    if isinstance(row["suggested_label"], str):
        st.markdown(f"Suggested: **{plain(row['suggested_label'])}**")
    if item in tied:
        st.warning("No majority: the annotators split evenly. The label shown is Dawid-Skene's "
                   "pick among the tied labels; decide which one is right.")
    if item in latest.index:
        done = latest.loc[item]
        st.info(plain(f"Decided: {done['action']}"
                      + (f" -> {done['curated_label']}" if done["curated_label"] else "")
                      + f" by {done['reviewer']}"))
with right:
    st.caption("Why it was flagged")
    st.dataframe(qv.reasons(item).round(2), hide_index=True, width="stretch")
    if guideline is not None and isinstance(row["rule_id"], str):
        rule = guideline.rule(row["rule_id"])
        st.markdown(f"**Guideline {plain(rule.describe())}**  \n{plain(rule.text)}")
attention_expander(project, votes["text"].iloc[0], key="attn-review")

# ----------------------------------------------------------------- actions
default = row["suggested_label"] if row["suggested_label"] in labels else cons.at[item, "label"]
choice = st.segmented_control("Label", labels, default=default, key=f"label_{item}",
                              format_func=plain)  # options render Markdown: a label stays text
note = st.text_input("Note (optional)", key=f"note_{item}")


def decide(action: str) -> None:
    try:
        review.decide(project, item, actor=reviewer, action=action, note=note, new_label=choice)
    except (ValueError, PermissionError) as err:
        st.session_state["review_error"] = str(err)
        return
    st.session_state["review_toast"] = f"{item}: {action} recorded"
    if action != "undo" and not show_decided and len(ids) > 1:
        st.session_state["review_item"] = ids[(pos + 1) % len(ids)]


buttons = st.columns(6)
buttons[0].button("Set label", on_click=decide, args=("set_label",), type="primary", shortcut="s",
                  width="stretch", disabled=choice is None)
buttons[1].button("Keep", on_click=decide, args=("keep",), shortcut="k", width="stretch")
buttons[2].button("Drop", on_click=decide, args=("drop",), shortcut="d", width="stretch")
buttons[3].button("Ambiguous", on_click=decide, args=("ambiguous",), shortcut="a", width="stretch")
buttons[4].button("Note only", on_click=decide, args=("note",), width="stretch",
                  disabled=not note.strip(), help="Write the note first: an empty note decides "
                  "nothing." if not note.strip() else None)
buttons[5].button("Undo", on_click=decide, args=("undo",), shortcut="u", width="stretch",
                  disabled=item not in latest.index)
if "review_error" in st.session_state:
    st.error(plain(st.session_state.pop("review_error")))
if "review_toast" in st.session_state:
    st.toast(plain(st.session_state.pop("review_toast")))

history = review.item_history(project, item)
if len(history):
    st.caption("Decision log for this item")
    st.dataframe(history, hide_index=True, width="stretch")
st.caption("Keys: s set label · k keep · d drop · a ambiguous · u undo · j next · p previous")
