"""Tests of evaluation.environment and the "environment" section reports record."""

import os
import platform

import keras
import tensorflow as tf

import keras_gradreg
from keras_gradreg import evaluation
from keras_gradreg.evaluation import Results
from keras_gradreg.evaluation import _environment

from _evaluation import _data  # noqa: E402  (tests/ is on sys.path)
from _evaluation import _mlp  # noqa: E402


def _report():
    return keras_gradreg.RobustnessReport({"m": _mlp()}, ["fgsm"], [0.1], verbose=0,
                                          batch_size=10, worst_case_only=True)


def test_environment_is_this_process():
    env = evaluation.environment()
    assert env["keras_gradreg"] == keras_gradreg.__version__
    assert (env["tensorflow"], env["keras"]) == (tf.__version__, keras.__version__)
    assert env["python"] == platform.python_version()
    assert env["cores"] == os.cpu_count() and env["cpu"]
    assert env["gpus"] == len(tf.config.list_physical_devices("GPU"))
    assert len(env["date"]) == 10 and env["date"][4] == "-"


def test_a_report_records_it_and_its_files_keep_it(tmp_path):
    results = _report().run(_data())
    assert results.section("environment") == [evaluation.environment()]
    results.save(str(tmp_path))
    loaded = Results.load(str(tmp_path))
    assert loaded.section("environment") == results.section("environment")
    markdown = (tmp_path / "results.md").read_text()
    assert "## Measured with" in markdown
    assert f"- {_environment.describe(evaluation.environment())}" in markdown


def test_merge_keeps_each_distinct_environment_of_its_parts():
    report, data = _report(), _data()
    parts = [report.run(data, shard=(i, 3)) for i in range(3)]
    assert Results.merge(parts).section("environment") == [evaluation.environment()]
    other = dict(evaluation.environment(), cpu="another host's CPU", gpus=2)
    _environment.record(parts[1], [other])
    assert Results.merge(parts).section("environment") == [
        evaluation.environment(), other]
    assert "another host's CPU, " in _environment.describe(other)
    assert "2 GPUs" in _environment.describe(other)


def test_results_made_without_a_report_hold_none():
    part = _report().run(_data())
    bare = Results.from_correct(part.arrays(), part.model_names, part.attack_names,
                                part.eps_values, part.transfer_eps, part.settings)
    assert _environment.of(bare) == []
    assert "environment" not in Results.merge([bare]).section_names
