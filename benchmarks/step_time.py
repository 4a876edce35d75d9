"""Training cost of GradReg vs natural and min-max training, as ratios.

Times one "epoch" (a fixed number of optimizer steps, ``--steps_per_epoch``,
on random data of the right shape) of each training method on the paper's
MNIST and CIFAR-10 networks, and the throughput of each attack:

* ``natural``: plain Keras training of the network (the reference, 1.0x);
* ``gradreg``: :class:`keras_gradreg.GradRegModel`, Logit-reg, squared L2,
  exact double backpropagation;
* ``gradreg_fd``: the same with ``method="finite_difference"``;
* ``gradreg_minimal`` (not timed by default): the textbook nested-tape step
  without the package's checks and metrics, to measure their overhead;
* ``fgsm_rs``: FGSM with random start (Wong et al., 2020), 1 attack step;
* ``pgd7``, ``pgd10``, ``pgd40``: PGD-k min-max training (Madry et al.,
  2018), k attack steps of 2.5 eps / k per optimizer step.

Design, so that the numbers survive a shared, noisy machine:

* All models are built, compiled and traced first; each then runs
  ``--warmup_steps`` untimed steps (tracing and first-call costs stay out of
  the timings).
* Timing is round-robin: each of ``--rounds`` rounds times one epoch of every
  model in turn. A model's ratio to natural is taken within each round and
  the median over rounds is reported, with its min-max spread; so is the
  median of the seconds per epoch.
* An epoch calls the compiled train function that ``fit`` calls each step
  (``model.train_function``) ``steps_per_epoch`` times on one dataset
  iterator, then waits for the last loss. ``fit`` itself adds a fixed cost
  per call (about 1 s here: iterator and callback setup) that would shrink
  the ratios of short epochs towards 1.
* Wall-clock and process CPU seconds are both recorded; on a machine shared
  with other jobs the CPU-time ratio is the steadier of the two.

Attack throughput (examples per second) is measured the same way: one call
of each attack on one batch per round, after one untimed call on two
examples (tracing). By default the batch is random inputs labelled with an
untrained network's own predictions, so every example starts classified
"correctly" (an example misclassified from the start costs an attack
nothing). Easy to break, though: attacks that stop working on an example
once it is broken (APGD-T and FAB-T go through their targets, AutoAttack
through its attacks, only on the examples left) look fast there. With
``--attack_model`` (a saved ``.keras`` model) and ``--data_dir``, the batch
is the first test images that model classifies correctly, which on a robust
model gives the cost of the examples that stay robust:

    python benchmarks/step_time.py --networks mnist --models= --rounds 1 \
        --attacks apgd,apgd_t,fab_t,square,autoattack --attack_steps 100 \
        --attack_model runs/mnist_10ep_aa/xent_reg.keras \
        --data_dir ../shared/data/mnist --attack_eps 0.1 --batch_size 100

Usage:
    python benchmarks/step_time.py --networks mnist,cifar10 --rounds 5 \\
        --steps_per_epoch 20,10 --batch_size 128 --out /tmp/step_time

Writes ``step_time.json`` and ``step_time.md`` to ``--out`` (if given) and
prints the tables.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

import keras_gradreg
from keras_gradreg import attacks
from keras_gradreg import datasets
from keras_gradreg import models

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _machine import machine  # noqa: E402

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines the script's flags in ``flag_values``; the script calls it
    under ``__main__`` only, so importing the module defines no flag."""
    where = {"flag_values": flag_values}
    flags.DEFINE_list("networks", ["mnist", "cifar10"],
                      "Networks to time: mnist, cifar10.", **where)
    flags.DEFINE_list(
        "models", list(MODELS),
        "Training methods to time; natural (the reference) is always timed. "
        "Append _xla to a name (e.g. gradreg_xla) for jit_compile=True.",
        **where)
    flags.DEFINE_list(
        "attacks", list(attacks.ATTACKS),
        "Attacks whose throughput to measure, names in "
        "keras_gradreg.attacks.ATTACKS (default: all; empty: none).", **where)
    flags.DEFINE_integer("rounds", 5, "Timed rounds (round-robin).", **where)
    flags.DEFINE_list(
        "steps_per_epoch", ["20"],
        "Optimizer steps per timed epoch: one value for all networks or one "
        "per network, in --networks order.", **where)
    flags.DEFINE_integer("batch_size", None,
                         "Training and attack batch size (default 128).",
                         **where)
    flags.DEFINE_integer(
        "warmup_steps", 2,
        "Untimed steps per model before timing (each attack gets one "
        "untimed call on two examples).",
        **where)
    flags.DEFINE_integer(
        "attack_steps", 10,
        "Iterations of BIM, C&W, PGD and APGD in the throughput benchmark.",
        **where)
    flags.DEFINE_string(
        "attack_model", None,
        "A saved .keras model to time the attacks on, with real test images "
        "(see --data_dir); default: the untrained network on random inputs.",
        **where)
    flags.DEFINE_string(
        "data_dir", None,
        "Dataset folder for --attack_model (keras_gradreg.datasets.load; "
        "default: tensorflow-datasets).", **where)
    flags.DEFINE_float(
        "attack_eps", None,
        "L-inf radius of the timed attacks (default: the network's training "
        "eps, 0.3 for MNIST, 8 for CIFAR-10).", **where)
    flags.DEFINE_integer(
        "queries", 5000,
        "Model evaluations per example of Square, alone and inside "
        "AutoAttack (default 5000, AutoAttack's budget).", **where)
    flags.DEFINE_string(
        "out", None,
        "Folder for step_time.json and step_time.md (default: print only).",
        **where)
    flags.DEFINE_integer("seed", 0, "Seed of weights and data.", **where)
    flags.DEFINE_enum(
        "jit_compile", "auto", ["auto", "true", "false"],
        "XLA for every model's train step (Keras' auto: off on CPU-only "
        "machines).", **where)


