"""``python -m skinlab``: everything the pages do, scriptable.

Each subcommand is a thin wrapper over one library call. Library errors
(:class:`~skinlab.core.errors.SkinlabError`) are printed as one sentence on stderr with exit
code 2, never as a traceback. Heavy imports (TensorFlow) happen inside the commands
that need them so ``--help`` and ``audit`` stay fast.

Why one module: every command is a short function that parses, calls the library and prints;
they share the progress line, the JSON printing and the run-option flags, and one file is
where a user of the command line reads what exists. The parser is built by command group.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from skinlab import NOT_A_MEDICAL_DEVICE, __version__
from skinlab.core.errors import SkinlabError
from skinlab.core.quiet import quiet_tensorflow


def _dataset_root(arg: str | None) -> Path:
    """The dataset a command works on: the one given, else the synthetic demo."""
    if arg:
        return Path(arg)
    from skinlab.app.catalog import default_dataset_root

    root = default_dataset_root()
    print(f"(no dataset given: using the synthetic demo data in {root})", file=sys.stderr)
    return root


_progress_line = {"open": False}  # a progress line without its newline is on stderr


def _print_progress(fraction: float, message: str) -> None:
    # The last message in full: it may say what was left out (an import's skipped rows).
    text = f"{message:<60}" if fraction >= 1.0 else f"{message[:60]:<60}"
    print(f"\r[{fraction:6.1%}] {text}", end="", file=sys.stderr, flush=True)
    _progress_line["open"] = fraction < 1.0
    if fraction >= 1.0:
        print(file=sys.stderr)


def _end_progress_line() -> None:
    """Finish an open progress line, so what comes next starts on its own line."""
    if _progress_line["open"]:
        print(file=sys.stderr)
        _progress_line["open"] = False


def cmd_demo_data(args: argparse.Namespace) -> int:
    from skinlab.data import demo

    if args.out:
        root = demo.generate_demo_dataset(Path(args.out), seed=args.seed, scale=args.scale)
    else:
        root = demo.ensure_demo_dataset(seed=args.seed)
    print(root)
    return 0


def cmd_scan(args: argparse.Namespace) -> int:
    from skinlab.data.discovery import discover

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
    if args.shortcuts or args.run:
        return _audit_shortcuts(args)
    from skinlab.data.audit import audit_dataset
    from skinlab.data.discovery import discover

    report = audit_dataset(discover(_dataset_root(args.data)))
    print(json.dumps(report.to_dict(), indent=2) if args.json else report.summary())
    return 0


def _audit_shortcuts(args: argparse.Namespace) -> int:
    """``audit --shortcuts [--run RUN]``: collections, the statistics-only classifier and,
    with a run, the lesion-masked test (on the run's own data when no dataset is given) and
    the classifier on the run's own training and validation rows (both saved in the run)."""
    import textwrap

    from skinlab.data.discovery import discover
    from skinlab.data.shortcuts import collection_table, label_without_lesion
    from skinlab.data.shortcuts import one_collection_warnings as warnings_of

    if args.data or not args.run:
        root = _dataset_root(args.data)
    else:
        from skinlab.core.runs import read_config, resolve_run

        root = Path(read_config(resolve_run(args.run)).data_root)
    dataset = discover(root)
    name, table = dataset.root.name, dataset.images()
    counts = collection_table(table, name)
    score = label_without_lesion(table, dataset_name=name)
    masked = own = None
    if args.run:
        from skinlab.evaluate.masking import lesion_masked_test
        from skinlab.evaluate.run_shortcuts import shortcut_check_for_run

        masked = lesion_masked_test(args.run, dataset.root)
        own = shortcut_check_for_run(args.run)
    if args.json:
        found = {
            "data_root": str(dataset.root),
            "collections": counts.to_dict(orient="index"),
            "warnings": warnings_of(counts),
            "label_without_lesion": score.to_dict(),
            "lesion_masked": masked.to_dict() if masked else None,
            "run_label_without_lesion": own.to_dict() if own else None,
        }
        print(json.dumps(found, indent=2))
        return 0
    print(f"Images per class and collection ({dataset.root}):\n{counts.to_string()}\n")
    for sentence in warnings_of(counts) or ["No class comes from a collection of its own."]:
        print(textwrap.fill(sentence, 100) + "\n")
    print("Can the label be predicted without the lesion?")
    print(textwrap.fill(score.explanation, 100))
    if masked:
        print(f"\nLesion-masked test of {masked.run_id}:\n{textwrap.fill(masked.sentence, 100)}")
    if own:
        print(f"\nIn the images {args.run} trained and validated on:")
        print(textwrap.fill(own.explanation, 100))
    return 0


def cmd_review(args: argparse.Namespace) -> int:
    from skinlab.evaluate.review import review_dataset

    queue = review_dataset(_dataset_root(args.data), cross_validation=not args.quick)
    print(json.dumps(queue.to_dict(), indent=2) if args.json else queue.summary())
    return 0


def cmd_data_import(args: argparse.Namespace) -> int:
    from skinlab.data.importer import import_dataset

    root = import_dataset(Path(args.source), name=args.name, progress=_print_progress)
    print(root)
    return 0


def cmd_data_download(args: argparse.Namespace) -> int:
    from skinlab.data.importer import download_dataset

    print(download_dataset(args.dataset, name=args.name, progress=_print_progress))
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from skinlab.app.catalog import available_datasets

    for entry in available_datasets():
        print(f"{entry.name}\t{entry.root}\t{entry.label}")
    return 0


#: The help of a run option until it is printed (argparse shows no line for an empty help).
_FIELD_HELP = "(see the Train page)"


class _RunOptionsHelp(argparse.HelpFormatter):
    """Help for the run options from the Train page's tooltips (:mod:`skinlab.app.train_fields`),
    one source for both. Looked up only when help is printed: the fields name the
    backbones, and reading those imports Keras."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.help == _FIELD_HELP:
            from skinlab.app.train_fields import FIELDS_BY_NAME

            field = FIELDS_BY_NAME.get(action.dest)
            if field is not None:
                text = field.help.replace("%", "%%")
                choices = (
                    f" Choices: {', '.join(map(str, field.options))}." if field.options else ""
                )
                return f"{field.label}. {text}{choices}"
        return action.help


#: The run options ``--data`` sets: the first path, then every further one.
_DATA_FIELDS = ("data_root", "extra_data")


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`~skinlab.core.config.RunConfig` field; defaults come from the preset."""
    from dataclasses import fields

    from skinlab.core.config import PRESETS, RunConfig

    parser.add_argument(
        "--data",
        action="append",
        metavar="PATH",
        help="dataset root (default: the synthetic demo); repeat it to train on several "
        "collections: the first gives validation, the others (a dataset folder's Train split, "
        "HAM10000's images with its metadata CSV, an ISIC ground-truth CSV beside its images, "
        "class folders) only add training images",
    )
    parser.add_argument("--preset", choices=sorted(PRESETS), help="start from a named recipe")
    for f in fields(RunConfig):
        if f.name in _DATA_FIELDS:
            continue
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(
                flag,
                dest=f.name,
                action=argparse.BooleanOptionalAction,
                default=None,
                help=_FIELD_HELP,
            )
        else:
            kind = {"int": int, "float": float}.get(str(f.type), str)
            # Options not on the Train page (the cross-validation fold) carry their own help.
            text = f.metadata.get("help", _FIELD_HELP)
            parser.add_argument(flag, dest=f.name, type=kind, default=None, help=text)


def _add_repeats_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repeats",
        type=int,
        default=1,
        metavar="N",
        help="train the same settings N times with seeds seed, seed+1, ... as one group, "
        "to see how much of a difference is noise (prints every run directory; mean ± sd "
        "of the scores at the end)",
    )


