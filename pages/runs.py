"""Runs: placeholder until training runs exist."""

import streamlit as st

st.title("Compare runs")
st.info(
    "Coming next: overlay learning curves of your training runs, compare balanced accuracy, "
    "melanoma sensitivity and calibration, and browse misclassified images."
)
