"""The one set of argument validators: numbers, labels and inputs.

Models, attacks, evaluation and the command line check what they are given
with these functions, so the same input gets the same answer everywhere:

* :func:`number` and :func:`integer`: Python or NumPy scalars (never bools),
  finite, within bounds, optionally None; :func:`number_in_graph` checks a
  scalar tensor (a variable) when the graph runs.
* :func:`clip_range`, :func:`seed`: the usual attack settings.
* :func:`choice`: one of a few names (a loss, a method, a TensorBoard run).
* :func:`labels`: sparse integer-valued class indices in ``[0, classes)``,
  or one-hot rows as wide as the number of classes.
* :func:`inputs`: a floating-point batch, finite, inside
  ``[clip_min, clip_max]``.
* :func:`fit_arrays`: the arrays of a ``fit``/``evaluate``/``predict`` call
  (examples, the base's input shape, labels, sample weights).

Wrong types raise ``TypeError`` (for numbers and names an
:class:`ArgumentTypeError`, which is also a ``ValueError``), wrong values
``ValueError``; every message names the argument, the value and what is
allowed.

Example:
    >>> import numpy as np
    >>> number("eps", np.float32(0.25), minimum=0.0)
    0.25
    >>> labels([[0, 1, 0], [1, 0, 0]], num_classes=3)
    array([1, 0], dtype=int32)
"""

from keras_gradreg._checks._arrays import inputs
from keras_gradreg._checks._arrays import labels
from keras_gradreg._checks._fit_data import arrays as fit_arrays
from keras_gradreg._checks._numbers import ArgumentTypeError
from keras_gradreg._checks._numbers import choice
from keras_gradreg._checks._numbers import clip_range
from keras_gradreg._checks._numbers import integer
from keras_gradreg._checks._numbers import is_number
from keras_gradreg._checks._numbers import number
from keras_gradreg._checks._numbers import number_in_graph
from keras_gradreg._checks._numbers import seed

__all__ = [
    "ArgumentTypeError", "is_number", "number", "integer", "number_in_graph",
    "clip_range", "seed", "choice", "labels", "inputs", "fit_arrays",
]