def _config_from_args(args: argparse.Namespace):
    from dataclasses import fields

    from skinlab.core.config import RunConfig, preset

    given = {
        f.name: getattr(args, f.name)
        for f in fields(RunConfig)
        if f.name not in _DATA_FIELDS and getattr(args, f.name, None) is not None
    }
    first, *extra = args.data or [None]
    given |= {"data_root": str(_dataset_root(first)), "extra_data": tuple(extra)}
    try:
        config = preset(args.preset, **given) if args.preset else RunConfig(**given)
    except (ValueError, TypeError) as exc:
        raise SkinlabError(str(exc)) from exc
    from skinlab.data.extra_collections import multi_collection_warning

    if warning := multi_collection_warning(args.preset, config.extra_data):
        print(f"warning: {warning}", file=sys.stderr)
    return config


def cmd_train(args: argparse.Namespace) -> int:
    from skinlab.jobs.repeats import format_mean_sd, repeat_configs
    from skinlab.train.training import train

    scores: dict[str, list[float]] = {}
    for config in repeat_configs(_config_from_args(args), args.repeats):
        result = train(config, verbose=1 if sys.stdout.isatty() else 2)
        for split in ("validation", "test"):
            m = result.metrics.get(split)
            if m:
                scores.setdefault(split, []).append(m["balanced_accuracy"])
                print(
                    f"{split}: accuracy {m['accuracy']:.3f}, balanced accuracy "
                    f"{m['balanced_accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}",
                    file=sys.stderr,
                )
        print(f"run {result.state}: {result.paths.root}", file=sys.stderr)
        print(result.paths.root, flush=True)
    if args.repeats > 1:
        print(f"seed repeats ({config.repeat_group}), mean ± sd over the seeds:", file=sys.stderr)
        for split, values in scores.items():
            spread = format_mean_sd(values, ".3f")
            print(f"  {split} balanced accuracy {spread}", file=sys.stderr)
    return 0