DEFAULT_BATCH_SIZE = 128


@dataclasses.dataclass(frozen=True)
class Network:
    """A network to benchmark and its attack setting.

    Attributes:
        build: Returns a fresh, uncompiled network returning logits.
        input_shape: Shape of one example.
        num_classes: Number of classes.
        eps: L-inf radius of the training attacks, in input units.
        clip_max: Upper end of the input range (the lower end is 0).
        dataset: Its name in ``keras_gradreg.datasets`` (for
            ``--attack_model``).
    """

    build: Callable[[], keras.Model]
    input_shape: tuple
    num_classes: int
    eps: float
    clip_max: float
    dataset: Optional[str] = None


NETWORKS: Dict[str, Network] = {
    # Madry et al.'s MNIST setting: pixels in [0, 1], eps 0.3.
    "mnist": Network(models.mnist_cnn, (28, 28, 1), 10, 0.3, 1.0, "mnist"),
    # cifar10_cnn takes pixels in [0, 255]; eps 8 is Madry et al.'s 8/255.
    "cifar10": Network(models.cifar10_cnn, (32, 32, 3), 10, 8.0, 255.0,
                       "cifar10"),
}

MODELS = ("natural", "gradreg", "gradreg_fd", "gradreg_pf0.5", "fgsm_rs",
          "n_fgsm", "pgd7", "pgd10", "pgd40")
# Not timed by default: the overhead yardstick, and any model with XLA,
# e.g. "gradreg_xla".
EXTRA_MODELS = ("gradreg_minimal",)
XLA_SUFFIX = "_xla"
ATTACKS = attacks.ATTACKS
# The adversarial training models are AdversarialTrainingModel's recipes
# (adversarial_training.RECIPES), by name, with the number of attack steps
# appended where the recipe takes one ("pgd7": the PGD recipe with 7 steps).
ADVERSARIAL_RECIPES = keras_gradreg.adversarial_training.RECIPES
# GradReg with the penalty on a random fraction of each batch: "gradreg_pf0.5".
PENALTY_FRACTION = "gradreg_pf"


# Models -------------------------------------------------------------------


