"""Curated data: consensus with decisions applied, what changed (who, why), and the export."""

from __future__ import annotations

import streamlit as st

from actions import export, may
from actions.export import STATUSES
from app_pages._state import annotations, current_project, next_step_line, signed_in
from app_pages._text import plain

st.title("Curated data")
next_step_line("curated")
project = current_project()
frame = annotations()
if frame.empty:
    st.info("The project has no annotations yet: import a file on the Project page.")
    st.stop()

everything = export.curated(project, frame)
counts = everything["status"].value_counts()
cols = st.columns(len(STATUSES))
for col, (status, meaning) in zip(cols, STATUSES.items()):
    col.metric(status, int(counts.get(status, 0)), help=meaning)

dataset, changed, export_tab, history = st.tabs(["Dataset", "Changes", "Export", "Past exports"])
with dataset:
    status = st.multiselect("Status", list(STATUSES), default=[s for s in STATUSES if s != "dropped"])
    shown = everything[everything["status"].isin(status)]
    st.dataframe(shown.drop(columns=["gold"]), hide_index=True, width="stretch")
    st.caption(f"{len(shown)} of {len(everything)} items. The latest effective decision per item "
               "wins; every decision stays in the log.")

with changed:
    log = export.change_log(project, everything)
    if log.empty:
        st.info("No decisions yet: review flagged items on the Review page.")
    else:
        st.dataframe(log, hide_index=True, width="stretch")

with export_tab:
    me = signed_in()[0]
    if not may(project, me, "export splits"):
        st.warning("In this team project only a lead exports splits; you are "
                   f"{plain(me) if me else 'not signed in'}.")
    n_open, n_flagged = export.open_problems(project)
    if n_flagged and n_open / n_flagged > 0.5:
        st.warning(f"{n_open:,} of {n_flagged:,} flagged items are still open: the export gives them "
                   "their consensus label, which the flags doubt. Review them first (Review page), "
                   "or export anyway.")
    elif n_open:
        st.caption(f"{n_open:,} of {n_flagged:,} flagged items are still open (consensus label "
                   "exported for them).")
    with st.form("export"):
        c1, c2, c3 = st.columns(3)
        test_size = c1.number_input("Test share", 0.0, 0.5, 0.15, 0.05)
        val_size = c2.number_input("Validation share", 0.0, 0.5, 0.15, 0.05)
        seed = int(c3.number_input("Seed", 0, 2**31 - 1, 0))
        formats = st.multiselect("Formats", list(export.FORMATS), default=["csv"],
                                 help="hf: a Hugging Face DatasetDict (save_to_disk) in the "
                                      "folder hf/, label a ClassLabel, the data card as its "
                                      "README; load it with datasets.load_from_disk")
        ambiguous = st.checkbox("Include items marked ambiguous")
        excel_safe = st.checkbox("Excel-safe CSV", help="Prefix text cells that begin with =, +, -, "
                                 "@ with ' so a spreadsheet shows them instead of running them as "
                                 "formulas. Leave off for files that code reads (exact text).")
        use_model = st.checkbox("Group near-duplicates by meaning too (embeddings)", value=True)
        go = st.form_submit_button("Export", type="primary")
    if go:
        try:
            with st.spinner("Splitting and writing..."):
                result = export.export(project, use_model=use_model, formats=formats,
                                       test_size=test_size, val_size=val_size, seed=seed,
                                       include_ambiguous=ambiguous, excel_safe=excel_safe, actor=me)
        except (ValueError, PermissionError) as err:
            st.error(plain(err))
        else:
            st.success(plain(f"Wrote {len(result.files)} files to {result.out_dir} (a new version: "
                             "earlier exports are kept, see Past exports)"))
            formulas = result.card["formula_cells"]
            if formulas["cells"] and not excel_safe:
                st.warning(f"{formulas['cells']} cell(s) begin with =, +, -, @, a tab or a "
                           "carriage return: a spreadsheet program may run them as formulas. The "
                           "files keep the exact text; tick Excel-safe CSV to neutralise them.")
            st.dataframe(result.splits.groupby(["split", "label"]).size().unstack(fill_value=0))
            power = (result.card or {}).get("test_power")
            if power:
                st.info(plain("What the test split can show: " + power["note"]))
            name, content = export.export_zip(project, result)
            st.download_button("Download splits and data card (.zip)", content, file_name=name,
                               mime="application/zip")
            card = export.data_card(result)
            if card is not None:
                with st.expander("Data card"):
                    st.markdown(card)

with history:
    past = export.versions(project)
    if past.empty:
        st.info("No export yet: each export is kept as a version of its own (v0001, v0002, ...).")
    else:
        st.dataframe(past.assign(version=past["version"].map("v{:04d}".format))
                     .drop(columns=["folder"]), hide_index=True, width="stretch")
        done = [int(v) for v in past.loc[past["problem"] == "", "version"]]
        if done:
            one = st.selectbox("Download", done, format_func="v{:04d}".format, key="past-download")
            try:
                name, content = export.version_zip(project, one)
            except ValueError as err:
                st.error(plain(err))
            else:
                st.download_button(f"Download v{one:04d} (.zip)", content, file_name=name,
                                   mime="application/zip", key="past-download-button")
        if len(done) >= 2:
            st.caption("Compare two exports: which items were added, removed, relabelled or moved "
                       "to another split.")
            c1, c2 = st.columns(2)
            old = c1.selectbox("Older", done, index=1, format_func="v{:04d}".format, key="diff-old")
            new = c2.selectbox("Newer", done, index=0, format_func="v{:04d}".format, key="diff-new")
            try:
                diff = export.compare_versions(project, old, new)
            except ValueError as err:
                st.error(plain(err))
            else:
                st.info(plain(diff.summary()))
                for title, table in (("Added", diff.added), ("Removed", diff.removed),
                                     ("Relabelled", diff.relabelled), ("Moved", diff.moved)):
                    if len(table):
                        with st.expander(f"{title} ({len(table):,})"):
                            st.dataframe(table, hide_index=True, width="stretch")
