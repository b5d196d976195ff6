"""Explore: how many images each class has, and what the audit found."""

import streamlit as st

from skinlab import catalog, charts, ui
from skinlab.errors import SkinlabError


def page() -> None:
    st.title("Explore the dataset")
    root = ui.active_dataset_root()
    if not root:
        st.info("Type a dataset folder in the sidebar, or pick the demo dataset.")
        return
    st.caption(f"Dataset: {catalog.describe(root)}")
    try:
        with st.spinner("Scanning the dataset…"):
            dataset = ui.load_dataset(root)
            report = ui.load_audit(root)
    except SkinlabError as exc:
        ui.show_error(exc)
        return

    counts = dataset.counts()
    cols = st.columns(4)
    cols[0].metric("Classes", len(dataset.class_names))
    cols[1].metric("Images", int(counts.to_numpy().sum()))
    train = report.imbalance.get("Train") or next(iter(report.imbalance.values()), None)
    ratio = f"{train.ratio:.1f}×" if train and train.ratio else "–"
    cols[2].metric("Imbalance (largest / smallest)", ratio)
    cols[3].metric("Unreadable files", len(report.unreadable))

    percent = st.toggle("Show percentages of each split", key="counts_percent")
    st.plotly_chart(charts.class_counts_figure(counts, percent=percent), width="stretch")
    st.dataframe(counts, width="stretch")

    st.subheader("Data audit")
    st.write(
        f"{len(report.exact_duplicates)} groups of exact duplicates, "
        f"{len(report.label_conflicts)} label conflicts, "
        f"{len(report.cross_split_leaks)} images shared between splits."
    )
    for note in report.notes:
        st.caption(f"{note.path}: {note.reason}")


page()
