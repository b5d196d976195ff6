"""The Explore page's tabs: class distribution, gallery, audit, review queue, linked views,
sizes and colours, and import, with their caches in :mod:`skinlab.app.caches`.
pages/explore.py lays them out; everything here draws with Streamlit and reads through the
library.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from skinlab.app import caches, charts, gallery, linked_views, review_view, ui, uploads
from skinlab.app.shortcut_view import render_shortcuts
from skinlab.core.classes import class_info
from skinlab.core.confine import confine
from skinlab.core.errors import SkinlabError
from skinlab.data.importer import import_dataset

TABS = ("Distribution", "Gallery", "Audit", "Review", "Linked views", "Sizes & colours", "Import")
GRID = 6  # thumbnails per row at full width
GROUPS_PER_PAGE = 6


def _grid(
    rows: pd.DataFrame, captions: list[str], columns: int = GRID, min_width: int = 100
) -> None:
    """Thumbnails of ``rows``, each with its caption as :func:`ui.literal` text (captions name
    files and class folders)."""
    with st.grid(columns, min_column_width=min_width):
        for path, digest, caption in zip(rows["path"], rows["content_hash"], captions, strict=True):
            text = ui.literal(caption)
            if (image := caches.thumbnail(path, digest)) is None:
                st.caption(f"{text}: this file no longer decodes; rescan the dataset.")
            else:
                st.image(image, caption=text, width="stretch")


def summary(dataset, report) -> None:
    split, worst = next(((s, i) for s, i in report.imbalance.items() if i.ratio), ("–", None))
    values: dict[str, int | str] = {
        "Classes": len(dataset.class_names),
        "Images": len(dataset.images()),
        f"Imbalance ({split})": f"{worst.ratio:.1f}×" if worst else "–",
        "Label conflicts": len(report.label_conflicts),
        "Train/Test leaks": len(report.cross_split_leaks),
        "Unreadable files": len(report.unreadable),
    }
    for col, (label, value) in zip(st.columns(len(values)), values.items(), strict=True):
        col.metric(label, value)


def _distribution(dataset, report) -> None:
    percent = st.toggle("Show percentages of each split", key="counts_percent")
    counts = dataset.counts()
    st.plotly_chart(ui.plain_figure(caches.counts_figure(counts, percent)), width="stretch")
    for sentence in gallery.imbalance_sentences(report):
        st.caption(sentence)
    st.dataframe(charts.class_counts_table(counts, percent=percent), width="stretch")


def _reshuffle() -> None:
    st.session_state["gallery_seed"] = st.session_state.get("gallery_seed", 0) + 1


def _gallery(dataset, report) -> None:
    seed = st.session_state.get("gallery_seed", 0)
    st.subheader("One of each class")
    overview = gallery.one_per_class(dataset.table, dataset.class_names, seed=seed)
    infos = [class_info(label) for label in overview["label"]]
    _grid(overview, [f"{i.display_name} ({i.risk_tier})" for i in infos])
    st.subheader("Class gallery")
    per_class = dataset.images()["label"].value_counts()
    pick, where, many, shuffle = st.columns([3, 2, 3, 2], vertical_alignment="bottom")
    label = pick.selectbox(
        "Class",
        dataset.class_names,
        format_func=lambda c: ui.plain(
            f"{class_info(c).display_name} ({per_class.get(c, 0)} images)"
        ),
        key="gallery_class",
    )
    split = where.selectbox("Split", ["All splits", *dataset.splits], key="gallery_split")
    n = many.slider("Images", 4, 48, 12, step=4, key="gallery_n")
    shuffle.button("Reshuffle", icon=":material/shuffle:", on_click=_reshuffle, width="stretch")
    rows = gallery.sample_images(
        dataset.table, label=label, split=None if split == "All splits" else split, n=n, seed=seed
    )
    _grid(rows, [gallery.caption(row) for _, row in rows.iterrows()])


def _audit(dataset, report) -> None:
    found = gallery.problem_groups(report)
    kind = st.radio(
        "Same picture, several files",
        list(found),
        format_func=lambda k: f"{k} ({len(found[k])})",
        horizontal=True,
        key="audit_kind",
    )
    groups = found[kind]
    st.caption(gallery.PROBLEM_KINDS[kind])
    if not groups:
        st.success(f"No {kind.lower()} found.")
    else:
        members = gallery.duplicate_members(dataset.root, groups)
        pages = -(-len(groups) // GROUPS_PER_PAGE)
        page = st.pagination(pages, key=f"audit_page_{kind}") if pages > 1 else 1
        first = (page - 1) * GROUPS_PER_PAGE + 1
        with st.grid(3, min_column_width=260):
            for number in range(first, min(first + GROUPS_PER_PAGE, len(groups) + 1)):
                files = members[members["group"] == number]
                with st.container(border=True):
                    labels = ui.literal(files["labels"].iloc[0])  # class folder names
                    st.markdown(f"**{number}/{len(groups)}** · {labels}")
                    _grid(files, [f"{f}/" for f in files["folder"]], len(files), min_width=60)
                    names = dict.fromkeys(files["relpath"].map(gallery.file_name))
                    st.caption(ui.literal(" = ".join(names)))
        with st.expander(f"All {len(groups)} as a table, with their folders"):
            st.dataframe(members[["group", "split", "label", "relpath"]], hide_index=True)
    render_shortcuts(dataset)
    st.subheader("Unreadable files")
    if report.unreadable:
        st.dataframe(pd.DataFrame(report.unreadable), hide_index=True, width="stretch")
    else:
        st.success("Every image file decodes.")
    if report.notes:
        st.subheader("Skipped or suspicious")
        st.dataframe(pd.DataFrame(report.notes), hide_index=True, width="stretch")


def _review(dataset, report) -> None:
    st.caption(
        "Every image with a reason to doubt it, most serious first. Relabel, exclude or keep: "
        "each decision makes a new dataset version to train on (Train page), never a change "
        "to your files."
    )
    review_view.render_review(dataset, thumb=caches.thumbnail)


def _send_to_review(relpaths: list[str]) -> None:
    st.session_state[review_view.SELECTION_KEY] = set(relpaths)
    st.session_state["explore_tab"] = "Review"


def _linked(dataset, report) -> None:
    frame = caches.linked_frame(dataset.table)
    st.caption(
        f"Up to {linked_views.PER_CLASS} images of each class. Click a class bar or drag across "
        "a histogram: the other charts and the gallery below follow (double-click clears)."
    )
    chart = linked_views.linked_chart(frame)
    event = st.altair_chart(chart, on_select="rerun", key="linked_chart")
    rows = linked_views.selected(frame, event.selection)
    text, send = st.columns([4, 1], vertical_alignment="center")
    text.markdown(
        # The selection comes back from the browser: class names, or whatever a visitor sends.
        f"**{len(rows)} of {len(frame)} images** · "
        + ui.literal(linked_views.describe(event.selection))
    )
    send.button(
        "Review these",
        icon=":material/fact_check:",
        key="linked_review",
        disabled=rows.empty,
        on_click=_send_to_review,
        args=(list(rows["relpath"]),),
        help="Open them in the Review tab, with any reason to doubt each one.",
        width="stretch",
    )
    shown = rows.head(GRID * 3)
    _grid(
        shown,
        [f"{label} · {split}" for label, split in zip(shown["label"], shown["split"], strict=True)],
    )


def _sizes_and_colours(dataset, report) -> None:
    stats = report.stats
    if not stats["images"]:
        st.info("No readable image to measure.")
        return
    st.subheader("Image sizes")
    tally = ", ".join(f"{k} {n}" for k, n in {**stats["modes"], **stats["formats"]}.items())
    st.caption(
        f"{stats['distinct_sizes']} distinct size(s); modes and formats: {ui.literal(tally)}. Every image is "
        "resized to the model's square input, so unusual aspect ratios get squashed."
    )
    size_figure, common = caches.sizes(dataset.table)
    if stats["distinct_sizes"] > 1:
        st.plotly_chart(ui.plain_figure(size_figure), width="stretch")
    st.dataframe(common, hide_index=True, width=320)
    st.subheader("Colours per class")
    profile, means_figure, histogram_figure = caches.colour_profile(dataset.table)
    st.caption(
        f"From up to {caches.COLOUR_SAMPLE} images per class. A class that differs only in colour or "
        "brightness invites a model to learn the camera rather than the lesion."
    )
    st.plotly_chart(ui.plain_figure(means_figure), width="stretch")
    st.markdown("**The average image of each class**")
    with st.grid(max(GRID, len(profile.mean_images)), min_column_width=80):
        for label, mean in profile.mean_images.items():
            st.image(mean, caption=ui.literal(class_info(label).display_name), width="stretch")
    st.plotly_chart(ui.plain_figure(histogram_figure), width="stretch")


def import_tab() -> None:
    if done := st.session_state.pop("import_done", None):
        st.success(done, icon=":material/check_circle:")
    st.write(
        "Bring your own images: a zip or folder laid out as `Train/<class name>/*.jpg` "
        "(and optionally `Test/…`). It is copied into the data folder and checked first."
    )
    upload = st.file_uploader("Upload a dataset zip", type="zip", key="import_zip")
    path = st.text_input(
        "…or the path of a zip file or dataset folder on this machine",
        key="import_path",
        help="Use this for zips larger than the upload limit.",
    ).strip()
    name = st.text_input("Name (optional)", key="import_name", placeholder="the zip's name")
    if not st.button("Import", type="primary", disabled=not (upload or path)):
        return
    bar = st.progress(0.0, text="Starting…")

    def progress(fraction: float, text: str) -> None:
        bar.progress(fraction, text=text)

    try:
        if upload is not None:
            root = uploads.import_upload(upload.name, upload, name=name, progress=progress)
        else:
            source = confine(path, "The zip or folder to import")
            root = import_dataset(source, name=name.strip() or None, progress=progress)
    except SkinlabError as exc:
        bar.empty()
        ui.show_error(exc)
        return
    st.session_state["import_done"] = (
        f"Imported **{ui.literal(root.name)}**; it is now in the sidebar's Dataset list: pick it to explore it."
    )
    st.rerun()  # so the sidebar lists the new dataset


#: The renderer of each tab of :data:`TABS` but the last (Import needs no dataset).
RENDERERS = (_distribution, _gallery, _audit, _review, _linked, _sizes_and_colours)