def cmd_cv(args: argparse.Namespace) -> int:
    from skinlab.train.cv import METRICS, cross_validate

    config = _config_from_args(args)
    result = cross_validate(
        config, args.folds, progress=_print_progress, preset=args.preset or "custom"
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    for f in result.folds:
        scores = ", ".join(f"{m} {getattr(f, m):.3f}" for m in METRICS)
        print(f"fold {f.fold}/{len(result.folds)}: {scores} ({f.minutes:.1f} min, {f.run_id})")
    print(f"mean ± sd: {result.summary()}")
    return 0


def cmd_ablation(args: argparse.Namespace) -> int:
    from skinlab.train.ablation import ablation_table, run_ablation

    if not args.preset:
        args.preset = "cpu-best"
    rows = run_ablation(_config_from_args(args), args.folds, progress=_print_progress)
    if args.json:
        print(json.dumps([row.to_dict() for row in rows], indent=2))
        return 0
    print(ablation_table(rows))
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from skinlab.train.lr_find import METHODS, lr_range_test

    result = lr_range_test(_config_from_args(args), args.steps, progress=_print_progress)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2))
        return 0
    print(f"suggested learning rate: {result.suggestion:.2e} ({METHODS[result.method]})")
    stop = f"diverged at {result.diverged_lr:.2e}" if result.diverged_lr else "never diverged"
    print(f"lowest loss at {result.min_loss_lr:.2e}; {stop}")
    every = max(len(result.losses) // 10, 1)
    print("learning rate  smoothed loss")
    for lr, loss in list(zip(result.learning_rates, result.losses, strict=True))[::every]:
        print(f"{lr:13.2e}  {loss:.4f}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    if args.external:
        return _evaluate_external(args)
    from skinlab.evaluate.scoring import evaluate_run

    result = evaluate_run(args.run, args.data, args.split or "Test", tta=args.tta)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        views = f", {args.tta} views each" if args.tta > 1 else ""
        print(
            f"{result['run_id']} on {result['split']} ({result['n']} images{views}): accuracy "
            f"{result['accuracy']:.3f}, balanced accuracy {result['balanced_accuracy']:.3f}, "
            f"macro-F1 {result['macro_f1']:.3f}"
        )
    return 0


def _evaluate_external(args: argparse.Namespace) -> int:
    from skinlab.evaluate.external import evaluate_external, report_lines

    if args.data or args.split:
        raise SkinlabError(
            "--external scores the run on that set alone; leave out --data and --split."
        )
    result = evaluate_external(args.run, args.external, tta=args.tta)
    print(json.dumps(result, indent=2) if args.json else "\n".join(report_lines(result)))
    return 0


def cmd_familiarity(args: argparse.Namespace) -> int:
    from skinlab.evaluate.familiarity_fit import fit_run

    summary = fit_run(args.run, args.data)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(
            f"{summary['run_id']}: threshold {summary['threshold']:.3f}; held-out lesions "
            f"flagged {summary['held_out_false_alarm']:.1%} of {summary['lesions']}; "
            f"non-dermoscopy images flagged {summary['detection']:.1%} of {summary['negatives']}"
        )
    return 0


def cmd_paired(args: argparse.Namespace) -> int:
    from skinlab.app.compare import load_run
    from skinlab.app.run_stats import paired_runs

    result = paired_runs(load_run(args.run), load_run(args.other), args.split)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(result["verdict"])
    return 0


def cmd_runs_list(args: argparse.Namespace) -> int:
    from skinlab.jobs.manager import list_summaries

    summaries = list_summaries(record=True)  # the command line records dead runs as failed
    if args.json:
        print(json.dumps([s.to_dict() for s in summaries], indent=2))
        return 0
    for s in summaries:
        best = s.best_val_accuracy
        best_text = f"{best:.3f}" if isinstance(best, float) else "-"
        epochs = f"{s.epoch or 0}/{s.total_epochs or 0}"
        print(f"{s.run_id}\t{s.state}\tepoch {epochs}\tval acc {best_text}\t{s.error or ''}")
    return 0


def cmd_runs_start(args: argparse.Namespace) -> int:
    from skinlab.jobs.manager import start_run
    from skinlab.jobs.repeats import repeat_configs
    from skinlab.train.preflight import preflight

    config = _config_from_args(args)
    preflight(config)  # what would fail at once fails here, before a run folder exists
    members = repeat_configs(config, args.repeats)
    if len(members) > 1 and args.key:
        raise SkinlabError("--key names one run; leave it out with --repeats.")
    for member in members:  # seed repeats queue one after another
        print(start_run(member, key=args.key).root, flush=True)
    return 0


def cmd_runs_status(args: argparse.Namespace) -> int:
    from skinlab.jobs.manager import run_status

    status = run_status(args.run)
    if args.json:
        print(json.dumps(status.to_dict(), indent=2))
    else:
        print(
            f"{status.state}: epoch {status.epoch}/{status.total_epochs}, batch {status.batch}/{status.total_batches}"
        )
        if status.error:
            print(status.error)
    return 0


def cmd_runs_stop(args: argparse.Namespace) -> int:
    from skinlab.jobs.manager import stop_run

    print(stop_run(args.run, force=args.force).state)
    return 0


def cmd_runs_resume(args: argparse.Namespace) -> int:
    from skinlab.jobs.manager import resume_run

    print(resume_run(args.run).root)
    return 0


def cmd_runs_logs(args: argparse.Namespace) -> int:
    from skinlab.jobs.manager import read_log

    print(read_log(args.run, args.tail))
    return 0


def cmd_runs_delete(args: argparse.Namespace) -> int:
    from skinlab.jobs.manager import delete_run

    delete_run(args.run)
    print(f"deleted {args.run}")
    return 0


def cmd_runs_rename(args: argparse.Namespace) -> int:
    from skinlab.jobs.manager import rename_run

    print(rename_run(args.run, args.name).root)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from skinlab.core.probability import format_probability
    from skinlab.predict.predictor import Prediction, load_predictor, results_frame

    predictor = load_predictor(args.run)
    results = predictor.predict_paths(args.images, tta=args.tta)
    if args.gradcam:
        from skinlab.predict.explain import save_gradcams

        save_gradcams(
            predictor, [r for r in results if isinstance(r, Prediction)], Path(args.gradcam)
        )
    if args.csv:
        from skinlab.core import atomic
        from skinlab.core.spreadsheet import csv_text

        # Image and class names become cells: one named "=..." must not run as a formula.
        atomic.write_text(Path(args.csv), csv_text(results_frame(results, predictor.class_names)))
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2))
    else:
        print(NOT_A_MEDICAL_DEVICE, file=sys.stderr)
        for r in results:
            if not isinstance(r, Prediction):
                print(f"{r.path}: error: {r.error}")
                continue
            top = ", ".join(f"{c} {format_probability(p)}" for c, p in r.top_k)
            flag = f"  [OUT OF DISTRIBUTION: {r.ood_reason}]" if r.ood else ""
            print(
                f"{r.path}: {top} | tier {r.risk_tier} | malignant {format_probability(r.malignant_probability)}{flag}"
            )
    predicted = sum(isinstance(r, Prediction) for r in results)
    if not predicted:
        print("error: no image could be predicted.", file=sys.stderr)
    return 0 if predicted else 1


