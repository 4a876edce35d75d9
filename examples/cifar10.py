r"""CIFAR-10 experiment of Yu et al., Section 4.2 (Tables 2 and 5).

Trains the Natural, Xent-reg and Logit-reg versions of a 5-layer CNN (3 conv
+ 2 dense, :func:`keras_gradreg.models.cifar10_cnn`; Adam, learning rate
1e-3, batch 128, 30 epochs by default) on pixels in [0, 255], and evaluates
them under the paper's white-box attacks: FGSM, BIM and C&W (k = 50) at eps
3, 6 and 9, BIM and C&W with 10 iterations of step 1, pixels clipped to
[0, 255]; then the transfer table at eps 9 and, as honesty checks, PGD and
APGD-CE/DLR (``--extra_attacks``).

The default c values (``--c_xent``, ``--c_logit``) are starting points to be
replaced by the choice of ``examples/sweep_c.py`` (the paper does not give c);
they are large because the gradients are taken on the 0-255 scale.

    python examples/cifar10.py --train_size 5000 --test_size 500 --epochs 2 \
        --out runs/cifar10_quick

CIFAR-10 comes from tfds (``--data_dir``: tfds' data directory). Writes
results.json, results.md, results.csv, plots and ``.keras`` models into
``--out``.
"""

from __future__ import annotations

from absl import app
from absl import flags

import _experiment  # examples/, first on sys.path when run as a script

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The experiment's flags."""
    _experiment.define_common_flags(flag_values)


def main(argv) -> None:
    """Runs the experiment (flags already parsed by absl)."""
    del argv
    _experiment.run(_experiment.config_from_flags("cifar10", FLAGS))


if __name__ == "__main__":
    define_flags()
    app.run(main)
