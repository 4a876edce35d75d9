"""Training cost of GradReg against natural and min-max training, as ratios.

Times one "epoch" (``--steps_per_epoch`` optimizer steps on random data of the network's
input shape) of each training method (``MODELS``) on the paper's MNIST and CIFAR-10
networks, round-robin over ``--rounds`` rounds after tracing and warm-up, and the
throughput of each attack of ``keras_gradreg.attacks.ATTACKS``; ratios are taken within
each round and reported as medians with their min-max, by
``keras_gradreg.evaluation.training_cost`` and ``attack_cost``. How and why:
benchmarks/README.md.

    python benchmarks/step_time.py --networks mnist,cifar10 --rounds 5 \\
        --steps_per_epoch 20,10 --batch_size 128 --out /tmp/step_time

Writes ``step_time.json`` and ``step_time.md`` to ``--out`` (if given) and prints the tables.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
from typing import Callable, Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

import keras_gradreg
from keras_gradreg import attacks
from keras_gradreg import datasets
from keras_gradreg import evaluation
from keras_gradreg import models
from keras_gradreg.evaluation import markdown_table as table

FLAGS = flags.FLAGS
# natural: the reference; gradreg: Logit-reg, squared L2, double backpropagation;
# gradreg_fd: finite differences; gradreg_pf0.5: the penalty on half of each batch; the
# rest are AdversarialTrainingModel's recipes, "pgd7" the PGD recipe with 7 steps.
MODELS = ("natural", "gradreg", "gradreg_fd", "gradreg_pf0.5", "fgsm_rs", "n_fgsm", "pgd7",
          "pgd10", "pgd40")
EXTRA_MODELS = ("gradreg_minimal",)  # not timed by default: the overhead yardstick
XLA_SUFFIX = "_xla"  # e.g. gradreg_xla: jit_compile=True
ATTACKS = attacks.ATTACKS
PENALTY_FRACTION = "gradreg_pf"
DEFAULT_BATCH_SIZE = 128


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines the script's flags in ``flag_values`` (under ``__main__`` only)."""
    on = {"flag_values": flag_values}
    flags.DEFINE_list("networks", ["mnist", "cifar10"], "Networks: mnist, cifar10.", **on)
    flags.DEFINE_list("models", list(MODELS), "Training methods; natural (the reference) "
                      "is always timed. A name + _xla: jit_compile=True.", **on)
    flags.DEFINE_list("attacks", list(ATTACKS), "Attacks to time (default: all of "
                      "keras_gradreg.attacks.ATTACKS; empty: none).", **on)
    flags.DEFINE_integer("rounds", 5, "Timed rounds (round-robin).", lower_bound=1, **on)
    flags.DEFINE_list("steps_per_epoch", ["20"], "Optimizer steps per timed epoch: one "
                      "value, or one per network in --networks order.", **on)
    flags.DEFINE_integer("batch_size", DEFAULT_BATCH_SIZE, "Training and attack batch "
                         "size.", lower_bound=1, **on)
    flags.DEFINE_integer("warmup_steps", 2, "Untimed steps per model before timing (each "
                         "attack: one untimed call on two examples).", lower_bound=0, **on)
    flags.DEFINE_integer("attack_steps", 10, "Iterations of the iterative attacks.",
                         lower_bound=1, **on)
    flags.DEFINE_string("attack_model", None, "A saved .keras model to time the attacks on "
                        "its test images (default: the untrained network, random inputs).",
                        **on)
    flags.DEFINE_string("data_dir", None, "Dataset folder for --attack_model.", **on)
    flags.DEFINE_float("attack_eps", None, "L-inf radius of the timed attacks (default: the "
                       "network's, 0.3 for MNIST, 8 for CIFAR-10).", **on)
    flags.DEFINE_integer("queries", 5000, "Queries per example of Square, alone and in "
                         "AutoAttack.", lower_bound=1, **on)
    flags.DEFINE_string("out", None, "Folder for step_time.json and step_time.md.", **on)
    flags.DEFINE_integer("seed", 0, "Seed of weights and data.", **on)
    flags.DEFINE_enum("jit_compile", "auto", ["auto", "true", "false"], "XLA for the train "
                      "steps (Keras' auto: off on CPU-only machines).", **on)


@dataclasses.dataclass(frozen=True)
class Network:
    """A network to time: ``build()`` returns it fresh (logits), with its example shape,
    classes, training ``eps`` and input range ``[0, clip_max]``; ``dataset`` names its
    data in ``keras_gradreg.datasets`` (for ``--attack_model``)."""

    build: Callable[[], keras.Model]
    input_shape: tuple
    num_classes: int
    eps: float
    clip_max: float
    dataset: Optional[str] = None


NETWORKS: Dict[str, Network] = {  # Madry et al.'s eps; cifar10_cnn takes [0, 255]
    "mnist": Network(models.mnist_cnn, (28, 28, 1), 10, 0.3, 1.0, "mnist"),
    "cifar10": Network(models.cifar10_cnn, (32, 32, 3), 10, 8.0, 255.0, "cifar10"),
}


