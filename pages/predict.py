"""Predict: placeholder until the prediction API lands."""

import streamlit as st

st.title("Predict")
st.info(
    "Coming next: drag and drop dermoscopic images to see the probability of each of the "
    "9 classes, the model's calibrated confidence, a Grad-CAM heatmap and an "
    "out-of-distribution warning. Research and teaching only, never a diagnosis."
)
