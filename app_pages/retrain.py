"""Retrain and compare: train on the data before and after curation, judge both on one test set."""

from __future__ import annotations

import time
from pathlib import Path

import altair as alt
import pandas as pd
import streamlit as st

from app_pages._attention import misclassified_section
from app_pages._fine_tune_extras import advice_panel, form_default, rules_choice, rules_section
from app_pages._state import current_project, signed_in
from curation.workspace import curation_home
from fine_tune.config import ClassWeights, Precision, TrainConfig
from fine_tune.data import project_compare_data
from fine_tune.jobs import RUN_KIND, cancel_job, latest_job, start_compare_job

st.title("Retrain and compare")
project = current_project()
st.caption("Before = the raw majority-vote labels of every item. After = the curated dataset "
           "(decisions applied, dropped items removed, accepted augmentations in training only). "
           "Both train with the same settings and seeds and are judged on the same test set: gold "
           "labels where the data has them, else adjudicated items held out of both sides.")


@st.cache_data(show_spinner="Preparing the data sets...", max_entries=4)
def _compare_data(url: str, version: tuple, n_aug: int) -> tuple[dict, pd.DataFrame]:
    """The data sets' sizes and the after side's rows (for the advice), prepared once."""
    data = project_compare_data(current_project())
    return data.info, data.after[["text", "label"]]


def _settings_form() -> None:
    with st.form("retrain"):
        c1, c2, c3, c4 = st.columns(4)
        epochs = int(c1.number_input("Epochs", 1, 50, int(form_default("epochs", 3))))
        seeds = int(c2.number_input("Seeds", 1, 10, 3))
        lr = c3.number_input("Learning rate", 1e-6, 1e-2, float(form_default("learning_rate", 5e-5)),
                             format="%.1e")
        batch = int(c4.number_input("Batch size", 1, 512, 16))
        c1, c2, c3, c4 = st.columns(4)
        max_length = int(c1.number_input("Max tokens", 16, 512, int(form_default("max_length", 128))))
        freeze = int(c2.number_input("Freeze lowest layers", 0, 48, 0))
        weight_options = [w.value for w in ClassWeights]
        weights = c3.selectbox("Class weights", weight_options,
                               index=weight_options.index(form_default("class_weights", "none")))
        precision = c4.selectbox("Precision", [p.value for p in Precision])
        model = st.text_input("Model (empty: the bundled MiniLM; or a local folder / cached id)")
        lora = st.checkbox("LoRA adapters (peft) instead of full fine-tuning",
                           value=bool(form_default("lora", False)))
        rules = rules_choice()
        go = st.form_submit_button("Retrain and compare", type="primary")
    if go:
        try:
            config = TrainConfig(model=model.strip() or None, epochs=epochs, learning_rate=lr,
                                 batch_size=batch, max_length=max_length, freeze_layers=freeze,
                                 class_weights=ClassWeights(weights), precision=Precision(precision),
                                 lora=lora, early_stopping_patience=int(
                                     form_default("early_stopping_patience", 2)))
            folder = curation_home() / "jobs" / f"{Path(project.url).stem}-{time.strftime('%Y%m%d-%H%M%S')}"
            start_compare_job(project, folder, config=config, seeds=tuple(range(seeds)),
                              actor=signed_in()[0], rules=rules)
        except (ValueError, OSError) as err:  # AccessError is an OSError (PermissionError)
            st.error(f"Could not start: {err}")
        else:
            st.rerun()


@st.fragment(run_every=2.0)
def _progress() -> None:
    status = latest_job(project)
    if status is None or status["state"] not in ("starting", "running"):
        st.rerun()  # finished: redraw the whole page with the report
        return
    left = status.get("seconds_left")
    text = status.get("message", "") + (f" - about {left:.0f} s left" if left else "")
    st.progress(min(float(status.get("fraction") or 0.0), 1.0), text=text)
    if st.button("Cancel", key="cancel-job"):
        cancel_job(status["folder"])
        st.info("Cancelling after the current step...")


def _side_table(report: dict) -> pd.DataFrame:
    rows = []
    for side in ("before", "after"):
        s = report[side]
        rows.append({"side": side, "training rows": s["n_train"],
                     "accuracy (mean)": s["accuracy"]["mean"], "accuracy (std)": s["accuracy"]["std"],
                     "macro-F1 (mean)": s["macro_f1"]["mean"], "macro-F1 (std)": s["macro_f1"]["std"]})
    return pd.DataFrame(rows).set_index("side")


