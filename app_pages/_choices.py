"""Server resources offered by name: models, glossaries and rules files.

A visitor never types a server path or a model id: they pick a name the operator made
available (``actions.projects.available_models`` / ``available_files``: folders in
``$CURATION_HOME`` and the ``[models]`` table of its ``projects.toml``), or upload a small YAML
file, which is read as data (``yaml.safe_load``) and never saved under a name the visitor chose.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from actions.projects import BUNDLED_MODEL, available_files, available_models
from app_pages._text import plain

#: The choice that means "the YAML file uploaded below".
UPLOADED = "the file uploaded below"
#: Largest YAML upload read (a glossary or rules file is a few KiB).
MAX_YAML_BYTES = 256 * 1024
_HOW = ("The operator adds {what} as files in $CURATION_HOME/{folder} (README: 'Which projects the "
        "app offers').")


def model_choice(label: str, *, key: str, container: Any = st, help: str | None = None,
                 bundled: bool = True) -> str | None:
    """A selectbox of the offered models; returns the model (None: the bundled MiniLM, offered
    when ``bundled``; a fill-mask or translation model is never it)."""
    try:
        models = available_models()
    except ValueError as err:  # a malformed projects.toml: say so, still offer the bundled model
        st.warning(plain(err))
        models = {BUNDLED_MODEL: None}
    if not bundled:
        models.pop(BUNDLED_MODEL, None)
        if not models:
            container.selectbox(label, ["none offered"], key=key, disabled=True, help=_HOW.format(
                what="models (save_pretrained folders)", folder="models"))
            return None
    name = container.selectbox(label, list(models), key=key, format_func=plain,
                               help=help or ("Models the operator made available: folders in "
                                             "$CURATION_HOME/models and the [models] table of its "
                                             "projects.toml."))
    return models[name]


def file_choice(kind: str, label: str, *, key: str, none: str | None = None,
                default: str | None = None) -> str:
    """A selectbox of the offered glossaries or rules (``kind``), with ``none`` first when given
    and :data:`UPLOADED` last; returns the chosen name (see :func:`chosen_file`)."""
    try:
        names = list(available_files(kind))
    except ValueError as err:
        st.warning(plain(err))
        names = []
    options = ([none] if none else []) + names + [UPLOADED]
    index = options.index(default) if default in options else 0
    return st.selectbox(label, options, index=index, key=key, format_func=plain,
                        help=_HOW.format(what=kind, folder=kind))


def chosen_file(kind: str, name: str) -> str:
    """The server path of an offered file chosen by name (never a path the visitor typed)."""
    files = available_files(kind)
    if name not in files:
        raise ValueError(f"{name!r} is not one of the {kind} this app offers "
                         f"({', '.join(files) or 'none'}).")
    return files[name]


def uploaded_text(upload: Any) -> str:
    """An uploaded YAML file's text; ValueError naming the file and the fix."""
    if upload is None:
        raise ValueError(f"'{UPLOADED}' is chosen but no file is uploaded: upload a YAML file, or "
                         "choose another.")
    data = upload.getvalue()
    if len(data) > MAX_YAML_BYTES:
        raise ValueError(f"{upload.name}: {len(data):,} bytes, over the {MAX_YAML_BYTES:,} read for a "
                         "YAML file; a glossary or rules file is a few KiB.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{upload.name}: is not UTF-8 text; save it as UTF-8.") from None


def uploaded_yaml(upload: Any) -> Any:
    """An uploaded YAML file's content as plain data (``yaml.safe_load``)."""
    import yaml

    text = uploaded_text(upload)
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{upload.name}: is not valid YAML ({err}); fix the file.") from None
