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
import os
import sys

from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _training_plots import (  # noqa: E402,F401
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


def _define(define, name, *args, **kwargs):
    """Defines a flag unless another script in this process already did."""
    if name not in flags.FLAGS:
        define(name, *args, **kwargs)


_define(
    flags.DEFINE_string,
    "logdirs", None, "Comma-separated name=log_dir pairs, one per run."
)
_define(flags.DEFINE_string, "out", None, "Directory for the PNG and JSON files.")
_define(flags.DEFINE_list, "layers", ["conv1", "fc2"], "Layers for Fig. 3.")


def main(argv):
    del argv  # Unused.
    logging.getLogger("tensorboard").setLevel(logging.WARNING)
    runs = parse_logdirs(FLAGS.logdirs)
    for name, path in runs.items():
        print(f"Reading run {name!r} from {path}")
    paths = render(runs, FLAGS.out, FLAGS.layers)
    for kind, path in paths.items():
        print(f"Wrote {kind}: {path}")


if __name__ == "__main__":
    flags.mark_flags_as_required(["logdirs", "out"])
    app.run(main)
