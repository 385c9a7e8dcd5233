"""Review queue: flagged items in priority order; decide, undo, and every decision is logged at once.

Keyboard: 1-9 name the item's label, k keep, d drop, a ambiguous, u or Backspace undo your last
decision (wherever it was), j next, p previous. The desk is a fragment: a decision reruns the
desk, not the page.
"""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from actions.jobs import ACTIVE
from actions import jobs, projects, review
from actions.review import REFIT_EVERY, SIGNALS, SORTS, QueueFilters
from app_pages._attention import attention_expander
from app_pages._state import (
    annotations,
    consensus,
    current_project,
    current_url,
    files_warning,
    job_progress,
    known_truth,
    next_step_line,
    signed_in,
    who_is_working,
)
from app_pages._text import plain

st.title("Review")
next_step_line("review")
project = current_project()
frame = annotations()
if frame.empty:
    st.info("The project has no annotations yet: import a file on the Project page.")
    st.stop()

reviewer = who_is_working("decide", key="reviewer") or ""
language = projects.language_warning(frame)
if language:  # the flags' embeddings come from the bundled English model
    st.warning(plain(language))


def run_flags(signal: str = "embedding", probs: pd.DataFrame | None = None) -> bool:
    """Flag the project (or, when a queue worker does the flagging, queue the job); False (and
    the error shown, not wiped by a rerun) when it cannot."""
    if jobs.runs_on_workers(project):
        try:
            review.start_flags(project, actor=signed_in()[0], signal=signal, force=True)
        except (ValueError, OSError) as err:  # AccessError is an OSError (PermissionError)
            st.error(f"Could not queue the flagging: {plain(err)}")
            return False
        return True
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


def fine_tuned_signal() -> pd.DataFrame | None:
    """The fine-tuned folds' probabilities when there are any; their job's state and buttons."""
    status = review.folds_job(project)
    if status is not None and status["state"] in ACTIVE:
        job_progress(lambda: review.folds_job(project), key="cancel-folds")
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
        files_warning(status)  # done on a worker elsewhere, its probabilities not copied here
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

with st.sidebar.expander("Label Studio"):
    st.caption("Review the open items in Label Studio: the tasks carry the suggested labels as "
               "predictions and the flag reasons; paste the config into its Labeling Interface. "
               "Its JSON export comes back here as decisions, signed by each annotator.")
    if st.button("Prepare tasks", key="ls-prepare"):
        tasks, config = review.label_studio_tasks(project)
        st.session_state["ls-tasks"] = (json.dumps(tasks, ensure_ascii=False, indent=1), config,
                                        len(tasks))
    if "ls-tasks" in st.session_state:
        body, config, n_tasks = st.session_state["ls-tasks"]
        st.download_button(f"Tasks ({n_tasks} open items, JSON)", body, mime="application/json",
                           file_name="review_tasks.json", key="ls-download-tasks")
        st.download_button("Labelling config (XML)", config, mime="application/xml",
                           file_name="labeling_config.xml", key="ls-download-config")
    done = st.file_uploader("Completed tasks (Label Studio's JSON export)", type=["json"],
                            key="ls-upload")
    if done is not None and st.button("Import as decisions", key="ls-import"):
        try:
            ids = review.import_label_studio(project, done, name=done.name, actor=signed_in()[0])
        except (ValueError, OSError) as err:  # AccessError is an OSError (PermissionError)
            st.error(f"Nothing was imported: {plain(err)}")
        else:
            st.success(f"Imported {len(ids)} decisions from {plain(done.name)}.")

go_on = st.sidebar.toggle("Go on past the flagged items", value=False, key="include-rest",
                          help="After the flagged items, the ones no flagger raised, most "
                               "doubtful first: a label every annotator got wrong can still be "
                               "doubted by the model and CROWDLAB.")
learning = st.sidebar.toggle("Learn the order from decisions", value=True, key="learn-order",
                             help=f"Every {REFIT_EVERY} decisions the queue refits what makes "
                                  "an item wrong (a changed label counts as 'was wrong', a kept "
                                  "one as 'was right') and re-ranks the items left by it, once "
                                  "the refitted order has predicted your later decisions better "
                                  "than the flaggers' own. Off: the flaggers' own order.")
cons = consensus()
labels = projects.label_set(project)


