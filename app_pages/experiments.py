"""Experiments: multi-task training and continual learning on two uploaded labelled data sets.

Each data set is a CSV with columns ``text`` and ``label``, with its own test CSV or a held-out
share (stratified, seeded). The comparison runs in this process with a progress bar (keep the
data and settings small); the result is shown as Markdown and tables and can be downloaded as
JSON. Bad files show the validation message, never a traceback.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from actions import experiments
from app_pages._choices import model_choice
from app_pages._text import plain

st.title("Experiments")
st.caption("Two labelled data sets (CSV with columns text and label), a shared encoder (the "
           "bundled MiniLM unless you pick another model the operator offers). **Multi-task**: one encoder with "
           "a head per data set, trained on both at once, against one model per data set with the "
           "same budget. **Continual learning**: train on A, then on B; how much of A is "
           "forgotten, with plain fine-tuning and with elastic weight consolidation (EWC).")

RESULT_KEYS = {"multitask": "experiments_multitask", "continual": "experiments_continual"}


# --- reading the files ------------------------------------------------------------------------

def _dataset_inputs(key: str, title: str, default_name: str) -> dict[str, Any]:
    st.markdown(f"**{plain(title)}**")
    name = st.text_input("Name", default_name, key=f"{key}-name")
    train = st.file_uploader("Labelled CSV (text, label)", type=["csv"], key=f"{key}-train")
    test = st.file_uploader("Test CSV (optional; without it a share of the file above is held out)",
                            type=["csv"], key=f"{key}-test")
    share = st.slider("Test share when there is no test CSV", 0.1, 0.5, 0.2, 0.05, key=f"{key}-share")
    return {"name": name.strip(), "train": train, "test": test, "share": share, "title": title}


def _load(spec: dict[str, Any], seed: int, max_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    split_train_test, read = experiments.split_train_test, experiments.read_labelled_csv
    if spec["train"] is None:
        raise ValueError(f"Upload a labelled CSV for {spec['title']} ({spec['name'] or 'no name'}).")
    if not spec["name"]:
        raise ValueError(f"Give {spec['title']} a name.")
    file_name = spec["train"].name
    train = read(spec["train"], file_name)
    if spec["test"] is not None:
        test = read(spec["test"], spec["test"].name)
    else:
        train, test = split_train_test(train, spec["share"], seed=seed, name=file_name)
    if max_rows and len(train) > max_rows:  # a stratified sample of max_rows training rows
        train = split_train_test(train, max_rows, seed=seed, name=file_name)[1]
    return train, test


# --- settings -----------------------------------------------------------------------------------

def _settings(key: str) -> dict[str, Any]:
    c1, c2, c3, c4 = st.columns(4)
    out = {"epochs": int(c1.number_input("Epochs", 1, 20, 1, key=f"{key}-epochs")),
           "seeds": int(c2.number_input("Seeds", 1, 10, 2, key=f"{key}-seeds")),
           "max_rows": int(c3.number_input("Training rows per data set (0: all)", 0, 100_000, 300,
                                           key=f"{key}-rows")),
           "max_length": int(c4.number_input("Max tokens", 8, 512, 64, key=f"{key}-len"))}
    c1, c2, c3 = st.columns(3)
    out["learning_rate"] = c1.number_input("Learning rate", 1e-6, 1e-2, 1e-4, format="%.1e",
                                           key=f"{key}-lr")
    out["batch_size"] = int(c2.number_input("Batch size", 1, 256, 16, key=f"{key}-batch"))
    out["model"] = model_choice("Model", key=f"{key}-model", container=c3)
    return out


def _config(settings: dict[str, Any]) -> Any:
    return experiments.train_config(model=settings["model"], epochs=settings["epochs"],
                                    learning_rate=settings["learning_rate"],
                                    batch_size=settings["batch_size"],
                                    max_length=settings["max_length"])


def _progress_bar():
    bar = st.progress(0.0, text="Loading the model...")
    state = {"last": -1.0}

    def progress(fraction: float, message: str) -> None:
        if fraction - state["last"] >= 0.005 or fraction >= 1.0:
            state["last"] = fraction
            bar.progress(min(max(fraction, 0.0), 1.0), text=message[:120])

    return progress


def _run(kind: str, job) -> None:
    """Run ``job(progress)`` -> report; keep its dict and Markdown, or show the error."""
    try:
        report = job(_progress_bar())
    except ValueError as err:
        st.error(plain(err))
        return
    except Exception as err:  # training failures (e.g. out of memory): a message, not a traceback
        st.error(plain(f"The comparison failed: {type(err).__name__}: {err}"))
        return
    st.session_state[RESULT_KEYS[kind]] = {"dict": report.to_dict(), "markdown": report.to_markdown()}


# --- results ----------------------------------------------------------------------------------

def _fmt(s: dict[str, float]) -> str:
    return f"{s['mean']:.3f} ± {s['std']:.3f}"


def _multitask_table(d: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for name, t in d["tasks"].items():
        lo, hi = t["delta_accuracy_ci"]
        for side in ("multi", "single"):
            rows.append({"task": name, "side": side, "train rows": t["n_train"],
                         "test rows": t["n_test"], "accuracy": _fmt(t[side]["accuracy"]),
                         "macro-F1": _fmt(t[side]["macro_f1"]),
                         "Δ accuracy (multi − single)": f"{t['delta_accuracy']:+.3f} "
                                                        f"[{lo:+.3f}, {hi:+.3f}]"})
    return pd.DataFrame(rows)


def _continual_table(d: dict[str, Any]) -> pd.DataFrame:
    a, b = d["A"]["name"], d["B"]["name"]
    rows = []
    for method in ("plain", "ewc"):
        s = d[method]["summary"]
        rows.append({"method": method, f"acc {a} after {a}": _fmt(s["acc_A_after_A"]),
                     f"acc {a} after {b}": _fmt(s["acc_A_after_B"]),
                     "forgetting": _fmt(s["forgetting"]), f"acc {b}": _fmt(s["acc_B"])})
    return pd.DataFrame(rows)


def _show(kind: str, table) -> None:
    result = st.session_state.get(RESULT_KEYS[kind])
    if not result:
        return
    st.dataframe(table(result["dict"]), hide_index=True, width="stretch")
    with st.expander("Report", expanded=False):
        st.markdown(result["markdown"])
    st.download_button("Download the JSON", json.dumps(result["dict"], indent=2),
                       file_name=f"{kind}.json", mime="application/json", key=f"{kind}-download")


# --- the tabs -----------------------------------------------------------------------------------

multi_tab, continual_tab = st.tabs(["Multi-task", "Continual learning"])

with multi_tab:
    st.caption("Each single-task model sees exactly the batches of its data set that the "
               "multi-task model sees (same rows, batches, order and epochs); the interval is a "
               "paired bootstrap over test items.")
    left, right = st.columns(2)
    with left:
        mt_a = _dataset_inputs("mt-a", "Task 1", "task1")
    with right:
        mt_b = _dataset_inputs("mt-b", "Task 2", "task2")
    mt_settings = _settings("mt")
    schedule = st.radio("Batch schedule", ["proportional", "round_robin"], horizontal=True,
                        key="mt-schedule")
    if st.button("Run the multi-task comparison", type="primary", key="mt-run"):
        def _multitask(progress):
            experiments.distinct_names([mt_a["name"], mt_b["name"]], "tasks")
            tasks = {spec["name"]: _load(spec, 0, mt_settings["max_rows"]) for spec in (mt_a, mt_b)}
            return experiments.run_multitask(tasks, _config(mt_settings),
                                             seeds=range(mt_settings["seeds"]), schedule=schedule,
                                             progress=progress)

        _run("multitask", _multitask)
    _show("multitask", _multitask_table)

with continual_tab:
    st.caption("Train on A, then on B, with a separate head per data set. Forgetting = accuracy "
               "on A after A − accuracy on A after B. EWC keeps the encoder near its weights "
               "after A, weighted by their Fisher information on A.")
    left, right = st.columns(2)
    with left:
        cl_a = _dataset_inputs("cl-a", "Data set A (first)", "A")
    with right:
        cl_b = _dataset_inputs("cl-b", "Data set B (second)", "B")
    cl_settings = _settings("cl")
    c1, c2 = st.columns(2)
    ewc_lambda = c1.number_input("EWC λ", 1e-3, 1e12, 1e4, format="%.0e", key="cl-lambda")
    fisher_samples = int(c2.number_input("Rows of A for the Fisher information", 1, 10_000, 100,
                                         key="cl-fisher"))
    if st.button("Run the continual-learning comparison", type="primary", key="cl-run"):
        def _continual(progress):
            experiments.distinct_names([cl_a["name"], cl_b["name"]], "data sets")
            a = _load(cl_a, 0, cl_settings["max_rows"])
            b = _load(cl_b, 0, cl_settings["max_rows"])
            return experiments.run_continual(a, b, _config(cl_settings),
                                             seeds=range(cl_settings["seeds"]),
                                             ewc_lambda=float(ewc_lambda),
                                             names=(cl_a["name"], cl_b["name"]),
                                             fisher_samples=fisher_samples, progress=progress)

        _run("continual", _continual)
    _show("continual", _continual_table)