class MinimalGradReg(keras.Model):
    """The textbook nested-tape Logit-reg step, as a yardstick (no checks).

    No input or label checks, no grad_loss metric, no tf.distribute scaling:
    the difference to ``gradreg`` is the package's overhead.
    """

    def __init__(self, base: keras.Model, c: float = 0.01, **kwargs):
        super().__init__(**kwargs)
        self.base, self.c = base, c

    def call(self, inputs, training=None):
        return self.base(inputs, training=training)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            with tf.GradientTape() as input_tape:
                input_tape.watch(x)
                logits = self.base(x, training=True)
                margin_sum = tf.reduce_sum(
                    keras_gradreg.regularizers.logit_margin(logits, y))
            gradients = input_tape.gradient(margin_sum, x)
            penalty = tf.reduce_mean(
                tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]))
            loss = self.compute_loss(x=x, y=y, y_pred=logits) + (
                self.c * penalty)
        weights = self.trainable_weights
        self.optimizer.apply(tape.gradient(loss, weights), weights)
        return self.compute_metrics(x, y, logits)


def _adversarial_training(name: str, base, network: Network):
    """The recipe model ``name`` ("fgsm_rs", "n_fgsm", "pgd7"), or None for
    another name.

    Each recipe owns its attack (``RECIPES[name].settings``): FGSM-RS one
    step of 1.25 eps from a random start (Wong et al., 2020), N-FGSM one
    step of eps from noise of radius 2 eps (de Jorge et al., 2022), PGD-k k
    steps of 2.5 eps / k (Madry et al., 2018), all at the network's eps.
    """
    recipe_name = name.rstrip("0123456789")
    recipe = ADVERSARIAL_RECIPES.get(recipe_name)
    steps = name[len(recipe_name):]
    if recipe is None or (steps and "steps" not in
                          inspect.signature(recipe).parameters):
        return None
    options = {"steps": int(steps)} if steps else {}
    return recipe(base, network.eps, clip_min=0.0,
                  clip_max=network.clip_max, **options)


def build_model(name: str, network: Network,
                jit_compile="auto") -> keras.Model:
    """Returns the training model ``name`` around a fresh network, compiled.

    Args:
        name: One of ``MODELS`` or ``EXTRA_MODELS``, or one of them + ``"_xla"`` (compiled with
            ``jit_compile=True`` whatever ``jit_compile`` says).
        network: The network and its attack setting.
        jit_compile: Passed to ``compile`` (``"auto"``, True or False).

    Returns:
        A compiled Keras model (Adam, sparse cross-entropy on logits,
        accuracy).

    Raises:
        ValueError: For an unknown name.

    Example:
        >>> model = build_model("gradreg", NETWORKS["mnist"])  # doctest: +SKIP
    """
    if name.endswith(XLA_SUFFIX):
        return build_model(name[:-len(XLA_SUFFIX)], network, True)
    base = network.build()
    if name == "natural":
        model = base
    elif name in ("gradreg", "gradreg_fd"):
        method = "finite_difference" if name == "gradreg_fd" else (
            "double_backprop")
        model = keras_gradreg.GradRegModel(
            base, c=0.01, regularizer="logit_margin", norm="squared_l2",
            method=method, fd_step=0.01 * network.clip_max)
    elif name.startswith(PENALTY_FRACTION):
        model = keras_gradreg.GradRegModel(
            base, c=0.01, regularizer="logit_margin", norm="squared_l2",
            penalty_fraction=float(name[len(PENALTY_FRACTION):]))
    elif name == "gradreg_minimal":
        model = MinimalGradReg(base)
    else:
        model = _adversarial_training(name, base, network)
    if model is None:
        raise ValueError(f"Unknown model {name!r}. Use one of "
                         f"{list(MODELS + EXTRA_MODELS)}.")
    model.compile(
        keras.optimizers.Adam(1e-4),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
        jit_compile=jit_compile,
    )
    return model


def random_dataset(network: Network, batch_size: int, seed: int,
                   batches: int = 4) -> tf.data.Dataset:
    """An endless dataset cycling a few random batches of the right shape."""
    rng = np.random.default_rng(seed)
    count = batches * batch_size
    x = rng.uniform(0, network.clip_max, (count, *network.input_shape))
    y = rng.integers(0, network.num_classes, count)
    dataset = tf.data.Dataset.from_tensor_slices(
        (x.astype("float32"), y.astype("int32")))
    return dataset.batch(batch_size, drop_remainder=True).cache().repeat()


