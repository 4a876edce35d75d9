"""Shared code of the example experiments (Section 4 of Yu et al.).

Each example (``mnist.py``, ``cifar10.py``, ``speech_commands.py``) trains
the paper's Natural, Xent-reg and Logit-reg models on one dataset, evaluates
them with :class:`keras_gradreg.RobustnessReport` under the paper's FGSM,
BIM and C&W attacks (and, as honesty checks, PGD and APGD), and writes the
report's files once (``results.json``, ``results.md`` with the paper's
table layout, training times and c as sections, ``results.csv``,
``correct.npz``, ``accuracy_vs_eps.png``), training curves and the trained
``.keras`` models, and (unless ``--notensorboard``) TensorBoard runs
``logs/<model>`` with Fig. 2 and Fig. 3 drawn from them (see
``_tensorboard_logging.py``). The recorded training wall times include the
logging's per-epoch work; compare training costs with ``--notensorboard``.
``sweep_c.py`` reuses the training code to choose the penalty weights c.
The configuration and flags are in ``_config.py``, the attacks in
``_attack_specs.py``, the tables in ``_tables.py``. Only the package's public API is used here.

Example:
    >>> config = Config("mnist", epochs=2, train_size=5000, test_size=500,
    ...                 extra_attacks=(), out="runs/mnist_quick")
    >>> results = run(config)  # trains 3 models (minutes)  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from typing import Callable, List, Optional

import keras
import tensorflow as tf

import keras_gradreg
from keras_gradreg import adversarial_training
from keras_gradreg import datasets
from keras_gradreg.paper import SETTINGS
from keras_gradreg.paper import PaperSettings

import _tensorboard_logging  # noqa: E402  (examples/ is on sys.path)
from _attack_specs import extra_attacks  # noqa: E402,F401
from _attack_specs import paper_attacks  # noqa: E402,F401
from _config import (  # noqa: E402,F401  (the experiment's names, one import)
    Config,
    TrainingConfig,
    config_from_flags,
    define_common_flags,
    define_training_flags,
    or_default,
    parse_list,
    resolved,
)
from _tables import (  # noqa: E402,F401
    ROW_TITLES,
    add_sections,
    attack_title,
    paper_tables,
    plot_training,
)

# Models -----------------------------------------------------------------


@dataclasses.dataclass
class ModelSpec:
    """How to build one model of the comparison, and what to record of it."""

    name: str
    build: Callable[[], keras.Model]
    info: dict


def paper_models(settings: PaperSettings, c_xent: float, c_logit: float,
                 norm_logit: str = "squared_l2") -> List[ModelSpec]:
    """Natural, Xent-reg (Ross & Doshi-Velez 2017) and Logit-reg (Eq. 3).

    Example:
        >>> [s.name for s in paper_models(SETTINGS["mnist"], 1.0, 0.03)]
        ['natural', 'xent_reg', 'logit_reg']
    """
    def regularized(c, regularizer, norm):
        return lambda: keras_gradreg.GradRegModel(
            settings.build_model(), c=c, regularizer=regularizer, norm=norm)

    return [
        ModelSpec("natural", settings.build_model, {"kind": "natural"}),
        ModelSpec("xent_reg", regularized(c_xent, "cross_entropy", "squared_l2"),
                  {"kind": "gradreg", "regularizer": "cross_entropy",
                   "norm": "squared_l2", "c": c_xent}),
        ModelSpec("logit_reg", regularized(c_logit, "logit_margin", norm_logit),
                  {"kind": "gradreg", "regularizer": "logit_margin",
                   "norm": norm_logit, "c": c_logit}),
    ]


# --baselines values -> keras_gradreg.adversarial_training.RECIPES names.
BASELINE_RECIPES = {"fgsm_rs": "fgsm_rs", "nfgsm": "n_fgsm", "pgd": "pgd"}


def adversarial_training_models(
    settings: PaperSettings, names: List[str], train_eps: float, pgd_steps: int
) -> List[ModelSpec]:
    """FGSM-RS, N-FGSM and PGD adversarial-training baselines.

    Each is built by its recipe in ``adversarial_training.RECIPES``, which
    owns the step rules: FGSM-RS (Wong et al. 2020), one step of 1.25 eps
    from a random start in the eps-ball; N-FGSM (de Jorge et al. 2022), one
    step of eps from uniform noise of radius 2 eps, not projected back to
    the eps-ball; PGD (Madry et al. 2018), ``pgd_steps`` steps of
    2.5 eps / steps from a random start; all at ``train_eps``.

    Raises:
        ValueError: For an unknown name, ``train_eps <= 0`` or
            ``pgd_steps < 1``.

    Example:
        >>> specs = adversarial_training_models(
        ...     SETTINGS["mnist"], ["fgsm_rs"], 0.3, 10)
        >>> specs[0].name, specs[0].info["step_size"]
        ('fgsm_rs_at', 0.375)
    """
    if not train_eps > 0 or pgd_steps < 1:
        raise ValueError(
            f"Need --train_eps > 0 and --pgd_steps >= 1, got {train_eps} and "
            f"{pgd_steps}.")
    specs = []
    for name in names:
        if name not in BASELINE_RECIPES:
            raise ValueError(
                f"Unknown baseline {name!r}: use a comma-separated subset of "
                f"{sorted(BASELINE_RECIPES)}, or '' for none.")
        recipe = adversarial_training.RECIPES[BASELINE_RECIPES[name]]
        options = {"steps": pgd_steps} if name == "pgd" else {}
        specs.append(ModelSpec(
            f"{name}_at",
            lambda recipe=recipe, options=options: recipe(
                settings.build_model(), train_eps, **options, **settings.clip),
            {"kind": "adversarial_training", "recipe": recipe.__name__,
             "eps": train_eps, **recipe.settings(train_eps, **options)}))
    return specs


def train_model(spec: ModelSpec, train: tf.data.Dataset, epochs: int,
                learning_rate: float,
                run_logger: Optional[_tensorboard_logging.RunLogger] = None,
                backup_dir: Optional[str] = None):
    """Compiles and fits one model; returns it and its training record.

    With ``run_logger``, the model logs to TensorBoard under
    ``<out>/logs/<spec.name>`` and is validated on its held-out slice. With
    ``backup_dir``, Keras' ``BackupAndRestore`` checkpoints every epoch
    there, and a fit interrupted earlier goes on from its last finished
    epoch; the record (:class:`keras_gradreg.callbacks.TrainingRecord`:
    seconds and history) then includes the earlier epochs.

    Returns:
        ``(model, record)``.
    """
    print(f"\n== Training {spec.name} ({spec.info}) for {epochs} epochs",
          flush=True)
    model = spec.build()
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    logged = {} if run_logger is None else dict(
        callbacks=run_logger.callbacks(spec.name, model),
        validation_data=run_logger.held_out)
    backup, record = [], keras_gradreg.callbacks.TrainingRecord()
    if backup_dir is not None:
        (checkpoint, _), record = keras_gradreg.callbacks.resumable(backup_dir)
        backup = [checkpoint]
        if record.resumed_at:
            print(f"== Going on from epoch {record.resumed_at} of an "
                  f"interrupted fit ({backup_dir})", flush=True)
    # The record goes last, to see the logs other callbacks add.
    logged["callbacks"] = [*backup, *logged.get("callbacks", []), record]
    # `train` is shuffled by tf.data (see `batched`); shuffle=False only
    # silences Keras' warning that it cannot shuffle a dataset itself.
    model.fit(train, epochs=epochs, verbose=2, shuffle=False, **logged)
    return model, record


def trained_or_resumed(spec: ModelSpec, out: str, train: tf.data.Dataset,
                       epochs: int, learning_rate: float,
                       run_logger=None, resume: bool = False) -> tuple:
    """Trains ``spec`` and saves it with its training record, or with
    ``resume`` (``--resume``) loads ``<out>/<name>.keras`` that an earlier run saved.

    The record (settings, epochs, wall and CPU time, seconds per epoch,
    history) goes to
    ``<out>/training/<name>.json`` as soon as the model is saved. Each epoch
    is checkpointed in ``<out>/backup/<name>``, so that with ``resume`` a
    model interrupted in training goes on from its last finished epoch; an
    interrupted run loses at most the epoch in progress. Without ``resume``
    a stale checkpoint is removed and the model trains from scratch. A model
    resumed without its record (saved by an older version) has no wall time.

    Returns:
        ``(model, record)``.
    """
    path = os.path.join(out, f"{spec.name}.keras")
    record_path = os.path.join(out, "training", f"{spec.name}.json")
    backup_dir = os.path.join(out, "backup", spec.name)
    if resume and os.path.exists(path):
        print(f"\n== Reusing {path} (--resume)", flush=True)
        record = dict(spec.info, epochs=epochs, wall_time_s=None, history={})
        if os.path.exists(record_path):
            with open(record_path) as handle:
                record = json.load(handle)
        model = keras.models.load_model(path)
        if run_logger is not None:
            run_logger.reuse(spec.name, model)
        return model, dict(record, resumed=True)
    if not resume:
        shutil.rmtree(backup_dir, ignore_errors=True)
    model, training = train_model(spec, train, epochs, learning_rate,
                                  run_logger, backup_dir)
    model.save(path)
    seconds = training.fit_seconds()
    record = dict(spec.info, epochs=epochs, wall_time_s=seconds["wall"],
                  cpu_time_s=seconds["cpu"], epoch_seconds=training.wall,
                  epoch_cpu_seconds=training.cpu, history=training.history)
    os.makedirs(os.path.dirname(record_path), exist_ok=True)
    with open(record_path, "w") as handle:
        json.dump(record, handle, indent=1)
    shutil.rmtree(backup_dir, ignore_errors=True)
    return model, record


# Data and attacks ------------------------------------------------------------


def split_name(base: str, size: Optional[int]) -> str:
    """``"train"`` or the first ``size`` examples, ``"train[:size]"``.

    Raises:
        ValueError: For a size that is not positive.

    Example:
        >>> split_name("test", 1000), split_name("train", None)
        ('test[:1000]', 'train')
    """
    if size is None:
        return base
    if size <= 0:
        raise ValueError(f"Sizes must be positive, got {size} for {base}.")
    return f"{base}[:{size}]"


def batched(dataset: tf.data.Dataset, batch_size: int, seed: int):
    """Caches, shuffles (reshuffled each epoch) and batches training data."""
    return (dataset.cache().shuffle(20_000, seed=seed)
            .batch(batch_size).prefetch(tf.data.AUTOTUNE))


# The experiment -------------------------------------------------------------


def run(config: Config, settings: Optional[PaperSettings] = None):
    """Trains, evaluates and writes one dataset's experiment.

    Args:
        config: The run's values (the script's flags).
        settings: The dataset's paper settings. Default:
            ``keras_gradreg.paper.SETTINGS[config.dataset]`` (tests pass a
            copy with a smaller network).

    Returns:
        The :class:`keras_gradreg.Results`, with the experiment's sections,
        also written to ``<out>`` (results.json, results.md, ...).
    """
    settings = settings or SETTINGS[config.dataset]
    values = resolved(config, settings)
    out = values["out"]
    specs = paper_models(settings, values["c_xent"], values["c_logit"],
                         config.norm_logit)
    specs += adversarial_training_models(
        settings, list(config.baselines), config.train_eps, config.pgd_steps)
    attack_specs = dict(paper_attacks(settings), **extra_attacks(
        settings, list(config.extra_attacks),
        or_default(config.extra_steps, settings.steps),
        config.extra_restarts, config.seed))
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(config.seed)

    train = datasets.load(settings.dataset,
                          split_name("train", config.train_size),
                          config.data_dir)
    probe = datasets.to_arrays(train, limit=_tensorboard_logging.PROBE_SIZE)
    train = batched(train, values["batch_size"], config.seed)
    test = datasets.to_arrays(datasets.load(
        settings.dataset, split_name("test", config.test_size),
        config.data_dir))
    run_logger = _tensorboard_logging.RunLogger(
        os.path.join(out, "logs"), probe,
        _tensorboard_logging.first(test, _tensorboard_logging.HELD_OUT_SIZE),
        settings.eps_values, settings.clip) if config.tensorboard else None

    trained, training = {}, {}
    for spec in specs:
        trained[spec.name], training[spec.name] = trained_or_resumed(
            spec, out, train, values["epochs"], values["learning_rate"],
            run_logger, resume=config.resume)

    print(f"\n== Evaluating on {len(test[1])} test examples", flush=True)
    start = time.perf_counter()
    report = keras_gradreg.RobustnessReport(
        trained, attack_specs, settings.eps_values,
        batch_size=config.eval_batch_size, verbose=1)
    results = report.run(test)
    evaluation_s = time.perf_counter() - start

    add_sections(results, settings, training, evaluation_s,
                 {"xent_reg": values["c_xent"], "logit_reg": values["c_logit"]},
                 config.record(), values)
    results.save(out)  # every file of the results, once
    plot_training(training, os.path.join(out, "training_curves.png"))
    if run_logger is not None:
        _log_final(run_logger, specs, results, training, values, settings,
                   config, out)
    print("\n" + "\n".join(paper_tables(settings, results)), flush=True)
    print(f"Wrote {out}/results.json, results.md, plots and models.", flush=True)
    if run_logger is not None:
        _tensorboard_logging.print_tensorboard_command(run_logger.root)
    return results


def _log_final(run_logger, specs, results, training: dict, values: dict,
               settings: PaperSettings, config: Config, out: str) -> None:
    """Accuracy against eps, HParams and Fig. 2 / Fig. 3 of every model."""
    for spec in specs:
        hparams = _tensorboard_logging.model_hparams(
            spec.name, spec.info, dataset=settings.dataset,
            epochs=values["epochs"], batch_size=values["batch_size"],
            learning_rate=values["learning_rate"], seed=config.seed,
            train_size=config.train_size)
        seconds = training[spec.name]["wall_time_s"]
        run_logger.finish(spec.name, hparams, results.model_entry(spec.name),
                          float("nan") if seconds is None else seconds)
    run_logger.write_hparams()
    figures = run_logger.render_figures(out)
    if figures:
        print(f"Wrote Fig. 2 and Fig. 3 from the event files: "
              f"{figures['fig2']}, {figures['fig3']}.", flush=True)
