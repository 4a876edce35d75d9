"""``keras-gradreg finetune``: train a saved model further with a robust recipe.

The default recipe is N-FGSM (docs/RESULTS.md measured it best for its cost
on MNIST), with the paper's penalty on top when ``--c`` > 0; ``gradreg`` is
the paper's penalty alone.
"""

from __future__ import annotations

import inspect
import os

import keras

from keras_gradreg import adversarial_training
from keras_gradreg import attacks as attacks_lib
from keras_gradreg._atomic import fault_point
from keras_gradreg.adversarial_training import AdversarialTrainingModel
from keras_gradreg.cli import _tensorboard
from keras_gradreg.cli._evaluate import print_warnings
from keras_gradreg.cli._evaluate import robustness
from keras_gradreg.cli._io import check_compatible
from keras_gradreg.cli._io import check_fresh
from keras_gradreg.cli._io import load_data
from keras_gradreg.cli._io import load_model
from keras_gradreg.cli._io import one_line
from keras_gradreg.cli._io import prepare_output
from keras_gradreg.cli._parser import DEFAULT_C
from keras_gradreg.cli._parser import PENALTY_ONLY
from keras_gradreg.cli._settings import PAPER_SETTINGS  # noqa: F401 (doctest)
from keras_gradreg.cli._settings import AttackSettings
from keras_gradreg.cli._settings import CommandLineError
from keras_gradreg.cli._settings import attack_settings
from keras_gradreg.cli._settings import check_dataset
from keras_gradreg.cli._settings import check_numbers
from keras_gradreg.cli._settings import takes_step_size
from keras_gradreg.evaluation._tables import eps_keys
from keras_gradreg.model import GradRegModel

FINETUNE_ATTACKS = attacks_lib.QUICK_ATTACKS


def _wrap(model: keras.Model, args, settings: AttackSettings) -> GradRegModel:
    """The model's network in a new training model of ``--recipe`` (never a
    double wrap: a saved GradRegModel gives its base, and its penalty
    settings where no flag is given)."""
    previous = model if isinstance(model, GradRegModel) else None
    base = previous.base if previous else model
    if args.c is not None:
        c = args.c
    elif previous is not None and previous.c > 0:
        c = previous.c
    else:
        c = DEFAULT_C.get(args.recipe, 0.0)
    penalty = dict(
        c=c,
        regularizer=args.regularizer or (
            previous.regularizer if previous else "logit_margin"),
        norm=args.norm or (previous.norm if previous else "squared_l2"),
    )
    try:
        if args.recipe == PENALTY_ONLY:
            return GradRegModel(base, **penalty)
        recipe = adversarial_training.RECIPES[args.recipe]
        if "steps" in inspect.signature(recipe).parameters:
            penalty["steps"] = args.train_steps
        return recipe(base, eps=train_eps(args, settings),
                      clip_min=settings.clip_min, clip_max=settings.clip_max,
                      seed=args.seed, **penalty)
    except (TypeError, ValueError) as error:
        raise CommandLineError(one_line(error)) from error


def train_eps(args, settings: AttackSettings) -> float:
    """``--train_eps``, or the smallest evaluation eps.

    Example:
        >>> import argparse
        >>> train_eps(argparse.Namespace(train_eps=None),
        ...           PAPER_SETTINGS["mnist"])
        0.1
    """
    if args.train_eps is not None:
        return float(args.train_eps)
    return min(settings.eps)


def _describe(robust: GradRegModel, args) -> str:
    """``"N-FGSM at eps 0.1 with c=0.03 (l1)"`` and the like."""
    if not isinstance(robust, AdversarialTrainingModel):
        return f"the paper's penalty, c={robust.c:g}"
    title = adversarial_training.RECIPES[args.recipe].title.replace(
        "-k", f"-{robust.steps}")
    penalty = (f" plus the penalty, c={robust.c:g} "
               f"({getattr(robust.norm, '__name__', robust.norm)})"
               if robust.c > 0 else "")
    return f"{title} at eps {robust.eps:g}{penalty}"


def _optimizer(args) -> keras.optimizers.Optimizer:
    try:
        return keras.optimizers.get({
            "class_name": args.optimizer,
            "config": {"learning_rate": args.learning_rate},
        })
    except (TypeError, ValueError) as error:
        raise CommandLineError(
            f"unknown optimizer {args.optimizer!r}: use a Keras optimizer "
            "name such as adam or sgd."
        ) from error


