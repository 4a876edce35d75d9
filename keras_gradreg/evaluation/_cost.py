"""Training and attack cost: seconds per epoch, throughput and ratios within rounds.

What a training method or an attack costs, measured so that the numbers survive a shared,
noisy machine: everything is traced and warmed up first, then timed round-robin (each
round times every model, or attack, once, in turn), both in wall-clock and process CPU
seconds. A ratio of two models is taken within each round, where both ran under the same
load, and the rounds' values are summarized by their median and min-max
(:func:`summarize`). ``benchmarks/step_time.py`` times the package's training methods and
attacks with these functions.

Example:
    >>> timing = timed(lambda: sum(range(1000)))
    >>> sorted(timing), timing["wall"] >= 0
    (['cpu', 'wall'], True)
    >>> summarize([3.0, 1.0, 2.0])
    {'median': 2.0, 'min': 1.0, 'max': 3.0, 'all': [3.0, 1.0, 2.0]}
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Callable, Dict, List, Mapping, Sequence, Union

import keras
import numpy as np
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import attacks as attacks_lib


def timed(run: Callable[[], object]) -> Dict[str, float]:
    """Wall-clock and process CPU seconds of one call of ``run()``.

    Args:
        run: A function of no arguments; what it returns is dropped. It should wait for
            its own results (e.g. read a number off the device), or the time only covers
            dispatching the work.

    Returns:
        ``{"wall": s, "cpu": s}``: ``time.perf_counter`` and ``time.process_time``
        differences (CPU seconds of every thread of the process).

    Example:
        >>> timing = timed(lambda: sum(range(1000)))
        >>> timing["wall"] >= 0 and timing["cpu"] >= 0
        True
    """
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def summarize(values: Sequence[float]) -> Dict[str, object]:
    """Median, min and max of some numbers (one per round), and the numbers themselves.

    Args:
        values: At least one number.

    Returns:
        ``{"median": m, "min": a, "max": b, "all": list(values)}``.

    Raises:
        ValueError: For no values.

    Example:
        >>> summarize([3.0, 1.0, 2.0, 10.0])
        {'median': 2.5, 'min': 1.0, 'max': 10.0, 'all': [3.0, 1.0, 2.0, 10.0]}
    """
    values = list(values)
    if not values:
        raise ValueError("summarize needs at least one value.")
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "all": values}


def _round_robin(runners: Mapping[str, Callable[[], object]], rounds: int, warmup: int = 0,
                 verbose: int = 1) -> Dict[str, List[Dict[str, float]]]:
    """Times every runner once per round, in turn, after ``warmup`` untimed calls of each;
    returns each runner's :func:`timed` result per round, one progress line per round
    when ``verbose``."""
    for run in runners.values():
        for _ in range(warmup):
            run()
    times = {name: [] for name in runners}
    for index in range(rounds):
        for name, run in runners.items():
            times[name].append(timed(run))
        if verbose:
            print(f"  round {index + 1}/{rounds}: " + ", ".join(
                f"{name} {t[-1]['wall']:.2f}s" for name, t in times.items()), flush=True)
    return times


def _ratio(value: float, reference: float) -> float:
    return value / reference if reference else math.nan


def _epoch_runner(model: keras.Model, dataset: tf.data.Dataset, steps: int,
                  warmup_steps: int) -> Callable[[], None]:
    """Traces ``model``'s train step by one ``fit``; returns a function running one epoch
    by calling ``steps`` times the train function that ``fit`` calls."""
    # shuffle=False: fit cannot shuffle a dataset, and warns about it otherwise.
    model.fit(dataset, epochs=1, steps_per_epoch=max(warmup_steps, 1), shuffle=False,
              verbose=0)
    iterator = iter(dataset)

    def epoch():
        for _ in range(steps):
            logs = model.train_function(iterator)
        float(logs["loss"])  # waits for the last step

    return epoch


def training_cost(models: Mapping[str, keras.Model], data: tf.data.Dataset, steps: int = 20,
                  rounds: int = 5, warmup_steps: int = 2,
                  references: Union[str, Sequence[str], None] = None,
                  verbose: int = 1) -> Dict[str, dict]:
    """Seconds per epoch of each training model, and its ratios to reference models.

    Each model is traced by one ``fit`` of ``max(warmup_steps, 1)`` steps, in the order of
    ``models``. Then each of ``rounds`` rounds times one "epoch" of every model in turn:
    ``steps`` calls of ``model.train_function`` (the compiled step ``fit`` calls) on an
    iterator of ``data``, then a wait for the last loss. Calling ``fit`` itself would add a
    fixed cost per call (about a second on a CPU) that shrinks the ratios of short epochs
    towards 1. A ratio is taken within each round (this round's time over the reference's
    in the same round) and the rounds' ratios are summarized, so that a load that comes
    and goes moves both timings of a ratio alike.

    Args:
        models: Name -> a compiled Keras model (``model.compile`` done): a plain model, a
            ``GradRegModel``, an ``AdversarialTrainingModel``... Each trains on ``data``,
            its weights change.
        data: A ``tf.data.Dataset`` of batches as ``fit`` takes them (e.g. ``(x, y)``); a
            finite one is repeated, so that it never runs out.
        steps: Optimizer steps per timed epoch, at least 1.
        rounds: Timed rounds, at least 1.
        warmup_steps: Untimed steps of the tracing ``fit`` (at least one runs).
        references: Names in ``models`` to take ratios to (one name or several); default
            the first model. An empty sequence: no ratios.
        verbose: 1 prints one line per model as it is traced and one per round with its
            times; 0 is silent.

    Returns:
        Per model name: ``{"seconds_per_epoch": summary, "cpu_seconds_per_epoch": summary,
        "ratio_to": {reference: {"wall": summary, "cpu": summary}}}``, each summary as
        :func:`summarize` gives it over the rounds (the ratio of a reference to itself is
        exactly 1 in every round).

    Raises:
        ValueError: For no models, a model that is not compiled, a reference that is not a
            key of ``models``, ``steps`` or ``rounds`` below 1 or ``warmup_steps`` below 0;
            before any model runs.
        TypeError: If ``data`` is not a ``tf.data.Dataset``.

    Example:
        >>> import keras, numpy as np, tensorflow as tf
        >>> def mlp(width):
        ...     model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(width),
        ...                               keras.layers.Dense(3)])
        ...     model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
        ...     return model
        >>> x, y = np.random.rand(32, 4).astype("float32"), np.zeros(32, "int32")
        >>> data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
        >>> cost = training_cost({"small": mlp(4), "wide": mlp(64)}, data, steps=2,
        ...                      rounds=2, warmup_steps=1, verbose=0)
        >>> cost["small"]["ratio_to"]["small"]["wall"]["all"]
        [1.0, 1.0]
        >>> cost["wide"]["seconds_per_epoch"]["min"] > 0
        True
    """
    models = dict(models)
    if not models:
        raise ValueError("training_cost needs at least one model.")
    for name, model in models.items():
        if not getattr(model, "compiled", False):
            raise ValueError(f"Model {name!r} is not compiled: call its compile() (optimizer "
                             "and loss) before training_cost.")
    if references is None:
        references = [next(iter(models))]
    elif isinstance(references, str):
        references = [references]
    unknown = [name for name in references if name not in models]
    if unknown:
        raise ValueError(f"Unknown references {unknown}: each must be one of the models "
                         f"{list(models)}.")
    steps, rounds = _checks.integer("steps", steps), _checks.integer("rounds", rounds)
    warmup_steps = _checks.integer("warmup_steps", warmup_steps, 0)
    if not isinstance(data, tf.data.Dataset):
        raise TypeError(f"data must be a tf.data.Dataset, got {type(data).__name__}.")
    if data.cardinality() != tf.data.INFINITE_CARDINALITY:
        data = data.repeat()

    runners = {}
    for name, model in models.items():
        if verbose:
            print(f"  {name}: tracing", flush=True)
        runners[name] = _epoch_runner(model, data, steps, warmup_steps)
    times = _round_robin(runners, rounds, verbose=verbose)
    return {name: {
        "seconds_per_epoch": summarize([t["wall"] for t in own]),
        "cpu_seconds_per_epoch": summarize([t["cpu"] for t in own]),
        "ratio_to": {reference: {kind: summarize([
            1.0 if name == reference else _ratio(t[kind], r[kind])
            for t, r in zip(own, times[reference])]) for kind in ("wall", "cpu")}
            for reference in references},
    } for name, own in times.items()}


def attack_cost(model, x, y, attacks: Sequence[str], eps: float, rounds: int = 5,
                verbose: int = 1, **options) -> Dict[str, dict]:
    """Throughput of each attack on one batch: examples per second and CPU seconds each.

    Each attack first runs once, untimed, on the first two examples (to trace it), then
    each of ``rounds`` rounds runs every attack in turn on all of ``x`` and waits for its
    adversarial examples. An attack that stops working on an example once it is broken
    (APGD-T and FAB-T go through their targets, AutoAttack through its attacks, only on
    the examples left) is faster on examples that are easy to break.

    Args:
        model: The Keras model to attack (logits).
        x: The examples, as a NumPy array (at least one).
        y: Their integer labels.
        attacks: Names in :data:`keras_gradreg.attacks.ATTACKS`, timed in this order.
        eps: The attacks' radius.
        rounds: Timed rounds, at least 1.
        verbose: 1 prints one line per round with its times; 0 is silent.
        **options: Attack options (``clip_min``, ``clip_max``, ``steps``, ``queries``,
            ``seed``...); each attack gets those it accepts
            (:func:`keras_gradreg.attacks.accepts`). ``batch_size`` defaults to
            ``len(x)``: one batch.

    Returns:
        Per attack name: ``{"examples_per_second": summary, "cpu_seconds_per_example":
        summary}``, each summary as :func:`summarize` gives it over the rounds.

    Raises:
        ValueError: For an attack name not in the registry, ``rounds`` below 1, or no
            examples; before any attack runs.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> x = np.random.rand(8, 4).astype("float32")
        >>> y = np.argmax(model.predict(x, verbose=0), axis=-1)
        >>> cost = attack_cost(model, x, y, ["fgsm", "pgd"], 0.1, rounds=2, verbose=0,
        ...                    steps=2, clip_min=0.0, clip_max=1.0)
        >>> sorted(cost), len(cost["pgd"]["examples_per_second"]["all"])
        (['fgsm', 'pgd'], 2)
    """
    attacks = list(attacks)
    known = attacks_lib.ATTACKS
    unknown = [name for name in attacks if name not in known]
    if unknown:
        raise ValueError(f"Unknown attacks {unknown}. Use some of {list(known)}.")
    rounds = _checks.integer("rounds", rounds)
    x, y = np.asarray(x), np.asarray(y)
    count = len(x)
    if count < 1 or len(y) != count:
        raise ValueError(f"attack_cost needs at least one example and one label per "
                         f"example, got {count} examples and {len(y)} labels.")
    options = {"batch_size": count, **options}

    def runner(name: str) -> Callable[[], None]:
        attack = known[name]
        own = {key: value for key, value in options.items() if attacks_lib.accepts(name, key)}
        calls = []

        def run():
            some = slice(None) if calls else slice(2)  # the first call traces
            calls.append(1)
            np.asarray(attack(model, x[some], y[some], eps, **own))

        return run

    times = _round_robin({name: runner(name) for name in attacks}, rounds, warmup=1,
                         verbose=verbose)
    return {name: {"examples_per_second": summarize([count / t["wall"] for t in own]),
                   "cpu_seconds_per_example": summarize([t["cpu"] / count for t in own])}
            for name, own in times.items()}
