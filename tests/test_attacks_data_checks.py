"""Every attack checks labels and inputs before it runs (silent-wrong data
is refused), and accepts integral float labels and one-hot rows."""

import numpy as np
import pytest

from keras_gradreg import attacks
from keras_gradreg.attacks import _core

from _attacks import _data  # tests/ is on sys.path
from _attacks import _mlp


def _bad_data(case, x, y):
    """Data with one flaw, for a 4-class model."""
    x, y = x.copy(), y.astype("float64")
    if case == "label out of range":
        y[2] = 4
    elif case == "negative label":
        y[1] = -1
    elif case == "label not an integer":
        y[3] = 1.4
    elif case == "one-hot too wide":
        y = np.eye(5)[y.astype(int)]
    elif case == "nan input":
        x[1, 2] = np.nan
    elif case == "inf input":
        x[0, 0] = np.inf
    return x, y


_BAD_DATA = {
    "label out of range": r"in \[0, 4\)",
    "negative label": ">= 0",
    "label not an integer": "integer class indices",
    "one-hot too wide": "5 columns but the model has 4",
    "nan input": "NaN or infinite",
    "inf input": "NaN or infinite",
}


@pytest.fixture(scope="module")
def four_class_model():
    return _mlp(5, 4)


@pytest.mark.parametrize("case", sorted(_BAD_DATA))
@pytest.mark.parametrize("name", sorted(attacks.ATTACKS))
def test_every_attack_checks_labels_and_inputs_before_running(
    four_class_model, name, case
):
    x, y = _bad_data(case, *_data(6, 5, 4))
    with pytest.raises(ValueError, match=_BAD_DATA[case]):
        attacks.ATTACKS[name](four_class_model, x, y, 0.1)
    # Nothing was compiled but the logits probe: no attack ran.
    assert all(key[0] == "predict"
               for key in _core.cached_functions(four_class_model))


def test_float_labels_that_are_integers_and_one_hot_rows_work():
    model = _mlp(5, 3)
    x, y = _data(6, 5, 3)
    reference = attacks.fgsm(model, x, y, 0.1).numpy()
    for labels in (y.astype("float32"), np.eye(3)[y], y[:, None]):
        np.testing.assert_array_equal(
            attacks.fgsm(model, x, labels, 0.1).numpy(), reference
        )
