"""The example scripts' flags: each script defines its own when run (one runs
as a user runs it, in a subprocess), importing one defines none, and the
Config fields are the flags.

The scripts define their flags into a ``FlagValues`` of their own, so that
they are checked without sharing absl's global FLAGS."""

import dataclasses
import os
import subprocess
import sys

import pytest
from absl import flags

from _examples import EXAMPLES  # tests/ is on sys.path
from _examples import _load_example
from _examples import experiment
from _examples import sweep_c

FLAGS = flags.FLAGS
SCRIPTS = ("mnist", "cifar10", "speech_commands")


@pytest.mark.parametrize("script", SCRIPTS + ("sweep_c",))
def test_script_defines_its_flags_when_run(script):
    """Each script defines its own flags: ``python examples/mnist.py
    --helpfull`` lists them in a process of its own, as a user runs it (one
    subprocess: each pays TensorFlow's import); the other scripts define
    theirs into a fresh ``FlagValues`` here."""
    if script == "mnist":
        env = dict(os.environ, PYTHONPATH=str(EXAMPLES.parent))
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / f"{script}.py"), "--helpfull"],
            capture_output=True, text=True, env=env, timeout=300)
        assert done.returncode == 1, done.stderr  # absl's exit after help
        assert "Traceback" not in done.stderr
        listed = done.stdout
    else:
        flag_values = flags.FlagValues()
        _load_example(script).define_flags(flag_values)
        listed = "".join(
            f"--{'[no]' if flag.boolean else ''}{name}:\n"
            for name, flag in flag_values._flags().items())
    names = ["data_dir", "out", "epochs", "batch_size", "learning_rate",
             "train_size", "seed", "eval_batch_size", "norm_logit",
             "[no]tensorboard", "[no]resume"]
    names += {"mnist": ["test_size", "c_xent", "c_logit", "extra_attacks",
                        "extra_steps", "extra_restarts", "baselines",
                        "train_eps", "pgd_steps"],
              "sweep_c": ["dataset", "c_xent_grid", "c_logit_grid",
                          "val_size", "max_clean_drop"]}.get(
                  script, ["test_size", "c_xent", "c_logit", "extra_attacks"])
    for name in names:
        assert f"--{name}:" in listed, name
    if script in ("cifar10", "speech_commands"):
        assert "--baselines:" not in listed


def test_importing_a_script_defines_no_flag():
    before = set(FLAGS)
    for script in SCRIPTS + ("sweep_c",):
        _load_example(script)
    assert set(FLAGS) == before


def test_config_fields_are_the_flags():
    flag_values = flags.FlagValues()
    _load_example("mnist").define_flags(flag_values)
    flag_values(["mnist.py", "--baselines=pgd,nfgsm", "--extra_attacks=",
                 "--notensorboard", "--c_logit=0.5"])
    config = experiment.config_from_flags("mnist", flag_values)
    assert config == experiment.Config(
        "mnist", baselines=("pgd", "nfgsm"), extra_attacks=(),
        tensorboard=False, c_logit=0.5)
    fields = {f.name for f in dataclasses.fields(experiment.Config)}
    assert set(flag_values) & fields == fields - {"dataset"}
    assert config.record()["baselines"] == "pgd,nfgsm"


def test_sweep_config_fields_are_the_flags():
    flag_values = flags.FlagValues()
    sweep_c.define_flags(flag_values)
    flag_values(["sweep_c.py", "--dataset=cifar10", "--c_xent_grid=1,3",
                 "--val_size=20", "--notensorboard"])
    assert sweep_c.config_from_flags(flag_values) == sweep_c.SweepConfig(
        "cifar10", val_size=20, c_xent_grid=["1", "3"], tensorboard=False)
