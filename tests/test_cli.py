"""The CLI: every command prints something useful and errors are one sentence, exit 2."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from helpers import image_bytes

from skinlab.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_help_runs_as_a_module() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "skinlab", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0
    for command in ("demo-data", "scan", "audit", "data"):
        assert command in out.stdout
    assert "not a medical device" in out.stdout


def test_audit_json_has_the_documented_keys_and_finds_a_planted_leak(
    make_dataset_folder, capsys
) -> None:
    root = make_dataset_folder({"Train": {"melanoma": 2, "nevus": 2}, "Test": {"nevus": 1}})
    shutil.copy(root / "Train/melanoma/img_000.jpg", root / "Test/nevus/leak.jpg")
    assert main(["audit", str(root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in ("counts", "unreadable", "exact_duplicates", "label_conflicts", "cross_split_leaks"):
        assert key in report
    assert len(report["cross_split_leaks"]) == 1
    assert len(report["label_conflicts"]) == 1
    assert report["counts"]["Train"]["melanoma"] == 2


def test_audit_text_summary_mentions_duplicates(make_dataset_folder, capsys) -> None:
    assert main(["audit", str(make_dataset_folder({"Train": {"nevus": 2}}))]) == 0
    assert "duplicate" in capsys.readouterr().out.lower()


def test_scan_of_a_wrong_folder_is_one_sentence_and_exit_2(tmp_path, capsys) -> None:
    assert main(["scan", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err and "Train" in err


def test_demo_data_out_writes_a_dataset_and_prints_its_root(tmp_path, capsys) -> None:
    assert main(["demo-data", "--out", str(tmp_path / "demo"), "--scale", "0.2"]) == 0
    root = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert (root / "Train").is_dir() and (root / "Test").is_dir()
    assert main(["scan", str(root)]) == 0
    assert "melanoma" in capsys.readouterr().out


def test_data_import_refuses_path_traversal_and_writes_nothing(tmp_path, capsys) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("Train/nevus/ok.jpg", image_bytes())
        zf.writestr("../escape.jpg", image_bytes())
    data = Path(__import__("os").environ["SKINLAB_DATA_DIR"])
    before = set(data.iterdir()) if data.exists() else set()
    assert main(["data", "import", str(archive)]) == 2
    assert "error:" in capsys.readouterr().err
    after = set(data.iterdir()) if data.exists() else set()
    assert after == before
    assert not (tmp_path.parent / "escape.jpg").exists()


def test_data_import_then_list_shows_the_new_dataset(tmp_path, capsys) -> None:
    archive = tmp_path / "Kaggle.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(2):
            zf.writestr(f"Skin cancer ISIC/Train/melanoma/{i}.jpg", image_bytes(seed=i))
            zf.writestr(f"Skin cancer ISIC/Test/melanoma/{i}.jpg", image_bytes(seed=10 + i))
    assert main(["data", "import", str(archive), "--name", "mini-isic"]) == 0
    imported = Path(capsys.readouterr().out.strip().splitlines()[-1])
    assert (imported / "Train" / "melanoma").is_dir()
    assert main(["data", "list"]) == 0
    listing = capsys.readouterr().out
    assert "mini-isic" in listing and "synthetic demo data" in listing
