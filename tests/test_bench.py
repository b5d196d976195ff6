"""The benchmark command: its helpers, its report, and the runner's contract (one JSON-able
object; a failing section is an error entry, never the end of the run). Timings are never
asserted: targets live in the benchmark's own output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import pytest

from skinlab.bench import SECTIONS, run_bench
from skinlab.bench.core import Row, Section, percentile
from skinlab.bench.report import format_report, format_value
from skinlab.bench.scaling_bench import fit_exponent

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tiny(make_dataset_folder) -> Path:
    return make_dataset_folder({"Train": {"melanoma": 3, "nevus": 2}, "Test": {"nevus": 1}})


def _fake_section(monkeypatch: pytest.MonkeyPatch, module: str, run) -> None:
    fake = types.ModuleType(module)
    fake.run = run
    monkeypatch.setitem(sys.modules, module, fake)


def test_percentile_interpolates_between_closest_ranks() -> None:
    values = [4.0, 1.0, 3.0, 2.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 2.5
    assert percentile(values, 100) == 4.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_row_ratio_says_how_many_times_better_for_times_and_for_throughputs() -> None:
    assert Row("latency", 2.0, 10.0, "ms").ratio == 5.0
    assert Row("throughput", 10.0, 2.0, "img/s", lower_is_better=False).ratio == 5.0
    assert Row("slower", 10.0, 2.0, "ms").ratio == 0.2
    assert Row("no baseline", 3.0).ratio is None
    assert Row("nothing measured", None, 2.0).ratio is None


def test_fit_exponent_recovers_the_power_of_a_power_law() -> None:
    sizes = [100, 400, 1600]
    assert fit_exponent(sizes, [0.01 * n for n in sizes]) == pytest.approx(1.0)
    assert fit_exponent(sizes, [1e-5 * n**1.5 for n in sizes]) == pytest.approx(1.5)


def test_report_shows_each_row_with_units_and_ratio_and_names_a_failed_section() -> None:
    result = {
        "machine": {
            "cpu": "Test CPU",
            "cores": 2,
            "ram_gb": 8.0,
            "flags": ["avx512_bf16"],
            "tensorflow": "2.21.0",
            "keras": "3.15.0",
            "python": "3.11.7",
        },
        "data": {"root": "/data/demo", "images": 464, "is_demo": True},
        "quick": True,
        "sections": [
            {
                "name": "predict",
                "title": "Prediction",
                "rows": [
                    Row("one image, p50", 2.0, 40.0, "ms", note="vs model.predict").to_dict(),
                    Row("batch", 1234.5, 500.0, "img/s", lower_is_better=False).to_dict(),
                    Row("exponent", 1.04).to_dict(),
                ],
                "ratios": {"predict_speedup": 20.0},
                "raw": {},
                "error": None,
            },
            {"name": "load", "title": "load", "rows": [], "raw": {}, "error": "OSError: nope"},
        ],
        "ratios": {"predict_speedup": 20.0},
        "seconds": 12.0,
    }

    text = format_report(result)

    assert "Test CPU, 2 cores, 8 GB RAM (avx512_bf16)" in text
    assert "464 images, synthetic demo data" in text
    assert "| Figure | skinlab | baseline | ratio | note |" in text
    assert "| one image, p50 | 2 ms | 40 ms | 20.00× | vs model.predict |" in text
    assert "| batch | 1,234 img/s | 500 img/s | 2.47× |  |" in text
    assert "| exponent | 1.04 | – | – |  |" in text
    assert "## load\n\nFAILED: OSError: nope" in text
    assert "predict_speedup 20.00" in text


def test_values_keep_three_significant_figures_below_a_hundred() -> None:
    assert format_value(0.012345, "s") == "0.0123 s"
    assert format_value(42.0, "ms") == "42 ms"
    assert format_value(None, "ms") == "–"


def test_scaling_section_on_a_tiny_dataset_returns_one_json_object_and_cleans_up(
    tiny, tmp_path, monkeypatch
) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    lines: list[str] = []

    result = run_bench(tiny, quick=True, only=["scaling"], log=lines.append)

    assert json.loads(json.dumps(result)) == result
    assert set(result) == {"machine", "data", "quick", "sections", "ratios", "seconds"}
    assert result["data"] == {"root": str(tiny.resolve()), "images": 6, "is_demo": False}
    assert {"cpu", "cores", "ram_gb", "flags", "tensorflow", "keras", "python"} <= set(
        result["machine"]
    )
    (section,) = result["sections"]
    assert section["error"] is None and section["name"] == "scaling"
    assert [row["figure"] for row in section["rows"]][:3] == [
        "scan + audit, 1x (5 images)",
        "scan + audit, 2x (10 images)",
        "scan + audit, 4x (20 images)",
    ]
    assert result["ratios"]["audit_scaling_exponent"] == section["rows"][-1]["skinlab"]
    assert lines[0] == "[bench] scaling: running…"
    assert list(scratch.iterdir()) == []  # the section's work folder is gone


def test_a_failing_section_becomes_an_error_entry_and_the_others_still_run(
    tiny, monkeypatch, capsys
) -> None:
    def boom(ctx):
        raise RuntimeError("boom")

    def fine(ctx):
        print("chatter a library printed")
        assert ctx.workdir.is_dir() and ctx.quick and ctx.reps == 3
        return Section("Fine", rows=[Row("x", 1.0, 2.0, "s")], ratios={"fine_speedup": 2.0})

    _fake_section(monkeypatch, "fake_boom_bench", boom)
    _fake_section(monkeypatch, "fake_fine_bench", fine)
    monkeypatch.setattr(
        "skinlab.bench.SECTIONS",
        {
            "boom": "fake_boom_bench",
            "missing": "skinlab.bench.no_such_bench",
            "fine": "fake_fine_bench",
        },
    )

    result = run_bench(tiny, quick=True, only=None, log=lambda line: None)

    boom_entry, missing, fine_entry = result["sections"]
    assert boom_entry["error"] == "RuntimeError: boom" and boom_entry["rows"] == []
    assert missing["error"].startswith("ModuleNotFoundError")
    assert fine_entry["error"] is None and fine_entry["rows"][0]["ratio"] == 2.0
    assert result["ratios"] == {"fine_speedup": 2.0}
    out = capsys.readouterr()
    assert "chatter" not in out.out and "chatter" in out.err  # stdout stays for --json


def test_unknown_section_is_refused_naming_the_known_ones(tiny) -> None:
    with pytest.raises(ValueError, match="pipeline"):
        run_bench(tiny, quick=True, only=["nope"], log=print)


def test_registry_lists_every_section_in_report_order() -> None:
    assert list(SECTIONS) == [
        "pipeline",
        "training",
        "start",
        "throughput",
        "recipe",
        "frozen",
        "predict",
        "app",
        "scaling",
        "load",
    ]


def test_cli_prints_one_parseable_json_object_with_progress_on_stderr(tiny) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "skinlab", "bench", "--quick", "--only", "scaling", "--json"]
        + ["--data", str(tiny)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=120,
    )

    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert "audit_scaling_exponent" in result["ratios"]
    assert "[bench] scaling: done" in out.stderr


def test_app_section_times_every_explore_tab_and_a_first_page_without_tensorflow(tiny) -> None:
    import streamlit as st

    from skinlab.bench import app_bench

    def clear() -> None:
        st.cache_data.clear()
        st.cache_resource.clear()

    first, warm = app_bench._tab_times(str(tiny), 1, clear)
    tabs = [
        "Distribution",
        "Gallery",
        "Audit",
        "Review",
        "Linked views",
        "Sizes & colours",
        "Import",
    ]
    assert list(first) == tabs and list(warm) == tabs
    assert all(seconds > 0 for seconds in [*first.values(), *warm.values()])
    seconds, tensorflow = app_bench._first_page_seconds(str(tiny), 1)
    assert seconds > 0 and tensorflow is False  # importing TensorFlow alone takes seconds


@pytest.mark.slow
def test_start_section_times_the_first_live_point_before_the_first_epoch(tiny, monkeypatch) -> None:
    from skinlab.bench import start_bench

    monkeypatch.setattr(start_bench, "QUICK_STARTS", 1)
    result = run_bench(tiny, quick=True, only=["start"], log=lambda line: None)
    (section,) = result["sections"]
    assert section["error"] is None, section["error"]
    point, epoch = section["raw"]["first_point_s"][0], section["raw"]["first_epoch_s"][0]
    assert 0 < point <= epoch
    assert section["rows"][0]["baseline"] == start_bench.TARGET_S


@pytest.mark.slow
def test_recipe_section_trains_both_recipes_under_one_budget(tiny, monkeypatch) -> None:
    from skinlab.bench import recipe_bench

    small = {"image_size": 32, "epochs": 2, "batch_size": 4, "val_fraction": 0.4}
    monkeypatch.setattr(recipe_bench, "BASELINE", {**recipe_bench.BASELINE, **small})
    monkeypatch.setitem(
        recipe_bench.PRESETS, "cpu-best", {**recipe_bench.PRESETS["cpu-best"], **small}
    )
    result = run_bench(tiny, quick=True, only=["recipe"], log=lambda line: None)
    (section,) = result["sections"]
    assert section["error"] is None, section["error"]
    for side in ("before", "cpu-best"):
        assert section["raw"][side]["epochs"] == 2
        assert section["raw"][side]["images_per_second"] > 0
    assert [row["figure"] for row in section["rows"]][0].startswith("images/s")


def test_throughput_section_times_the_baseline_and_cpu_bests_network(tiny, monkeypatch) -> None:
    from skinlab.bench import throughput_bench

    small = (("skinlab_cnn", 32, "strong", "float32"), ("skinlab_cnn", 24, "dermoscopy", "float32"))
    monkeypatch.setattr(throughput_bench, "CANDIDATES", small + throughput_bench.CANDIDATES[2:])
    monkeypatch.setattr(throughput_bench, "QUICK", small)
    result = run_bench(tiny, quick=True, only=["throughput"], log=lambda line: None)
    (section,) = result["sections"]
    assert section["error"] is None, section["error"]
    assert [row["figure"] for row in section["rows"]] == [
        "skinlab_cnn 32 px, strong augmentation, float32",
        "skinlab_cnn 24 px, dermoscopy augmentation, float32",
    ]
    assert all(row["skinlab"] > 0 for row in section["rows"])
    assert section["rows"][0]["ratio"] == pytest.approx(1.0)
    assert result["ratios"]["cpu_best_step_speedup"] > 0
