"""Shared machinery of the attacks: data checks, projection, batching.

Every attack builds one compiled ``tf.function`` per (model, settings) and
runs it once per batch. Numbers that may change between calls (eps, step
size, number of steps, clip values, seed) are tensor arguments, so changing
them never retraces.
"""

from __future__ import annotations

import functools
import warnings
import weakref
from typing import Callable, Optional, Sequence

import keras
import tensorflow as tf

from keras_gradreg import _checks
from keras_gradreg import _logits
from keras_gradreg.attacks import _norms

# model -> {settings: tf.function}. Weak keys: a cache never keeps a model
# alive. Callables that cannot be weakly referenced are not cached.
_CACHE: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# Argument checks (the validators themselves live in keras_gradreg._checks)


def default_step_size(eps: float, steps: int) -> float:
    """The step of fixed-step attacks without one: ``2.5 * eps / steps``.

    Madry et al.'s (2018) rule: the iterates can cross the eps-ball 2.5
    times, enough to reach its boundary from any start. At ``eps = 0`` the
    projection keeps ``x`` whatever the step, so 1.0 stands in for it.

    Example:
        >>> default_step_size(0.3, 10)
        0.075
    """
    return 2.5 * eps / steps if eps > 0 else 1.0


def prepare(model, x, y, target, clip_min, clip_max):
    """Checks and converts the data of an attack call, before it runs.

    ``x`` must be floating-point, finite and inside the clip range; ``y``
    (and ``target``) integer-valued class indices in range, or one-hot rows
    as wide as the model's logits (:mod:`keras_gradreg._checks`). Warns if
    the model's outputs look like probabilities.

    Returns:
        ``(x, labels, targeted)``: ``labels`` are the targets when ``target``
        is given, else the true labels (the model's predictions if ``y`` is
        None, which avoids label leaking).
    """
    clip_min, clip_max = _checks.clip_range(clip_min, clip_max)
    x = _checks.inputs(x, clip_min, clip_max)
    batch = int(x.shape[0])
    probe = predict_logits(model, x[:32]) if batch else None
    classes = None if probe is None else int(probe.shape[-1])
    if target is not None:
        targets = _checks.labels(target, classes, batch, name="target")
        return x, tf.constant(targets, tf.int32), True
    if probe is not None and _logits.looks_like_probabilities(probe.numpy()):
        warnings.warn(_logits.PROBABILITIES_WARNING, UserWarning, stacklevel=3)
    if y is None:
        logits = predict_logits(model, x)
        return x, tf.argmax(logits, axis=-1, output_type=tf.int32), False
    labels = _checks.labels(y, classes, batch)
    return x, tf.constant(labels, tf.int32), False


def num_classes(model, x) -> int:
    """The width of ``model``'s logits, measured on the first example of x."""
    return int(predict_logits(model, x[:1]).shape[-1])


def warn_if_probabilities(model, x, probe: int = 32) -> None:
    """Warns if the logits of ``model`` on a few examples of ``x`` look like
    probabilities (non-negative rows summing to 1)."""
    if not int(x.shape[0]):
        return
    logits = predict_logits(model, x[:probe])
    if _logits.looks_like_probabilities(logits.numpy()):
        warnings.warn(_logits.PROBABILITIES_WARNING, UserWarning, stacklevel=3)


# Models -----------------------------------------------------------------


def logits_function(model) -> Callable:
    """Returns ``f(x) -> float32 logits`` for a model, in inference mode.

    As :func:`keras_gradreg._logits.logits_function`, but a Keras model
    that is not cut before a softmax is held weakly, so the cache of
    compiled attacks never keeps it alive.
    """
    if isinstance(model, keras.layers.Layer) and not _logits.ends_in_softmax(
        model
    ):
        return _weak_logits(model)
    return _logits.logits_function(model)


def _weak_logits(model) -> Callable:
    """Logits of a Keras model, holding it weakly so the cache can free it."""
    ref = weakref.ref(model)

    @tf.autograph.experimental.do_not_convert
    def logits(x):
        live = ref()
        if live is None:
            raise RuntimeError("The attacked model was garbage-collected.")
        return _logits.logits_function(live)(x)

    return logits


def compiled(model, settings: tuple, build: Callable) -> Callable:
    """Returns the cached ``build(logits_fn)`` for ``(model, settings)``."""
    try:
        per_model = _CACHE.setdefault(model, {})
    except TypeError:  # not weakly referenceable: build every time.
        return build(logits_function(model))
    if settings not in per_model:
        per_model[settings] = build(logits_function(model))
    return per_model[settings]


def trace_once(fn: Callable, input_signature: list) -> Callable:
    """``tf.function(fn)`` with a fixed signature and its own tracing counter.

    TensorFlow counts traces per Python code object, so the functions built
    from one closure for several models share a counter and it warns of
    "retracing" although each traces once. Wrapped in a ``functools.partial``
    the compiled function is counted alone: real retracing still warns.
    """
    return tf.function(functools.partial(fn), input_signature=input_signature)


