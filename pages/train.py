"""Train: placeholder until the training engine lands."""

import streamlit as st

st.title("Train a model")
st.info(
    "Coming next: pick a backbone (the notebook's CNN, a stronger from-scratch CNN, or "
    "transfer learning), augmentation, dropout and imbalance handling, then watch live "
    "loss and accuracy curves. Until then, `python -m skinlab --help` lists what is scriptable."
)
