"""Predict: drop images (or pick Test samples) and see what the model thinks, how sure it
is, where it looked and when not to trust it. Research and teaching only."""

import streamlit as st

from skinlab.app import catalog, quick_model, ui
from skinlab.app import predict_view as pv
from skinlab.app.familiarity_view import threshold_control
from skinlab.core.errors import SkinlabError
from skinlab.model.views import MAX_TTA


def sample_picker() -> list[pv.Item]:
    """Pick images from the active dataset's Test split (their true class is known)."""
    root = ui.active_dataset_root()
    if not root:
        st.info("Pick a dataset in the sidebar to choose Test images from it.")
        return []
    try:
        dataset = ui.load_dataset(root)
    except SkinlabError as exc:
        ui.show_error(exc)
        return []
    options = pv.sample_options(dataset)
    if not options:
        st.info("The active dataset has no readable Test images.")
        return []
    st.caption(f"Test split of {ui.literal(catalog.describe(root))}: {len(options)} images.")
    pv.keep_valid_samples(options)
    count, pick = st.columns([1, 3], vertical_alignment="bottom")
    count.number_input("How many", 1, 16, 4, key="predict_random_n")
    pick.button(
        "Random samples",
        icon=":material/casino:",
        key="predict_random",
        on_click=pv.pick_random_samples,
        args=(list(options), "predict_random_n"),
    )
    chosen = st.multiselect(
        "Test images",
        list(options),
        format_func=lambda rel: pv.sample_label(rel, options[rel]),
        key=pv.SAMPLES_KEY,
    )
    return pv.sample_items(dataset, chosen)


def page() -> None:
    st.title("Predict")
    run_id = ui.active_model()
    if run_id is None:
        quick_model.render_quick_model()
        return
    if st.session_state.pop(quick_model.QUICK_DONE_KEY, None) == run_id:
        st.success("Your quick model is ready and active: drop images or pick Test samples.")
    try:
        with st.spinner("Loading the model…"):
            predictor = pv.predictor_for(run_id)
    except SkinlabError as exc:
        ui.show_error(exc)
        return
    st.caption(pv.model_caption(predictor))
    threshold = threshold_control(predictor)

    upload_tab, sample_tab, camera_tab = st.tabs(["Upload", "Test samples", "Camera"])
    with upload_tab:
        files = st.file_uploader(
            "Drop dermoscopic images (one or many)",
            type=pv.UPLOAD_TYPES,
            accept_multiple_files=True,
            key="predict_uploads",
        )
    with sample_tab:
        samples = sample_picker()
    with camera_tab:
        # Off by default so the browser does not ask for the camera on every visit.
        use_camera = st.toggle("Use the camera", key="predict_camera_on")
        shot = st.camera_input("Take a picture", key="predict_camera") if use_camera else None

    tta_col, cam_col, opacity_col = st.columns(3)
    tta = tta_col.slider(
        "Test-time augmentation views",
        1,
        MAX_TTA,
        1,
        key="predict_tta",
        help="Average over flipped and rotated copies; the spread shows how stable the answer is.",
    )
    gradcam = cam_col.toggle("Show Grad-CAM", value=True, key="predict_gradcam")
    opacity = opacity_col.slider(
        "Grad-CAM opacity", 0.0, 1.0, 0.4, 0.05, key="predict_opacity", disabled=not gradcam
    )

    try:
        uploads = pv.uploaded_items(files)
    except SkinlabError as exc:  # too many files: none was read
        ui.show_error(exc)
        uploads = []
    items = uploads + pv.uploaded_items([shot], name="camera.jpg") + samples
    if not items:
        st.info("Drop images above, pick Test samples, or take a picture to see predictions.")
        return
    with st.spinner(f"Predicting {len(items)} image(s)…"):
        results = pv.predict_items(predictor, items, tta)

    pv.render_batch(predictor, items, results, threshold)

    pv.render_details(
        predictor, items, results, opacity=opacity, gradcam=gradcam, threshold=threshold
    )


ui.require_router()
page()