class MinimalGradReg(keras.Model):
    """The textbook nested-tape Logit-reg step without the package's checks, metrics and
    distribution scaling: the difference to ``gradreg`` is their overhead."""

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
                margin = tf.reduce_sum(keras_gradreg.regularizers.logit_margin(logits, y))
            gradients = input_tape.gradient(margin, x)
            penalty = tf.reduce_mean(tf.reduce_sum(tf.square(gradients), axis=[1, 2, 3]))
            loss = self.compute_loss(x=x, y=y, y_pred=logits) + self.c * penalty
        self.optimizer.apply(tape.gradient(loss, self.trainable_weights),
                             self.trainable_weights)
        return self.compute_metrics(x, y, logits)


def build_model(name: str, network: Network, jit_compile="auto") -> keras.Model:
    """The compiled training model ``name`` (of ``MODELS`` or ``EXTRA_MODELS``, + ``_xla``
    for ``jit_compile=True``) around a fresh network: Adam, sparse cross-entropy, accuracy.

    Raises:
        ValueError: For an unknown name.
    """
    if name.endswith(XLA_SUFFIX):
        return build_model(name[:-len(XLA_SUFFIX)], network, True)
    base, model = network.build(), None
    penalty = {"c": 0.01, "regularizer": "logit_margin", "norm": "squared_l2"}
    recipe_name = name.rstrip("0123456789")
    recipe, steps = keras_gradreg.adversarial_training.RECIPES.get(recipe_name), name[
        len(recipe_name):]
    if name == "natural":
        model = base
    elif name in ("gradreg", "gradreg_fd"):
        model = keras_gradreg.GradRegModel(
            base, **penalty, fd_step=0.01 * network.clip_max,
            method="finite_difference" if name == "gradreg_fd" else "double_backprop")
    elif name.startswith(PENALTY_FRACTION):
        model = keras_gradreg.GradRegModel(
            base, **penalty, penalty_fraction=float(name[len(PENALTY_FRACTION):]))
    elif name == "gradreg_minimal":
        model = MinimalGradReg(base)
    elif recipe is not None and (not steps or "steps" in inspect.signature(recipe).parameters):
        # Each recipe's own attack at the network's eps: FGSM-RS, N-FGSM, PGD-k.
        model = recipe(base, network.eps, clip_min=0.0, clip_max=network.clip_max,
                       **({"steps": int(steps)} if steps else {}))
    if model is None:
        raise ValueError(f"Unknown model {name!r}. Use one of {list(MODELS + EXTRA_MODELS)}.")
    model.compile(keras.optimizers.Adam(1e-4),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"], jit_compile=jit_compile)
    return model


def random_dataset(network: Network, batch_size: int, seed: int,
                   batches: int = 4) -> tf.data.Dataset:
    """An endless dataset cycling a few random batches of the network's shapes."""
    rng, count = np.random.default_rng(seed), batches * batch_size
    x = rng.uniform(0, network.clip_max, (count, *network.input_shape)).astype("float32")
    y = rng.integers(0, network.num_classes, count).astype("int32")
    dataset = tf.data.Dataset.from_tensor_slices((x, y))
    return dataset.batch(batch_size, drop_remainder=True).cache().repeat()


def attack_batch(network: Network, batch_size: int, seed: int,
                 model_path: Optional[str] = None, data_dir: Optional[str] = None):
    """``(model, x, y)`` the attacks are timed on: the untrained network and random inputs
    labelled with its own predictions, or the saved model at ``model_path`` and the first
    ``batch_size`` test images it classifies correctly."""
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
        raise app.UsageError(f"{model_path} classifies only {correct.sum()} of the first "
                             f"{len(y)} test images correctly; need --batch_size {batch_size}.")
    return model, x[correct][:batch_size], y[correct][:batch_size]


def time_training(network_name: str, s: dict) -> List[dict]:
    """One row per model of ``s["models"]`` (``s``: :func:`_settings`): seconds per epoch and
    ratios to natural (and GradReg) within each round, by ``evaluation.training_cost``."""
    network, built = NETWORKS[network_name], {}
    for name in s["models"]:
        keras.utils.set_random_seed(s["seed"])
        built[name] = build_model(name, network, s["jit_compile"])
    steps = s["steps_per_epoch"][network_name]
    print(f"{network_name}: training", flush=True)
    cost = evaluation.training_cost(
        built, random_dataset(network, s["batch_size"], s["seed"]), steps, s["rounds"],
        s["warmup_steps"], references=[m for m in ("natural", "gradreg") if m in built])
    return [{"network": network_name, "model": name, "steps_per_epoch": steps,
             **{key: own[key] for key in ("seconds_per_epoch", "cpu_seconds_per_epoch")},
             **{f"{cpu}ratio_to_{ref}": ratios[kind] for ref, ratios in own["ratio_to"].items()
                for cpu, kind in (("", "wall"), ("cpu_", "cpu")) if ref == "natural" or not cpu}}
            for name, own in cost.items()]


def time_attacks(network_name: str, s: dict) -> List[dict]:
    """One row per attack of ``s["attacks"]``: examples per second on :func:`attack_batch`'s
    batch, by ``evaluation.attack_cost``."""
    network, steps, queries = NETWORKS[network_name], s["attack_steps"], s["queries"]
    eps = network.eps if s["attack_eps"] is None else s["attack_eps"]
    model, x, y = attack_batch(network, s["batch_size"], s["seed"], s["attack_model"],
                               s["data_dir"])
    print(f"{network_name}: attacks", flush=True)
    cost = evaluation.attack_cost(model, x, y, s["attacks"], eps, s["rounds"], clip_min=0.0,
                                  clip_max=network.clip_max, steps=steps, queries=queries,
                                  seed=0)
    return [{"network": network_name, "model": s["attack_model"] or "untrained",
             "attack": name, "eps": eps, "steps": steps if attacks.accepts(name, "steps") else 1,
             "queries": queries if attacks.accepts(name, "queries") else None,
             "batch_size": s["batch_size"], **own} for name, own in cost.items()]


def _spread(stats: Optional[dict]) -> str:
    return f"{stats['median']:.2f} ({stats['min']:.2f}-{stats['max']:.2f})" if stats else "-"


def markdown(results: dict) -> str:
    """The results as Markdown tables (medians, with min-max over rounds)."""
    lines = table(["network", "model", "steps/epoch", "s/epoch", "ratio to natural (wall)",
                   "ratio to natural (CPU time)", "ratio to GradReg (wall)"],
                  [[row["network"], row["model"], str(row["steps_per_epoch"])] + [
                      _spread(row.get(key)) for key in (
                          "seconds_per_epoch", "ratio_to_natural", "cpu_ratio_to_natural",
                          "ratio_to_gradreg")] for row in results["training"]])
    if results["attacks"]:
        lines += [""] + table(
            ["network", "model", "attack", "eps", "steps", "queries", "examples/s",
             "CPU s / example"],
            [[row["network"], os.path.basename(row["model"]), row["attack"], str(row["eps"]),
              str(row["steps"]), str(row["queries"] or "-"),
              _spread(row["examples_per_second"]), _spread(row["cpu_seconds_per_example"])]
             for row in results["attacks"]])
    return "\n".join(lines) + "\n"


def _check_names(kind: str, names: Sequence[str], known: Sequence[str]) -> None:
    unknown = [name for name in names if name not in known]
    if unknown:
        raise app.UsageError(f"Unknown {kind} {unknown}. Use some of {list(known)}.")


def _settings(flag_values: flags.FlagValues) -> dict:
    """The run's settings from the flags; a usage error for a bad one."""
    networks = list(flag_values.networks)
    _check_names("networks", networks, list(NETWORKS))
    _check_names("models", flag_values.models, MODELS + EXTRA_MODELS + tuple(
        m + XLA_SUFFIX for m in MODELS + EXTRA_MODELS))
    _check_names("attacks", flag_values.attacks, ATTACKS)
    if flag_values.attack_model and len(networks) != 1:
        raise app.UsageError("--attack_model needs one --networks value: the model's network.")
    try:
        steps = [int(value) for value in flag_values.steps_per_epoch]
    except ValueError as error:
        raise app.UsageError(f"--steps_per_epoch must be integers, got "
                             f"{flag_values.steps_per_epoch}.") from error
    steps = steps * len(networks) if len(steps) == 1 else steps
    if len(steps) != len(networks) or min(steps) < 1:
        raise app.UsageError(f"--steps_per_epoch needs one integer >= 1, or one per network "
                             f"({len(networks)}), got {flag_values.steps_per_epoch}.")
    names = ("batch_size", "rounds", "warmup_steps", "attack_steps", "queries", "attack_model",
             "data_dir", "attack_eps", "seed")
    return {"networks": networks, "attacks": list(flag_values.attacks),
            "models": ["natural"] + [m for m in flag_values.models if m != "natural"],
            "steps_per_epoch": dict(zip(networks, steps)),
            **{name: flag_values[name].value for name in names},
            "jit_compile": {"auto": "auto", "true": True, "false": False}[
                flag_values.jit_compile]}


def run(settings: dict, out: Optional[str] = None) -> dict:
    """Runs the benchmark; returns ``machine``, ``settings``, ``training`` and ``attacks``
    and writes them to ``out``/step_time.json and the tables to step_time.md."""
    results = {"machine": evaluation.environment(), "settings": settings, "training": [],
               "attacks": []}
    for network in settings["networks"]:
        results["training"] += time_training(network, settings)
        if settings["attacks"]:
            results["attacks"] += time_attacks(network, settings)
    text = markdown(results)
    print(text)
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "step_time.json"), "w") as file:
            json.dump(results, file, indent=2)
        with open(os.path.join(out, "step_time.md"), "w") as file:
            file.write(text)
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