def cached_functions(model) -> dict:
    """The compiled functions cached for ``model`` (for tests and tuning)."""
    return dict(_CACHE.get(model, {}))


def loss_and_gradient(logits_fn, objective_fn, x_adv, labels, eot: int = 1):
    """One forward and backward pass: logits, per-example loss, d loss/dx.

    With ``eot > 1`` (expectation over transformation, for randomized
    models) the loss and gradient are averaged over ``eot`` passes; the
    logits are those of the last pass.
    """
    if eot > 1:
        logits, values, gradient = loss_and_gradient(
            logits_fn, objective_fn, x_adv, labels
        )
        for _ in tf.range(eot - 1):
            logits, more_values, more_gradient = loss_and_gradient(
                logits_fn, objective_fn, x_adv, labels
            )
            values += more_values
            gradient += more_gradient
        return logits, values / eot, gradient / eot
    with tf.GradientTape() as tape:
        tape.watch(x_adv)
        logits = tf.cast(logits_fn(x_adv), tf.float32)
        values = objective_fn(logits, labels)
        total = tf.reduce_sum(values)
    gradient = tape.gradient(total, x_adv)
    if gradient is None:
        gradient = tf.zeros_like(x_adv)
    return logits, values, gradient


def signed_gradient_steps(
    logits_fn: Callable,
    objective_fn: Callable,
    x_start: tf.Tensor,
    labels: tf.Tensor,
    steps,
    step_size,
    project: Callable,
    direction: Optional[Callable] = None,
) -> tf.Tensor:
    """The steepest-ascent loop shared by the attacks and adversarial training.

    Runs ``x <- project(x + step_size * direction(d objective / dx, x))``
    ``steps`` times from ``x_start``: the core of FGSM / FGM, BIM, C&W-L-inf,
    PGD and :class:`keras_gradreg.AdversarialTrainingModel`. The direction
    is ``sign(gradient)`` (L-inf) unless given (:func:`ascent_direction`
    for the L2 and L1 threat models). An explicit ``tf.while_loop``, so it
    runs the same in eager mode, in an autograph-converted ``tf.function``
    (the attacks) and in a Keras train step (which Keras does not convert).

    Args:
        logits_fn: ``x -> logits``.
        objective_fn: ``(logits, labels) -> per-example value to maximize``.
        x_start: The first iterate.
        labels: Labels passed to ``objective_fn``.
        steps: Number of steps (int or int32 scalar tensor).
        step_size: Size of each step in the threat model's norm, in ``x``'s
            units.
        project: ``x_adv -> x_adv`` applied after each step (the eps-ball
            and the clip range, or the clip range alone).
        direction: ``(gradient, x_adv) -> unit step``; None for
            ``sign(gradient)``.

    Returns:
        The last iterate, shaped like ``x_start``.
    """

    def step(index, x_adv):
        _, _, gradient = loss_and_gradient(logits_fn, objective_fn, x_adv, labels)
        if direction is None:
            move = tf.sign(gradient)
        else:
            move = direction(gradient, x_adv)
        return index + 1, project(x_adv + step_size * move)

    _, x_adv = tf.while_loop(
        lambda index, _: index < steps, step, (tf.constant(0), x_start)
    )
    return x_adv


def ascent_direction(norm: str, has_min: bool, has_max: bool,
                     clip_min=0.0, clip_max=0.0,
                     sparsity=_norms.L1_SPARSITY) -> Callable:
    """Returns ``direction(gradient, x_adv)``: the unit steepest-ascent step
    of the ``norm`` threat model (:func:`_norms.direction`); for L1 only on
    the coordinates that can still move inside the clip box."""

    def unit_step(gradient, x_adv):
        can_move = None
        if norm == "l1":
            can_move = _norms.movable(x_adv, gradient, clip_min, clip_max,
                                      has_min, has_max)
        return _norms.direction(gradient, norm, sparsity, can_move)

    return unit_step


# Geometry ---------------------------------------------------------------


