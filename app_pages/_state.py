"""What the pages share: the open project (cached resource) and its annotations (cached data)."""

from __future__ import annotations

import hmac
import logging
import os

import pandas as pd
import streamlit as st

from actions import identity, jobs, may
from actions.projects import (
    DEMO_NAME,
    Project,
    available_projects,
    data_version,
    demo_url,
    label_set,
    open_project,
)
from actions.projects import annotations as project_annotations
from actions.projects import consensus as consensus_of
from actions.projects import known_truth as project_truth
from actions.projects import next_step as project_next_step
from app_pages._text import plain

__all__ = ["annotations", "cancel_button", "consensus", "current_name", "current_project", "current_url",
           "demo_path", "identity_from_headers", "job_progress", "known_truth", "next_step_line",
           "set_project",
           "signed_in", "who_is_working"]

_KEY = "project_name"


def demo_path() -> str:
    return demo_url()


def _offered() -> dict[str, str]:
    """:func:`available_projects`; just the demo while the operator's ``projects.toml`` is broken
    (the Project page shows why)."""
    try:
        return available_projects()
    except ValueError:
        return {DEMO_NAME: demo_path()}


def _current() -> tuple[str, str]:
    """``(name, URL)`` of this session's project, from one listing of the offered projects: the
    session's name when it is offered, else ``$CURATION_URL``'s, else the demo."""
    offered = _offered()
    name = st.session_state.get(_KEY)
    if name not in offered:
        env = os.environ.get("CURATION_URL")
        name = next((n for n, url in offered.items() if env and url == env), DEMO_NAME)
        st.session_state[_KEY] = name
    return name, offered[name]


def current_name() -> str:
    """The name of the project this session works on (one of :func:`available_projects`)."""
    return _current()[0]


def current_url() -> str:
    """The current project's URL: only ever one the operator or ``$CURATION_HOME`` offers, never
    a path or URL a visitor typed."""
    return _current()[1]


def set_project(name: str) -> None:
    """Switch to a project by name; ``ValueError`` for a name that is not offered."""
    if name not in _offered():
        raise ValueError(f"there is no project called {name!r}; pick one of the list.")
    st.session_state[_KEY] = name


@st.cache_resource(show_spinner="Opening the project...")
def _open(url: str) -> Project:
    return open_project(url)


def current_project() -> Project:
    return _open(current_url())


@st.cache_data(show_spinner="Reading annotations...", max_entries=8)
def _annotations(url: str, version: tuple[int, ...]) -> pd.DataFrame:
    return project_annotations(_open(url))


def _contents(project: Project) -> tuple[int, int, int]:
    """What the annotations depend on: imports, items, annotations (not decisions, so that a
    review decision does not re-read every annotation)."""
    imports, _decisions, n_items, n_annotations = data_version(project)
    return imports, n_items, n_annotations


def annotations() -> pd.DataFrame:
    """The current project's long frame, re-read only when its contents change."""
    return _annotations(current_url(), _contents(current_project()))


@st.cache_data(show_spinner=False, max_entries=8)
def _consensus(url: str, version: tuple[int, ...]) -> pd.DataFrame:
    project = _open(url)
    return consensus_of(project_annotations(project), label_set(project))


def consensus() -> pd.DataFrame:
    """Consensus label and confidence per item (majority vote, Dawid-Skene on ties)."""
    return _consensus(current_url(), _contents(current_project()))


@st.cache_data(show_spinner=False, max_entries=8)
def _known_truth(url: str, version: tuple[int, ...]) -> tuple[pd.Series, str]:
    return project_truth(_open(url))


def known_truth() -> tuple[pd.Series, str]:
    """The items whose label is known (gold, else decisions) and where it comes from, re-read
    only when the project's contents or decisions change (:func:`actions.projects.known_truth`)."""
    return _known_truth(current_url(), data_version(current_project()))