def _print_comparison(before: dict, after: dict, eps: tuple) -> None:
    rows = [("clean", before["clean"], after["clean"])]
    rows += [(f"{attack} eps={key}", before[attack][key], after[attack][key])
             for attack in FINETUNE_ATTACKS for key in eps_keys(eps)]
    width = max(len(row[0]) for row in rows)
    print(f"{'accuracy':<{width}}   before    after")
    for name, old, new in rows:
        print(f"{name:<{width}} {100 * old:7.2f}% {100 * new:7.2f}%")


def finetune_command(args) -> dict:
    """Runs ``keras-gradreg finetune``; returns accuracies before and after."""
    eval_spec = args.eval_dataset or args.dataset
    for spec in (args.dataset, eval_spec):
        check_dataset(spec)
    check_numbers(args)
    settings = attack_settings(
        args, iterative=any(map(takes_step_size, FINETUNE_ATTACKS)))
    if not args.out.endswith(".keras"):
        raise CommandLineError(f"--out {args.out} must end in .keras.")
    log_dir = None if args.no_tensorboard else _tensorboard.run_dir(args)
    check_fresh([args.out] + ([log_dir] if log_dir else []), args.overwrite)
    optimizer = _optimizer(args)
    model = load_model(args.model)
    train = load_data(args.dataset, args.split, args.data_dir,
                      args.num_examples)
    held_out = load_data(eval_spec, args.eval_split, args.data_dir,
                         args.eval_examples)
    clip = (settings.clip_min, settings.clip_max)
    train = train[0], check_compatible(model, *train, args.dataset, *clip)
    held_out = held_out[0], check_compatible(model, *held_out, eval_spec,
                                             *clip)
    keras.utils.set_random_seed(args.seed)
    robust = _wrap(model, args, settings)
    outputs = [prepare_output(args.out, "--out", folder=False,
                              needed_bytes=os.path.getsize(args.model))]
    try:
        if log_dir is not None:
            outputs.append(prepare_output(  # the run folder: all ours
                log_dir, "--logdir", keep=lambda name: False))
        return _fine_tune(robust, optimizer, train, held_out, settings, args,
                          *outputs)
    except BaseException:
        for output in outputs:
            output.discard()
        raise


def _fine_tune(robust, optimizer, train, held_out, settings, args, model_out,
               log_out=None) -> dict:
    """Measures, trains, measures again, then swaps in the new model and
    (after it) the new TensorBoard run, each with one rename: a kill leaves
    the old model and the old logs until the new ones are complete."""
    print(f"Accuracy of {args.model} before fine-tuning:")
    _, before = robustness(robust, held_out, FINETUNE_ATTACKS, settings, args)
    robust.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(
        from_logits=not robust.output_softmax), metrics=["accuracy"])
    print(f"Fine-tuning with {_describe(robust, args)} for {args.epochs} "
          "epoch(s):")
    callbacks = [keras.callbacks.LambdaCallback(
        on_epoch_end=lambda epoch, logs: fault_point(f"epoch {epoch + 1}"))]
    logged = {} if log_out is None else dict(
        validation_data=tuple(a[:_tensorboard.HELD_OUT_SIZE]
                              for a in held_out))
    if log_out is not None:
        callbacks[:0] = _tensorboard.training_callbacks(
            log_out.target, robust, train, held_out, settings)
    with _tensorboard.Timer() as timer:
        robust.fit(*train, batch_size=args.batch_size or 50,
                   epochs=args.epochs, verbose=1, callbacks=callbacks,
                   **logged)
    print("Accuracy after fine-tuning:")
    report, after = robustness(robust, held_out, FINETUNE_ATTACKS, settings,
                               args)
    if log_out is not None:
        _tensorboard.finish(log_out.target, robust, args,
                                report.results.model_entry("model"),
                                timer.seconds)
    robust.save(model_out.target)
    model_out.commit()
    if log_out is not None:
        log_out.commit()
    _print_comparison(before, after, settings.eps)
    print_warnings(report.results, " (after fine-tuning)")
    print(f"Saved the fine-tuned {type(robust).__name__} to {args.out}.")
    if log_out is not None:
        print("TensorBoard: tensorboard --logdir "
              f"{os.path.dirname(_tensorboard.run_dir(args))}")
    return {"before": before, "after": after}
