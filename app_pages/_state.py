"""What the pages share: the open project (cached resource) and its annotations (cached data)."""

from __future__ import annotations

import os

import pandas as pd
import streamlit as st

from curation.aggregation import consensus_labels
from curation.store import Project
from curation.workspace import curation_home, open_demo_project

__all__ = ["annotations", "consensus", "current_project", "current_url", "demo_path", "set_project"]

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
    frame = _open(url).annotations()
    frame.attrs["label_set"] = _open(url).label_set()
    return frame


def annotations() -> pd.DataFrame:
    """The current project's long frame, re-read only when its contents change."""
    project = current_project()
    return _annotations(current_url(), project.data_version())


@st.cache_data(show_spinner=False, max_entries=8)
def _consensus(url: str, version: tuple[int, ...]) -> pd.DataFrame:
    frame = _open(url).annotations()
    frame.attrs["label_set"] = _open(url).label_set()
    return consensus_labels(frame, labels=frame.attrs["label_set"])


def consensus() -> pd.DataFrame:
    """Consensus label and confidence per item (majority vote, Dawid-Skene on ties)."""
    project = current_project()
    imports, _decisions, n_items, n_annotations = project.data_version()
    return _consensus(current_url(), (imports, n_items, n_annotations))
