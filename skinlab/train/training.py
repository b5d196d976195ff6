"""Training a run end to end: data → split → pipelines → model → fit → evaluate → files.

:func:`train` is what ``python -m skinlab train`` and (through a worker process) the
Train page call. It reads only the Train split (validation is carved from it, grouped by
content hash so duplicates never straddle the split); the Test split is used only by the
evaluation at the end. Every file lands atomically in the run directory
(:mod:`skinlab.core.runs`), and any failure marks the run ``failed`` with one sentence.

Example::

    result = train(preset("notebook", data_root="data/isic", epochs=3))
    result.paths.root, result.metrics["validation"]["balanced_accuracy"]

Why one module: the steps of one run (prepare data, set up the fit, run the phases,
evaluate, write the files) share the private records ``_Data`` and ``_Fit`` and the run's
state writes; each step is its own function of under 60 lines, and splitting the module
would make those records public API.
"""

from __future__ import annotations

import dataclasses
import errno
import time
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from skinlab import __version__
from skinlab.core import lifecycle, runs
from skinlab.core.config import RunConfig
from skinlab.core.errors import SkinlabError
from skinlab.core.manifest import Manifest
from skinlab.data.discovery import Dataset
from skinlab.data.extra_collections import ExtraCount
from skinlab.data.overrides import RAW
from skinlab.data.pipeline import PipelineSpec, label_indices, make_dataset
from skinlab.data.run_split import split_for_run
from skinlab.evaluate.calibration import calibration_report
from skinlab.evaluate.familiarity_fit import METRICS_KEY, fit_gate, write_gate
from skinlab.evaluate.ood import fit_ood_threshold
from skinlab.evaluate.scoring import predict_logits, score_split, score_table
from skinlab.model.backbones import BACKBONES, set_backbone_trainable
from skinlab.model.distribute import make_strategy
from skinlab.model.modelio import build_for_config
from skinlab.model.precision import Decision, choose_precision, dtype_policy
from skinlab.model.weights import ensure_imagenet_weights
from skinlab.train.budget import TimeBudget
from skinlab.train.callbacks import RunMonitor
from skinlab.train.checkpoint import BestWeights
from skinlab.train.features import FEATURES_PHASE, HeadInputs, caches_features, prepare_head
from skinlab.train.imbalance import (
    balanced_probabilities,
    class_weights,
    collection_balanced_probabilities,
    collection_offsets,
    logit_offsets,
    oversample_indices,
)
from skinlab.train.losses import GroupedAccuracy, SmoothedCrossentropy, encode_groups
from skinlab.train.preflight import preflight
from skinlab.train.schedules import OneCycle

#: Momentum of the weights' moving average with ``RunConfig.ema`` (Keras' default): about
#: the last 100 steps count.
EMA_MOMENTUM = 0.99


class TrainingFailed(SkinlabError):
    """Training stopped with an error (NaN loss, bad data, ...); the run is marked failed."""


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    paths: runs.RunPaths
    state: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Data:
    dataset: Dataset
    class_names: list[str]
    train: pd.DataFrame
    val: pd.DataFrame
    counts_before: dict[str, int]
    counts_after: dict[str, int]
    class_weight: dict[int, float] | None
    logit_offsets: list[float] | None = None
    extra: tuple[ExtraCount, ...] = ()
    #: Per-row draw probabilities of the training side (balanced or collection-balanced).
    draw_probabilities: np.ndarray | None = None
    #: Collection adjustment: the training labels with their group, and the offsets table.
    label_codes: np.ndarray | None = None
    group_offsets: list[list[float]] | None = None