@st.cache_data(show_spinner="Reading the queue...", max_entries=4)
def _queue_base(url: str, run_id: int | None, include_rest: bool) -> review.QueueBase:
    """A flags run's queue, read once per run (100,000 items: 0.8 s), not on every decision."""
    return review.queue_base(project, include_rest)


base = _queue_base(current_url(), review.queue_key(project), go_on)
with st.sidebar:
    search = st.text_input("Search text or item id", key="queue-search",
                           help="Keeps the items whose text or id contains this (any case, "
                                "taken literally).")
    sort = st.selectbox("Sort", list(SORTS), format_func=SORTS.get, key="queue-sort")
    kinds = st.multiselect("Flag kinds", review.flag_kinds(project, base))
    by_label = st.multiselect("Consensus label", labels)
    by_annotator = st.multiselect("Annotated by", sorted(frame["annotator_id"].unique()),
                                  key="queue-annotators")
    show_decided = st.toggle("Show decided items", value=False, key="review-show-decided")
filters = QueueFilters(search=search, sort=sort, kinds=kinds, labels=by_label, annotators=by_annotator,
                       show_decided=show_decided, include_rest=go_on, learn=learning,
                       section=st.session_state.get("queue-section", "ranked"))
qv = review.review_queue(project, frame, cons, filters, base=base)
if jobs.runs_on_workers(project):  # flagging is a job a worker runs: its progress here
    flags_status = review.flags_job(project)
    if flags_status is not None and flags_status["state"] in ACTIVE:
        st.info("Flagging runs on a worker (the project's job queue); the queue below is the "
                "last one until it ends.")
        job_progress(lambda: review.flags_job(project), key="cancel-flags")
        if qv.empty:
            st.stop()
    elif flags_status is not None and flags_status["state"] in ("failed", "cancelled"):
        st.warning(plain(f"The last flagging job {flags_status['state']}: "
                         f"{flags_status.get('message', '')}"))
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

# ----------------------------------------------------------------- sections and progress
# items whose vote ties have no majority to be wrong: a section of their own, not in the ranking
if qv.n_tied:
    st.radio("Section", ["ranked", "ties"], horizontal=True, key="queue-section",
             format_func=lambda s: ("Likely wrong labels, most likely first" if s == "ranked"
                                    else f"No majority: decide ({qv.n_tied})"))
queue_check_panel()
guideline = projects.guideline(project)
# the item text at reading size (our own constant style; no user data in it)
st.html("<style>.st-key-review-text p {font-size: 1.25rem; line-height: 1.6; color: inherit;}"
        "</style>")


def _say(kind: str, message: str) -> None:
    """Keep a message for the desk's next run (a callback runs before the desk redraws)."""
    st.session_state[f"review_{kind}"] = message


