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


def test_a_failed_start_is_one_sentence_and_leaves_no_run_behind(tmp_path, capsys) -> None:
    from skinlab.core import runs

    before = runs.list_runs()
    (tmp_path / "empty").mkdir()
    for command in ("train", "runs start"):
        for data in (tmp_path / "nonexistent", tmp_path / "empty"):
            assert main([*command.split(), "--data", str(data), "--epochs", "1"]) == 2
            err = capsys.readouterr().err
            assert err.startswith("error: ") and err.count("\n") == 1, err
    assert runs.list_runs() == before


def test_every_preset_takes_every_run_flag_including_a_name(tmp_path) -> None:
    from dataclasses import fields

    from skinlab.cli import _config_from_args, build_parser
    from skinlab.core.config import PRESETS, RunConfig

    defaults = RunConfig()
    for name in PRESETS:
        argv = ["train", "--preset", name, "--data", str(tmp_path), "--name", "mine"]
        for f in fields(RunConfig):
            if f.name in ("data_root", "extra_data", "name"):  # --data sets the first two
                continue
            value = getattr(defaults, f.name)
            flag = "--" + f.name.replace("_", "-")
            if isinstance(value, bool):
                argv.append(flag if value else "--no-" + flag[2:])
            else:
                argv += [flag, str(value)]
        for command in (argv, ["runs", "start", *argv[1:]]):
            config = _config_from_args(build_parser().parse_args(command))
            assert config.name == "mine" and config.backbone == defaults.backbone


def test_a_bad_number_is_blamed_on_its_own_flag(tmp_path, capsys) -> None:
    assert main(["train", "--data", str(tmp_path), "--epochs", "-3"]) == 2
    err = capsys.readouterr().err
    assert "epochs cannot be negative" in err and "batch_size" not in err


def test_an_import_error_starts_on_a_line_of_its_own(tmp_path, capsys, monkeypatch) -> None:
    from skinlab.core.errors import SkinlabError
    from skinlab.data import importer

    def fails_halfway(source, name=None, progress=None):
        progress(0.4, "copying images")
        raise SkinlabError("The archive is damaged.")

    monkeypatch.setattr(importer, "import_dataset", fails_halfway)
    assert main(["data", "import", str(tmp_path / "x.zip")]) == 2
    err = capsys.readouterr().err
    assert "\nerror: The archive is damaged." in err


def _cli(*argv: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "skinlab", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_errors_are_not_drowned_in_tensorflow_start_up_lines(tmp_path) -> None:
    # `train` imports Keras (and so TensorFlow) before it finds the folder missing.
    out = _cli("train", "--data", str(tmp_path / "nonexistent"))
    assert out.returncode == 2
    assert out.stderr.splitlines() == [out.stderr.strip()], out.stderr
    assert out.stderr.startswith("error: ")


def test_an_unknown_run_is_answered_before_tensorflow_loads() -> None:
    import skinlab.cli

    code = (
        "import sys; from skinlab.cli import main; rc = main(['predict', 'no-such-run', 'x.jpg']);"
        "print(rc, 'tensorflow' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.stdout.split() == ["2", "False"], (out.stdout, out.stderr)
    assert "no-such-run" in out.stderr and skinlab.cli


def test_train_help_explains_every_run_option() -> None:
    out = _cli("train", "--help")
    assert out.returncode == 0
    words = " ".join(out.stdout.split())  # argparse wraps lines
    assert "Passes over the training images" in words  # --epochs, from the Train page
    assert "Choices: sgd, adam" in words
    import re

    flags = re.findall(r"^  (--[a-z-]+)", out.stdout, flags=re.MULTILINE)
    assert len(flags) > 20
    # Every option line is followed by words (argparse puts help on the same or next line).
    bare = re.findall(r"^  --[a-z-]+(?: [A-Z_]+)?\n  --", out.stdout, flags=re.MULTILINE)
    assert bare == [], bare


def test_evaluate_offers_every_test_time_view_and_no_more() -> None:
    # The parser writes the count out so that parsing needs no NumPy; it must stay true.
    from skinlab.cli import build_parser
    from skinlab.model.views import MAX_TTA

    parser = build_parser()
    evaluate = parser._subparsers._group_actions[0].choices["evaluate"]
    (tta,) = [a for a in evaluate._actions if a.dest == "tta"]
    assert list(tta.choices) == list(range(1, MAX_TTA + 1))


def test_the_command_line_parses_without_numpy() -> None:
    code = "import sys, skinlab.cli; sys.exit('numpy' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1]).returncode == 0
    )


def test_repeated_data_flags_are_the_dataset_then_extra_training_collections(tmp_path) -> None:
    from skinlab.cli import _config_from_args, build_parser

    for command in ("train", "cv", "lr-find", "ablation"):
        args = build_parser().parse_args([command, "--data", "A", "--data", "B", "--data", "C"])
        config = _config_from_args(args)
        assert (config.data_root, config.extra_data) == ("A", ("B", "C")), command
    args = build_parser().parse_args(["runs", "start", "--data", "A", "--data", "B"])
    assert _config_from_args(args).extra_data == ("B",)
    assert _config_from_args(build_parser().parse_args(["train", "--data", "A"])).extra_data == ()


def test_the_multi_collection_preset_without_extra_data_warns_and_still_parses(capsys) -> None:
    from skinlab.cli import _config_from_args, build_parser

    args = build_parser().parse_args(["train", "--preset", "multi-collection", "--data", "A"])
    config = _config_from_args(args)
    assert config.collection_balance and config.extra_data == ()
    err = capsys.readouterr().err
    assert "warning: multi-collection trains on two or more collections" in err
    assert "--data A --data B or 'Also train on'" in err
    both = ["train", "--preset", "multi-collection", "--data", "A", "--data", "B"]
    assert _config_from_args(build_parser().parse_args(both)).extra_data == ("B",)
    assert "warning" not in capsys.readouterr().err
