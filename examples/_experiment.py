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
``sweep_c.py`` reuses the training code to choose the penalty weights c. Only the package's public API is used here.

Example:
    >>> settings = SETTINGS["mnist"]  # doctest: +SKIP
    >>> run(settings)  # after absl parsed the flags  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
from typing import Callable, List, Optional

from absl import flags
import keras
import tensorflow as tf

import keras_gradreg
from keras_gradreg import attacks, datasets
from keras_gradreg.paper import SETTINGS, PaperSettings

import _tensorboard_logging  # noqa: E402  (examples/ is on sys.path)

FLAGS = flags.FLAGS


ROW_TITLES = {
    "natural": "Natural Model", "xent_reg": "Xent-reg Model",
    "logit_reg": "Logit-reg Model", "fgsm_rs_at": "FGSM-RS adv. training",
    "nfgsm_at": "N-FGSM adv. training", "pgd_at": "PGD adv. training",
}


# Flags -------------------------------------------------------------------


def _define(define: Callable, name: str, default, help_text: str) -> None:
    """Defines a flag once (the examples share this module in one process)."""
    if name not in FLAGS:
        define(name, default, help_text)


def _per_dataset(field: str) -> str:
    values = ", ".join(f"{k} {getattr(s, field):g}" for k, s in SETTINGS.items())
    return f"Default: the dataset's ({values})."


def define_training_flags() -> None:
    """Flags shared by the examples and ``sweep_c.py``."""
    _define(flags.DEFINE_string, "data_dir", None,
            "Local MNIST IDX / Speech Commands folder, or a tfds data_dir.")
    _define(flags.DEFINE_string, "out", None,
            "Output folder. Default: runs/<dataset>.")
    _define(flags.DEFINE_integer, "epochs", None,
            "Training epochs. " + _per_dataset("epochs"))
    _define(flags.DEFINE_integer, "batch_size", None,
            "Training batch size. " + _per_dataset("batch_size"))
    _define(flags.DEFINE_float, "learning_rate", None,
            "Adam learning rate. " + _per_dataset("learning_rate"))
    _define(flags.DEFINE_integer, "train_size", None,
            "Training examples (the first ones). Default: the full split.")
    _define(lambda name, default, help_text: flags.DEFINE_enum(
        name, default, ["squared_l2", "l2", "l1"], help_text),
        "norm_logit", "squared_l2",
        "Norm of Logit-reg's penalty: squared_l2 (the paper's), l2 or l1.")
    _define(flags.DEFINE_integer, "eval_batch_size", 500,
            "Examples per attack batch.")
    _define(flags.DEFINE_integer, "seed", 0, "Seed of weights, data order, attacks.")
    _define(flags.DEFINE_boolean, "resume", False,
            "Reuse the models an interrupted run with the same flags saved in "
            "--out (<model>.keras, with training/<model>.json) and train only "
            "the missing ones.")
    _tensorboard_logging.define_flags()


def define_experiment_flags() -> None:
    """Flags of the three examples (on top of the training flags)."""
    define_training_flags()
    _define(flags.DEFINE_integer, "test_size", None,
            "Test examples (the first ones). Default: the full split.")
    _define(flags.DEFINE_float, "c_xent", None,
            "c of Xent-reg. " + _per_dataset("c_xent"))
    _define(flags.DEFINE_float, "c_logit", None,
            "c of Logit-reg. " + _per_dataset("c_logit"))
    _define(flags.DEFINE_string, "extra_attacks",
            ",".join(attacks.EXTRA_ATTACKS),
            "Comma-separated attacks beyond the paper's, as honesty checks "
            "(attacks with several losses, such as APGD, run once per loss). "
            "'' for none.")
    _define(flags.DEFINE_integer, "extra_steps", None,
            "Iterations of PGD (per restart, step 2.5 eps / steps) and APGD. "
            "Default: the paper's BIM iterations (the same budget), "
            + _per_dataset("steps"))
    _define(flags.DEFINE_integer, "extra_restarts", 1,
            "Random restarts of PGD and APGD.")


def flag_values(names: List[str]) -> dict:
    """Returns ``{name: value}`` of the given flags, for results.json."""
    return {name: FLAGS[name].value for name in names if name in FLAGS}


def or_default(value, default):
    """``value`` unless it is None (an unset flag), else ``default``."""
    return default if value is None else value


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


