"""Robust accuracy, multi-model robustness reports and their results.

* :func:`robust_accuracy`: accuracy of one model under one attack.
* :class:`RobustnessReport`: models x attacks x eps (the paper's Tables 1-3),
  a transfer matrix (Tables 4-6), per-example worst case over attacks
  (as AutoAttack reports it), and gradient-masking sanity checks after
  Athalye et al. (2018) and Carlini et al. (2019).
* :class:`Results`: what a report measured, per-example correctness
  included, with room for extra sections; it writes results.json,
  results.md, results.csv, correct.npz and accuracy_vs_eps.png itself
  (:meth:`Results.save`) and reads them back (:meth:`Results.load`).
* :func:`pareto_front`, :func:`pareto_fronts`, :func:`two_standard_errors`,
  :func:`within_noise`: robustness against cost, and whether a gap is noise;
  :func:`plot_robustness_per_cost` draws it, the front as a step line;
  :func:`front_statements` and :func:`robustness_per_cost_table` say it in
  words and as a Markdown table.
* :func:`training_cost`, :func:`attack_cost`: seconds per epoch of training
  models and their ratios to a reference, taken within round-robin rounds,
  and attack throughput; :func:`timed` and :func:`summarize`, the timer and
  the median / min-max summary behind them.
* :func:`environment`: the versions, processor, devices and date a report
  records with its results (the ``"environment"`` section).
* :func:`compare_worst_case`: a later evaluation (AutoAttack, say) beside an
  earlier one of the same model, per example: the examples only the earlier
  attacks broke.

The modules inside: ``_batches`` (attack lookup, crafting, batching),
``_robust_accuracy``, ``_report`` (runs the attacks), ``_results`` (the
results type), ``_layout`` (its results.json layout and sections),
``_merge`` (joining shards), ``_tables`` (accuracy tables from per-example
correctness), ``_files`` (its files), ``_masking``
(the masking checks as functions of a :class:`Results`), ``_frontier`` (the
front and the noise test), ``_front_plot`` (their chart), ``_front_table``
(their table and sentences), ``_cost`` (training and attack cost),
``_compare`` (two evaluations of one model, per example), ``_environment``
(where a measurement ran).
"""

from keras_gradreg import attacks as _attacks
from keras_gradreg.evaluation._compare import compare_worst_case
from keras_gradreg.evaluation._cost import attack_cost
from keras_gradreg.evaluation._cost import summarize
from keras_gradreg.evaluation._cost import timed
from keras_gradreg.evaluation._cost import training_cost
from keras_gradreg.evaluation._environment import environment
from keras_gradreg.evaluation._front_plot import plot_robustness_per_cost
from keras_gradreg.evaluation._front_table import front_statements
from keras_gradreg.evaluation._front_table import robustness_per_cost_table
from keras_gradreg.evaluation._frontier import pareto_front
from keras_gradreg.evaluation._frontier import pareto_fronts
from keras_gradreg.evaluation._frontier import two_standard_errors
from keras_gradreg.evaluation._frontier import within_noise
from keras_gradreg.evaluation._markdown import markdown_table
from keras_gradreg.evaluation._masking import BLACK_BOX_MARGIN
from keras_gradreg.evaluation._report import RobustnessReport
from keras_gradreg.evaluation._results import Results
from keras_gradreg.evaluation._robust_accuracy import robust_accuracy

ATTACKS = _attacks.ATTACKS  # the registry itself, not a copy

__all__ = ["robust_accuracy", "RobustnessReport", "Results", "ATTACKS",
           "BLACK_BOX_MARGIN", "pareto_front", "pareto_fronts",
           "two_standard_errors", "within_noise", "plot_robustness_per_cost",
           "markdown_table", "training_cost", "attack_cost", "timed", "summarize",
           "compare_worst_case", "front_statements", "robustness_per_cost_table",
           "environment"]
