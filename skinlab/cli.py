"""``python -m skinlab``: everything the pages do, scriptable.

Each subcommand is a thin wrapper over one library call. Library errors
(:class:`~skinlab.errors.SkinlabError`) are printed as one sentence on stderr with exit
code 2, never as a traceback. Heavy imports (TensorFlow) happen inside the commands
that need them so ``--help`` and ``audit`` stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from skinlab import NOT_A_MEDICAL_DEVICE, __version__
from skinlab.errors import SkinlabError


def _dataset_root(arg: str | None) -> Path:
    """The dataset a command works on: the one given, else the synthetic demo."""
    if arg:
        return Path(arg)
    from skinlab.catalog import default_dataset_root

    root = default_dataset_root()
    print(f"(no dataset given: using the synthetic demo data in {root})", file=sys.stderr)
    return root


def _print_progress(fraction: float, message: str) -> None:
    print(f"\r[{fraction:6.1%}] {message[:60]:<60}", end="", file=sys.stderr, flush=True)
    if fraction >= 1.0:
        print(file=sys.stderr)


def cmd_demo_data(args: argparse.Namespace) -> int:
    from skinlab import demo

    if args.out:
        root = demo.generate_demo_dataset(Path(args.out), seed=args.seed, scale=args.scale)
    else:
        root = demo.ensure_demo_dataset(seed=args.seed)
    print(root)
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from skinlab.discovery import discover

    dataset = discover(_dataset_root(args.data))
    if args.json:
        print(dataset.table.to_json(orient="records"))
        return 0
    print(f"Dataset root: {dataset.root}")
    print(dataset.counts().to_string())
    for note in dataset.notes:
        print(f"note: {note.path}: {note.reason}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from skinlab.audit import audit_dataset
    from skinlab.discovery import discover

    report = audit_dataset(discover(_dataset_root(args.data)))
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0


def cmd_data_import(args: argparse.Namespace) -> int:
    from skinlab.importer import import_dataset

    root = import_dataset(Path(args.source), name=args.name, progress=_print_progress)
    print(root)
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from skinlab.importer import download_isic

    print(download_isic(name=args.name, progress=_print_progress))
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from skinlab.catalog import available_datasets

    for entry in available_datasets():
        print(f"{entry.name}\t{entry.root}\t{entry.label}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; subcommands grow with the library."""
    parser = argparse.ArgumentParser(
        prog="python -m skinlab",
        description=f"skinlab {__version__}: dermoscopic skin-lesion classification workbench. "
        + NOT_A_MEDICAL_DEVICE,
    )
    parser.add_argument("--version", action="version", version=f"skinlab {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("demo-data", help="generate the synthetic demo dataset")
    p.add_argument("--out", help="folder to write (default: data/skinlab-demo, made once)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0, help="multiply the image counts")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("scan", help="list a dataset's images per split and class")
    p.add_argument("data", nargs="?", help="dataset root (default: the synthetic demo)")
    p.add_argument("--json", action="store_true", help="print the full table as JSON records")
    p.set_defaults(func=cmd_scan)

    p = sub.add_parser("audit", help="find duplicates, label conflicts, leaks, unreadable files")
    p.add_argument("data", nargs="?", help="dataset root (default: the synthetic demo)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_audit)

    data = sub.add_parser("data", help="import, download or list datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = data_sub.add_parser("import", help="import a zip or folder into data/<name>")
    p.add_argument("source", help="the Kaggle ISIC zip, or any zip/folder with Train/<class>/")
    p.add_argument("--name", help="folder name under data/ (default: from the source)")
    p.set_defaults(func=cmd_data_import)
    p = data_sub.add_parser("download", help="download the ISIC dataset with kagglehub")
    p.add_argument("--name", default="isic")
    p.set_defaults(func=cmd_data_download)
    p = data_sub.add_parser("list", help="list the datasets the app can use")
    p.set_defaults(func=cmd_data_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except SkinlabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