def prepare_data(config: RunConfig) -> _Data:
    """The run's training and validation rows (:func:`skinlab.data.run_split.split_for_run`:
    its dataset version, split or cross-validation fold, and the rows of ``extra_data`` on the
    training side), with the training side rebalanced
    as ``config.imbalance`` asks; the Test split is never touched here.

    Raises:
        DatasetLayoutError: no Train images, or fewer than two classes.
        OverridesError: the dataset has no version ``config.data_version``.
    """
    rows = split_for_run(config)
    dataset, class_names, train, val = rows.dataset, rows.class_names, rows.train, rows.val
    labels = label_indices(train, class_names)
    before = np.bincount(labels, minlength=len(class_names))
    weights = None
    offsets = None
    if config.imbalance == "oversample":
        # Only the training side is oversampled: validation was split off above.
        train = train.iloc[oversample_indices(labels, config.seed)].reset_index(drop=True)
    elif config.imbalance == "class_weights":
        weights = class_weights(labels, len(class_names))
    elif config.imbalance == "logit_adjustment":
        offsets = logit_offsets(labels, len(class_names))
    after = np.bincount(label_indices(train, class_names), minlength=len(class_names))
    draws, codes, groups = _draws_and_groups(config, train, class_names)
    if weights is not None and groups is not None:
        # Keras looks class weights up by label, and these labels carry their group.
        weights = {
            code: weights[code % len(class_names)] for code in range(len(class_names) * len(groups))
        }
    return _Data(
        dataset=dataset,
        class_names=class_names,
        train=train,
        val=val,
        counts_before=dict(zip(class_names, before.tolist(), strict=True)),
        counts_after=dict(zip(class_names, after.tolist(), strict=True)),
        class_weight=weights,
        logit_offsets=offsets,
        extra=rows.extra,
        draw_probabilities=draws,
        label_codes=codes,
        group_offsets=groups,
    )


def _draws_and_groups(
    config: RunConfig, train: pd.DataFrame, class_names: list[str]
) -> tuple[np.ndarray | None, np.ndarray | None, list[list[float]] | None]:
    """The training side's draw probabilities (``balanced_sampling``, ``collection_balance``)
    and, with ``collection_adjustment``, its labels carrying their collection group and the
    table of ``log p(class | collection)`` offsets under those draws."""
    labels = label_indices(train, class_names)
    several = "collection" in train and train["collection"].nunique() > 1
    draws = None
    if config.collection_balance and several:
        draws = collection_balanced_probabilities(
            labels,
            train["collection"].to_numpy(),
            balance_classes=config.imbalance == "balanced_sampling",
        )
    elif config.imbalance == "balanced_sampling":
        draws = balanced_probabilities(labels)
    if not (config.collection_adjustment and several):
        return draws, None, None
    groups, table = collection_offsets(
        labels,
        train["collection"].to_numpy(),
        len(class_names),
        draws,
        cap=config.collection_adjustment,
    )
    return draws, encode_groups(labels, groups, len(class_names)), table


def _schedule(
    config: RunConfig, learning_rate: float, total_steps: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    if config.schedule == "cosine":
        return keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps=max(total_steps, 1), alpha=0.05
        )
    if config.schedule == "one_cycle":
        return OneCycle(learning_rate, total_steps=max(total_steps, 1))
    return learning_rate


def _optimizer(
    config: RunConfig, lr: float | keras.optimizers.schedules.LearningRateSchedule
) -> keras.optimizers.Optimizer:
    # Keras' weight decay is decoupled (AdamW's rule) in every optimizer; None leaves it off.
    common = {
        "learning_rate": lr,
        "weight_decay": config.weight_decay or None,
        "use_ema": config.ema,
        "ema_momentum": EMA_MOMENTUM,
    }
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(momentum=config.momentum, **common)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(**{**common, "weight_decay": config.weight_decay})
    return keras.optimizers.Adam(**common)


