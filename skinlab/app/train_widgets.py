"""Streamlit components of the Train page's form: preset buttons, one widget per field, and
the data previews (augmented samples, class counts before/after imbalance treatment).

Widget values live in ``st.session_state`` under :attr:`skinlab.app.train_fields.Field.key` and
persist across page switches, so :func:`skinlab.app.train_form.ensure_values` reads the form
at any time (a button callback included).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from skinlab.app import caches, cv_view, train_extra, train_form, train_preview, ui
from skinlab.app.train_fields import FIELDS_BY_NAME, Field
from skinlab.core.config import preset
from skinlab.core.errors import SkinlabError
from skinlab.data.discovery import Dataset
from skinlab.jobs import repeats
from skinlab.train import cv

#: Form sections drawn in each of the three columns.
LAYOUT = (("Model", "Fine-tuning"), ("Optimisation",), ("Data and regularisation", "Advanced"))
_DRAW = "train_draw"  # session key: which random draw the augmentation preview shows
_APPLIED = "train_preset_applied"  # session key: the preset button clicked last


def _apply_preset(choice: train_form.PresetChoice) -> None:
    for field, value in train_form.preset_values(choice.preset).items():
        st.session_state[FIELDS_BY_NAME[field].key] = value
    st.session_state[_APPLIED] = choice
    st.toast(f"Preset {choice.label} applied", icon=":material/check:")


def _applied_note(choice: train_form.PresetChoice) -> str | None:
    """What the last preset set, while the form still holds it (``None`` once edited)."""
    wanted = train_form.preset_values(choice.preset)
    values = train_form.ensure_values(st.session_state)
    if any(values[name] != value for name, value in wanted.items()):
        return None
    summary = train_form.describe_config(preset(choice.preset))
    return f"Preset **{choice.label}** applied: {summary}."


def preset_buttons() -> None:
    """One button per preset (it fills the form), what each one is, and which one the form
    holds now (the toast of the click is gone after a few seconds; this line stays)."""
    choices = train_form.preset_choices()
    for col, choice in zip(st.columns(len(choices)), choices, strict=True):
        col.button(
            choice.label,
            key=f"preset_{choice.preset}",
            on_click=_apply_preset,
            args=(choice,),
            width="stretch",
        )
    st.caption("  \n".join(f"**{c.label}**: {c.why}" for c in choices))
    applied = st.session_state.get(_APPLIED)
    if applied and (note := _applied_note(applied)):
        st.success(note, icon=":material/check_circle:")
    chosen = applied.preset if applied else train_form.DEFAULT_PRESET
    if result := cv.latest_result(chosen):
        st.caption(ui.literal(cv_view.describe(result)))


def field_widget(field: Field) -> None:
    """The widget of ``field``, keyed by :attr:`Field.key`, its value kept for the session."""
    kw: dict[str, Any] = {"key": field.key, "help": field.help, "persist_state": "session"}
    if field.name == "backbone":
        kw |= {"on_change": train_form.on_backbone_change, "args": (st.session_state,)}
    if field.widget == "select":
        st.selectbox(field.label, field.options, format_func=field.option_label, **kw)
    elif field.widget == "radio":
        st.radio(field.label, field.options, format_func=field.option_label, horizontal=True, **kw)
    elif field.widget == "number":
        st.number_input(
            field.label, field.min, field.max, step=field.step, format=field.format, **kw
        )
    elif field.widget == "slider":
        st.slider(field.label, field.min, field.max, step=field.step, **kw)
    elif field.widget == "toggle":
        st.toggle(field.label, **kw)
    else:
        st.text_input(field.label, **kw)


def form(values: dict[str, Any]) -> None:
    """Every field that applies to ``values``, by section in three columns, with notes on the
    backbone and its weights under the model section and "Also train on" under the data one."""
    for col, sections in zip(st.columns(len(LAYOUT)), LAYOUT, strict=True):
        with col:
            for section in sections:
                if fields := train_form.visible_fields(values, section):
                    st.markdown(f"**{section}**")
                for field in fields:
                    field_widget(field)
                if section == "Model":
                    st.caption(train_form.backbone_note(values["backbone"]))
                    if note := train_form.weights_note(values):
                        st.caption(note)
                if section == "Data and regularisation":
                    applied = st.session_state.get(_APPLIED)
                    train_extra.picker(applied.preset if applied else None)


def previews(dataset: Dataset, values: dict[str, Any]) -> None:
    """A few Train images and augmented versions of them (as the model will see them), and
    the training images per class before and after the imbalance treatment."""
    left, right = st.columns(2)
    train = dataset.images("Train")
    with left:
        st.markdown("**Augmentation preview**: originals, then what training may see instead")
        picks = train_preview.pick_samples(train)
        if picks.empty:
            st.caption("There are no readable Train images to preview.")
            return
        paths, draw = tuple(picks["path"]), st.session_state.get(_DRAW, 0)
        strength = float(values["augmentation_strength"])
        try:
            originals = caches.preview_originals(paths)
            views = caches.preview_views(
                paths,
                values["augmentation"],
                strength,
                values["seed"] + draw,
                float(values.get("frame_randomisation", 0.0)),
                str(values.get("colour_constancy", "none")),
            )
        except SkinlabError as exc:  # a file changed since the dataset was scanned
            ui.show_error(exc)
            return
        captions = [ui.literal(caption) for caption in picks["caption"]]  # class folder names
        st.image(list(originals), caption=captions, width=110)
        for view in views:
            st.image(list(view), width=110)
        st.button(
            "New random draw",
            key="train_redraw",
            on_click=lambda: st.session_state.update({_DRAW: draw + 1}),
        )
    with right:
        st.markdown("**Training images per class**, before and after imbalance treatment")
        strategy = values["imbalance"]
        counts = train_preview.balance_counts(
            train, strategy, values["val_fraction"], values["seed"]
        )
        figure = train_preview.balance_figure(counts, strategy)
        st.plotly_chart(ui.plain_figure(figure), width="stretch")
        st.caption(train_preview.balance_note(strategy))


def seed_repeats(key: str) -> None:
    """The "Seed repeats" choice: one run, or the same settings with N seeds in a row."""
    st.radio(
        "Seed repeats",
        repeats.PAGE_CHOICES,
        format_func=lambda n: "one run" if n == 1 else f"repeat ×{n}",
        horizontal=True,
        key=key,
        help="Train the same settings with seeds seed, seed+1, …: the spread of their "
        "curves and scores (mean ± sd) shows how much of a difference between two runs "
        "is only noise. The runs queue one after another.",
    )
