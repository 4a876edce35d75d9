r"""Makes a naturally trained MNIST network robust by fine-tuning it.

Section 1 of Yu et al. proposes deploying Logit-reg "by fine-tuning a few
epochs". This experiment trains the paper's MNIST CNN naturally, fine-tunes
it with Logit-reg (``GradRegModel``, Eq. 2-4) and snapshots it after each of
``--finetune_epochs`` epochs, trains Logit-reg from scratch for comparison,
and evaluates every model: clean accuracy, FGSM, BIM and C&W at the paper's
eps (0.1, 0.2, 0.3; 10 steps of 0.05), and PGD with random restarts
(``--pgd_steps`` steps of 2.5 eps / steps, Madry et al.). It
records the training wall time of each.

``--natural_model`` starts from a saved network instead of training one (the
situation of most users, who arrive with a trained model), e.g. the
``natural.keras`` written by ``examples/mnist.py``; ``--scratch_model``
likewise takes the from-scratch Logit-reg model from a saved file (a
``GradRegModel`` or its base network) instead of training it, so one
``examples/mnist.py`` run and this script share their training. The default
``--c`` is the Logit-reg c that ``examples/sweep_c.py`` chose on MNIST.

Usage:

    python examples/fine_tune.py --data_dir ../shared/data/mnist --out runs/ft

    # reusing the networks of an examples/mnist.py run:
    python examples/fine_tune.py --data_dir ../shared/data/mnist \
        --natural_model runs/mnist/natural.keras \
        --scratch_model runs/mnist/logit_reg.keras --out runs/ft

    # a quick check:
    python examples/fine_tune.py --data_dir ../shared/data/mnist \
        --out /tmp/ft --train_size 500 --test_size 100 --epochs_natural 1

Writes the ``RobustnessReport`` results with two sections, ``training``
(epochs and wall time per model, also a table in results.md) and ``flags``,
into ``--out``: results.json, results.md, results.csv, correct.npz and
accuracy_vs_eps.png.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Dict, List, Optional, Tuple

import keras
from absl import app
from absl import flags

import keras_gradreg
from keras_gradreg import attacks
from keras_gradreg import datasets
from keras_gradreg import models
from keras_gradreg import paper
from keras_gradreg.evaluation import markdown_table

FLAGS = flags.FLAGS
MNIST = paper.SETTINGS["mnist"]
EPS = MNIST.eps_values
CLIP = MNIST.clip
PAPER_ITERATIVE = {"steps": MNIST.steps, "step_size": MNIST.step_size, **CLIP}


class ConfigError(ValueError):
    """A value of the configuration that cannot work (a bad flag)."""


@dataclasses.dataclass(frozen=True)
class FineTuneConfig:
    """Every value one run needs (the flags, field name == flag name)."""

    out: str
    data_dir: Optional[str] = None
    train_size: int = 55000
    test_size: int = 1000
    epochs_natural: int = 5
    finetune_epochs: Tuple[int, ...] = (1, 2, 3)
    natural_model: Optional[str] = None
    scratch_model: Optional[str] = None
    scratch_epochs: Optional[int] = None
    c: float = 0.1
    learning_rate: float = 1e-4
    batch_size: int = 50
    pgd_steps: int = 40
    pgd_restarts: int = 5
    seed: int = 0


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The script's flags; called under ``__main__`` only."""
    flags.DEFINE_string("data_dir", None, "MNIST IDX folder (None: tfds).",
                        flag_values=flag_values)
    flags.DEFINE_string("out", None, "Output folder.", flag_values=flag_values)
    flags.DEFINE_integer("train_size", 55000, "Training examples.",
                         flag_values=flag_values)
    flags.DEFINE_integer("test_size", 1000, "Test examples to attack.",
                         flag_values=flag_values)
    flags.DEFINE_integer("epochs_natural", 5, "Epochs of natural training.",
                         flag_values=flag_values)
    flags.DEFINE_list("finetune_epochs", ["1", "2", "3"],
                      "Fine-tuning epochs at which to evaluate.",
                      flag_values=flag_values)
    flags.DEFINE_string(
        "natural_model", None,
        "A saved .keras network to fine-tune instead of training a natural "
        "one (--epochs_natural is then ignored).", flag_values=flag_values)
    flags.DEFINE_string(
        "scratch_model", None,
        "A saved .keras Logit-reg model trained from scratch (GradRegModel "
        "or its base) to compare with, instead of training one.",
        flag_values=flag_values)
    flags.DEFINE_integer("scratch_epochs", None,
                         "Epochs of Logit-reg from scratch (default: "
                         "--epochs_natural).", flag_values=flag_values)
    flags.DEFINE_float("c", 0.1,
                       "Penalty weight c of Logit-reg (default: the choice of "
                       "examples/sweep_c.py on MNIST, as in examples/mnist.py).",
                       flag_values=flag_values)
    flags.DEFINE_float("learning_rate", 1e-4, "Adam learning rate.",
                       flag_values=flag_values)
    flags.DEFINE_integer("batch_size", 50, "Training batch size.",
                         flag_values=flag_values)
    flags.DEFINE_integer("pgd_steps", 40,
                         "PGD steps per restart, each of 2.5 * eps / steps.",
                         flag_values=flag_values)
    flags.DEFINE_integer("pgd_restarts", 5, "PGD random restarts.",
                         flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Random seed.", flag_values=flag_values)
    flags.mark_flags_as_required(["out"], flag_values=flag_values)


def config_from_flags(flag_values: flags.FlagValues = FLAGS) -> FineTuneConfig:
    """The :class:`FineTuneConfig` of parsed flags.

    Raises:
        app.UsageError: For ``--finetune_epochs`` that are not integers.
    """
    values = {field.name: flag_values[field.name].value
              for field in dataclasses.fields(FineTuneConfig)}
    try:
        values["finetune_epochs"] = tuple(
            int(epochs) for epochs in values["finetune_epochs"])
    except ValueError:
        raise app.UsageError(
            "--finetune_epochs must be integers >= 1.") from None
    return FineTuneConfig(**values)


def _compile(model: keras.Model, config: FineTuneConfig) -> keras.Model:
    model.compile(
        keras.optimizers.Adam(config.learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _timed_fit(model, train, epochs: int, config: FineTuneConfig,
              initial_epoch: int = 0) -> float:
    """Trains ``model`` up to ``epochs``; returns the wall time in seconds."""
    start = time.perf_counter()
    model.fit(*train, batch_size=config.batch_size, epochs=epochs,
              initial_epoch=initial_epoch, verbose=2)
    return time.perf_counter() - start


def _snapshot(network: keras.Model) -> keras.Model:
    """A copy of ``network`` with its current weights."""
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    return copy


def load_network(path: str, c: float) -> keras.Model:
    """A saved network returning logits; a saved ``GradRegModel`` gives its base.

    ``run`` has checked that the file exists; the network is recompiled
    where it is trained, so its saved optimizer state is not loaded.
    """
    model = keras.models.load_model(path, compile=False)
    if isinstance(model, keras_gradreg.GradRegModel):
        if not math.isclose(model.c, c, rel_tol=1e-5):  # c is float32
            print(f"Note: {path} was trained with c={model.c:g}, "
                  f"--c is {c:g}.")
        return model.base
    return model


def _natural_network(config: FineTuneConfig, train):
    """The network to fine-tune (trained here or loaded) and its record."""
    if config.natural_model:
        print(f"Fine-tuning the saved network {config.natural_model}")
        network = load_network(config.natural_model, config.c)
        return network, {"loaded_from": config.natural_model, "epochs": None,
                         "wall_time_s": None}
    network = _compile(models.mnist_cnn(), config)
    print(f"Natural training, {config.epochs_natural} epoch(s)")
    seconds = _timed_fit(network, train, config.epochs_natural, config)
    return network, {"epochs": config.epochs_natural, "wall_time_s": seconds}


def _fine_tune(config: FineTuneConfig, natural, natural_record, train,
               finetune_epochs: List[int]):
    """Logit-reg fine-tuning snapshots: name -> (network, record).

    A record's ``finetune_wall_time_s`` is the fine-tuning alone;
    ``wall_time_s`` adds the natural training when it happened here.
    """
    robust = _compile(keras_gradreg.GradRegModel(natural, c=config.c), config)
    snapshots, done, elapsed = {}, 0, 0.0
    natural_epochs = natural_record["epochs"] or 0
    natural_time = natural_record["wall_time_s"]
    for epochs in finetune_epochs:
        print(f"Fine-tuning with Logit-reg (c={config.c}) to epoch {epochs}")
        elapsed += _timed_fit(robust, train, epochs, config, initial_epoch=done)
        done = epochs
        snapshots[f"finetune_{epochs}ep"] = (_snapshot(robust.base), {
            "epochs": natural_epochs + epochs, "finetune_epochs": epochs,
            "finetune_wall_time_s": elapsed,
            "wall_time_s": None if natural_time is None
            else natural_time + elapsed,
        })
    return snapshots


def _scratch(config: FineTuneConfig, train):
    """Logit-reg trained from scratch (or loaded) and its record."""
    if config.scratch_model:
        print(f"Logit-reg from scratch: the saved {config.scratch_model}")
        return load_network(config.scratch_model, config.c), {
            "loaded_from": config.scratch_model, "epochs": None,
            "wall_time_s": None}
    epochs = config.scratch_epochs or config.epochs_natural
    print(f"Logit-reg from scratch, {epochs} epoch(s)")
    scratch = _compile(
        keras_gradreg.GradRegModel(models.mnist_cnn(), c=config.c), config)
    seconds = _timed_fit(scratch, train, epochs, config)
    return scratch.base, {"epochs": epochs, "wall_time_s": seconds}


def train_models(config: FineTuneConfig, train, finetune_epochs: List[int]):
    """Natural, fine-tuned snapshots and Logit-reg from scratch.

    Returns:
        ``(networks, training)``: name -> network returning logits, and name
        -> its record (``epochs``, ``wall_time_s``; ``loaded_from`` for a
        network read from ``--natural_model`` or ``--scratch_model``).
    """
    natural, natural_record = _natural_network(config, train)
    networks = {"natural": _snapshot(natural)}
    training = {"natural": natural_record}
    for name, (network, record) in _fine_tune(
            config, natural, natural_record, train, finetune_epochs).items():
        networks[name], training[name] = network, record
    networks["logit_reg_scratch"], training["logit_reg_scratch"] = (
        _scratch(config, train))
    return networks, training


def _attacks(config: FineTuneConfig) -> Dict[str, tuple]:
    """The paper's attacks with its settings, and PGD with restarts."""
    specs = {
        name: (name, CLIP if attacks.is_single_step(name) else PAPER_ITERATIVE)
        for name in attacks.PAPER_ATTACKS
    }
    # Madry et al.'s step, 2.5 * eps / steps, is PGD's default.
    pgd = {"steps": config.pgd_steps, "restarts": config.pgd_restarts,
           "seed": config.seed, **CLIP}
    specs[f"pgd{config.pgd_restarts}r"] = (attacks.pgd, pgd)
    return specs


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _training_markdown(training: dict) -> List[str]:
    return markdown_table(
        ["Model", "Epochs", "Fine-tuning (s)", "Wall time (s)", "Source"],
        [[name, str(entry["epochs"] or "-"),
          _seconds(entry.get("finetune_wall_time_s")),
          _seconds(entry["wall_time_s"]),
          entry.get("loaded_from", "trained here")]
         for name, entry in training.items()])


def write_results(results, training: dict, config: FineTuneConfig) -> None:
    """Adds the training records and the flags to ``results`` as sections,
    then saves every file once."""
    results.add_section("training", training,
                        markdown=_training_markdown(training), title="Training")
    results.add_section("flags", {
        name: getattr(config, name) for name in (
            "train_size", "test_size", "epochs_natural", "finetune_epochs",
            "scratch_epochs", "c", "learning_rate", "batch_size", "seed",
            "natural_model", "scratch_model", "pgd_steps", "pgd_restarts",
        )
    })
    for kind, path in results.save(config.out).items():
        print(f"Wrote {kind}: {path}")


def run(config: FineTuneConfig):
    """Trains, fine-tunes, evaluates and writes; returns the results.

    Raises:
        ConfigError: For ``finetune_epochs`` below 1, or a saved model
            that does not exist (before any training).
    """
    finetune_epochs = sorted(config.finetune_epochs)
    if not finetune_epochs or finetune_epochs[0] < 1:
        raise ConfigError("--finetune_epochs must be integers >= 1.")
    for path in (config.natural_model, config.scratch_model):
        if path and not os.path.isfile(path):  # fail before hours of training
            raise ConfigError(f"No saved model at {path!r}.")
    keras.utils.set_random_seed(config.seed)
    train = datasets.to_arrays(datasets.load(
        "mnist", f"train[:{config.train_size}]", config.data_dir))
    test = datasets.to_arrays(datasets.load(
        "mnist", f"test[:{config.test_size}]", config.data_dir))
    networks, training = train_models(config, train, finetune_epochs)
    print(f"Attacking {len(test[0])} test examples")
    report = keras_gradreg.RobustnessReport(networks, _attacks(config), EPS)
    results = report.run(test)
    write_results(results, training, config)
    print(results.to_markdown())
    return results


def main(argv):
    del argv  # Unused.
    config = config_from_flags(FLAGS)
    try:
        run(config)
    except ConfigError as error:  # a bad flag: absl prints usage
        raise app.UsageError(str(error)) from None


if __name__ == "__main__":
    define_flags()
    app.run(main)
