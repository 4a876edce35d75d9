"""The examples' configuration: plain dataclasses whose field names are the
flag names, the flags themselves, and the dataset defaults filled in.

The scripts define their flags in ``define_flags()`` under ``__main__`` only
(so importing a script defines no flag) and turn the parsed flags into a
:class:`Config` with :func:`config_from_flags`.
"""

from __future__ import annotations

import dataclasses
import os
from typing import List, Optional, Tuple

from absl import flags

from keras_gradreg import attacks
from keras_gradreg.paper import SETTINGS
from keras_gradreg.paper import PaperSettings

import _tensorboard_logging  # noqa: E402  (examples/ is on sys.path)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """The training fields of every example's config, keyword-only: the
    flags :func:`define_training_flags` defines for the experiment scripts
    and ``sweep_c.py`` alike (None: the dataset's paper default)."""

    out: Optional[str] = None
    data_dir: Optional[str] = None
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    learning_rate: Optional[float] = None
    train_size: Optional[int] = None
    norm_logit: str = "squared_l2"
    eval_batch_size: int = 500
    seed: int = 0
    tensorboard: bool = True


@dataclasses.dataclass(frozen=True)
class Config(TrainingConfig):
    """Every value one run of the experiment needs (the scripts' flags).

    A field that is None takes the dataset's default from
    :data:`keras_gradreg.paper.SETTINGS`. Field names are the flag names.

    Example:
        >>> config = Config("mnist", epochs=2, extra_attacks=())
        >>> config.out, resolved(config, SETTINGS["mnist"])["batch_size"]
        (None, 50)
    """

    dataset: str
    test_size: Optional[int] = None
    c_xent: Optional[float] = None
    c_logit: Optional[float] = None
    extra_attacks: Tuple[str, ...] = tuple(attacks.EXTRA_ATTACKS)
    extra_steps: Optional[int] = None
    extra_restarts: int = 1
    resume: bool = False
    baselines: Tuple[str, ...] = ()
    train_eps: float = 0.3
    pgd_steps: int = 10

    def record(self) -> dict:
        """The fields as results.json's ``flags`` section (lists as flag
        text, comma-separated)."""
        def text(value):
            if isinstance(value, tuple):
                return ",".join(value)
            return os.fspath(value) if isinstance(value, os.PathLike) else value

        return {key: text(value)
                for key, value in dataclasses.asdict(self).items()}


_LIST_FIELDS = ("extra_attacks", "baselines")


def config_from_flags(dataset: str,
                      flag_values: flags.FlagValues = flags.FLAGS) -> Config:
    """The :class:`Config` of parsed flags (flags a script lacks keep the
    Config's default)."""
    values = {}
    for field in dataclasses.fields(Config):
        if field.name == "dataset" or field.name not in flag_values:
            continue
        value = flag_values[field.name].value
        values[field.name] = (tuple(parse_list(value))
                              if field.name in _LIST_FIELDS else value)
    return Config(dataset, **values)


def _per_dataset(field: str) -> str:
    values = ", ".join(f"{k} {getattr(s, field):g}" for k, s in SETTINGS.items())
    return f"Default: the dataset's ({values})."


def define_training_flags(
        flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Flags of the training shared by the examples and ``sweep_c.py``.

    Call it from a script's ``if __name__ == "__main__":`` block only, so
    that importing a script defines no flag.
    """
    flags.DEFINE_string(
        "data_dir", None,
        "Local MNIST IDX / Speech Commands folder, or a tfds data_dir.",
        flag_values=flag_values)
    flags.DEFINE_string("out", None, "Output folder. Default: runs/<dataset>.",
                        flag_values=flag_values)
    flags.DEFINE_integer("epochs", None,
                         "Training epochs. " + _per_dataset("epochs"),
                         flag_values=flag_values)
    flags.DEFINE_integer("batch_size", None,
                         "Training batch size. " + _per_dataset("batch_size"),
                         flag_values=flag_values)
    flags.DEFINE_float("learning_rate", None,
                       "Adam learning rate. " + _per_dataset("learning_rate"),
                       flag_values=flag_values)
    flags.DEFINE_integer(
        "train_size", None,
        "Training examples (the first ones). Default: the full split.",
        flag_values=flag_values)
    flags.DEFINE_enum(
        "norm_logit", "squared_l2", ["squared_l2", "l2", "l1"],
        "Norm of Logit-reg's penalty: squared_l2 (the paper's), l2 or l1.",
        flag_values=flag_values)
    flags.DEFINE_integer("eval_batch_size", 500, "Examples per attack batch.",
                         flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Seed of weights, data order, attacks.",
                         flag_values=flag_values)
    flags.DEFINE_boolean(
        "resume", False,
        "Reuse the models an interrupted run with the same flags saved in "
        "--out (<model>.keras, with training/<model>.json), go on from the "
        "last finished epoch of the model it was training (backup/<model>), "
        "and train only the missing ones.", flag_values=flag_values)
    _tensorboard_logging.define_flags(flag_values)


def define_common_flags(flag_values: flags.FlagValues = flags.FLAGS) -> None:
    """Flags of the three experiment scripts (the training flags and more).

    Call it from a script's ``if __name__ == "__main__":`` block only.

    Example:
        >>> from absl import flags
        >>> flag_values = flags.FlagValues()
        >>> define_common_flags(flag_values)
        >>> _ = flag_values(["mnist.py", "--epochs", "2", "--extra_attacks="])
        >>> config = config_from_flags("mnist", flag_values)
        >>> config.epochs, config.extra_attacks, config.extra_restarts
        (2, (), 1)
    """
    define_training_flags(flag_values)
    flags.DEFINE_integer(
        "test_size", None,
        "Test examples (the first ones). Default: the full split.",
        flag_values=flag_values)
    flags.DEFINE_float("c_xent", None, "c of Xent-reg. " + _per_dataset("c_xent"),
                       flag_values=flag_values)
    flags.DEFINE_float("c_logit", None,
                       "c of Logit-reg. " + _per_dataset("c_logit"),
                       flag_values=flag_values)
    flags.DEFINE_string(
        "extra_attacks", ",".join(attacks.EXTRA_ATTACKS),
        "Comma-separated attacks beyond the paper's, as honesty checks "
        "(attacks with several losses, such as APGD, run once per loss). "
        "'' for none.", flag_values=flag_values)
    flags.DEFINE_integer(
        "extra_steps", None,
        "Iterations of PGD (per restart, step 2.5 eps / steps) and APGD. "
        "Default: the paper's BIM iterations (the same budget), "
        + _per_dataset("steps"), flag_values=flag_values)
    flags.DEFINE_integer("extra_restarts", 1, "Random restarts of PGD and APGD.",
                         flag_values=flag_values)


def or_default(value, default):
    """``value`` unless it is None (an unset flag), else ``default``."""
    return default if value is None else value


def resolved(config: Config, settings: PaperSettings) -> dict:
    """The run's values with the dataset's defaults filled in."""
    return dict(
        out=config.out or os.path.join("runs", settings.dataset),
        epochs=or_default(config.epochs, settings.epochs),
        batch_size=or_default(config.batch_size, settings.batch_size),
        learning_rate=or_default(config.learning_rate, settings.learning_rate),
        c_xent=or_default(config.c_xent, settings.c_xent),
        c_logit=or_default(config.c_logit, settings.c_logit))


def parse_list(text: str) -> List[str]:
    """Splits a comma-separated flag value, dropping blanks.

    Example:
        >>> parse_list("fgsm_rs, nfgsm,")
        ['fgsm_rs', 'nfgsm']
    """
    return [item.strip() for item in (text or "").split(",") if item.strip()]
