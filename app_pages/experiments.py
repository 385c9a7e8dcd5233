"""Experiments: multi-task training and continual learning on two uploaded labelled data sets.

Each data set is a CSV with columns ``text`` and ``label``, with its own test CSV or a held-out
share (stratified, seeded). The comparison runs as a background job of the current project (the
page stays usable, a reload finds it, a lead can cancel it); the result is shown as Markdown and
tables, with a warning for any model that learned only the most frequent class, and can be
downloaded as JSON. Bad files show the validation message, never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from actions.jobs import ACTIVE
from actions import experiments
from app_pages._choices import model_choice
from app_pages._state import current_project, files_warning, job_progress, signed_in
from app_pages._text import plain

st.title("Experiments")
st.caption("Runs in the background as a job of the current project, like a retrain: the page "
           "stays usable and a reload finds the result. Two labelled data sets (CSV with columns text and label), a shared encoder (the "
           "bundled MiniLM unless you pick another model the operator offers). **Multi-task**: one encoder with "
           "a head per data set, trained on both at once, against one model per data set with the "
           "same budget. **Continual learning**: train on A, then on B; how much of A is "
           "forgotten, with plain fine-tuning and with elastic weight consolidation (EWC).")

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


def _start(kind: str, make) -> None:
    """Read the files and start the job (``make()`` -> the start arguments), or say why not."""
    try:
        experiments.start(current_project(), actor=signed_in()[0], experiment=kind, **make())
    except (ValueError, OSError) as err:  # AccessError is an OSError (PermissionError)
        st.error(plain(err))
    else:
        st.rerun()


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
    """The latest experiment job of this kind: its progress, its result or why it stopped."""
    status = experiments.latest(current_project(), kind)
    if status is None:
        return
    if status["state"] in ACTIVE:
        job_progress(lambda: experiments.latest(current_project()), key="cancel-experiment")
        return
    if status["state"] != "done":
        st.warning(plain(f"The latest experiment {status['state']}: {status.get('message', '')}"))
        return
    files_warning(status)
    result = status.get("report") or {}
    for warning in result.get("warnings") or []:
        st.warning(plain(warning))
    st.dataframe(table(result), hide_index=True, width="stretch")
    markdown = Path(status["folder"]) / "report.md" if status.get("folder") else None
    if markdown is not None and markdown.is_file():
        with st.expander("Report", expanded=False):
            st.markdown(markdown.read_text(encoding="utf-8"))
    st.download_button("Download the JSON", json.dumps(result, indent=2),
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
        def _multitask():
            experiments.distinct_names([mt_a["name"], mt_b["name"]], "tasks")
            return {"data": {spec["name"]: _load(spec, 0, mt_settings["max_rows"])
                             for spec in (mt_a, mt_b)},
                    "config": _config(mt_settings), "seeds": range(mt_settings["seeds"]),
                    "options": {"schedule": schedule}}

        _start("multitask", _multitask)
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
        def _continual():
            experiments.distinct_names([cl_a["name"], cl_b["name"]], "data sets")
            return {"data": {cl_a["name"]: _load(cl_a, 0, cl_settings["max_rows"]),
                             cl_b["name"]: _load(cl_b, 0, cl_settings["max_rows"])},
                    "config": _config(cl_settings), "seeds": range(cl_settings["seeds"]),
                    "options": {"ewc_lambda": float(ewc_lambda),
                                "fisher_samples": fisher_samples}}

        _start("continual", _continual)
    _show("continual", _continual_table)