#: The page each step of :func:`actions.projects.next_step` is done on.
_STEP_PAGES = {"project": ("app_pages/project.py", "Project"),
               "agreement": ("app_pages/agreement.py", "Agreement"),
               "review": ("app_pages/review.py", "Review"),
               "curated": ("app_pages/curated.py", "Curated data"),
               "retrain": ("app_pages/retrain.py", "Retrain and compare")}


def next_step_line(here: str) -> None:
    """Under a page's title: what the project needs next, with a link to the page for it (plain
    text when it is this page). Never stops the page: a project that cannot be read says so
    on its own page."""
    try:
        text, step = project_next_step(current_project())
    except Exception:  # noqa: BLE001 - a hint must not take a page down, but is not silent
        logging.getLogger(__name__).exception("the next step could not be worked out")
        return
    page, title = _STEP_PAGES[step]
    if step == here:
        st.caption(f"Next: {plain(text)}")
    else:
        st.page_link(page, label=f"Next: {text}")


# --------------------------------------------------------------------------- who is working
#: Header set by an authenticating reverse proxy (e.g. oauth2-proxy's X-Forwarded-Email).
IDENTITY_HEADER_VAR = "CURATION_IDENTITY_HEADER"
#: A secret only the proxy knows: it sends it in :data:`PROXY_SECRET_HEADER` with every request,
#: so a request that reached the app some other way cannot claim an identity by the header.
PROXY_SECRET_VAR = "CURATION_PROXY_SECRET"
PROXY_SECRET_HEADER = "X-Curation-Proxy-Secret"
#: The user of a single-person app started from a shell.
USER_VAR = "CURATION_USER"


def identity_from_headers(headers, environ=os.environ) -> tuple[str | None, str, str | None]:
    """``(name, how, problem)`` from the identity header, trusted only through the proxy.

    The header named by ``$CURATION_IDENTITY_HEADER`` is used only when ``$CURATION_PROXY_SECRET``
    is set too and the request carries that secret in ``X-Curation-Proxy-Secret`` (the proxy
    adds it; compared in constant time). Otherwise ``name`` is None and ``problem`` says why
    (the secret itself is never repeated). ``how`` is "" when no header is configured.
    """
    header = environ.get(IDENTITY_HEADER_VAR, "").strip()
    if not header:
        return None, "", None
    how = f"the {header} header"
    secret = environ.get(PROXY_SECRET_VAR, "")
    if not secret:
        return None, how, (f"{IDENTITY_HEADER_VAR} is set but {PROXY_SECRET_VAR} is not, so the "
                           f"{header} header is not trusted (anyone reaching the app could send "
                           "it). README: Team mode says how to set both.")
    sent = headers.get(PROXY_SECRET_HEADER) or ""
    if not hmac.compare_digest(sent.encode(), secret.encode()):
        return None, how, (f"this request did not come through the configured proxy (no valid "
                           f"{PROXY_SECRET_HEADER}), so its {header} header is ignored.")
    value = (headers.get(header) or "").strip()
    return (value or None), how, None


def signed_in() -> tuple[str | None, str]:
    """``(name, how)`` of the person using this session, from the first source that has one.

    1. Streamlit's own sign-in (``st.login``, configured in ``.streamlit/secrets.toml`` by whoever
       deploys the app: never in this repository): the user's e-mail.
    2. ``$CURATION_IDENTITY_HEADER``: the request header an authenticating proxy sets, trusted
       only with the proxy's secret (:func:`identity_from_headers`).
    3. ``$CURATION_USER``: the person who started this app for themselves.
    """
    if st.user.get("is_logged_in"):  # absent when no [auth] is configured
        return str(st.user.get("email") or st.user.get("name")), "sign-in"
    name, how, problem = identity_from_headers(st.context.headers)
    if how:
        return name, (how if problem is None else f"{how}: {problem}")
    user = os.environ.get(USER_VAR, "").strip()
    return (user or None), USER_VAR if user else ""


