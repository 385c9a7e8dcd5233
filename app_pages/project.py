"""Project page: open the demo or another project, upload and import an annotation file."""

from __future__ import annotations

import logging

import streamlit as st

from actions import may, projects
from actions.projects import (
    COLUMN_HELP,
    DEMO_NAME,
    FORMATS,
    available_projects,
    effective_limits,
    limit_variable,
    upload_limit_bytes,
)
from app_pages._state import (
    annotations,
    current_name,
    current_project,
    next_step_line,
    set_project,
    signed_in,
)
from app_pages._text import plain

st.title("Project")
next_step_line("project")


def _split(text: str) -> list[str] | None:
    return [x.strip() for x in text.split(",") if x.strip()] or None



with st.expander("Open a project", expanded=False):
    st.caption("The projects in this app's folder ($CURATION_HOME) and the ones its operator listed "
               "(README: Team mode, 'Which projects the app offers').")
    try:
        names = list(available_projects())
    except ValueError as err:  # a malformed projects.toml: the operator's to fix
        st.error(plain(err))
        names = [DEMO_NAME]
    col1, col2 = st.columns([3, 1])
    here = current_name()
    chosen = col1.selectbox("Project", names, index=names.index(here) if here in names else 0,
                            key="open_name")
    if col2.button("Open", width="stretch"):
        set_project(chosen)
        st.rerun()
    col1, col2 = st.columns([3, 1])
    new_name = col1.text_input("New project (a name: letters, digits, '_' or '-')", key="new_name")
    if col2.button("Create", width="stretch", disabled=not new_name.strip()):
        try:
            projects.create_project(new_name, actor=signed_in()[0])
        except ValueError as err:
            st.error(plain(err))
        else:
            set_project(new_name.strip())
            st.rerun()

try:
    project = current_project()
except Exception as err:  # a bad URL must not take the app down
    st.error(f"Could not open the project {plain(current_name())!r}: {plain(err)}. Open another "
             "one, or ask the operator to check its URL.")
    st.stop()

frame = annotations()
me, how = signed_in()
with st.expander("Team", expanded=False):
    members = projects.members(project)
    if members.empty:
        st.caption("Local mode: anyone using this app decides under the name they type. Add a first "
                   "lead to start team mode: then only members can decide (under their signed-in "
                   "name), and only leads export, retrain and manage members.")
    else:
        st.dataframe(members, hide_index=True, width="stretch")
    st.caption(plain(f"You are {me!r} (via {how}).") if me else
               "No one is signed in (README: Team mode says how identity is set).")
    with st.form("member"):
        c1, c2 = st.columns([3, 1])
        member = c1.text_input("Name (as they sign in, e.g. their e-mail)",
                               value="" if not members.empty else (me or ""))
        role = c2.selectbox("Role", ["annotator", "lead"], index=0 if not members.empty else 1)
        add = st.form_submit_button("Add or change member")
    if add:
        try:
            projects.set_member(project, member, role, actor=me)
        except (ValueError, PermissionError) as err:
            st.error(plain(err))
        else:
            st.success(plain(f"{member.strip()} is now a {role}."))
if "import_done" in st.session_state:
    st.success(st.session_state.pop("import_done"))
st.subheader("Current project")
st.caption(plain(f"{projects.display_url(project)} · {projects.schema_line(project)}"))
c1, c2, c3, c4 = st.columns(4)
c1.metric("Items", frame["item_id"].nunique())
c2.metric("Annotations", len(frame))
c3.metric("Annotators", frame["annotator_id"].nunique())
labels = projects.label_set(project)
c4.metric("Labels", len(labels))
if len(frame):
    st.text("Label set: " + ", ".join(labels))
    st.text(projects.language_line(frame))
    warning = projects.language_warning(frame)
    if warning:
        st.warning(plain(warning))
    st.dataframe(frame.head(200), hide_index=True, width="stretch")
else:
    st.info("This project is empty: import an annotation file below.")