def per_example(values: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    """Reshapes a ``(batch,)`` tensor to broadcast against ``like``."""
    shape = tf.concat(
        [tf.shape(values), tf.ones([tf.rank(like) - 1], tf.int32)], axis=0
    )
    return tf.reshape(values, shape)


def where(mask: tf.Tensor, a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """``tf.where`` with a per-example mask over batched tensors."""
    if a.shape.rank is not None and a.shape.rank > 1:
        mask = tf.broadcast_to(per_example(mask, a), tf.shape(a))
    return tf.where(mask, a, b)


def projector(has_min: bool, has_max: bool, norm: str = "linf") -> Callable:
    """Returns ``project(x_adv, x, eps, clip_min, clip_max)``.

    Projects onto the intersection of the ``norm`` eps-ball around ``x`` and
    the clip range (:func:`_norms.project`: exact for L-inf and L1; for L2
    the ball, then the box).
    """

    def project(x_adv, x, eps, clip_min, clip_max):
        return _norms.project(x_adv, x, eps, norm, clip_min, clip_max,
                              has_min, has_max)

    return project


def random_start(x, eps, seed, restart, norm: str = "linf"):
    """A random point of the ``norm`` eps-ball around ``x``
    (:func:`_norms.random_start`), reproducible from (seed, restart)."""
    restart_seed = tf.random.experimental.stateless_fold_in(seed, restart)
    return _norms.random_start(x, eps, restart_seed, norm)


def signature(x: tf.Tensor, scalars: int) -> list:
    """``input_signature``: x with a free batch size, labels, seed, steps, and
    ``scalars`` float scalars in x's dtype."""
    features = [None] + x.shape.as_list()[1:]
    return [
        tf.TensorSpec(features, x.dtype),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([2], tf.int64),
        tf.TensorSpec([], tf.int32),
    ] + [tf.TensorSpec([], x.dtype)] * scalars


# The shell every attack shares -------------------------------------------


def run_attack(model, x, y, *, settings: tuple, build: Callable,
               steps: int, scalars: Sequence[float], seed: int = 0,
               batch_size: Optional[int] = None, target=None,
               clip_min: Optional[float] = None,
               clip_max: Optional[float] = None) -> tf.Tensor:
    """Runs one attack whose own settings are already checked.

    Checks ``batch_size`` and ``seed``, prepares ``x`` and the labels
    (:func:`prepare`), finds the model's compiled attack for these settings
    (or builds it once, :func:`compiled`) and runs it per batch
    (:func:`run_batched`).

    Args:
        model: The attacked model.
        x: Inputs.
        y: Labels (integer or one-hot).
        settings: What the compiled attack depends on besides the model, its
            name first; whether it is targeted, which clip bounds are set,
            and x's example shape and dtype are added here.
        build: ``build(logits_fn, x, targeted, has_min, has_max)`` returns
            the attack ``run(x, labels, seed, steps, *scalars, clip_min,
            clip_max)``.
        steps: Iterations (queries for a black-box attack).
        scalars: The attack's float settings, in ``run``'s order.
        seed: The random seed; batch ``i`` gets ``[seed, i]``.
        batch_size: Examples per batch (default: all at once).
        target: Optional target classes.
        clip_min: Lower bound of valid inputs, or None.
        clip_max: Upper bound of valid inputs, or None.

    Returns:
        The adversarial examples, shaped and typed as x.
    """
    if batch_size is not None:
        batch_size = _checks.integer("batch_size", batch_size)
    seed = _checks.seed(seed)
    x, labels, targeted = prepare(model, x, y, target, clip_min, clip_max)
    has_min, has_max = clip_min is not None, clip_max is not None
    key = tuple(settings) + (targeted, has_min, has_max,
                             tuple(x.shape.as_list()[1:]), x.dtype.name)
    run = compiled(model, key, lambda logits_fn: build(
        logits_fn, x, targeted, has_min, has_max))
    values = [*scalars, clip_min or 0.0, clip_max or 0.0]
    return run_batched(run, x, labels, seed, steps, values, batch_size)


# Batching ---------------------------------------------------------------


def run_batched(
    run: Callable,
    x: tf.Tensor,
    labels: tf.Tensor,
    seed: int,
    steps: int,
    scalars: list,
    batch_size: Optional[int],
) -> tf.Tensor:
    """Runs ``run(x, labels, seed, steps, *scalars)`` per batch; concatenates.

    Each batch gets its own seed ``[seed, batch_index]``.
    """
    total = int(x.shape[0])
    if total == 0:
        return tf.identity(x)
    size = total if batch_size is None else batch_size
    steps = tf.constant(steps, tf.int32)
    scalars = [tf.constant(value, x.dtype) for value in scalars]
    outputs = []
    for index, start in enumerate(range(0, total, size)):
        batch_seed = tf.constant([seed, index], tf.int64)
        outputs.append(
            run(x[start : start + size], labels[start : start + size],
                batch_seed, steps, *scalars)
        )
    return outputs[0] if len(outputs) == 1 else tf.concat(outputs, axis=0)


def predict_logits(model, x, batch_size: int = 256) -> tf.Tensor:
    """Float32 logits of ``model`` on ``x``, compiled and batched."""
    x = tf.convert_to_tensor(x)

    def build(logits_fn):
        spec = tf.TensorSpec([None] + x.shape.as_list()[1:], x.dtype)
        return trace_once(logits_fn, [spec])

    settings = ("predict", tuple(x.shape.as_list()[1:]), x.dtype.name)
    predict = compiled(model, settings, build)
    outputs = [
        predict(x[start : start + batch_size])
        for start in range(0, int(x.shape[0]), batch_size)
    ]
    if not outputs:
        return tf.zeros([0, 0], tf.float32)
    return tf.concat(outputs, axis=0)
