"""Tests for keras_gradreg.callbacks' HParamsLogger, log_hparams and
log_robustness, read back with TensorBoard's reader."""

import sys

import numpy as np
import pytest

from keras_gradreg.callbacks import HParamsLogger
from keras_gradreg.callbacks import log_hparams
from keras_gradreg.callbacks import log_robustness

from _callbacks import _accumulate  # tests/ is on sys.path
from _callbacks import _base
from _callbacks import _compile
from _callbacks import _data
from _callbacks import _scalar


def _hparams_content(run_dir):
    metadata = pytest.importorskip("tensorboard.plugins.hparams.metadata")
    content = _accumulate(run_dir).PluginTagToContent("hparams")
    start = metadata.parse_session_start_info_plugin_data(
        content[metadata.SESSION_START_INFO_TAG])
    experiment = metadata.parse_experiment_plugin_data(
        content[metadata.EXPERIMENT_TAG])
    return start, experiment


def test_hparams_logger_records_hparams_and_last_epoch(tmp_path):
    pytest.importorskip("tensorboard")
    model = _compile(_base())
    x, y = _data(16)
    logger = HParamsLogger(str(tmp_path), {"c": 0.5, "norm": "l1",
                                           "epochs": 2, "smooth": True},
                           metrics=["accuracy", "loss", "absent"])
    history = model.fit(x, y, epochs=2, verbose=0, callbacks=[logger])
    start, experiment = _hparams_content(str(tmp_path))
    assert start.hparams["c"].number_value == 0.5
    assert start.hparams["norm"].string_value == "l1"
    assert start.hparams["smooth"].bool_value is True
    assert sorted(h.name for h in experiment.hparam_infos) == [
        "c", "epochs", "norm", "smooth"]
    assert sorted(m.name.tag for m in experiment.metric_infos) == [
        "final/accuracy", "final/loss", "final/train_seconds"]
    for key in ("accuracy", "loss"):
        steps, values = _scalar(str(tmp_path), f"final/{key}")
        assert steps == [0]
        assert values[0] == pytest.approx(history.history[key][-1], rel=1e-6)
    assert logger.final_metrics["final/train_seconds"] > 0


def test_log_robustness_puts_eps_on_the_step_axis(tmp_path):
    pytest.importorskip("tensorboard")
    entry = {"clean": 0.9, "fgsm": {"0.3": 0.1, "0.1": 0.7},
             "worst_case": {"0.1": 0.6, "0.3": 0.0},
             "large_eps": {"eps": 1.0, "fgsm": 0.0}}
    metrics = log_robustness(str(tmp_path), entry)
    assert metrics == {"final/clean_accuracy": 0.9, "final/fgsm/eps_0.3": 0.1,
                       "final/fgsm/eps_0.1": 0.7,
                       "final/worst_case/eps_0.1": 0.6,
                       "final/worst_case/eps_0.3": 0.0}
    steps, values = _scalar(str(tmp_path), "robust_accuracy_vs_eps/fgsm")
    assert steps == [100, 300]
    np.testing.assert_allclose(values, [0.7, 0.1])
    with pytest.raises(ValueError, match="eps"):
        log_robustness(str(tmp_path), {"fgsm": {"big": 0.1}})


@pytest.mark.parametrize("hparams, metrics, error", [
    ({}, None, TypeError),
    ({"c": None}, None, TypeError),
    ({"c": [1]}, None, TypeError),
    ({"c": 1.0}, {"acc": "high"}, TypeError),
    ({"c": 1.0}, {"acc": True}, TypeError),
])
def test_log_hparams_rejects_bad_values(tmp_path, hparams, metrics, error):
    with pytest.raises(error):
        log_hparams(str(tmp_path), hparams, metrics)


def test_log_hparams_says_how_to_install_tensorboard(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard.plugins.hparams", None)
    with pytest.raises(ImportError, match="pip install tensorboard"):
        log_hparams(str(tmp_path), {"c": 1.0})
