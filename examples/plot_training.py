r"""Plots Fig. 2 and Fig. 3 of Yu et al. from TensorBoard event files.

Fig. 2: test accuracy and gradient loss of several runs (e.g. natural,
xent_reg, logit_reg) during training. Fig. 3: weight histograms of ``conv1``
and ``fc2`` early and late in training, one column per run.

Each log directory is one training run that used
``keras.callbacks.TensorBoard`` and the callbacks of
``keras_gradreg.callbacks`` (see ``examples/_training_plots.py``, which
holds the reading and drawing; the experiments call it themselves and write
both figures into their output folder).

Usage:

    python examples/plot_training.py \
        --logdirs natural=runs/mnist/logs/natural,logit_reg=runs/mnist/logs/logit_reg \
        --out plots

Writes ``fig2_training_curves.png``, ``fig3_weight_histograms.png`` and the
plotted numbers as ``curves.json`` into ``--out``.
"""

from __future__ import annotations

import logging

from absl import app
from absl import flags

from _training_plots import (  # noqa: F401  (examples/ is on sys.path)
    ACCURACY_TAGS,
    GRAD_LOSS_TAGS,
    parse_logdirs,
    plot_curves,
    plot_histograms,
    read_histograms,
    read_scalars,
    render,
    training_curves,
    weight_histograms,
)

FLAGS = flags.FLAGS


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """The script's flags; called under ``__main__`` only."""
    flags.DEFINE_string(
        "logdirs", None, "Comma-separated name=log_dir pairs, one per run.",
        flag_values=flag_values)
    flags.DEFINE_string("out", None, "Directory for the PNG and JSON files.",
                        flag_values=flag_values)
    flags.DEFINE_list("layers", ["conv1", "fc2"], "Layers for Fig. 3.",
                      flag_values=flag_values)
    flags.mark_flags_as_required(["logdirs", "out"], flag_values=flag_values)


def run(logdirs: str, out: str, layers=("conv1", "fc2")) -> dict:
    """Reads the runs ``name=log_dir,...`` and writes the figures into
    ``out``; returns ``{kind: path}``."""
    logging.getLogger("tensorboard").setLevel(logging.WARNING)
    runs = parse_logdirs(logdirs)
    for name, path in runs.items():
        print(f"Reading run {name!r} from {path}")
    paths = render(runs, out, list(layers))
    for kind, path in paths.items():
        print(f"Wrote {kind}: {path}")
    return paths


def main(argv):
    del argv  # Unused.
    run(FLAGS.logdirs, FLAGS.out, FLAGS.layers)


if __name__ == "__main__":
    define_flags()
    app.run(main)