# Timing -------------------------------------------------------------------


def _timed(run: Callable[[], None]) -> Dict[str, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def _epoch_runner(model: keras.Model, dataset: tf.data.Dataset,
                  steps: int, warmup_steps: int) -> Callable[[], None]:
    """Traces ``model``'s train step and returns a function running an epoch."""
    model.fit(dataset, epochs=1, steps_per_epoch=max(warmup_steps, 1),
              verbose=0)
    iterator = iter(dataset)

    def epoch():
        for _ in range(steps):
            logs = model.train_function(iterator)
        float(logs["loss"])  # waits for the last step

    return epoch


def _attack_runner(name: str, model: keras.Model, network: Network,
                   x: np.ndarray, y: np.ndarray, eps: float,
                   steps: int, queries: int) -> Callable[[], None]:
    """Runs the attack ``name`` with its own step size, ``steps`` steps and
    (Square) ``queries`` queries; the first call traces it on two examples."""
    attack = attacks.ATTACKS[name]
    options = {"clip_min": 0.0, "clip_max": network.clip_max,
               "batch_size": len(x), "steps": steps, "queries": queries,
               "seed": 0}
    options = {key: value for key, value in options.items()
               if attacks.accepts(attack, key)}
    calls = []

    def run():
        some = slice(None) if calls else slice(2)
        calls.append(1)
        np.asarray(attack(model, x[some], y[some], eps, **options))

    return run


def attack_batch(network: Network, batch_size: int, seed: int,
                 model_path: Optional[str] = None,
                 data_dir: Optional[str] = None):
    """The model and the batch the attacks are timed on.

    Without ``model_path``: the untrained network and random inputs
    labelled with its own predictions. With it: the saved model and the
    first ``batch_size`` test images of ``network.dataset`` it classifies
    correctly.
    """
    if model_path is None:
        keras.utils.set_random_seed(seed)
        model = network.build()
        x = next(iter(random_dataset(network, batch_size, seed)))[0].numpy()
        return model, x, np.argmax(model.predict(x, verbose=0), axis=-1)
    model = keras.models.load_model(model_path)
    x, y = datasets.to_arrays(datasets.load(network.dataset, "test", data_dir),
                              limit=20 * batch_size)
    correct = np.argmax(model.predict(x, verbose=0), axis=-1) == y
    if correct.sum() < batch_size:
        raise app.UsageError(
            f"{model_path} classifies only {correct.sum()} of the first "
            f"{len(y)} test images correctly; need --batch_size "
            f"{batch_size}.")
    return model, x[correct][:batch_size], y[correct][:batch_size]


def round_robin(runners: Dict[str, Callable[[], None]], rounds: int,
                warmup: int = 0) -> Dict[str, List[Dict[str, float]]]:
    """Times every runner once per round, in turn, after ``warmup`` calls.

    Returns:
        For each runner, its list of ``{"wall": s, "cpu": s}`` per round.
    """
    for run in runners.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runners}
    for index in range(rounds):
        for name, run in runners.items():
            times[name].append(_timed(run))
        print(f"  round {index + 1}/{rounds}: " + ", ".join(
            f"{name} {t[-1]['wall']:.2f}s" for name, t in times.items()),
            flush=True)
    return times


def summarize(values: Sequence[float]) -> Dict[str, float]:
    """Median, min and max of a list of numbers (and the list itself)."""
    return {"median": statistics.median(values), "min": min(values),
            "max": max(values), "all": list(values)}


def _ratios(times, reference) -> Dict[str, dict]:
    """Per-round ratios of wall and CPU time to ``reference``, summarized."""
    return {
        "wall": summarize([t["wall"] / r["wall"]
                           for t, r in zip(times, reference)]),
        "cpu": summarize([t["cpu"] / r["cpu"]
                          for t, r in zip(times, reference)]),
    }


def _training_rows(times, network_name: str, steps: int) -> List[dict]:
    rows = []
    for name, model_times in times.items():
        to_natural = _ratios(model_times, times["natural"])
        row = {
            "network": network_name,
            "model": name,
            "steps_per_epoch": steps,
            "seconds_per_epoch": summarize([t["wall"] for t in model_times]),
            "cpu_seconds_per_epoch": summarize(
                [t["cpu"] for t in model_times]),
            "ratio_to_natural": to_natural["wall"],
            "cpu_ratio_to_natural": to_natural["cpu"],
        }
        if "gradreg" in times:
            row["ratio_to_gradreg"] = _ratios(
                model_times, times["gradreg"])["wall"]
        rows.append(row)
    return rows