@st.fragment
def desk(first_view: review.QueueView) -> None:
    """Progress, the item, its actions and my recent decisions: a decision reruns only this."""
    if st.session_state.pop("review-whole-page", False):
        st.rerun(scope="app")
    view = (first_view if st.session_state.pop("desk-fresh", False)
            else review.review_queue(project, frame, cons, filters, base=base))
    learned, latest, tied = view.learned, view.latest, view.tied
    n_queue = len(view.queue)
    st.progress(view.n_done / n_queue,
                text=f"{view.n_done} of {n_queue} flagged items decided" if not go_on
                else f"{view.n_done} of {n_queue} items decided ({view.n_flagged} flagged, "
                     f"{n_queue - view.n_flagged} more by doubt)")
    if learning:
        st.caption(plain(learned.describe()))
    mine = review.recent_decisions(project, reviewer, 10)  # read once: the undo row and the panel
    undo_row(mine)
    if view.items.empty:
        st.success("Nothing left to review with these filters.")
        recent_panel(mine)
        return
    ids = view.ids()
    refit = learning and st.session_state.get("learned_n_used", learned.n_used) != learned.n_used
    st.session_state["learned_n_used"] = learned.n_used
    if refit or st.session_state.get("review_item") not in ids:
        st.session_state["review_item"] = ids[0]  # after a re-ranking: the new top
    pos = ids.index(st.session_state["review_item"])

    def go(step: int) -> None:
        st.session_state["review_item"] = ids[(pos + step) % len(ids)]

    def jump() -> None:
        wanted = st.session_state.get("jump-to", "").strip()
        st.session_state["jump-to"] = ""
        if not wanted:
            return
        why = review.where_is(view, wanted, frame)
        if why is None:
            st.session_state["review_item"] = wanted
        else:
            _say("error", f"Cannot go to it: {why}")

    nav = st.columns([1, 1, 2, 4], vertical_alignment="bottom")
    nav[0].button("Previous", on_click=go, args=(-1,), shortcut="p", width="stretch",
                  disabled=pos == 0)
    nav[1].button("Next", on_click=go, args=(1,), shortcut="j", width="stretch",
                  disabled=pos == len(ids) - 1)
    nav[2].text_input("Go to item id", key="jump-to", on_change=jump,
                      placeholder="item id, then Enter")
    nav[3].caption(f"Item {pos + 1} of {len(ids)} in this view")

    item = ids[pos]
    row = view.row(item)
    votes = frame[frame["item_id"] == item]
    st.subheader(f"{plain(item)}  ·  priority {row['priority']:.2f}")
    pair = str(votes["text_pair"].iloc[0]) if "text_pair" in votes.columns else None
    with st.container(border=True, key="review-text"):
        if pair is None:
            st.markdown(plain(votes["text"].iloc[0]))
        else:  # a sentence pair: both texts, each under its own caption
            st.caption("Text")
            st.markdown(plain(votes["text"].iloc[0]))
            st.caption("Second text (text_pair)")
            st.markdown(plain(pair))
    left, right = st.columns([1, 2])
    with left:
        st.caption("Annotations")
        st.dataframe(votes[["annotator_id", "label"]], hide_index=True, width="stretch")
        st.markdown(f"Consensus: **{plain(cons.at[item, 'label'])}** "
                    f"({cons.at[item, 'confidence']:.0%}, {plain(cons.at[item, 'method'])})")
        if isinstance(row["suggested_label"], str):
            st.markdown(f"Suggested: **{plain(row['suggested_label'])}**")
        if item in tied:
            st.warning("No majority: the annotators split evenly. The label shown is "
                       "Dawid-Skene's pick among the tied labels; decide which one is right.")
        if item in latest.index:
            done = latest.loc[item]
            st.info(plain(f"Decided: {done['action']}"
                          + (f" -> {done['curated_label']}" if done["curated_label"] else "")
                          + f" by {done['reviewer']}"))
    with right:
        st.caption("Why it was flagged")
        # a list, not a table: a reason is a sentence, and a table cell would cut it off
        st.markdown("\n".join(f"- **{plain(r.kind)}** ({r.score:.2f}): {plain(r.reason)}"
                              for r in view.reasons(item).itertuples()) or "(not flagged: "
                    "in the queue by doubt)")
        if guideline is not None and isinstance(row["rule_id"], str):
            rule = guideline.rule(row["rule_id"])
            st.markdown(f"**Guideline {plain(rule.describe())}**  \n{plain(rule.text)}")
    attention_expander(project, votes["text"].iloc[0], key="attn-review", text_pair=pair)
    actions_row(item, row, ids, pos, show_decided)
    history = review.item_history(project, item)
    if len(history):
        st.caption("Decision log for this item")
        st.dataframe(history, hide_index=True, width="stretch")
    recent_panel(mine)
    st.caption("Keys: 1-9 name the label · k keep · d drop · a ambiguous · u or Backspace undo "
               "your last decision · j next · p previous")


