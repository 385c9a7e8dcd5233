"""Retrain and compare: train on the data before and after curation, judge both on one test set."""

from __future__ import annotations

import math

import altair as alt
import pandas as pd
import streamlit as st

from actions import jobs, may, projects
from actions.jobs import ACTIVE, ClassWeights, CompareReport, Precision, size_notes
from app_pages._attention import misclassified_section
from app_pages._choices import model_choice
from app_pages._fine_tune_extras import (
    advice_panel,
    chosen_rules,
    rules_choice,
    rules_section,
)
from app_pages._state import (
    current_project,
    current_url,
    files_warning,
    job_progress,
    next_step_line,
    signed_in,
)
from app_pages._text import plain

st.title("Retrain and compare")
next_step_line("retrain")
project = current_project()
st.caption("Before = the raw majority-vote labels of every item. After = the curated dataset "
           "(decisions applied, dropped items removed, accepted augmentations in training only). "
           "Both train with the same settings and seeds and are judged on the same test set: gold "
           "labels where the data has them, else adjudicated items held out of both sides.")


@st.cache_data(show_spinner="Preparing the data sets...", max_entries=4)
def _compare_data(url: str, version: tuple, n_aug: int) -> tuple[dict, pd.DataFrame, dict]:
    """The data sets' sizes, the after side's rows (for the advice) and the test labels, once."""
    return jobs.compare_data(current_project())


@st.cache_data(show_spinner="Measuring the data set for its settings...", max_entries=4)
def _resolved(url: str, version: tuple, n_aug: int, texts: tuple, labels: tuple,
              seconds: tuple | None = None) -> dict:
    """The settings the advice gives this curated data (rows, class balance, lengths; a
    sentence pair's length is both texts')."""
    frame = pd.DataFrame({"text": texts, "label": labels})
    if seconds is not None:
        frame.insert(1, "text_pair", seconds)
    return jobs.settings_for(frame)


def _settings_panel(resolved: dict) -> None:
    """The settings the form opens with, where each came from and why: in view, not folded."""
    st.subheader("Settings for this data")
    st.caption("Filled in from what the data measures (rows, class balance, text lengths). "
               "Change any of them below; the report records which were yours.")
    rows = [{"setting": c["setting"], "value": "bundled all-MiniLM-L6-v2" if c["setting"] == "model"
             and c["value"] is None else str(c["value"]), "from": c["source"], "why": c["reason"]}
            for c in resolved["chosen"] if c["source"] == "advice" or c["reason"]]
    if rows:
        st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
    else:
        st.caption("The defaults fit this data set.")


def _form_values(cfg: dict) -> dict | None:
    """The form; returns the chosen values when submitted."""
    st.session_state.setdefault(_LR_KEY, float(cfg["learning_rate"]))
    with st.form("retrain"):
        c1, c2, c3, c4 = st.columns(4)
        epochs = int(c1.number_input("Epochs", 1, 50, int(math.ceil(cfg["epochs"]))))
        seeds = int(c2.number_input("Seeds", 1, 10, 3, help="runs per side; with one the verdict is "
                                    "inconclusive by construction (no measure of training noise)"))
        lr = c3.number_input("Learning rate", 1e-8, 1e-2, format="%.1e", key=_LR_KEY,
                             help="the range test below suggests one for this data")
        batch = int(c4.number_input("Batch size", 1, 512, int(cfg["batch_size"])))
        c1, c2, c3, c4 = st.columns(4)
        max_length = int(c1.number_input("Max tokens", 16, 512, int(cfg["max_length"])))
        freeze = int(c2.number_input("Freeze lowest layers", 0, 48, int(cfg["freeze_layers"])))
        weight_options = [w.value for w in ClassWeights]
        weights = c3.selectbox("Class weights", weight_options,
                               index=weight_options.index(str(cfg["class_weights"])))
        precision = c4.selectbox("Precision", [p.value for p in Precision])
        model = model_choice("Model", key="retrain-model")
        c1, c2, c3, c4, c5 = st.columns(5)
        accumulation = int(c1.number_input(
            "Gradient accumulation", 1, 64, int(cfg.get("gradient_accumulation") or 1),
            help="batches per optimizer step: an effective batch of batch size x this, in the "
                 "memory of one batch"))
        schedule = c2.text_input(
            "Unfreeze schedule", _schedule_text(cfg.get("unfreeze_schedule")),
            placeholder="e.g. 1:2, 3:2",
            help="gradual unfreezing of the frozen lowest layers: EPOCH:LAYERS pairs (at epoch 1 "
                 "unfreeze 2 layers, at epoch 3 two more); empty: they stay frozen")
        patience = int(c3.number_input(
            "Early stopping patience", 0, 50, int(cfg.get("early_stopping_patience") or 0),
            help="evaluations without improvement before stopping; 0: never stop early"))
        min_delta = c4.number_input(
            "Min. improvement", 0.0, 1.0, float(cfg.get("early_stopping_min_delta") or 0.0),
            format="%.4f", help="a change of the validation loss smaller than this is no "
                                "improvement")
        lora_r = int(c5.number_input("LoRA rank", 1, 256, int(cfg.get("lora_r") or 8),
                                     help="used with LoRA adapters only"))
        lora = st.checkbox("LoRA adapters (peft) instead of full fine-tuning", value=bool(cfg["lora"]))
        trackers = st.multiselect(
            "Experiment tracking", ["mlflow", "tensorboard"], default=list(cfg.get("report_to") or []),
            help="every run's settings, losses and metrics, also to local stores in the job's "
                 "tracking folder: MLflow (mlflow.db: mlflow ui --backend-store-uri "
                 "sqlite:///<folder>/mlflow.db) and TensorBoard (tensorboard --logdir "
                 "<folder>/tensorboard). Nothing leaves this machine")
        rules = rules_choice()
        go = st.form_submit_button("Retrain and compare", type="primary")
    if not go:
        return None
    try:
        unfreeze = jobs.parse_schedule(schedule)
    except ValueError as err:
        st.error(plain(err))
        return None
    return {"values": {"model": model, "epochs": epochs, "learning_rate": lr,
                       "batch_size": batch, "max_length": max_length, "freeze_layers": freeze,
                       "class_weights": weights, "precision": precision, "lora": lora,
                       "gradient_accumulation": accumulation, "unfreeze_schedule": unfreeze,
                       "early_stopping_patience": patience, "early_stopping_min_delta": min_delta,
                       "lora_r": lora_r, "report_to": list(trackers)},
            "seeds": seeds, "rules": rules}


