"""Entry point: ``streamlit run streamlit_app.py``. Only builds the navigation and runs it."""

import streamlit as st

st.set_page_config(page_title="Curation", layout="wide")
st.navigation([
    st.Page("app_pages/project.py", title="Project", icon=":material/folder_open:", default=True),
    st.Page("app_pages/agreement.py", title="Agreement", icon=":material/groups:"),
    st.Page("app_pages/review.py", title="Review", icon=":material/rule:"),
    st.Page("app_pages/augment.py", title="Augment", icon=":material/library_add:"),
    st.Page("app_pages/curated.py", title="Curated data", icon=":material/dataset:"),
    st.Page("app_pages/retrain.py", title="Retrain and compare", icon=":material/model_training:"),
    st.Page("app_pages/experiments.py", title="Experiments", icon=":material/science:"),
]).run()