def actions_row(item: str, row: pd.Series, ids: list[str], pos: int, show_decided: bool) -> None:
    """The label buttons (1-9: one press decides), keep/drop/ambiguous and a note."""
    current = cons.at[item, "label"]
    suggested = row["suggested_label"] if row["suggested_label"] in labels else None
    note = st.text_input("Note (optional)", key=f"note_{item}")

    def moved_on() -> None:
        if not show_decided and len(ids) > 1:
            st.session_state["review_item"] = ids[(pos + 1) % len(ids)]

    def pick(label: str) -> None:
        try:
            done = review.decide_label(project, item, label, actor=reviewer,
                                       current=current if current in labels else None, note=note)
        except (ValueError, PermissionError) as err:
            _say("error", str(err))
            return
        _say("toast", f"{item}: {'kept' if done == 'keep' else 'label set to'} {label}")
        moved_on()

    def act(action: str) -> None:
        try:
            review.decide(project, item, actor=reviewer, action=action, note=note,
                          current=current if current in labels else None)
        except (ValueError, PermissionError) as err:
            _say("error", str(err))
            return
        _say("toast", f"{item}: {action} recorded")
        moved_on()

    st.caption(f"Label (now {plain(current)}" + (f", suggested {plain(suggested)}" if suggested
                                                  else "") + "): one press decides")
    per_row = min(max(len(labels), 1), 6)
    for start in range(0, len(labels), per_row):
        cells = st.columns(per_row)
        for cell, (n, label) in zip(cells, enumerate(labels[start:start + per_row], start + 1)):
            cell.button(plain(label), key=f"pick-{n}", on_click=pick, args=(label,),
                        shortcut=str(n) if n <= 9 else None, width="stretch",
                        type="primary" if label == (suggested or current) else "secondary",
                        help="the label it has now: records Keep" if label == current else None)
    buttons = st.columns(4)
    buttons[0].button("Keep", on_click=act, args=("keep",), shortcut="k", width="stretch")
    buttons[1].button("Drop", on_click=act, args=("drop",), shortcut="d", width="stretch")
    buttons[2].button("Ambiguous", on_click=act, args=("ambiguous",), shortcut="a",
                      width="stretch")
    buttons[3].button("Note only", on_click=act, args=("note",), width="stretch",
                      disabled=not note.strip(), help="Write the note first: an empty note "
                      "decides nothing." if not note.strip() else None)


def _undo_last() -> None:
    try:
        item = review.undo_last(project, actor=reviewer)
    except (ValueError, PermissionError) as err:
        _say("error", str(err))
        return
    _say("toast", f"{item}: your decision undone")
    st.session_state["review_item"] = item  # back to it, as Prodigy's Backspace does


def undo_row(mine: pd.DataFrame) -> None:
    """Undo of my last decision from anywhere (u, and Backspace through a twin button), and the
    messages the callbacks left. ``mine``: my decisions in force, newest first."""
    cells = st.columns([2, 6], vertical_alignment="center")
    cells[0].button("Undo my last decision", on_click=_undo_last, shortcut="u", width="stretch",
                    disabled=mine.empty, key="undo-last")
    with st.container(key="undo-backspace"):  # hidden by the style below; same action
        st.button("Undo (Backspace)", on_click=_undo_last, shortcut="Backspace",
                  disabled=mine.empty, key="undo-last-backspace")
    st.html("<style>.st-key-undo-backspace {display: none;}</style>")
    if not mine.empty:
        last = mine.iloc[0]
        cells[1].caption(plain(f"Your last: {last['action']}"
                               + (f" -> {last['new_label']}" if last["new_label"] else "")
                               + f" on {last['item_id']}"))
    if "review_error" in st.session_state:
        st.error(plain(st.session_state.pop("review_error")))
    if "review_toast" in st.session_state:
        st.toast(plain(st.session_state.pop("review_toast")))


def recent_panel(mine: pd.DataFrame) -> None:
    """My recent decisions (``mine``), each with its own undo (only while no one decided the
    item after)."""
    with st.expander(f"My recent decisions ({len(mine)})", expanded=False):
        if mine.empty:
            st.caption("None yet." if reviewer else "Enter your name in the sidebar first.")
        for r in mine.itertuples():
            cells = st.columns([5, 1, 1], vertical_alignment="center")
            cells[0].markdown(plain(f"#{r.decision_id} {r.item_id}: {r.action}"
                                    + (f" -> {r.new_label}" if r.new_label else "")))
            cells[1].button("Show", key=f"show-{r.decision_id}", on_click=_show, args=(r.item_id,))
            cells[2].button("Undo", key=f"undo-{r.decision_id}", on_click=_undo_one,
                            args=(r.item_id, r.decision_id))


def _show(item: str) -> None:
    """Go to a decided item: decided items are shown from now on (the filters live outside the
    desk, so the whole page reruns)."""
    st.session_state["review_item"] = item
    if not st.session_state.get("review-show-decided"):
        st.session_state["review-show-decided"] = True
        st.session_state["review-whole-page"] = True


def _undo_one(item: str, decision_id: int) -> None:
    try:
        review.undo(project, item, decision_id, actor=reviewer)
    except (ValueError, PermissionError) as err:
        _say("error", str(err))
        return
    _say("toast", f"{item}: decision #{decision_id} undone")
    st.session_state["review_item"] = item


st.session_state["desk-fresh"] = True
desk(qv)