st.subheader("Import annotations")
try:
    limit = upload_limit_bytes()
except ValueError as err:
    st.warning(f"{plain(err)} Using 200 MiB.")
    limit = 200 * 2**20
upload = st.file_uploader("Annotation file", type=["csv", "tsv", "jsonl", "json", "parquet"],
                          help="Long (item_id, text, annotator_id, label[, gold]), wide (one column "
                               "per annotator) or a Label Studio JSON export. At most "
                               f"{limit / 2**20:g} MiB. Only data formats are read: never pickle "
                               "or anything else that can run code.")
with st.expander("Limits on what a file may expand to"):
    try:
        limits = effective_limits()
    except ValueError as err:  # a malformed CURATION_MAX_* variable: imports say so too
        st.warning(plain(err))
    else:
        st.dataframe([{"limit": k, "value": f"{v:,}", "set by the operator with": limit_variable(k)}
                      for k, v in limits.items()], hide_index=True, width="stretch")
        st.caption("A file is checked against these before it is read in full (a small compressed "
                   "file can expand to gigabytes). The operator who runs the app raises one by "
                   "setting its environment variable before starting it; the command line takes "
                   "--limit max_rows=N.")
with st.form("import"):
    fmt = st.selectbox("Layout", FORMATS, help="auto: Label Studio for task JSON, long when "
                                                "annotator_id/label exist, wide otherwise")
    st.caption("Column mapping: the column in your file for each field (leave as is if it matches).")
    cols = st.columns(len(COLUMN_HELP))
    mapping = {name: cols[i].text_input(name, value=name, help=COLUMN_HELP[name])
               for i, name in enumerate(COLUMN_HELP)}
    declared = st.text_input("Declared label set (comma separated, optional)",
                             value=", ".join(labels))
    annotator_cols = st.text_input("Wide layout: annotator columns (comma separated, optional)")
    encoding = st.text_input("Encoding (optional)", placeholder="utf-8")
    on_conflict = st.radio("If an annotator's stored label differs", ["error", "keep", "replace"],
                           horizontal=True, help="replace keeps the old label in the audit log")
    may_import = may(project, me, "import annotations")
    if not may_import:
        st.caption("Only a lead of this team project can import: an import can replace every "
                   "annotator's labels and add labels to the label set.")
    submitted = st.form_submit_button("Import", type="primary", disabled=upload is None or not may_import)

if submitted and upload is not None:
    progress = st.progress(0.0, text="Validating...")
    try:
        result = projects.import_file(
            project, upload, name=upload.name, format=fmt, on_conflict=on_conflict,
            columns={v.strip(): k for k, v in mapping.items() if v.strip() and v.strip() != k},
            label_set=_split(declared), annotator_columns=_split(annotator_cols),
            encoding=encoding.strip() or None, max_bytes=limit, actor=me,
            progress=lambda f, _msg: progress.progress(f, text=f"Importing {plain(upload.name)}..."))
    except PermissionError as err:  # the library's role check (AccessError)
        progress.empty()
        st.error(f"Nothing was imported. {plain(err)}")
    except ValueError as err:
        progress.empty()
        st.error(f"Nothing was imported. {plain(err)}")
    except Exception as err:  # a bug, not bad input: still never take the app down or write half
        progress.empty()
        logging.getLogger(__name__).exception("import of %s failed", upload.name)
        st.error(plain(f"Nothing was imported: {upload.name} could not be read "
                       f"({type(err).__name__}: {err}).") + " The project is unchanged. Please "
                 "report this file's shape to us.")
    else:
        # the counts above were read before the import: draw the page again at once, with
        # this message kept for it
        st.session_state["import_done"] = (
            f"Imported {plain(upload.name)}: {result.n_new_items} new items, "
            f"{result.n_new_annotations} new annotations, {result.n_unchanged} unchanged, "
            f"{result.n_replaced} replaced.")
        st.rerun()