def _loss(
    config: RunConfig,
    logit_offsets: list[float] | None = None,
    group_offsets: list[list[float]] | None = None,
) -> keras.losses.Loss:
    if group_offsets is not None:
        return SmoothedCrossentropy(config.label_smoothing, group_offsets=group_offsets)
    if config.label_smoothing or logit_offsets is not None:
        return SmoothedCrossentropy(config.label_smoothing, logit_offsets)
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def _compile(
    model: keras.Model,
    config: RunConfig,
    learning_rate: float,
    total_steps: int,
    logit_offsets: list[float] | None = None,
    group_offsets: list[list[float]] | None = None,
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """Compile ``model`` for ``total_steps`` of training; returns its learning-rate schedule.

    ``logit_offsets`` (``prepare_data``'s, for ``imbalance="logit_adjustment"``) and
    ``group_offsets`` (for ``collection_adjustment``; the training labels then carry their
    group) go into the loss only."""
    lr = _schedule(config, learning_rate, total_steps)
    classes = model.output_shape[-1]
    model.compile(
        optimizer=_optimizer(config, lr),
        loss=_loss(config, logit_offsets, group_offsets),
        metrics=["accuracy" if group_offsets is None else GroupedAccuracy(classes)],
    )
    _build_training_state(model)
    return lr


def _build_training_state(model: keras.Model) -> None:
    """Create the optimizer's slots and the loss and metric trackers now, eagerly.

    Left to ``fit``, they are created while its first step is traced, and a ``tf.function``
    that creates variables is traced twice: measured on 2 cores for the quick preset, the
    first ``fit`` took 10.4 s with both left to it, 7.8 s with them built here, and the
    optimizer alone is ~2-3 s traced against 0.2 s eagerly. That is the wait before a new
    run's first live point. One example of zeros builds them; ``fit`` resets every metric
    at each epoch's start, so it leaves no trace in the scores.
    """
    model.optimizer.build(model.trainable_variables)
    x = np.zeros((1, *model.input_shape[1:]), dtype="float32")
    y = np.zeros((1,), dtype="int32")
    y_pred = model(x, training=False)
    model.compute_loss(x, y, y_pred)
    model.compute_metrics(x, y, y_pred, sample_weight=None)


def _callbacks(
    config: RunConfig,
    paths: runs.RunPaths,
    monitor: RunMonitor,
    best: BestWeights,
    budget: TimeBudget,
) -> list:
    # Weights before the history row: a kill between the two then leaves the history one
    # epoch behind the weights (resume redoes that epoch), never ahead of them (resume
    # would skip an epoch that was never saved).
    cbs: list[keras.callbacks.Callback] = [best, monitor, budget]
    if config.ema:
        # First, so every callback after it sees the averaged weights at an epoch's end:
        # validation is scored on them (swapped in for evaluation too) and BestWeights saves
        # them, so the best and last files, the final model and a resume all hold the EMA.
        # A resume starts a fresh average from those weights.
        cbs.insert(0, keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    cbs.append(
        keras.callbacks.TensorBoard(
            log_dir=str(paths.tensorboard), write_graph=False, profile_batch=0
        )
    )
    if config.patience > 0:
        cbs.append(keras.callbacks.EarlyStopping(monitor=best.monitor, patience=config.patience))
    if config.schedule == "plateau":
        cbs.append(keras.callbacks.ReduceLROnPlateau(monitor=best.monitor, factor=0.5, patience=2))
    return cbs


def _set_state(paths: runs.RunPaths, state: str, **changes: Any) -> None:
    """The trainer's step of the run's state machine (:mod:`skinlab.core.lifecycle`). A step
    refused because the run was ended from outside (a second stop killed it) is dropped: the
    state that stands is the truth, and this process is about to be gone."""
    with suppress(lifecycle.TransitionRefused):
        lifecycle.change(paths, state, **changes)


def train(
    config: RunConfig,
    *,
    paths: runs.RunPaths | None = None,
    verbose: int = 0,
    resume: bool = False,
) -> TrainResult:
    """Train ``config`` into a run directory and return the result.

    The run ends ``finished``, ``stopped`` (a stop request was honoured: the best weights
    so far are kept and evaluated) or ``failed`` (the reason is in ``status.json``, and
    :class:`TrainingFailed` or the original :class:`SkinlabError` is raised).

    A new run is only created once :func:`skinlab.train.preflight.preflight` passes, so a start
    that cannot work (a missing dataset folder, one class, offline ImageNet weights) raises
    and leaves no run folder behind.

    Args:
        paths: an existing run directory (background runs); default: a new one.
        resume: continue ``paths`` from its last saved epoch, appending to its history.
            The optimizer's state (momentum, schedule position) starts afresh.
    """
    if paths is None:
        preflight(config)
        paths = runs.new_run(config)
    try:
        return _train(config, paths, verbose, resume)
    except SkinlabError as exc:
        _set_state(paths, "failed", error=str(exc), finished=time.time())
        raise
    except (tf.errors.ResourceExhaustedError, MemoryError) as exc:
        message = "Training ran out of memory; lower the batch size or the image size."
        _set_state(paths, "failed", error=message, finished=time.time())
        raise TrainingFailed(message) from exc
    except OSError as exc:
        message = _write_failure(exc)
        _set_state(paths, "failed", error=message, finished=time.time())
        raise TrainingFailed(message) from exc
    except BaseException as exc:
        # Anything unexpected (a bug, Ctrl-C) still leaves an honest status behind.
        _set_state(
            paths,
            "failed",
            error=f"Training crashed: {type(exc).__name__}: {exc}",
            finished=time.time(),
        )
        raise


def _write_failure(exc: OSError) -> str:
    """One sentence for a run file that could not be written."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            "The disk is full (No space left on device), so training stopped; the weights "
            "saved before were kept. Free some disk space (delete old runs), then resume "
            "this run."
        )
    return (
        f"Training could not write its files ({exc.strerror or exc}); check the models "
        "folder's free disk space and permissions, then resume this run."
    )


@dataclass(frozen=True)
class _Phase:
    name: str
    first_epoch: int  # epochs already done before this phase starts
    last_epoch: int  # absolute epoch this phase ends at
    learning_rate: float
    unfreeze: int | None = None


def _phases(config: RunConfig, done: int) -> list[_Phase]:
    """The phases still to run when ``done`` epochs are already in the history."""
    phases = [_Phase("train", 0, config.epochs, config.learning_rate)]
    if (
        config.fine_tune_layers
        and config.fine_tune_epochs
        and BACKBONES[config.backbone].kind == "transfer"
    ):
        rate = config.learning_rate * config.fine_tune_lr_factor
        phases.append(
            _Phase("fine-tune", config.epochs, config.total_epochs, rate, config.fine_tune_layers)
        )
    return [
        dataclasses.replace(p, first_epoch=max(p.first_epoch, done))
        for p in phases
        if p.last_epoch > done
    ]


def _resume_point(paths: runs.RunPaths) -> tuple[int, float | None, int | None]:
    """Epochs already in the history, the best validation loss among them and its epoch."""
    history = runs.read_history(paths)
    if history.empty:
        return 0, None, None
    losses = history["val_loss"] if history["val_loss"].notna().any() else history["loss"]
    if losses.isna().all():
        return int(history["epoch"].max()), None, None
    best_row = history.loc[losses.idxmin()]
    return int(history["epoch"].max()), float(losses.min()), int(best_row["epoch"])


def _train(config: RunConfig, paths: runs.RunPaths, verbose: int, resume: bool) -> TrainResult:
    if config.backbone not in BACKBONES:
        raise SkinlabError(
            f"Unknown backbone '{config.backbone}'; choose one of {', '.join(BACKBONES)}."
        )
    if config.weights == "imagenet":
        ensure_imagenet_weights(config.backbone, config.image_size)  # fail before any work
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    done, best_so_far, best_epoch = _resume_point(paths) if resume else (0, None, None)
    if resume and runs.read_status(paths).state in ("stopped", "failed"):
        # Called directly (not through the manager, which queues first), a resume takes the
        # machine's resume step itself: stopped/failed -> queued -> running.
        _set_state(paths, "queued")
    _set_state(
        paths,
        "running",
        started=time.time(),
        total_epochs=config.total_epochs,
        error=None,
        finished=None,
        # A resumed run must not show the progress of the attempt that was killed (its
        # batch count, or "evaluate") while it loads.
        batch=0,
        phase="train",
    )
    data = prepare_data(config)
    for extra in data.extra:  # the run's log says what each extra collection added
        print(extra.sentence(), flush=True)
    fit = _setup_fit(config, data)
    if done:
        fit.model.load_weights(paths.last_weights if paths.last_weights.exists() else paths.weights)
    best = BestWeights(
        paths.weights,
        monitor="val_loss" if fit.val is not None else "loss",
        mode="last" if config.keep_weights == "last" else "min",
        best=best_so_far,
        best_epoch=best_epoch,
        last_path=paths.last_weights,
        target=fit.model,  # the whole model, also while fit trains only its head
    )
    stopped, cached = _fit_phases(config, data, fit, paths, best, done, verbose)
    return _finish(config, data, fit, paths, best, stopped, cached)


@dataclass
class _Fit:
    """What the phases train: the model, its pipelines and how it is computed."""

    model: keras.Model
    train: tf.data.Dataset
    val: tf.data.Dataset | None
    steps: int  # batches per epoch
    strategy: tf.distribute.Strategy
    precision: Decision


def _setup_fit(config: RunConfig, data: _Data) -> _Fit:
    """The pipelines (class-balanced draws where asked), the strategy, the precision and
    the freshly built model."""
    spec = PipelineSpec(
        image_size=config.image_size, batch_size=config.batch_size, shuffle=True, seed=config.seed
    )
    train_ds = make_dataset(
        data.train,
        data.class_names,
        spec,
        draw_probabilities=data.draw_probabilities,
        labels=data.label_codes,
    )
    val_spec = dataclasses.replace(spec, shuffle=False)
    val_ds = make_dataset(data.val, data.class_names, val_spec) if len(data.val) else None
    steps = int(train_ds.cardinality())
    strategy = make_strategy(config.strategy)
    precision = _choose_precision(config, len(data.class_names), steps * config.total_epochs)
    keras.utils.set_random_seed(config.seed)  # a probe that ran or not leaves the same state
    with strategy.scope(), dtype_policy(precision.policy):
        model = build_for_config(config, len(data.class_names))
    return _Fit(model, train_ds, val_ds, steps, strategy, precision)


def _fit_phases(
    config: RunConfig,
    data: _Data,
    fit: _Fit,
    paths: runs.RunPaths,
    best: BestWeights,
    done: int,
    verbose: int,
) -> tuple[bool, HeadInputs | None]:
    """Train every phase still to run, within the time budget; returns whether the user
    stopped the run and the cached head inputs (when a phase trained on cached features)."""
    budget = TimeBudget(config.time_budget_minutes, started=time.time())
    stopped = False
    cached: HeadInputs | None = None
    for phase in _phases(config, done):
        if stopped or budget.exhausted:
            break
        fit_model, fit_train, fit_val = fit.model, fit.train, fit.val
        if caches_features(config, phase.unfreeze):
            cached = _cached_head(fit.model, data, fit.val, config, paths)
            fit_model, fit_train, fit_val = cached.model, cached.train, cached.validation
        with fit.strategy.scope():
            if phase.unfreeze:
                set_backbone_trainable(fit.model, phase.unfreeze)
            schedule = _compile(
                fit_model,
                config,
                phase.learning_rate,
                fit.steps * (phase.last_epoch - phase.first_epoch),
                data.logit_offsets,
                data.group_offsets,
            )
        monitor = RunMonitor(
            paths,
            total_epochs=config.total_epochs,
            steps_per_epoch=fit.steps,
            batch_size=config.batch_size,
            phase=phase.name,
            initial_epoch=phase.first_epoch,
        )
        if (
            budget.seconds > 0
            and isinstance(schedule, OneCycle)
            and not caches_features(config, phase.unfreeze)
        ):
            _fit_schedule_to_budget(budget, schedule, monitor, phase, config, fit.steps)
        fit_model.fit(
            fit_train,
            validation_data=fit_val,
            initial_epoch=phase.first_epoch,
            epochs=phase.last_epoch,
            class_weight=data.class_weight,
            # The pipeline shuffles; Keras ignores shuffle for a dataset but warns about it.
            shuffle=False,
            callbacks=_callbacks(config, paths, monitor, best, budget),
            verbose=verbose,
        )
        _raise_if_failed(monitor)
        stopped = monitor.stop_requested
    return stopped, cached


def _fit_schedule_to_budget(
    budget: TimeBudget,
    schedule: OneCycle,
    monitor: RunMonitor,
    phase: _Phase,
    config: RunConfig,
    steps: int,
) -> None:
    """Let the budget shorten the one-cycle to the epochs that fit, and the monitor's
    epoch total with it."""
    later = config.total_epochs - phase.last_epoch  # epochs of the phases after this

    def replanned(last: int) -> None:
        monitor.total_epochs = last + later

    budget.plan(
        schedule,
        steps_per_epoch=steps,
        first_epoch=phase.first_epoch,
        last_epoch=phase.last_epoch,
        on_replan=replanned,
    )


def _finish(
    config: RunConfig,
    data: _Data,
    fit: _Fit,
    paths: runs.RunPaths,
    best: BestWeights,
    stopped: bool,
    cached: HeadInputs | None,
) -> TrainResult:
    """Restore the kept weights, evaluate, write the run's files and its final state."""
    model = fit.model
    if fit.precision.policy != "float32":
        # Evaluate and export in float32, so predictions never depend on how it was trained.
        with fit.strategy.scope():
            model = build_for_config(config, len(data.class_names), weights="none")
    if not best.restore(model):
        if stopped:  # the user's choice, not a failure; a partial epoch is never kept
            message = "Stopped before the first epoch finished, so no weights were kept; start the run again."
            _set_state(paths, "stopped", error=message, finished=time.time(), phase="done")
            return TrainResult(paths=paths, state="stopped")
        raise TrainingFailed(
            "No epoch finished, so there are no weights to keep; train for at least one epoch."
        )
    _set_state(paths, "stopping" if stopped else "running", phase="evaluate")
    metrics = _evaluate(model, data, config)
    metrics["training_precision"] = {"policy": fit.precision.policy, "reason": fit.precision.reason}
    if cached is not None:
        metrics["feature_cache"] = cached.summary
    if data.extra:
        metrics["extra_data"] = [dataclasses.asdict(count) for count in data.extra]
    if data.group_offsets is not None:  # the loss's log p(class | collection), for the record
        names = sorted(data.train["collection"].astype(str).unique())
        metrics["collection_offsets"] = {"collections": names, "table": data.group_offsets}
    _write_outputs(model, data, config, paths, metrics, best)
    if len(data.val):
        gate, metrics[METRICS_KEY] = fit_gate(
            model,
            data.train,
            data.val,
            data.class_names,
            config.image_size,
            weights_sha256=runs.file_sha256(paths.weights),
        )
        write_gate(paths, gate, metrics[METRICS_KEY])
    state = "stopped" if stopped else "finished"
    _set_state(paths, state, finished=time.time(), phase="done")
    return TrainResult(paths=paths, state=state, metrics=metrics)


def _choose_precision(config: RunConfig, num_classes: int, total_steps: int) -> Decision:
    """The run's dtype policy (measured once per machine and model shape when ``auto`` and
    the run is long enough to be worth it)."""
    key = f"{config.backbone}|{config.image_size}|{config.batch_size}|{config.augmentation}"
    return choose_precision(
        config.precision,
        key,
        # Random init for the probe: only the speed of the arithmetic is measured.
        lambda: build_for_config(config, num_classes, weights="none"),
        (config.batch_size, config.image_size, config.image_size, 3),
        total_steps=total_steps,
    )


def _cached_head(
    model: keras.Model,
    data: _Data,
    val_ds: tf.data.Dataset | None,
    config: RunConfig,
    paths: runs.RunPaths,
) -> HeadInputs:
    """The head and its cached features, for a phase whose backbone is entirely frozen.

    The status shows the feature pass's progress; a stop request or a spent time budget
    takes effect at the head's first batch, after the pass.
    """
    spec = PipelineSpec(image_size=config.image_size, batch_size=config.batch_size)
    train_images = make_dataset(data.train, data.class_names, spec)  # in row order

    def progress(batch: int, total: int) -> None:
        _set_state(paths, "running", phase=FEATURES_PHASE, batch=batch, total_batches=total)

    progress(0, 0)
    return prepare_head(
        model,
        train_images,
        val_ds,
        views=config.augmented_views,
        batch_size=config.batch_size,
        seed=config.seed,
        progress=progress,
        balanced=config.imbalance == "balanced_sampling",
    )


def _raise_if_failed(monitor: RunMonitor) -> None:
    if monitor.failure:
        raise TrainingFailed(monitor.failure)


def _evaluate(model: keras.Model, data: _Data, config: RunConfig) -> dict[str, Any]:
    """Calibrate on validation, fit the OOD threshold there, then score Val and Test."""
    metrics: dict[str, Any] = {"temperature": 1.0, "ood_threshold": None}
    frames = []
    if len(data.val):
        logits = predict_logits(model, data.val, config.image_size)
        labels = label_indices(data.val, data.class_names)
        metrics["calibration"] = calibration_report(logits, labels)
        temperature = metrics["temperature"] = metrics["calibration"]["temperature"]
        metrics["ood_threshold"] = fit_ood_threshold(logits, temperature)
        metrics["validation"], frame = score_table(
            model,
            data.val,
            data.class_names,
            config.image_size,
            temperature=temperature,
            split="Val",
            # Calibration and the OOD threshold use the single-view logits above; the
            # scores average config.tta views when asked to (one view reuses the logits).
            logits=logits if config.tta == 1 else None,
            tta=config.tta,
        )
        frames.append(frame)
    # A cross-validation fold is a model-selection run: scoring Test there would let the
    # choice of recipe peek at it.
    if "Test" in data.dataset.splits and not config.cv_folds:
        test = data.dataset.images("Test")
        if test["label"].isin(data.class_names).all() and len(test):
            metrics["test"], frame = score_split(
                model,
                data.dataset,
                "Test",
                data.class_names,
                config.image_size,
                temperature=metrics["temperature"],
                tta=config.tta,
            )
            frames.append(frame)
    metrics["predictions"] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return metrics


def _write_outputs(
    model: keras.Model,
    data: _Data,
    config: RunConfig,
    paths: runs.RunPaths,
    metrics: dict[str, Any],
    best: BestWeights,
) -> None:
    from skinlab.core import atomic

    predictions = metrics.pop("predictions")
    temperature = metrics.pop("temperature")
    ood_threshold = metrics.pop("ood_threshold")
    atomic.write_text(paths.predictions, predictions.to_csv(index=False))
    atomic.write_json(paths.metrics, {**metrics, "best_epoch": best.best_epoch})
    runs.write_manifest(
        paths,
        Manifest(
            backbone=config.backbone,
            class_names=tuple(data.class_names),
            image_size=config.image_size,
            temperature=temperature,
            ood_threshold=ood_threshold,
            weights_sha256=runs.file_sha256(paths.weights),
            weights_file=paths.weights.name,
            preprocessing=BACKBONES[config.backbone].preprocessing,
            train_counts=data.counts_before,
            train_counts_after_rebalancing=data.counts_after,
            val_count=len(data.val),
            best_epoch=best.best_epoch,
            data_root=str(data.dataset.root),
            data_version=config.data_version or RAW,
            skinlab_version=__version__,
            keras_version=keras.__version__,
        ),
    )
    with atomic.atomic_path(paths.export) as tmp:
        model.save(tmp)