def adversarial_training_models(
    settings: PaperSettings, names: List[str], train_eps: float, pgd_steps: int
) -> List[ModelSpec]:
    """FGSM-RS, N-FGSM and PGD adversarial-training baselines.

    FGSM-RS (Wong et al. 2020): one step of 1.25 eps from a random start in
    the eps-ball; N-FGSM (de Jorge et al. 2022): one step of eps from
    uniform noise of radius 2 eps, not projected back to the eps-ball; PGD
    (Madry et al. 2018): ``pgd_steps`` steps of 2.5 eps / steps from a
    random start; all at ``train_eps``.

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
    recipes = dict(  # training recipes (flag values), not attack names
        fgsm_rs=dict(steps=1, step_size=1.25 * train_eps),
        nfgsm=dict(steps=1, step_size=train_eps,
                   start_radius=2.0 * train_eps, project=False),
        pgd=dict(steps=pgd_steps, step_size=2.5 * train_eps / pgd_steps),
    )
    specs = []
    for name in names:
        if name not in recipes:
            raise ValueError(
                f"Unknown baseline {name!r}: use a comma-separated subset of "
                f"{sorted(recipes)}, or '' for none.")
        recipe = dict(recipes[name], eps=train_eps, random_start=True)
        specs.append(ModelSpec(
            f"{name}_at",
            lambda recipe=recipe: keras_gradreg.AdversarialTrainingModel(
                settings.build_model(), **recipe, **settings.clip),
            {"kind": "adversarial_training", **recipe}))
    return specs


def parse_list(text: str) -> List[str]:
    """Splits a comma-separated flag value, dropping blanks.

    Example:
        >>> parse_list("fgsm_rs, nfgsm,")
        ['fgsm_rs', 'nfgsm']
    """
    return [item.strip() for item in (text or "").split(",") if item.strip()]


def train_model(spec: ModelSpec, train: tf.data.Dataset, epochs: int,
                learning_rate: float,
                run_logger: Optional[_tensorboard_logging.RunLogger] = None):
    """Compiles and fits one model; returns it, its wall time and history.

    With ``run_logger``, the model logs to TensorBoard under
    ``<out>/logs/<spec.name>`` and is validated on its held-out slice.
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
    start = time.perf_counter()
    # `train` is shuffled by tf.data (see `batched`); shuffle=False only
    # silences Keras' warning that it cannot shuffle a dataset itself.
    history = model.fit(train, epochs=epochs, verbose=2, shuffle=False,
                        **logged)
    seconds = time.perf_counter() - start
    history = {k: [float(v) for v in vs] for k, vs in history.history.items()}
    return model, seconds, history


def trained_or_resumed(spec: ModelSpec, out: str, train: tf.data.Dataset,
                       epochs: int, learning_rate: float,
                       run_logger=None) -> tuple:
    """Trains ``spec`` and saves it with its training record, or with
    ``--resume`` loads ``<out>/<name>.keras`` that an earlier run saved.

    The record (settings, epochs, wall time, history) goes to
    ``<out>/training/<name>.json`` as soon as the model is saved, so that an
    interrupted run loses at most the model in training. A model resumed
    without its record (saved by an older version) has no wall time.

    Returns:
        ``(model, record)``.
    """
    path = os.path.join(out, f"{spec.name}.keras")
    record_path = os.path.join(out, "training", f"{spec.name}.json")
    if FLAGS.resume and os.path.exists(path):
        print(f"\n== Reusing {path} (--resume)", flush=True)
        record = dict(spec.info, epochs=epochs, wall_time_s=None, history={})
        if os.path.exists(record_path):
            with open(record_path) as handle:
                record = json.load(handle)
        return keras.models.load_model(path), dict(record, resumed=True)
    model, seconds, history = train_model(spec, train, epochs, learning_rate,
                                          run_logger)
    model.save(path)
    record = dict(spec.info, epochs=epochs, wall_time_s=seconds,
                  history=history)
    os.makedirs(os.path.dirname(record_path), exist_ok=True)
    with open(record_path, "w") as handle:
        json.dump(record, handle, indent=1)
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


def _accepted(name: str, options: dict) -> dict:
    """The ``options`` that the attack ``name`` takes."""
    return {key: value for key, value in options.items()
            if attacks.accepts(name, key)}