def time_training(network_name: str, model_names: Sequence[str], steps: int,
                  batch_size: int, rounds: int, warmup_steps: int,
                  seed: int, jit_compile="auto") -> List[dict]:
    """Times one epoch of each training method, round-robin.

    Returns:
        One row per model: seconds per epoch and ratios to natural (within
        each round), each summarized by ``summarize``.
    """
    network = NETWORKS[network_name]
    dataset = random_dataset(network, batch_size, seed)
    runners = {}
    for name in model_names:
        keras.utils.set_random_seed(seed)
        print(f"{network_name}/{name}: tracing", flush=True)
        runners[name] = _epoch_runner(
            build_model(name, network, jit_compile), dataset, steps,
            warmup_steps)
    return _training_rows(round_robin(runners, rounds), network_name, steps)


def time_attacks(network_name: str, attack_names: Sequence[str],
                 attack_steps: int, batch_size: int, rounds: int,
                 seed: int, queries: int = 5000,
                 model_path: Optional[str] = None,
                 data_dir: Optional[str] = None,
                 eps: Optional[float] = None) -> List[dict]:
    """Measures attack throughput on one batch, round-robin (see
    :func:`attack_batch` for the batch).

    Returns:
        One row per attack with examples per second (median, min, max).
    """
    network = NETWORKS[network_name]
    eps = network.eps if eps is None else eps
    model, x, y = attack_batch(network, batch_size, seed, model_path,
                               data_dir)
    runners = {name: _attack_runner(name, model, network, x, y, eps,
                                    attack_steps, queries)
               for name in attack_names}
    print(f"{network_name}: attacks", flush=True)
    times = round_robin(runners, rounds, warmup=1)
    return [{
        "network": network_name,
        "model": model_path or "untrained",
        "attack": name,
        "eps": eps,
        "steps": attack_steps if attacks.accepts(name, "steps") else 1,
        "queries": queries if attacks.accepts(name, "queries") else None,
        "batch_size": batch_size,
        "examples_per_second": summarize(
            [batch_size / t["wall"] for t in times[name]]),
        "cpu_seconds_per_example": summarize(
            [t["cpu"] / batch_size for t in times[name]]),
    } for name in attack_names]


# Report -------------------------------------------------------------------


def _spread(stats: dict, digits: int = 2) -> str:
    return (f"{stats['median']:.{digits}f} "
            f"({stats['min']:.{digits}f}-{stats['max']:.{digits}f})")


