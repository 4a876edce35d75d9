"""Tests of keras_gradreg.paper: the paper's settings, shared by the CLI."""

import dataclasses

import pytest

from keras_gradreg import models
from keras_gradreg import paper
from keras_gradreg.cli import _settings as _cli_settings


@pytest.mark.parametrize("dataset", sorted(paper.SETTINGS))
def test_cli_attack_settings_are_the_papers(dataset):
    settings = paper.SETTINGS[dataset]
    cli = _cli_settings.PAPER_SETTINGS[dataset]
    assert [float(eps) for eps in cli.eps] == list(settings.eps_values)
    assert all(isinstance(eps, float) for eps in cli.eps)
    assert (cli.step_size, cli.steps, cli.clip_min, cli.clip_max) == (
        settings.step_size, settings.steps, settings.clip_min,
        settings.clip_max)


def test_cli_covers_exactly_the_papers_datasets():
    assert list(_cli_settings.PAPER_SETTINGS) == list(paper.SETTINGS)


def test_section_4_values():
    """Yu et al., Section 4: radii, BIM/C&W step and iterations, clip."""
    mnist, cifar10, speech = (paper.SETTINGS[name] for name in
                              ("mnist", "cifar10", "speech_commands"))
    assert _cli_settings.PAPER_SETTINGS["cifar10"].eps == (3.0, 6.0, 9.0)
    assert (mnist.eps_values, mnist.step_size, mnist.steps) == (
        (0.1, 0.2, 0.3), 0.05, 10)
    assert (cifar10.eps_values, cifar10.step_size, cifar10.clip) == (
        (3.0, 6.0, 9.0), 1.0, {"clip_min": 0.0, "clip_max": 255.0})
    assert (speech.eps_values, speech.steps, speech.clip) == (
        (0.25, 0.5, 0.75), 8, {"clip_min": None, "clip_max": None})
    assert mnist.build_model is models.mnist_cnn
    assert cifar10.build_model is models.cifar10_cnn
    assert speech.build_model is models.speech_cnn


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        paper.SETTINGS["mnist"].steps = 3