def _confusion_chart(matrix: list[list[int]], labels: list[str], title: str) -> alt.Chart:
    frame = pd.DataFrame([(t, p, matrix[i][j]) for i, t in enumerate(labels)
                          for j, p in enumerate(labels)], columns=["true", "predicted", "n"])
    base = alt.Chart(frame, title=title).encode(x="predicted:N", y="true:N")
    return (base.mark_rect().encode(color=alt.Color("n:Q", scale=alt.Scale(scheme="blues")))
            + base.mark_text().encode(text="n:Q")).properties(width=260, height=220)


def _history_chart(report: dict) -> alt.Chart | None:
    frames = []
    for side in ("before", "after"):
        for seed, records in zip(report["seeds"], report[side].get("histories") or []):
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


def _show_report(report: dict, folder: str) -> None:
    delta, (low, high) = report["delta"], report["delta_ci"]
    good = low > 0
    (st.success if good else st.info)(report["verdict"])
    c1, c2, c3, c4 = st.columns([2, 2, 3, 2])  # the interval needs the room
    c1.metric("Accuracy before", f"{report['accuracy_before']:.3f}")
    c2.metric("Accuracy after", f"{report['accuracy_after']:.3f}", f"{delta:+.3f}")
    c3.metric("95% CI of the change", f"{low:+.3f} … {high:+.3f}",
              help="paired bootstrap over the test items; a real change excludes 0")
    c4.metric("McNemar exact p", f"{report['mcnemar_p']:.3g}")
    st.dataframe(_side_table(report).round(4))
    st.subheader("Per seed")
    st.dataframe(pd.DataFrame(report["per_seed"]).round(4), hide_index=True)
    st.subheader("Per class (F1, seeds' mean probabilities)")
    per_class = pd.DataFrame({"before": report["before"]["per_class_f1"],
                              "after": report["after"]["per_class_f1"]})
    st.dataframe(per_class.round(3))
    c1, c2 = st.columns(2)
    c1.altair_chart(_confusion_chart(report["before"]["confusion"], report["labels"], "Before"))
    c2.altair_chart(_confusion_chart(report["after"]["confusion"], report["labels"], "After"))
    st.subheader("Loss curves, read for you")
    chart = _history_chart(report)
    if chart is not None:
        st.altair_chart(chart, use_container_width=True)
    for side in ("before", "after"):
        for seed, diag in zip(report["seeds"], report[side].get("diagnosis") or []):
            st.markdown(f"**{side}, seed {seed}:** " + " ".join(diag.get("messages") or []))
    for name, mime in (("report.md", "text/markdown"), ("report.html", "text/html")):
        path = Path(folder) / name
        if path.is_file():
            st.download_button(f"Download {name}", path.read_bytes(), file_name=name, mime=mime,
                               key=f"download-{name}")


try:
    version = project.data_version()
    info, after_rows = _compare_data(project.url, version, len(project.augmentations()))
except ValueError as err:
    st.warning(str(err))
    st.stop()
c = st.columns(5)
c[0].metric("Test items", info["test_items"], help=f"judged on {info['test_source']} labels")
c[1].metric("Training rows before", info["before_rows"])
c[2].metric("Training rows after", info["after_rows"])
c[3].metric("Relabelled / dropped", f"{info['relabelled']} / {info['dropped']}")
c[4].metric("Augmented rows (train only)", info["augmented_rows"])

status = latest_job(project)
if status is not None and status["state"] in ("starting", "running"):
    st.subheader("Training")
    _progress()
else:
    advice_panel(project.url, version, after_rows)
    _settings_form()
    if status is not None:
        st.subheader(f"Latest run (#{status.get('run_id')})")
        if status["state"] == "done" and status.get("report"):
            _show_report(status["report"], status["folder"])
            rules_section(status["report"])
            misclassified_section(status)
        elif status["state"] == "cancelled":
            st.warning("The latest run was cancelled: " + str(status.get("message", "")))
        else:
            st.error(f"The latest run {status['state']}: {status.get('message', '')}")
    runs = project.runs()
    runs = runs[runs["kind"] == RUN_KIND] if len(runs) else runs
    if len(runs) > 1:
        with st.expander("Earlier runs"):
            st.dataframe(pd.DataFrame({
                "run": runs["run_id"], "status": runs["status"], "started": runs["created_at"],
                "verdict": [(r or {}).get("verdict", (r or {}).get("error", "")) for r in runs["result"]],
            }).iloc[::-1], hide_index=True)