def attack_title(key: str) -> str:
    """Table title of a results key: an attack's ``title`` (C&W for the
    key cw), or for a loss variant (apgd_dlr) the title, then the loss.

    Example:
        >>> attack_title("apgd_dlr"), attack_title(attacks.PAPER_ATTACKS[-1])
        ('APGD-DLR', 'C&W')
    """
    if key in attacks.ATTACKS:
        return getattr(attacks.ATTACKS[key], "title", key)
    name, _, loss = key.partition("_")
    if name not in attacks.ATTACKS:
        return key
    title = getattr(attacks.ATTACKS[name], "title", name)
    return f"{title}-{loss.upper()}" if loss else title


def paper_attacks(settings: PaperSettings) -> dict:
    """The paper's attacks with its step size, iterations and k.

    Returns:
        ``{name: (attack, kwargs)}`` for :class:`RobustnessReport`; the step
        is given explicitly (the attacks' default is 2.5 eps / steps).

    Example:
        >>> [kwargs.get("step_size")
        ...  for _, kwargs in paper_attacks(SETTINGS["mnist"]).values()]
        [None, 0.05, 0.05]
    """
    options = dict(step_size=settings.step_size, steps=settings.steps,
                   **settings.clip)
    specs = {}
    for name in attacks.PAPER_ATTACKS:
        step = attacks.accepts(name, "step_size")
        paper = dict(options, confidence=settings.confidence) if step else (
            settings.clip)
        specs[name] = (name, _accepted(name, paper))
    return specs


def extra_attacks(settings: PaperSettings, names: List[str], steps: int,
                  restarts: int, seed: int) -> dict:
    """Attacks beyond the paper's, with their own step (2.5 eps / steps).

    Args:
        settings: The dataset's settings (for the clip range).
        names: Names in ``keras_gradreg.attacks.ATTACKS``; an attack with
            ``losses`` runs once per loss (APGD gives APGD-CE and
            APGD-DLR).
        steps: Iterations per restart.
        restarts: Random restarts.
        seed: Seed of the random starts.

    Raises:
        ValueError: For an unknown attack name.

    Example:
        >>> print(*extra_attacks(SETTINGS["mnist"],
        ...                      list(attacks.EXTRA_ATTACKS), 10, 1, 0))
        pgd apgd_ce apgd_dlr
    """
    unknown = sorted(set(names) - set(attacks.ATTACKS))
    if unknown:
        raise ValueError(
            f"Unknown extra attacks {unknown}: use a comma-separated subset of "
            f"{list(attacks.ATTACKS)}, or '' for none.")
    common = dict(steps=steps, restarts=restarts, seed=seed, **settings.clip)
    specs = {}
    for name in names:
        options = _accepted(name, common)
        losses = getattr(attacks.get(name), "losses", ())
        if not losses:
            specs[name] = (name, options)
        for loss in losses:
            specs[f"{name}_{loss}"] = (name, dict(options, loss=loss))
    return specs


# Writing ------------------------------------------------------------------


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _table(header: List[str], rows: List[List[str]]) -> List[str]:
    lines = ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _accuracy_table(results, names: List[str], columns: dict,
                    with_clean: bool) -> List[str]:
    """Rows: models; columns: ``{attack: title}`` at every eps."""
    eps_values = results.eps_values
    header = ["Models"] + (["Natural"] if with_clean else [])
    header += [f"{title} {e:g}" for title in columns.values()
               for e in eps_values]
    rows = []
    for name in names:
        row = [ROW_TITLES.get(name, name)]
        row += [_pct(results.accuracy(name))] if with_clean else []
        row += [_pct(results.accuracy(name, a, e)) for a in columns
                for e in eps_values]
        rows.append(row)
    return _table(header, rows)


def _transfer_table(results, names: List[str]) -> List[str]:
    short = {"natural": "Natural", "xent_reg": "Xent", "logit_reg": "Logit",
             "fgsm_rs_at": "FGSM-RS AT", "nfgsm_at": "N-FGSM AT",
             "pgd_at": "PGD AT"}
    pairs = [(a, s) for a in attacks.PAPER_ATTACKS for s in names]
    header = ["Models"] + [
        f"{attack_title(a)} / {short.get(s, s)}" for a, s in pairs]
    rows = [[ROW_TITLES.get(t, t)] + [
        _pct(results.transfer(s, t, a)) for a, s in pairs] for t in names]
    return _table(header, rows)


