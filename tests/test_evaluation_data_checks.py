"""Silent-wrong inputs to evaluation: a model that returns probabilities is
warned about, eps values are checked, and labels and inputs are checked,
every batch of them, before any attack runs."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import attacks
from keras_gradreg.evaluation import RobustnessReport
from keras_gradreg.evaluation import robust_accuracy

from _evaluation import _data  # tests/ is on sys.path
from _evaluation import _mlp


class ProbabilitiesModel(keras.Model):
    """A subclassed model that ends in keras.ops.softmax: not detectable
    from its layers, only from its outputs."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(3)

    def call(self, x):
        return keras.ops.softmax(self.dense(x))


def test_a_model_returning_probabilities_is_warned_about():
    model = ProbabilitiesModel()
    x, y = _data(8)
    with pytest.warns(UserWarning, match="look like probabilities"):
        robust_accuracy(model, (x, y), None, verbose=0)
    with pytest.warns(UserWarning, match="look like probabilities"):
        attacks.cw_linf(model, x, y, 0.1, steps=2)
    with pytest.warns(UserWarning, match="look like probabilities"):
        RobustnessReport({"m": model}, ["fgsm"], 0.1, verbose=0).run((x, y))


def test_a_logits_model_is_not_warned_about(recwarn):
    model = _mlp()
    x, y = _data(8)
    robust_accuracy(model, (x, y), "fgsm", 0.1, verbose=0)
    assert not [w for w in recwarn if "probabilities" in str(w.message)]


def test_report_takes_a_bare_eps_and_rejects_a_repeated_one():
    model = _mlp()
    assert RobustnessReport({"m": model}, ["fgsm"], 0.2,
                            verbose=0).eps_values == [0.2]
    assert RobustnessReport({"m": model}, ["fgsm"], np.float32(0.25),
                            verbose=0).eps_values == [0.25]
    with pytest.raises(ValueError, match="repeats a radius"):
        RobustnessReport({"m": model}, ["fgsm"], [0.1, 0.2, 0.1], verbose=0)


# Labels and inputs are checked before any attack runs ----------------------


def _flawed(case):
    x, y = _data(12)
    x, y = x.copy(), y.astype("float64")
    if case == "range":
        y[5] = 3
    elif case == "width":
        y = np.eye(4)[y.astype(int)]
    elif case == "integer":
        y[7] = 0.6
    elif case == "nan":
        x[9, 1] = np.nan
    elif case == "inf":
        x[4, 0] = -np.inf
    return x, y


_FLAWS = {
    "range": r"in \[0, 3\) for a model with 3 classes; y\[5\] is 3",
    "width": "4 columns but the model has 3",
    "integer": r"integer class indices; y\[7\] is 0.6",
    "nan": "NaN or infinite values .* index 9",
    "inf": "NaN or infinite values .* index 4",
}


def _spy_attack(model, x, y, eps, **kwargs):
    _spy_attack.calls += 1
    return x


@pytest.mark.parametrize("as_dataset", [False, True])
@pytest.mark.parametrize("case", sorted(_FLAWS))
def test_evaluation_checks_data_before_attacking(case, as_dataset):
    model = _mlp()
    x, y = _flawed(case)
    # A dataset's flawed element is in its first batch of 16.
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16) if as_dataset \
        else (x, y)
    _spy_attack.calls = 0
    with pytest.raises(ValueError, match=_FLAWS[case]):
        robust_accuracy(model, data, _spy_attack, 0.1, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match=_FLAWS[case]):
        RobustnessReport({"m": model}, {"spy": (_spy_attack, {})}, [0.1],
                         batch_size=4, verbose=0).run(data)
    assert _spy_attack.calls == 0


def test_evaluation_checks_every_array_batch_before_the_first_attack():
    model = _mlp()
    x, y = _data(12)
    y = y.astype("float64")
    y[-1] = 2.5  # in the last batch of 4
    _spy_attack.calls = 0
    with pytest.raises(ValueError, match=r"y\[11\] is 2.5"):
        robust_accuracy(model, (x, y), _spy_attack, 0.1, batch_size=4, verbose=0)
    assert _spy_attack.calls == 0
