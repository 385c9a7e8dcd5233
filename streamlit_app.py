"""Entry point: ``streamlit run streamlit_app.py``. Only builds the navigation and runs it.

The pages have no icons: Streamlit fetches ``:material/...:`` icons from fonts.gstatic.com, and
the app sends no request outside itself (tests/test_browser.py, test e); emoji need a font the
machine may lack.
"""

import streamlit as st

st.set_page_config(page_title="Curation", layout="wide")
st.navigation([
    st.Page("app_pages/project.py", title="Project", default=True),
    st.Page("app_pages/agreement.py", title="Agreement"),
    st.Page("app_pages/review.py", title="Review"),
    st.Page("app_pages/augment.py", title="Augment"),
    st.Page("app_pages/curated.py", title="Curated data"),
    st.Page("app_pages/retrain.py", title="Retrain and compare"),
    st.Page("app_pages/experiments.py", title="Experiments"),
]).run()