_LR_KEY = "retrain-lr"


def _schedule_text(schedule) -> str:
    return ", ".join(f"{int(e)}:{int(n)}" for e, n in (schedule or []))


def _same(value, default) -> bool:
    """A form value equal to the advised one (a schedule compares as pairs)."""
    if isinstance(value, tuple):
        return [list(p) for p in value] == [list(p) for p in (default or [])]
    return value == default


def _lr_chart(result: dict) -> alt.LayerChart:
    frame = pd.DataFrame({"lr": result["lrs"], "loss": result["losses"],
                          "smoothed": result["smoothed"]}).dropna()
    x = alt.X("lr:Q", scale=alt.Scale(type="log"), title="learning rate (log scale)")
    raw = alt.Chart(frame).mark_point(size=12, opacity=0.35).encode(x=x, y=alt.Y("loss:Q",
                                                                              title="loss"))
    line = alt.Chart(frame).mark_line().encode(x=x, y="smoothed:Q",
                                               tooltip=[alt.Tooltip("lr:Q", format=".2e"),
                                                        alt.Tooltip("smoothed:Q", format=".3f")])
    rule = alt.Chart(pd.DataFrame([{"lr": result["suggested_lr"]}])).mark_rule(
        color="#c62828", strokeDash=[4, 3]).encode(x="lr:Q")
    return alt.layer(raw, line, rule).properties(height=260)


def _tuning_job(read, start, *, button: str, key: str, what: str) -> dict | None:
    """A tuning job on the page: its progress while it runs, a button to start it, and its
    report once done (None before; a warning when it failed or was cancelled)."""
    status = read()
    if status is not None and status["state"] in ACTIVE:
        job_progress(read, key=f"cancel-{key}")
        return None
    if st.button(button, key=key):
        try:
            start()
        except (ValueError, OSError) as err:  # AccessError is an OSError (PermissionError)
            st.error(f"Could not start: {plain(err)}")
        else:
            st.rerun()
    if status is None:
        return None
    if status["state"] != "done" or not status.get("report"):
        st.warning(plain(f"The latest {what} {status['state']}: {status.get('message', '')}"))
        return None
    return status["report"]


