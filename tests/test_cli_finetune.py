"""Tests for ``keras-gradreg finetune``: the model each recipe saves,
fine-tuning a fine-tuned model again, the outputs it refuses, and its
TensorBoard logs with hparams."""

import keras
import numpy as np
import pytest

from keras_gradreg import AdversarialTrainingModel
from keras_gradreg import GradRegModel
from keras_gradreg import cli

from _cli import ATTACK_FLAGS  # tests/ is on sys.path
from _cli import EPS
from _cli import _fails
from _cli import _finetune_argv


def test_finetune_saves_a_loadable_grad_reg_model(files, tmp_path, capsys):
    out = tmp_path / "nested" / "robust.keras"
    cli.main(_finetune_argv(files, files / "model.keras", out))
    printed = capsys.readouterr().out
    assert "before" in printed and "after" in printed
    assert "pgd eps=0.1 " in printed
    robust = keras.models.load_model(out)
    assert isinstance(robust, GradRegModel)
    assert robust.c == pytest.approx(0.5)
    original = keras.models.load_model(files / "model.keras")
    assert not np.allclose(robust.base.get_layer("head").kernel,
                           original.get_layer("head").kernel)

    # Fine-tuning the result again continues from its base: no double wrap.
    again = tmp_path / "again.keras"
    cli.main(_finetune_argv(files, out, again, "--norm", "l1"))
    twice = keras.models.load_model(again)
    assert not isinstance(twice.base, GradRegModel)
    assert twice.c == pytest.approx(0.5)
    assert twice.norm.__name__ == "l1"


@pytest.mark.parametrize("extra, kind, expected", [
    # The default recipe: N-FGSM at the smallest --eps, no penalty.
    ((), AdversarialTrainingModel,
     dict(eps=0.05, step_size=0.05, steps=1, start_radius=0.1, project=False,
          c=0.0)),
    (("--train_eps", "0.08", "--c", "0.03", "--norm", "l1"),
     AdversarialTrainingModel,
     dict(eps=0.08, start_radius=0.16, project=False, c=0.03, norm="l1")),
    (("--recipe", "fgsm_rs"), AdversarialTrainingModel,
     dict(eps=0.05, step_size=0.0625, start_radius=0.05, project=True)),
    (("--recipe", "pgd", "--train_steps", "4"), AdversarialTrainingModel,
     dict(eps=0.05, steps=4, step_size=2.5 * 0.05 / 4, project=True)),
    # The paper's penalty alone: c defaults to 0.01.
    (("--recipe", "gradreg"), GradRegModel, dict(c=0.01, norm="squared_l2")),
])
def test_finetune_recipes(extra, kind, expected, files, tmp_path, capsys):
    out = tmp_path / "robust.keras"
    argv = ["finetune", str(files / "model.keras"), "--dataset",
            f"npz:{files / 'data.npz'}", "--epochs", "1", "--out", str(out),
            "--no_tensorboard", *ATTACK_FLAGS, *extra]
    cli.main(argv)
    robust = keras.models.load_model(out)
    assert type(robust) is kind
    for name, value in expected.items():
        found = getattr(robust, name)
        found = getattr(found, "__name__", found)
        assert found == (pytest.approx(value) if isinstance(value, float)
                         else value), name
    if kind is AdversarialTrainingModel:  # the clip range of the attacks
        assert (robust.clip_min, robust.clip_max) == (0.0, 1.0)
    title = {"gradreg": "the paper's penalty"}.get(
        dict(zip(extra[::2], extra[1::2])).get("--recipe"), "")
    printed = capsys.readouterr().out
    assert title in printed
    assert f"Saved the fine-tuned {kind.__name__} to {out}." in printed


def test_finetune_refuses_to_overwrite_and_bad_out(files, tmp_path, capsys):
    out = tmp_path / "robust.keras"
    out.write_text("precious")
    model = files / "model.keras"
    assert "--overwrite" in _fails(_finetune_argv(files, model, out), capsys)
    assert out.read_text() == "precious"
    bad = tmp_path / "robust.h5"
    assert ".keras" in _fails(_finetune_argv(files, model, bad), capsys)
    assert "--c" in _fails(
        _finetune_argv(files, model, tmp_path / "x.keras", "--c", "-1"), capsys
    )


def test_finetune_logs_to_tensorboard_with_hparams(files, tmp_path, capsys):
    event_accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator")
    from tensorboard.plugins.hparams import metadata as hparams_metadata
    out = tmp_path / "robust.keras"
    cli.main(_finetune_argv(files, files / "model.keras", out,
                            "--logdir", str(tmp_path / "tb")))
    printed = capsys.readouterr().out
    assert f"tensorboard --logdir {tmp_path / 'tb'}" in printed
    run = tmp_path / "tb" / "robust"

    def tags(folder):
        return event_accumulator.EventAccumulator(str(folder)).Reload()

    train = tags(run / "train")
    assert "input_gradient/l2" in train.Tags()["tensors"]
    validation = tags(run / "validation").Tags()["tensors"]
    assert {f"robust_accuracy/fgsm_eps{float(e):g}" for e in EPS} <= set(
        validation)
    root = tags(run)
    start = hparams_metadata.parse_session_start_info_plugin_data(
        root.PluginTagToContent("hparams")[
            hparams_metadata.SESSION_START_INFO_TAG])
    assert start.hparams["c"].number_value == 0.5
    assert start.hparams["norm"].string_value == "squared_l2"
    assert "robust_accuracy_vs_eps/pgd" in root.Tags()["tensors"]
    # The run folder is an output: kept unless --overwrite.
    assert "--overwrite" in _fails(_finetune_argv(
        files, files / "model.keras", tmp_path / "other" / "robust.keras",
        "--logdir", str(tmp_path / "tb")), capsys)


def test_finetune_no_tensorboard(files, tmp_path):
    out = tmp_path / "robust.keras"
    cli.main(_finetune_argv(files, files / "model.keras", out,
                            "--no_tensorboard"))
    assert out.exists() and not (tmp_path / "logs").exists()
