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

import math
import os
import time
from typing import Dict, List

from absl import app, flags
import keras

import keras_gradreg
from keras_gradreg import attacks, datasets, models

FLAGS = flags.FLAGS


def _define(define, name, *args, **kwargs):
    """Defines a flag unless another script in this process already did."""
    if name not in flags.FLAGS:
        define(name, *args, **kwargs)


_define(flags.DEFINE_string, "data_dir", None, "MNIST IDX folder (None: tfds).")
_define(flags.DEFINE_string, "out", None, "Output folder.")
_define(flags.DEFINE_integer, "train_size", 55000, "Training examples.")
_define(flags.DEFINE_integer, "test_size", 1000, "Test examples to attack.")
_define(flags.DEFINE_integer, "epochs_natural", 5, "Epochs of natural training.")
_define(flags.DEFINE_list, "finetune_epochs", ["1", "2", "3"],
                  "Fine-tuning epochs at which to evaluate.")
_define(flags.DEFINE_string, "natural_model", None,
        "A saved .keras network to fine-tune instead of training a natural "
        "one (--epochs_natural is then ignored).")
_define(flags.DEFINE_string, "scratch_model", None,
        "A saved .keras Logit-reg model trained from scratch (GradRegModel "
        "or its base) to compare with, instead of training one.")
_define(flags.DEFINE_integer, "scratch_epochs", None,
                     "Epochs of Logit-reg from scratch (default: "
                     "--epochs_natural).")
_define(flags.DEFINE_float, "c", 0.1,
        "Penalty weight c of Logit-reg (default: the choice of "
        "examples/sweep_c.py on MNIST, as in examples/mnist.py).")
_define(flags.DEFINE_float, "learning_rate", 1e-4, "Adam learning rate.")
_define(flags.DEFINE_integer, "batch_size", 50, "Training batch size.")
_define(flags.DEFINE_integer, "pgd_steps", 40,
                     "PGD steps per restart, each of 2.5 * eps / steps.")
_define(flags.DEFINE_integer, "pgd_restarts", 5, "PGD random restarts.")
_define(flags.DEFINE_integer, "seed", 0, "Random seed.")

EPS = (0.1, 0.2, 0.3)
CLIP = {"clip_min": 0.0, "clip_max": 1.0}
PAPER_ITERATIVE = {"steps": 10, "step_size": 0.05, **CLIP}