def _lr_panel(cfg: dict) -> None:
    """The learning-rate range test: run it on this data, see the curve, use its suggestion."""
    given = {"model": cfg["model"]} if cfg.get("model") else None
    with st.expander("Learning-rate range test", expanded=False):
        st.caption("Trains a fresh model for up to 100 mini-batches while the learning rate rises "
                   "from 1e-7 to 1e-2, with the settings above; the suggestion is where the "
                   "smoothed loss falls fastest (Smith 2017). Runs in the background.")
        result = _tuning_job(lambda: jobs.latest_lr_range(project),
                             lambda: jobs.start_lr_range(project, actor=signed_in()[0],
                                                         config=given),
                             button="Run the range test", key="lr-run", what="range test")
        if result is None:
            return
        st.altair_chart(_lr_chart(result), width="stretch")
        suggested = float(result["suggested_lr"])
        st.caption(f"Suggested learning rate: {suggested:.2e}"
                   + (" (the loss diverged before the last step)" if result.get("stopped_early")
                      else "") + f"; minimum/10 rule: {float(result['min_loss_lr']):.2e}.")
        st.button(f"Use {suggested:.2e} in the settings", key="lr-use", on_click=_use_lr,
                  args=(suggested,))
        st.caption(f"Not sure? Train once at each of {suggested / 3:.1e}, {suggested:.1e} and "
                   f"{suggested * 3:.1e} on the curated rows less a 20% validation split, and "
                   "keep the rate with the best validation macro-F1. The retrain's test set is "
                   "not used.")
        search = _tuning_job(lambda: jobs.latest_lr_search(project),
                             lambda: jobs.start_lr_search(project, actor=signed_in()[0],
                                                          center=suggested, config=given),
                             button="Search around it (3 trainings)", key="lr-search",
                             what="search")
        if search is None:
            return
        st.dataframe(pd.DataFrame(search["runs"]).round(4), hide_index=True, width="stretch")
        best = search.get("best_learning_rate")
        if best:
            st.button(f"Use the best, {best:.2e}, in the settings", key="lr-use-best",
                      on_click=_use_lr, args=(best,))


def _use_lr(rate: float) -> None:
    """Before the form is drawn again (a callback): the learning rate field takes the rate."""
    st.session_state[_LR_KEY] = min(max(float(rate), 1e-8), 1e-2)


def _settings_form(resolved: dict) -> None:
    cfg = resolved["config"]
    chosen = _form_values(cfg)
    if chosen is None:
        return
    # only what the user changed is theirs: the job resolves the rest from the data again
    given = {k: v for k, v in chosen["values"].items() if not _same(v, cfg.get(k)) and not (
        k == "precision" and v == "auto")}
    try:
        jobs.start_compare(project, config=given, seeds=tuple(range(chosen["seeds"])),
                           actor=signed_in()[0], rules=chosen_rules(chosen["rules"]))
    except (ValueError, OSError) as err:  # AccessError is an OSError (PermissionError)
        st.error(f"Could not start: {plain(err)}")
    else:
        st.rerun()


def _side_table(report: CompareReport) -> pd.DataFrame:
    rows = []
    for side in ("before", "after"):
        s = getattr(report, side)
        rows.append({"side": side, "training rows": s.n_train,
                     "accuracy (mean)": s.accuracy["mean"], "accuracy (std)": s.accuracy["std"],
                     "macro-F1 (mean)": s.macro_f1["mean"], "macro-F1 (std)": s.macro_f1["std"]})
    return pd.DataFrame(rows).set_index("side")