def cmd_export(args: argparse.Namespace) -> int:
    from skinlab.predict.export import export_run

    print(export_run(args.run, args.format, Path(args.out) if args.out else None))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from skinlab.bench import run_bench
    from skinlab.bench.report import format_report

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    data = Path(args.data) if args.data else None
    result = run_bench(data, quick=args.quick, only=args.only, log=log)
    print(json.dumps(result, indent=2) if args.json else format_report(result))
    failed = [s["name"] for s in result["sections"] if s["error"]]
    if failed:
        # Still exit 0: the other sections' figures are valid and worth keeping.
        print(f"sections that failed: {', '.join(failed)}", file=sys.stderr)
    return 0


def _recipe_command(sub, name: str, text: str) -> argparse.ArgumentParser:
    """A subcommand that takes a recipe (every run option) and ``--json``."""
    p = sub.add_parser(name, help=text, formatter_class=_RunOptionsHelp)
    _add_run_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The argument parser; subcommands grow with the library."""
    parser = argparse.ArgumentParser(
        prog="python -m skinlab",
        description=f"skinlab {__version__}: dermoscopic skin-lesion classification workbench. "
        + NOT_A_MEDICAL_DEVICE,
    )
    parser.add_argument("--version", action="version", version=f"skinlab {__version__}")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show TensorFlow's own start-up and log lines (hidden by default)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_commands in (
        _add_dataset_commands,
        _add_recipe_commands,
        _add_model_commands,
        _add_bench_command,
        _add_runs_commands,
    ):
        add_commands(sub)
    return parser


def _add_dataset_commands(sub) -> None:
    """demo-data, scan, audit, review and data import/download/list."""
    p = sub.add_parser("demo-data", help="generate the synthetic demo dataset")
    p.add_argument("--out", help="folder to write (default: data/skinlab-demo, made once)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=1.0, help="multiply the image counts")
    p.set_defaults(func=cmd_demo_data)

    p = sub.add_parser("scan", help="list a dataset's images per split and class")
    p.add_argument("data", nargs="?", help="dataset root (default: the synthetic demo)")
    p.add_argument("--json", action="store_true", help="print the full table as JSON records")
    p.set_defaults(func=cmd_scan)

    _add_audit_command(sub)

    p = sub.add_parser(
        "review",
        help="rank the images to doubt: label conflicts, likely label errors, duplicates",
    )
    p.add_argument("data", nargs="?", help="dataset root (default: the synthetic demo)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--quick",
        action="store_true",
        help="judge labels with the quick thumbnail model even where a cross-validation exists",
    )
    p.set_defaults(func=cmd_review)

    data = sub.add_parser("data", help="import, download or list datasets")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    p = data_sub.add_parser("import", help="import a zip or folder into data/<name>")
    p.add_argument(
        "source",
        help="the Kaggle ISIC zip, any zip/folder with Train/<class>/, or a folder of "
        "HAM10000's images with HAM10000_metadata.csv (or an ISIC challenge's ground-truth "
        "CSV), converted to Train/<class>/",
    )
    p.add_argument("--name", help="folder name under data/ (default: from the source)")
    p.set_defaults(func=cmd_data_import)
    p = data_sub.add_parser(
        "download", help="download the ISIC dataset (or HAM10000) with kagglehub"
    )
    p.add_argument(
        "--dataset",
        default="isic",
        choices=("isic", "ham10000"),  # importer.KAGGLE_DATASETS; written out: no import here
        help="isic: the 9-class Kaggle ISIC dataset; ham10000: HAM10000, another collection",
    )
    p.add_argument("--name", help="folder name under data/ (default: the dataset's name)")
    p.set_defaults(func=cmd_data_download)
    p = data_sub.add_parser("list", help="list the datasets the app can use")
    p.set_defaults(func=cmd_data_list)


def _add_audit_command(sub) -> None:
    """audit, and its shortcut check of a dataset and of a run (``--shortcuts --run``)."""
    p = sub.add_parser("audit", help="find duplicates, label conflicts, leaks, unreadable files")
    p.add_argument("data", nargs="?", help="dataset root (default: the synthetic demo)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--shortcuts",
        action="store_true",
        help="instead: can the label be told without the lesion? Each class's collections, "
        "and a classifier of image statistics that ignore the lesion, against chance",
    )
    p.add_argument(
        "--run",
        help="with --shortcuts, also score this run with the lesion hidden and with only the "
        "lesion kept (default dataset: the run's own), and check the images it trained on; "
        "both are saved in the run",
    )
    p.set_defaults(func=cmd_audit)


def _add_recipe_commands(sub) -> None:
    """The commands that take a recipe: train, cv, ablation, lr-find."""
    p = sub.add_parser(
        "train",
        help="train a model (prints the run directory last)",
        formatter_class=_RunOptionsHelp,
    )
    _add_run_options(p)
    _add_repeats_option(p)
    p.set_defaults(func=cmd_train)

    p = _recipe_command(
        sub, "cv", "k-fold cross-validation of a recipe on Train (one run per fold; Test unused)"
    )
    p.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    p.set_defaults(func=cmd_cv)
    p = _recipe_command(
        sub,
        "ablation",
        "cross-validate a recipe (default cpu-best) and each variant without one of its elements",
    )
    p.add_argument("--folds", type=int, default=5, help="number of folds (default 5)")
    p.set_defaults(func=cmd_ablation)
    p = _recipe_command(
        sub, "lr-find", "learning-rate range test: suggest a learning rate for a recipe"
    )
    p.add_argument("--steps", type=int, default=100, help="training steps (default 100)")
    p.set_defaults(func=cmd_lr_find)


def _add_evaluate_command(sub) -> None:
    """``evaluate``: a split, the run's validation images, or an external set."""
    from skinlab.core.config import MAX_TTA  # not views.MAX_TTA: parsing loads no NumPy

    p = sub.add_parser("evaluate", help="score a trained run on a split or an external set")
    p.add_argument("run", help="run id, unique prefix, or run folder")
    p.add_argument("--data", help="dataset root (default: the run's own)")
    p.add_argument(
        "--split",
        choices=["Train", "Val", "Test", "validation"],
        help="a split folder (default: Test), or 'validation': the images the run was "
        "validated on (for a cross-validation fold, its held-out fold)",
    )
    p.add_argument(
        "--external",
        metavar="PATH",
        help="score the run on another collection instead (not with --data or --split): a "
        "folder of class folders, a dataset's Test/ folder, HAM10000's images with its "
        "metadata CSV, or an ISIC ground-truth CSV beside its images; images the run "
        "trained on are left out",
    )
    p.add_argument(
        "--tta",
        type=int,
        default=1,
        choices=range(1, MAX_TTA + 1),
        metavar="N",
        help=f"average the probabilities of N views of each image (1-{MAX_TTA}): the image, its "
        "flips and quarter turns (8), then the same turned by 45, 22.5 and 67.5 degrees",
    )
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_evaluate)


