"""Mixed precision is chosen per machine by measurement, and never changes what a run predicts."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from skinlab.core.config import RunConfig
from skinlab.model import precision
from skinlab.model.modelio import load_run_model
from skinlab.model.precision import Decision, choose_precision, dtype_policy


@pytest.fixture
def no_gpu(monkeypatch):
    monkeypatch.setattr(precision.tf.config, "list_physical_devices", lambda kind=None: [])


def _never_build():
    raise AssertionError("the probe should not have built a model")


def test_an_explicit_precision_is_used_as_given_without_probing(tmp_path):
    decision = choose_precision(
        "mixed_bfloat16", "k", _never_build, (2, 8, 8, 3), cache_file=tmp_path / "p.json"
    )
    assert decision == Decision("mixed_bfloat16", "chosen in the run's options")


def test_unknown_precision_is_refused_with_the_choices(tmp_path):
    with pytest.raises(ValueError, match="float32"):
        choose_precision("fp8", "k", _never_build, (2, 8, 8, 3), cache_file=tmp_path / "p.json")


def test_cpu_without_bfloat16_instructions_trains_in_float32_without_a_probe(
    tmp_path, monkeypatch, no_gpu
):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    decision = choose_precision(
        "auto", "k", _never_build, (2, 8, 8, 3), cache_file=tmp_path / "p.json"
    )
    assert decision.policy == "float32"
    assert "no bfloat16" in decision.reason


@pytest.mark.parametrize(
    ("float32_s", "mixed_s", "expected"),
    [(0.2, 0.1, "mixed_bfloat16"), (0.1, 0.2, "float32"), (0.1, 0.095, "float32")],
)
def test_bfloat16_cpu_keeps_mixed_precision_only_when_it_measures_faster(
    float32_s, mixed_s, expected, tmp_path, monkeypatch, no_gpu
):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    timings = {"float32": float32_s, "mixed_bfloat16": mixed_s}
    monkeypatch.setattr(precision, "_step_seconds", lambda build, shape, policy: timings[policy])
    decision = choose_precision(
        "auto", "k", _never_build, (2, 8, 8, 3), cache_file=tmp_path / "p.json"
    )
    assert decision.policy == expected
    assert "measured" in decision.reason


def test_the_measurement_is_remembered_and_a_damaged_memo_is_measured_again(
    tmp_path, monkeypatch, no_gpu
):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    calls = []

    def step_seconds(build, shape, policy):
        calls.append(policy)
        return {"float32": 0.3, "mixed_bfloat16": 0.1}[policy]

    monkeypatch.setattr(precision, "_step_seconds", step_seconds)
    memo = tmp_path / "p.json"
    first = choose_precision("auto", "custom|64", _never_build, (2, 8, 8, 3), cache_file=memo)
    again = choose_precision("auto", "custom|64", _never_build, (2, 8, 8, 3), cache_file=memo)
    assert first.policy == again.policy == "mixed_bfloat16"
    assert calls == ["float32", "mixed_bfloat16"]  # measured once
    assert "measured earlier" in again.reason
    other = choose_precision("auto", "custom|128", _never_build, (2, 8, 8, 3), cache_file=memo)
    assert other.policy == "mixed_bfloat16" and len(calls) == 4  # another shape: new probe
    memo.write_text("{not json")
    choose_precision("auto", "custom|64", _never_build, (2, 8, 8, 3), cache_file=memo)
    assert len(calls) == 6


def test_the_real_probe_times_both_policies_of_a_real_model(tmp_path, monkeypatch, no_gpu):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    built = []

    def build():
        from skinlab.model.backbones import build_model

        model = build_model("skinlab_cnn", num_classes=3, image_size=32)
        built.append(model.dtype_policy.name)
        return model

    decision = choose_precision(
        "auto", "probe", build, (4, 32, 32, 3), cache_file=tmp_path / "p.json"
    )
    assert built == ["float32", "mixed_bfloat16"]
    assert decision.policy in ("float32", "mixed_bfloat16")
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


def test_dtype_policy_scope_restores_the_previous_policy_even_on_error():
    with pytest.raises(RuntimeError), dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError("boom")
    assert keras.config.dtype_policy().name == "float32"


def test_logits_stay_float32_under_mixed_precision():
    from skinlab.model.backbones import build_model

    with dtype_policy("mixed_bfloat16"):
        model = build_model("custom", num_classes=3, image_size=32)
    assert model.get_layer("conv1").compute_dtype == "bfloat16"
    assert model.get_layer("logits").compute_dtype == "float32"
    assert model(np.zeros((1, 32, 32, 3), np.float32)).dtype == "float32"


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory) -> Path:
    from skinlab.data.demo import generate_demo_dataset

    return generate_demo_dataset(tmp_path_factory.mktemp("demo") / "demo", scale=0.5)


@pytest.mark.slow
def test_a_mixed_precision_run_learns_as_well_and_is_evaluated_and_exported_in_float32(demo_root):
    from skinlab.train.training import train

    base = RunConfig(
        data_root=str(demo_root),
        backbone="custom",
        image_size=48,
        batch_size=16,
        epochs=6,
        learning_rate=3e-3,
        seed=3,
    )
    mixed = train(base.replace(precision="mixed_bfloat16"))
    plain = train(base.replace(precision="float32"))
    m_acc = mixed.metrics["validation"]["accuracy"]
    p_acc = plain.metrics["validation"]["accuracy"]
    assert mixed.metrics["training_precision"]["policy"] == "mixed_bfloat16"
    assert plain.metrics["training_precision"]["policy"] == "float32"
    # Same seed, same data: bfloat16 arithmetic changes the path a little, not the outcome.
    # 0.15 is a few validation images on this small split (3 of 20), well below a broken
    # run's gap; the epsilon keeps exactly 3 images (0.55 - 0.40 = 0.15000000000000002 in
    # floating point, seen 2026-12-07) inside it.
    assert abs(m_acc - p_acc) <= 0.15 + 1e-9, (m_acc, p_acc)
    assert m_acc > 0.4  # learned something: chance is 1/9
    loaded = load_run_model(mixed.paths)
    assert {layer.compute_dtype for layer in loaded.model.layers} == {"float32"}
    exported = keras.models.load_model(mixed.paths.export)
    assert all(layer.dtype_policy.name == "float32" for layer in exported.layers)


def test_a_short_run_is_not_worth_a_probe_unless_one_was_remembered(tmp_path, monkeypatch, no_gpu):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    timings = {"float32": 0.3, "mixed_bfloat16": 0.1}
    monkeypatch.setattr(precision, "_step_seconds", lambda build, shape, policy: timings[policy])
    memo = tmp_path / "p.json"
    short = choose_precision(
        "auto", "k", _never_build, (2, 8, 8, 3), cache_file=memo, total_steps=96
    )
    assert short.policy == "float32" and "short run" in short.reason and not memo.exists()
    long = choose_precision(
        "auto", "k", _never_build, (2, 8, 8, 3), cache_file=memo, total_steps=5000
    )
    assert long.policy == "mixed_bfloat16"
    # Once measured, even a short run of that shape uses the measurement.
    again = choose_precision(
        "auto", "k", _never_build, (2, 8, 8, 3), cache_file=memo, total_steps=96
    )
    assert again.policy == "mixed_bfloat16" and "measured earlier" in again.reason
