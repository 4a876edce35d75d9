r"""MNIST experiment of Yu et al., Section 4.1 (Tables 1 and 4).

Trains the Natural, Xent-reg and Logit-reg versions of Madry et al.'s
4-layer CNN (Adam, learning rate 1e-3, batch 50, 10 epochs by default) and
evaluates them under the paper's white-box attacks: FGSM, BIM and C&W
(k = 50) at eps 0.1, 0.2 and 0.3, BIM and C&W with 10 iterations of step
0.05, pixels clipped to [0, 1]; then the transfer table at eps 0.3 and, as
honesty checks beside the paper's columns, PGD and APGD-CE/DLR
(``--extra_attacks``).

``--baselines fgsm_rs,nfgsm,pgd`` also trains adversarial-training baselines
at ``--train_eps`` (default 0.3): FGSM-RS (Wong et al. 2020: one step of
1.25 eps from a random start), N-FGSM (de Jorge et al. 2022: one step of eps
from noise of radius 2 eps, not projected) and PGD (Madry et al. 2018; the paper-era
recipe is 40 steps of 0.01, here ``--pgd_steps`` steps of 2.5 eps / steps,
default 10), so that robustness per training cost can be compared with
GradReg through the recorded wall times.

The default c values (``--c_xent`` 10, ``--c_logit`` 0.1) are the choice of
``examples/sweep_c.py`` on a validation split of the training data (the paper
does not give c; see docs/RESULTS.md).

Quick run (a few minutes on a laptop CPU):

    python examples/mnist.py --data_dir ../shared/data/mnist \
        --train_size 5000 --test_size 1000 --epochs 2 --out runs/mnist_quick

Writes into ``--out``: results.json, results.md (the paper's table layout),
results.csv, accuracy_vs_eps.png, training_curves.png and one ``.keras``
file per model. Without ``--data_dir`` the data comes from tfds.
"""

from __future__ import annotations

from absl import app
from absl import flags

import _experiment  # examples/, first on sys.path when run as a script

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The experiment's flags and the adversarial-training baselines'."""
    _experiment.define_common_flags(flag_values)
    flags.DEFINE_string(
        "baselines", "",
        "Comma-separated adversarial-training baselines: fgsm_rs, nfgsm, pgd ('' none).",
        flag_values=flag_values)
    flags.DEFINE_float("train_eps", 0.3, "L-inf radius of adversarial training.",
                       flag_values=flag_values)
    flags.DEFINE_integer(
        "pgd_steps", 10, "Steps of PGD adversarial training (step 2.5 eps/steps).",
        flag_values=flag_values)


def main(argv) -> None:
    """Runs the experiment (flags already parsed by absl)."""
    del argv
    _experiment.run(_experiment.config_from_flags("mnist", FLAGS))


if __name__ == "__main__":
    define_flags()
    app.run(main)
