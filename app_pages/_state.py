"""What the pages share: the open project (cached resource) and its annotations (cached data)."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from curation.aggregation import consensus_labels
from curation.store import Project
from curation.workspace import curation_home, open_demo_project, project_annotations, project_truth

__all__ = ["annotations", "consensus", "current_project", "current_url", "demo_path", "known_truth",
           "set_project", "signed_in", "who_is_working"]

_KEY = "project_url"


def demo_path() -> str:
    return str(curation_home() / "demo.sqlite")


def current_url() -> str:
    if _KEY not in st.session_state:
        st.session_state[_KEY] = os.environ.get("CURATION_URL") or demo_path()
    return st.session_state[_KEY]


def set_project(url: str) -> None:
    st.session_state[_KEY] = url


@st.cache_resource(show_spinner="Opening the project...")
def _open(url: str) -> Project:
    if url == demo_path():
        return open_demo_project(url)
    return Project(url)


def current_project() -> Project:
    return _open(current_url())


@st.cache_data(show_spinner="Reading annotations...", max_entries=8)
def _annotations(url: str, version: tuple[int, ...]) -> pd.DataFrame:
    return project_annotations(_open(url))


def annotations() -> pd.DataFrame:
    """The current project's long frame, re-read only when its contents change."""
    project = current_project()
    return _annotations(current_url(), project.data_version())


@st.cache_data(show_spinner=False, max_entries=8)
def _consensus(url: str, version: tuple[int, ...]) -> pd.DataFrame:
    frame = project_annotations(_open(url))
    return consensus_labels(frame, labels=frame.attrs["label_set"])


def consensus() -> pd.DataFrame:
    """Consensus label and confidence per item (majority vote, Dawid-Skene on ties)."""
    project = current_project()
    imports, _decisions, n_items, n_annotations = project.data_version()
    return _consensus(current_url(), (imports, n_items, n_annotations))


@st.cache_data(show_spinner=False, max_entries=8)
def _known_truth(url: str, version: tuple[int, ...]) -> tuple[pd.Series, str]:
    return project_truth(_open(url))


def known_truth() -> tuple[pd.Series, str]:
    """The items whose label is known (gold, else decisions) and where it comes from, re-read
    only when the project's contents or decisions change (:func:`curation.workspace.project_truth`)."""
    return _known_truth(current_url(), current_project().data_version())


# --------------------------------------------------------------------------- who is working
#: Header set by an authenticating reverse proxy (e.g. oauth2-proxy's X-Forwarded-Email).
IDENTITY_HEADER_VAR = "CURATION_IDENTITY_HEADER"
#: The user of a single-person app started from a shell.
USER_VAR = "CURATION_USER"


def signed_in() -> tuple[str | None, str]:
    """``(name, how)`` of the person using this session, from the first source that has one.

    1. Streamlit's own sign-in (``st.login``, configured in ``.streamlit/secrets.toml`` by whoever
       deploys the app: never in this repository): the user's e-mail.
    2. ``$CURATION_IDENTITY_HEADER``: the request header an authenticating proxy sets.
    3. ``$CURATION_USER``: the person who started this app for themselves.
    """
    if st.user.get("is_logged_in"):  # absent when no [auth] is configured
        return str(st.user.get("email") or st.user.get("name")), "sign-in"
    header = os.environ.get(IDENTITY_HEADER_VAR, "").strip()
    if header:
        value = (st.context.headers.get(header) or "").strip()
        return (value or None), f"the {header} header"
    user = os.environ.get(USER_VAR, "").strip()
    return (user or None), USER_VAR if user else ""


def who_is_working(purpose: str, *, key: str) -> str | None:
    """The name to sign ``purpose`` with, shown in the sidebar; None when it cannot be known.

    In team mode (the project has members) it is the signed-in identity and nothing else: an
    annotator cannot type someone else's name. In local mode, the signed-in identity if any,
    else a name typed in the sidebar.
    """
    project = current_project()
    name, how = signed_in()
    if project.team_mode:
        role = project.role(name)
        if name and role:
            st.sidebar.success(f"Signed in as **{name}** ({role}, via {how}).")
            return name
        st.sidebar.error(
            (f"{name!r} (via {how}) is not a member of this team project" if name else
             "This is a team project and no one is signed in")
            + f", so you cannot {purpose}. Sign in (README: Team mode) or ask a lead to add you.")
        return None
    if name:
        st.sidebar.info(f"Working as **{name}** (via {how}).")
        return name
    return st.sidebar.text_input(f"Your name (required to {purpose})", key=key).strip() or None