def _time_table(training: dict, evaluation_s: float) -> List[str]:
    def seconds(entry: dict, per_epoch: bool) -> str:
        if entry["wall_time_s"] is None:  # resumed without its record
            return "not recorded"
        return f"{entry['wall_time_s'] / (max(entry['epochs'], 1) if per_epoch else 1):.1f}"

    rows = [[name, str(entry["epochs"]), f"{entry.get('c', '')}",
             seconds(entry, False), seconds(entry, True)]
            for name, entry in training.items()]
    lines = _table(["Model", "epochs", "c", "training (s)", "s / epoch"], rows)
    return lines + ["", f"Evaluation (all models and attacks): "
                        f"{evaluation_s:.1f} s."]


def paper_tables(settings: PaperSettings, results) -> List[str]:
    """The paper's Tables 1-3 (white-box) and 4-6 (transfer), as Markdown
    lines of :class:`keras_gradreg.Results` (its models in order)."""
    names = results.model_names
    paper = {name: attack_title(name) for name in attacks.PAPER_ATTACKS}
    extras = {key: attack_title(key) for key in results.attack_names
              if key not in paper}
    size = results.settings["num_examples"]
    lines = [
        f"{size} test examples; white-box L-inf attacks; BIM and C&W "
        f"{settings.steps} iterations of step {settings.step_size:g}, C&W "
        f"k = {settings.confidence:g}. Natural = clean accuracy.", "",
    ] + _accuracy_table(results, names, paper, with_clean=True)
    if extras:
        lines += ["", "### Stronger attacks (honesty checks, not in the "
                  "paper)", "", "Worst case: per example, over all attacks "
                  "and the clean prediction.", ""]
        lines += _accuracy_table(results, names,
                                 dict(extras, worst_case="Worst case"),
                                 with_clean=False)
    lines += ["", f"### Transfer attacks at eps={results.transfer_eps:g} (%)",
              "", "Rows: the model evaluated; columns: attack / model the "
              "examples were crafted on (the diagonal is white-box).", ""]
    return lines + _transfer_table(results, names)


def add_sections(results, settings: PaperSettings, training: dict,
                 evaluation_s: float, c: dict, flag_record: dict,
                 resolved: dict) -> None:
    """Adds the experiment's sections to ``results``: the paper's tables,
    training records and wall times, c, the flags and resolved settings."""
    title = f"{settings.title}: test accuracy under adversarial attacks (%)"
    results.add_section("paper_tables", {"dataset": settings.dataset},
                        markdown=paper_tables(settings, results), title=title)
    results.add_section("training", training)
    results.add_section("wall_time_s", {
        "training": {name: e["wall_time_s"] for name, e in training.items()},
        "evaluation": evaluation_s,
    }, markdown=_time_table(training, evaluation_s), title="Wall time")
    results.add_section("c", c, markdown=[
        f"Xent-reg c = {c['xent_reg']:g}, Logit-reg c = {c['logit_reg']:g}."])
    results.add_section("flags", flag_record)
    results.add_section("experiment", dict(
        dataset=settings.dataset, resolved=resolved,
        paper={k: v for k, v in dataclasses.asdict(settings).items()
               if k != "build_model"}))