def _compile(model: keras.Model) -> keras.Model:
    model.compile(
        keras.optimizers.Adam(FLAGS.learning_rate),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def _timed_fit(model, train, epochs: int, initial_epoch: int = 0) -> float:
    """Trains ``model`` up to ``epochs``; returns the wall time in seconds."""
    start = time.perf_counter()
    model.fit(*train, batch_size=FLAGS.batch_size, epochs=epochs,
              initial_epoch=initial_epoch, verbose=2)
    return time.perf_counter() - start


def _snapshot(network: keras.Model) -> keras.Model:
    """A copy of ``network`` with its current weights."""
    copy = keras.models.clone_model(network)
    copy.set_weights(network.get_weights())
    return copy


def load_network(path: str) -> keras.Model:
    """A saved network returning logits; a saved ``GradRegModel`` gives its base.

    ``main`` has checked that the file exists; the network is recompiled
    where it is trained, so its saved optimizer state is not loaded.
    """
    model = keras.models.load_model(path, compile=False)
    if isinstance(model, keras_gradreg.GradRegModel):
        if not math.isclose(model.c, FLAGS.c, rel_tol=1e-5):  # c is float32
            print(f"Note: {path} was trained with c={model.c:g}, "
                  f"--c is {FLAGS.c:g}.")
        return model.base
    return model


def _natural_network(train):
    """The network to fine-tune (trained here or loaded) and its record."""
    if FLAGS.natural_model:
        print(f"Fine-tuning the saved network {FLAGS.natural_model}")
        network = load_network(FLAGS.natural_model)
        return network, {"loaded_from": FLAGS.natural_model, "epochs": None,
                         "wall_time_s": None}
    network = _compile(models.mnist_cnn())
    print(f"Natural training, {FLAGS.epochs_natural} epoch(s)")
    seconds = _timed_fit(network, train, FLAGS.epochs_natural)
    return network, {"epochs": FLAGS.epochs_natural, "wall_time_s": seconds}


def _fine_tune(natural, natural_record, train, finetune_epochs: List[int]):
    """Logit-reg fine-tuning snapshots: name -> (network, record).

    A record's ``finetune_wall_time_s`` is the fine-tuning alone;
    ``wall_time_s`` adds the natural training when it happened here.
    """
    robust = _compile(keras_gradreg.GradRegModel(natural, c=FLAGS.c))
    snapshots, done, elapsed = {}, 0, 0.0
    natural_epochs = natural_record["epochs"] or 0
    natural_time = natural_record["wall_time_s"]
    for epochs in finetune_epochs:
        print(f"Fine-tuning with Logit-reg (c={FLAGS.c}) to epoch {epochs}")
        elapsed += _timed_fit(robust, train, epochs, initial_epoch=done)
        done = epochs
        snapshots[f"finetune_{epochs}ep"] = (_snapshot(robust.base), {
            "epochs": natural_epochs + epochs, "finetune_epochs": epochs,
            "finetune_wall_time_s": elapsed,
            "wall_time_s": None if natural_time is None
            else natural_time + elapsed,
        })
    return snapshots


def _scratch(train):
    """Logit-reg trained from scratch (or loaded) and its record."""
    if FLAGS.scratch_model:
        print(f"Logit-reg from scratch: the saved {FLAGS.scratch_model}")
        return load_network(FLAGS.scratch_model), {
            "loaded_from": FLAGS.scratch_model, "epochs": None,
            "wall_time_s": None}
    epochs = FLAGS.scratch_epochs or FLAGS.epochs_natural
    print(f"Logit-reg from scratch, {epochs} epoch(s)")
    scratch = _compile(
        keras_gradreg.GradRegModel(models.mnist_cnn(), c=FLAGS.c))
    seconds = _timed_fit(scratch, train, epochs)
    return scratch.base, {"epochs": epochs, "wall_time_s": seconds}


def train_models(train, finetune_epochs: List[int]):
    """Natural, fine-tuned snapshots and Logit-reg from scratch.

    Returns:
        ``(networks, training)``: name -> network returning logits, and name
        -> its record (``epochs``, ``wall_time_s``; ``loaded_from`` for a
        network read from ``--natural_model`` or ``--scratch_model``).
    """
    natural, natural_record = _natural_network(train)
    networks = {"natural": _snapshot(natural)}
    training = {"natural": natural_record}
    for name, (network, record) in _fine_tune(
            natural, natural_record, train, finetune_epochs).items():
        networks[name], training[name] = network, record
    networks["logit_reg_scratch"], training["logit_reg_scratch"] = (
        _scratch(train))
    return networks, training


def _attacks() -> Dict[str, tuple]:
    """The paper's attacks with its settings, and PGD with restarts."""
    specs = {
        name: (name, CLIP if attacks.is_single_step(name) else PAPER_ITERATIVE)
        for name in attacks.PAPER_ATTACKS
    }
    # Madry et al.'s step, 2.5 * eps / steps, is PGD's default.
    pgd = {"steps": FLAGS.pgd_steps, "restarts": FLAGS.pgd_restarts,
           "seed": FLAGS.seed, **CLIP}
    specs[f"pgd{FLAGS.pgd_restarts}r"] = (attacks.pgd, pgd)
    return specs


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _training_markdown(training: dict) -> List[str]:
    lines = ["| Model | Epochs | Fine-tuning (s) | Wall time (s) | Source |",
             "|---|---|---|---|---|"]
    for name, entry in training.items():
        source = entry.get("loaded_from", "trained here")
        lines.append(
            f"| {name} | {entry['epochs'] or '-'} | "
            f"{_seconds(entry.get('finetune_wall_time_s'))} | "
            f"{_seconds(entry['wall_time_s'])} | {source} |"
        )
    return lines


def write_results(results, training: dict, out: str) -> None:
    """Adds the training records and the flags to ``results`` as sections,
    then saves every file once."""
    results.add_section("training", training,
                        markdown=_training_markdown(training), title="Training")
    results.add_section("flags", {
        name: FLAGS[name].value for name in (
            "train_size", "test_size", "epochs_natural", "finetune_epochs",
            "scratch_epochs", "c", "learning_rate", "batch_size", "seed",
            "natural_model", "scratch_model", "pgd_steps", "pgd_restarts",
        )
    })
    for kind, path in results.save(out).items():
        print(f"Wrote {kind}: {path}")


def main(argv):
    del argv  # Unused.
    finetune_epochs = sorted(int(epochs) for epochs in FLAGS.finetune_epochs)
    if not finetune_epochs or finetune_epochs[0] < 1:
        raise app.UsageError("--finetune_epochs must be integers >= 1.")
    for path in (FLAGS.natural_model, FLAGS.scratch_model):
        if path and not os.path.isfile(path):  # fail before hours of training
            raise app.UsageError(f"No saved model at {path!r}.")
    keras.utils.set_random_seed(FLAGS.seed)
    train = datasets.to_arrays(datasets.load(
        "mnist", f"train[:{FLAGS.train_size}]", FLAGS.data_dir))
    test = datasets.to_arrays(datasets.load(
        "mnist", f"test[:{FLAGS.test_size}]", FLAGS.data_dir))
    networks, training = train_models(train, finetune_epochs)
    print(f"Attacking {len(test[0])} test examples")
    report = keras_gradreg.RobustnessReport(networks, _attacks(), EPS)
    results = report.run(test)
    write_results(results, training, FLAGS.out)
    print(results.to_markdown())


if __name__ == "__main__":
    flags.mark_flags_as_required(["out"])
    app.run(main)