def _add_model_commands(sub) -> None:
    """The commands that use a trained run: evaluate, familiarity, paired, predict, export."""
    from skinlab.core.config import MAX_TTA  # not views.MAX_TTA: parsing loads no NumPy

    _add_evaluate_command(sub)
    p = sub.add_parser(
        "familiarity",
        help="fit (or refit) a run's unfamiliar-image gate and measure its two error rates",
    )
    p.add_argument("run", help="run id, unique prefix, or run folder")
    p.add_argument("--data", help="dataset root (default: the run's own)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_familiarity)

    p = sub.add_parser("paired", help="is one run really better than another on the same images?")
    p.add_argument("run", help="run A: id, unique prefix, or run folder")
    p.add_argument("other", help="run B")
    p.add_argument("--split", default="Test", choices=["Test", "Val"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_paired)

    p = sub.add_parser("predict", help="predict images or folders with a trained run")
    p.add_argument("run", help="run id, unique prefix, or run folder")
    p.add_argument("images", nargs="+", help="image files and/or folders")
    p.add_argument("--json", action="store_true", help="print one JSON list, an object per input")
    p.add_argument(
        "--tta",
        type=int,
        default=1,
        help=f"test-time augmentation views (1-{MAX_TTA}; see evaluate --help)",
    )
    p.add_argument("--gradcam", metavar="OUT_DIR", help="write Grad-CAM overlays there")
    p.add_argument("--csv", metavar="OUT", help="also write a CSV table")
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("export", help="export a run as a bundle (model, labels, manifest, card)")
    p.add_argument("run", help="run id, unique prefix, or run folder")
    p.add_argument("--format", default="keras", choices=["keras", "tflite", "savedmodel"])
    p.add_argument("--out", help="bundle folder (default: inside the run)")
    p.set_defaults(func=cmd_export)


def _add_bench_command(sub) -> None:
    """bench: skinlab's speed against the notebook's way."""
    from skinlab.bench import SECTIONS

    p = sub.add_parser("bench", help="measure skinlab's speed against the notebook's way")
    p.add_argument("--data", help="dataset root (default: the synthetic demo)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quick", action="store_true", help="fewer images, epochs and repetitions")
    p.add_argument(
        "--only",
        nargs="+",
        choices=list(SECTIONS),
        metavar="SECTION",
        help=f"run only these sections ({', '.join(SECTIONS)})",
    )
    p.set_defaults(func=cmd_bench)


def _add_runs_commands(sub) -> None:
    """runs list/start/status/stop/resume/logs/delete/rename."""
    runs_parser = sub.add_parser("runs", help="list and manage training runs")
    runs_sub = runs_parser.add_subparsers(dest="runs_command", required=True, metavar="ACTION")
    p = runs_sub.add_parser("list", help="every run with its true state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs_list)
    p = runs_sub.add_parser(
        "start",
        help="train in a background process (prints the run dir)",
        formatter_class=_RunOptionsHelp,
    )
    _add_run_options(p)
    p.add_argument("--key", help="idempotency key: a second start with it while active is a no-op")
    _add_repeats_option(p)
    p.set_defaults(func=cmd_runs_start)
    for name, func, text in [
        ("status", cmd_runs_status, "a run's live status"),
        ("stop", cmd_runs_stop, "stop after the current batch (twice, or --force: kill)"),
        ("resume", cmd_runs_resume, "continue a stopped or failed run"),
        ("logs", cmd_runs_logs, "the end of a run's log"),
        ("delete", cmd_runs_delete, "delete a run that is not running"),
        ("rename", cmd_runs_rename, "give a run a name"),
    ]:
        p = runs_sub.add_parser(name, help=text)
        p.add_argument("run", help="run id, unique prefix, or run folder")
        p.set_defaults(func=func)
        if name == "status":
            p.add_argument("--json", action="store_true")
        if name == "stop":
            p.add_argument("--force", action="store_true")
        if name == "logs":
            p.add_argument("--tail", type=int, default=50)
        if name == "rename":
            p.add_argument("name")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    quiet_tensorflow("--verbose" in argv)  # before parsing: `train --help` loads Keras
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        if isinstance(getattr(args, "run", None), str):
            from skinlab.core.runs import resolve_run

            resolve_run(args.run)  # an unknown run id is answered before TensorFlow loads
        return func(args)
    except SkinlabError as exc:
        _end_progress_line()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