def plot_training(training: dict, path: str) -> Optional[str]:
    """Plots loss and accuracy per epoch of every model into ``path``."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        warnings.warn("matplotlib is not installed: no training_curves.png.")
        return None
    figure = Figure(figsize=(8, 3))
    axes = figure.subplots(1, 2)
    for name, entry in training.items():
        for axis, key in zip(axes, ("loss", "accuracy")):
            values = entry["history"].get(key, [])
            axis.plot(range(1, len(values) + 1), values, marker="o", label=name)
            axis.set_xlabel("epoch")
            axis.set_title(f"training {key}")
    axes[1].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


# The experiment -------------------------------------------------------------


def run(settings: PaperSettings, extra_models: List[ModelSpec] = (),
        extra_flags: List[str] = ()) -> dict:
    """Trains, evaluates and writes one dataset's experiment from the flags.

    Args:
        settings: The dataset's paper settings.
        extra_models: More models to train and compare (e.g. adversarial
            training baselines).
        extra_flags: Names of example-specific flags to record.

    Returns:
        The :class:`keras_gradreg.Results`, with the experiment's sections,
        also written to ``<out>`` (results.json, results.md, ...).
    """
    out = FLAGS.out or os.path.join("runs", settings.dataset)
    os.makedirs(out, exist_ok=True)
    keras.utils.set_random_seed(FLAGS.seed)
    c_xent = or_default(FLAGS.c_xent, settings.c_xent)
    c_logit = or_default(FLAGS.c_logit, settings.c_logit)
    epochs = or_default(FLAGS.epochs, settings.epochs)
    batch_size = or_default(FLAGS.batch_size, settings.batch_size)
    learning_rate = or_default(FLAGS.learning_rate, settings.learning_rate)
    attacks = dict(paper_attacks(settings), **extra_attacks(
        settings, parse_list(FLAGS.extra_attacks),
        or_default(FLAGS.extra_steps, settings.steps),
        FLAGS.extra_restarts, FLAGS.seed))
    specs = paper_models(settings, c_xent, c_logit, FLAGS.norm_logit)
    specs += list(extra_models)

    train = datasets.load(settings.dataset, split_name("train", FLAGS.train_size),
                          FLAGS.data_dir)
    probe = datasets.to_arrays(train, limit=_tensorboard_logging.PROBE_SIZE)
    train = batched(train, batch_size, FLAGS.seed)
    test = datasets.to_arrays(datasets.load(
        settings.dataset, split_name("test", FLAGS.test_size), FLAGS.data_dir))
    run_logger = _tensorboard_logging.RunLogger(
        os.path.join(out, "logs"), probe,
        _tensorboard_logging.first(test, _tensorboard_logging.HELD_OUT_SIZE),
        settings.eps_values, settings.clip) if FLAGS.tensorboard else None

    trained, training = {}, {}
    for spec in specs:
        trained[spec.name], training[spec.name] = trained_or_resumed(
            spec, out, train, epochs, learning_rate, run_logger)

    print(f"\n== Evaluating on {len(test[1])} test examples", flush=True)
    start = time.perf_counter()
    report = keras_gradreg.RobustnessReport(
        trained, attacks, settings.eps_values,
        batch_size=FLAGS.eval_batch_size, verbose=1)
    results = report.run(test)
    evaluation_s = time.perf_counter() - start

    names = ["data_dir", "out", "epochs", "batch_size", "learning_rate",
             "train_size", "test_size", "c_xent", "c_logit", "norm_logit",
             "extra_attacks", "extra_steps", "extra_restarts",
             "eval_batch_size", "seed", "resume", *extra_flags]
    resolved = dict(out=out, epochs=epochs, batch_size=batch_size,
                    learning_rate=learning_rate, c_xent=c_xent,
                    c_logit=c_logit)
    add_sections(results, settings, training, evaluation_s,
                 {"xent_reg": c_xent, "logit_reg": c_logit},
                 flag_values(names), resolved)
    results.save(out)  # every file of the results, once
    plot_training(training, os.path.join(out, "training_curves.png"))
    if run_logger is not None:
        _log_final(run_logger, specs, results, training, resolved, settings,
                   out)
    print("\n" + "\n".join(paper_tables(settings, results)), flush=True)
    print(f"Wrote {out}/results.json, results.md, plots and models.", flush=True)
    if run_logger is not None:
        _tensorboard_logging.print_tensorboard_command(run_logger.root)
    return results


def _log_final(run_logger, specs, results, training: dict, resolved: dict,
               settings: PaperSettings, out: str) -> None:
    """Accuracy against eps, HParams and Fig. 2 / Fig. 3 of every model."""
    for spec in specs:
        hparams = _tensorboard_logging.model_hparams(
            spec.name, spec.info, dataset=settings.dataset,
            epochs=resolved["epochs"], batch_size=resolved["batch_size"],
            learning_rate=resolved["learning_rate"], seed=FLAGS.seed,
            train_size=FLAGS.train_size)
        seconds = training[spec.name]["wall_time_s"]
        run_logger.finish(spec.name, hparams, results.model_entry(spec.name),
                          float("nan") if seconds is None else seconds)
    run_logger.write_hparams()
    figures = run_logger.render_figures(out)
    if figures:
        print(f"Wrote Fig. 2 and Fig. 3 from the event files: "
              f"{figures['fig2']}, {figures['fig3']}.", flush=True)