@st.fragment(run_every=2.0)
def job_progress(read_status, *, key: str) -> None:
    """A background job's progress bar, refreshed every 2 s, with its size notes and the
    Cancel button; when the job ends, the whole page is drawn again (with its result).
    ``read_status()`` gives the job's status (``None`` when there is none)."""
    status = read_status()
    if status is None or status["state"] not in jobs.ACTIVE:
        st.rerun()  # finished: redraw the whole page with the result
        return
    left = status.get("seconds_left")
    st.progress(min(float(status.get("fraction") or 0.0), 1.0),
                text=plain(str(status.get("message", ""))[:160]
                           + (f" - about {left:.0f} s left" if left else "")))
    for note in status.get("size_notes") or []:
        st.warning(plain(note))
    cancel_button(status, key=key)


def files_warning(status: dict | None) -> None:
    """Says so when a finished job's files (models, report, outputs) did not reach this host: a
    worker on another host kept them at an artifact URL this host could not read."""
    if status and status.get("files_error"):
        st.warning(plain("This job's files are not on this host, so its models and report files "
                         "are not offered below: " + str(status["files_error"])))


def cancel_button(status: dict, *, key: str) -> None:
    """A running job's Cancel button: for a lead (anyone in local mode), disabled for the rest;
    the action checks the role again and the audit log names who cancelled."""
    project = current_project()
    me = signed_in()[0]
    lead = may(project, me, "cancel a training job")
    if st.button("Cancel", key=key, disabled=not lead,
                 help=None if lead else "Only a lead of this team project can cancel a job."):
        try:
            jobs.cancel(project, status, actor=me)
        except (ValueError, OSError) as err:  # AccessError is an OSError (PermissionError)
            st.error(f"Not cancelled: {plain(err)}")
        else:
            st.info("Cancelling after the current step...")


def who_is_working(purpose: str, *, key: str) -> str | None:
    """The name to sign ``purpose`` with, shown in the sidebar; None when it cannot be known.

    In team mode (the project has members) it is the signed-in identity and nothing else: an
    annotator cannot type someone else's name. In local mode, the signed-in identity if any,
    else a name typed in the sidebar.
    """
    project = current_project()
    name, how = signed_in()
    who = identity(project, name)
    if who.team_mode:
        if who.may_sign:
            st.sidebar.success(f"Signed in as **{plain(name)}** ({who.role}, via {plain(how)}).")
            return name
        st.sidebar.error(
            (f"{plain(repr(name))} (via {plain(how)}) is not a member of this team project" if name
             else "This is a team project and no one is signed in"
             + (f" (via {plain(how)})" if how else ""))
            + f", so you cannot {purpose}. Sign in (README: Team mode) or ask a lead to add you.")
        return None
    if name:
        st.sidebar.info(f"Working as **{plain(name)}** (via {plain(how)}).")
        return name
    if key not in st.session_state:  # kept for the browser session: other pages, and reloads
        st.session_state[key] = st.session_state.get(_NAME_KEY) or _name_from_url()
    typed = st.sidebar.text_input(f"Your name (required to {purpose})", key=key,
                                  max_chars=NAME_MAX).strip()
    st.session_state[_NAME_KEY] = typed
    if typed:
        st.query_params[NAME_PARAM] = typed
    elif NAME_PARAM in st.query_params:
        del st.query_params[NAME_PARAM]
    return typed or None


#: Local mode keeps the typed name in the page address (``?name=...``), so a reload keeps it.
NAME_PARAM = "name"
NAME_MAX = 100
_NAME_KEY = "_local_name"


def _name_from_url() -> str:
    """The name a reload carried in the address, when it is a plausible name; else "".

    Only in local mode, where anyone may type any name anyway; a team project never reads it.
    """
    value = st.query_params.get(NAME_PARAM, "")
    value = value.strip() if isinstance(value, str) else ""
    if len(value) > NAME_MAX or any(not ch.isprintable() for ch in value):
        return ""
    return value