def markdown(results: dict) -> str:
    """The results as Markdown tables (medians, with min-max over rounds)."""
    lines = [
        "| network | model | steps/epoch | s/epoch | ratio to natural "
        "(wall) | ratio to natural (CPU time) | ratio to GradReg (wall) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["training"]:
        to_gradreg = row.get("ratio_to_gradreg")
        lines.append(
            f"| {row['network']} | {row['model']} | {row['steps_per_epoch']} "
            f"| {_spread(row['seconds_per_epoch'])} "
            f"| {_spread(row['ratio_to_natural'])} "
            f"| {_spread(row['cpu_ratio_to_natural'])} "
            f"| {_spread(to_gradreg) if to_gradreg else '-'} |")
    if results["attacks"]:
        lines += ["", "| network | model | attack | eps | steps | queries "
                  "| examples/s | CPU s / example |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in results["attacks"]:
            cpu = row.get("cpu_seconds_per_example")
            lines.append(
                f"| {row['network']} | {os.path.basename(row.get('model', 'untrained'))} "
                f"| {row['attack']} | {row.get('eps', '-')} | {row['steps']} "
                f"| {row.get('queries') or '-'} "
                f"| {_spread(row['examples_per_second'], 2)} "
                f"| {_spread(cpu, 2) if cpu else '-'} |")
    return "\n".join(lines) + "\n"


# Command line -------------------------------------------------------------


def _check_names(kind: str, names: Sequence[str], known: Sequence[str]):
    unknown = [name for name in names if name not in known]
    if unknown:
        raise app.UsageError(
            f"Unknown {kind} {unknown}. Use some of {list(known)}.")


def _steps_per_network(networks: Sequence[str],
                       flag_values: flags.FlagValues) -> Dict[str, int]:
    try:
        steps = [int(value) for value in flag_values.steps_per_epoch]
    except ValueError as error:
        raise app.UsageError(
            f"--steps_per_epoch must be integers, got {flag_values.steps_per_epoch}."
        ) from error
    if len(steps) == 1:
        steps = steps * len(networks)
    if len(steps) != len(networks) or min(steps) < 1:
        raise app.UsageError(
            "--steps_per_epoch needs one integer >= 1, or one per network "
            f"({len(networks)}), got {flag_values.steps_per_epoch}.")
    return dict(zip(networks, steps))


def _settings(flag_values: flags.FlagValues) -> dict:
    _check_names("networks", flag_values.networks, list(NETWORKS))
    _check_names("models", flag_values.models,
                 MODELS + EXTRA_MODELS
                 + tuple(m + XLA_SUFFIX for m in MODELS + EXTRA_MODELS))
    _check_names("attacks", flag_values.attacks, ATTACKS)
    if flag_values.attack_model and len(flag_values.networks) != 1:
        raise app.UsageError(
            "--attack_model needs one --networks value: the model's network.")
    for name in ("rounds", "attack_steps", "queries"):
        if flag_values[name].value < 1:
            raise app.UsageError(f"--{name} must be >= 1.")
    batch_size = flag_values.batch_size or DEFAULT_BATCH_SIZE
    if batch_size < 1 or flag_values.warmup_steps < 0:
        raise app.UsageError("--batch_size must be >= 1, --warmup_steps >= 0.")
    model_names = ["natural"] + [m for m in flag_values.models if m != "natural"]
    return {"networks": list(flag_values.networks), "models": model_names,
            "attacks": list(flag_values.attacks), "rounds": flag_values.rounds,
            "steps_per_epoch": _steps_per_network(flag_values.networks, flag_values),
            "batch_size": batch_size, "warmup_steps": flag_values.warmup_steps,
            "attack_steps": flag_values.attack_steps, "queries": flag_values.queries,
            "attack_model": flag_values.attack_model,
            "data_dir": flag_values.data_dir,
            "attack_eps": flag_values.attack_eps,
            "seed": flag_values.seed,
            "jit_compile": {"auto": "auto", "true": True, "false": False}[
                flag_values.jit_compile]}


def run(settings: dict, out: Optional[str] = None) -> dict:
    """Runs the benchmark; writes step_time.json and step_time.md to ``out``.

    Args:
        settings: As built from the flags (see ``_settings``).
        out: Output folder, or None to only print.

    Returns:
        The results: ``machine``, ``settings``, ``training`` and ``attacks``
        rows.
    """
    s = settings
    results = {"machine": machine(), "settings": s, "training": [],
               "attacks": []}
    for network in s["networks"]:
        results["training"] += time_training(
            network, s["models"], s["steps_per_epoch"][network],
            s["batch_size"], s["rounds"], s["warmup_steps"], s["seed"],
            s["jit_compile"])
        if s["attacks"]:
            results["attacks"] += time_attacks(
                network, s["attacks"], s["attack_steps"], s["batch_size"],
                s["rounds"], s["seed"], s.get("queries", 5000),
                s.get("attack_model"), s.get("data_dir"), s.get("attack_eps"))
    table = markdown(results)
    print(table)
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "step_time.json"), "w") as file:
            json.dump(results, file, indent=2)
        with open(os.path.join(out, "step_time.md"), "w") as file:
            file.write(table)
    return results


def main(argv, flag_values: flags.FlagValues = FLAGS):
    """Times with the parsed ``flag_values`` (see ``define_flags``)."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    settings = _settings(flag_values)
    tf.get_logger().setLevel("ERROR")  # retracing notes: one trace per model
    run(settings, flag_values.out)


if __name__ == "__main__":
    define_flags()
    app.run(main)