def _confusion_chart(matrix: list[list[int]], labels: list[str], title: str) -> alt.Chart:
    """Every label on both axes, in the label set's order, none hidden for lack of room."""
    frame = pd.DataFrame([(t, p, matrix[i][j]) for i, t in enumerate(labels)
                          for j, p in enumerate(labels)], columns=["true", "predicted", "n"])
    axis = alt.Axis(labelOverlap=False, labelLimit=0)
    base = alt.Chart(frame, title=title).encode(
        x=alt.X("predicted:N", sort=labels, scale=alt.Scale(domain=labels),
                axis=alt.Axis(labelOverlap=False, labelLimit=0, labelAngle=-40)),
        y=alt.Y("true:N", sort=labels, scale=alt.Scale(domain=labels), axis=axis))
    step = max(36, min(70, 360 // max(len(labels), 1)))
    return (base.mark_rect().encode(color=alt.Color("n:Q", scale=alt.Scale(scheme="blues")),
                                    tooltip=["true", "predicted", "n"])
            + base.mark_text().encode(text="n:Q")).properties(width=step * len(labels),
                                                              height=step * len(labels))


def _history_chart(report: CompareReport) -> alt.Chart | None:
    frames = []
    for side in ("before", "after"):
        for seed, records in zip(report.seeds, getattr(report, side).histories):
            h = pd.DataFrame(records)
            if h.empty:
                continue
            long = h.melt(id_vars=["epoch"], value_vars=[c for c in ("train_loss", "eval_loss") if c in h],
                          var_name="curve", value_name="loss").dropna()
            frames.append(long.assign(run=f"{side}, seed {seed}"))
    if not frames:
        return None
    data = pd.concat(frames)
    return alt.Chart(data).mark_line(point=True).encode(
        x="epoch:Q", y="loss:Q", color="run:N", strokeDash="curve:N",
        tooltip=["run", "curve", "epoch", "loss"]).properties(height=280)


_VERDICT_BOX = {"better": st.success, "worse": st.error, "no_real_change": st.info,
                "inconclusive": st.warning}


def _headline(report: CompareReport) -> None:
    """The verdict and its reason, and the figures it rests on."""
    code, reason = report.verdict, report.verdict_reason
    if reason is None:  # a report from before verdicts had codes: the sentence only
        st.info(plain(code))
    else:
        _VERDICT_BOX.get(code, st.info)(f"**Verdict: {plain(code.replace('_', ' '))}.** {plain(reason)}")
    delta = report.delta
    c1, c2, c3, c4 = st.columns([2, 2, 3, 2])  # the interval needs the room
    c1.metric("Accuracy before", _num(report.accuracy_before))
    c2.metric("Accuracy after", _num(report.accuracy_after),
              None if delta is None else f"{delta:+.3f}")
    ci = report.delta_ci if report.verdict_reason else None
    c3.metric("95% interval of the change", "–" if ci is None else f"{ci[0]:+.3f} … {ci[1]:+.3f}",
              help="over seeds and test items (training randomness and which items were drawn); "
                   "the verdict rests on it")
    p = report.p_value
    c4.metric("p (seeds and items)", "–" if p is None else f"{p:.2g}")


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _learning(report: CompareReport) -> None:
    for side in ("before", "after"):
        lrn = (report.learning or {}).get(side)
        if lrn and not lrn.get("learned"):
            st.error(plain(f"The {side} model did not learn: {'; '.join(lrn['reasons'])}."))
            for fix in lrn.get("fixes") or []:
                st.markdown(f"- {plain(fix)}")


def _spread_chart(report: CompareReport) -> alt.Chart | None:
    """Each seed's accuracy per side: the spread the verdict has to see past."""
    rows = [{"side": side, "seed": str(r["seed"]), "accuracy": r["accuracy"]}
            for side in ("before", "after") for r in getattr(report, side).per_seed]
    if not rows:
        return None
    return alt.Chart(pd.DataFrame(rows)).mark_circle(size=90).encode(
        x=alt.X("accuracy:Q", scale=alt.Scale(zero=False)), y=alt.Y("side:N", sort=["before", "after"]),
        color="seed:N", tooltip=["side", "seed", "accuracy"]).properties(height=120)


def _supporting(report: CompareReport) -> None:
    boot, m = report.item_bootstrap, report.mcnemar
    if not boot or not m:
        return
    with st.expander("Supporting figures (over test items only)"):
        st.caption("These treat each training run as the model, so they ignore training "
                   "randomness; the verdict does not rest on them.")
        st.dataframe(pd.DataFrame([
            {"figure": "paired bootstrap over test items, 95% interval",
             "value": f"{boot['ci'][0]:+.3f} … {boot['ci'][1]:+.3f}"},
            {"figure": "McNemar's exact test on the seeds' ensembles",
             "value": f"b = {m['b']}, c = {m['c']}, p = {m['p_value']:.3g}"}]), hide_index=True)


def _settings_used(report: CompareReport) -> None:
    chosen = (report.settings or {}).get("chosen")
    if not chosen:
        return
    st.subheader("Settings used")
    st.dataframe(pd.DataFrame([{"setting": c["setting"], "value": str(c["value"]), "from": c["source"],
                                "why": c["reason"]} for c in chosen]), hide_index=True,
                 use_container_width=True)
    reused = report.reused or []
    if reused:
        st.caption("Reused from an earlier run with the same data, test set and settings (not "
                   "trained again): " + plain(", ".join(f"{r['side']} seed {r['seed']}" for r in reused)))


def _show_report(report: CompareReport, status: dict) -> None:
    _headline(report)
    _learning(report)
    for note in report.size_notes or []:
        st.warning(plain(note))
    st.dataframe(_side_table(report).round(4))
    st.subheader("Per seed")
    chart = _spread_chart(report)
    if chart is not None:
        st.altair_chart(chart, use_container_width=True)
    st.dataframe(pd.DataFrame(report.per_seed).round(4), hide_index=True)
    _supporting(report)
    st.subheader("Per class (F1, seeds' mean probabilities)")
    per_class = pd.DataFrame({"before": report.before.per_class_f1,
                              "after": report.after.per_class_f1})
    st.dataframe(per_class.round(3))
    c1, c2 = st.columns(2)
    c1.altair_chart(_confusion_chart(report.before.confusion, report.labels, "Before"))
    c2.altair_chart(_confusion_chart(report.after.confusion, report.labels, "After"))
    st.subheader("Loss curves, read for you")
    chart = _history_chart(report)
    if chart is not None:
        st.altair_chart(chart, use_container_width=True)
    for side in ("before", "after"):
        for seed, diag in zip(report.seeds, getattr(report, side).diagnosis):
            st.markdown(f"**{side}, seed {seed}:** " + plain(" ".join(diag.get("messages") or [])))
    _settings_used(report)
    trackers = (report.config or {}).get("report_to") or []
    if trackers:
        where = (report.config or {}).get("tracking_dir") or ""
        st.caption(plain(f"Every run was also tracked with {', '.join(trackers)} in {where}: "
                         + "; ".join({"mlflow": f"mlflow ui --backend-store-uri sqlite:///{where}/mlflow.db",
                                      "tensorboard": f"tensorboard --logdir {where}/tensorboard"}[t]
                                     for t in trackers)))
    for name, content, mime in jobs.report_files(status):
        st.download_button(f"Download {name}", content, file_name=name, mime=mime,
                           key=f"download-{name}")


try:
    version = projects.data_version(project)
    n_aug = projects.n_augmented(project)
    info, after_rows, test_counts = _compare_data(current_url(), version, n_aug)
    resolved = _resolved(current_url(), version, n_aug, tuple(after_rows["text"]),
                         tuple(after_rows["label"]),
                         tuple(after_rows["text_pair"]) if "text_pair" in after_rows else None)
except ValueError as err:
    st.warning(plain(err))
    st.stop()
c = st.columns(5)
c[0].metric("Test items", info["test_items"], help=f"judged on {info['test_source']} labels")
c[1].metric("Training rows before", info["before_rows"])
c[2].metric("Training rows after", info["after_rows"])
c[3].metric("Relabelled / dropped / ambiguous",
            f"{info['relabelled']} / {info['dropped']} / {info['ambiguous']}",
            help="as the Curated data page counts them; dropped and ambiguous items are left "
                 "out of the after side")
c[4].metric("Augmented rows (train only)", info["augmented_rows"],
            help=f"{info['augmented_saved']} saved on the Augment page")
left_out = info.get("augmented_left_out") or {}
if left_out:
    st.caption(plain(f"{info['augmented_saved']} augmented rows saved, {info['augmented_rows']} "
                     "trained on; left out: " + ", ".join(f"{n} ({why})"
                                                         for why, n in left_out.items()) + "."))

status = jobs.latest_compare(project)
if status is not None and status["state"] in ACTIVE:
    st.subheader("Training")
    job_progress(lambda: jobs.latest_compare(project), key="cancel-job")
else:
    for note in size_notes(info["test_items"], test_counts):
        st.warning(plain(note))
    _settings_panel(resolved)
    _settings_form(resolved)
    _lr_panel(resolved["config"])
    advice_panel(current_url(), version, after_rows)
    if status is not None:
        st.subheader(f"Latest run (#{status.get('run_id')})")
        files_warning(status)
        try:
            report = jobs.report_of(status) if status["state"] == "done" else None
        except ValueError as err:  # a damaged report.json: say so, keep the page
            st.error(plain(f"The latest run's report cannot be read: {err}"))
            report = None
        if report is not None:
            _show_report(report, status)
            rules_section(report)
            misclassified_section(status)
        elif status["state"] == "cancelled":
            st.warning("The latest run was cancelled: " + plain(status.get("message", "")))
        else:
            st.error(f"The latest run {status['state']}: {plain(status.get('message', ''))}")
        if status["state"] in ("failed", "cancelled"):
            me = signed_in()[0]
            lead = may(project, me, "resume a training job")
            if st.button("Resume this run", disabled=not lead, key="resume-job",
                         help="Starts the job again on the same data and settings: the runs it "
                              "finished are reused, the rest are trained." if lead else
                              "Only a lead of this team project can resume a job."):
                try:
                    jobs.resume(project, status, actor=me)
                except (ValueError, OSError) as err:  # AccessError is an OSError
                    st.error(f"Not resumed: {plain(err)}")
                else:
                    st.rerun()
    runs = jobs.compare_runs(project)
    if len(runs) > 1:
        with st.expander("Earlier runs"):
            st.dataframe(runs.iloc[::-1], hide_index=True)
