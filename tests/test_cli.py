"""Tests for the ``keras-gradreg`` command line (keras_gradreg.cli): what
``evaluate`` computes and writes, the settings each attack gets, parsing and
``--help`` without TensorFlow, and the threat models.

Most cases call ``cli.main(argv)`` in-process; two run ``python -m
keras_gradreg`` as a user would (each subprocess pays TensorFlow's import).
The checks before any work, ``finetune``, the outputs under interrupts and
kills, and shards, resume, merge and processes have test_cli_*.py of their
own.
"""

import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import Results
from keras_gradreg import attacks
from keras_gradreg import cli

from _cli import EPS  # tests/ is on sys.path
from _cli import KEYS
from _cli import REPO
from _cli import _edit
from _cli import _evaluate_argv
from _cli import _fails
from _cli import _finetune_argv
from _cli import _set_flag
from _cli import _table

# Independent references ------------------------------------------------------


def _fgsm_accuracy(model, x, y, eps):
    """FGSM by hand: one signed cross-entropy gradient step, clipped."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y, model(x))
    x_adv = tf.clip_by_value(x + eps * tf.sign(tape.gradient(loss, x)), 0, 1)
    return float(np.mean(np.argmax(model(x_adv), -1) == y))


# evaluate --------------------------------------------------------------------


def test_evaluate_writes_results_matching_a_hand_computation(
    files, tmp_path, capsys
):
    out = tmp_path / "report"
    cli.main(_evaluate_argv(files, out))
    results = _table(out)
    assert list(results) == ["clean", "fgsm", "pgd"]
    assert list(results["fgsm"]) == list(KEYS)  # eps keys as in Results
    model = keras.models.load_model(files / "model.keras")
    with np.load(files / "data.npz") as data:
        x, y = data["x"], data["y"]
    clean = float(np.mean(np.argmax(model(x), -1) == y))
    assert results["clean"] == pytest.approx(clean)
    for eps in KEYS:
        want = _fgsm_accuracy(model, x, y, float(eps))
        assert results["fgsm"][eps] == pytest.approx(want)
        assert results["pgd"][eps] <= results["clean"]
    # One results format: the report's, with the table as a section.
    loaded = Results.load(str(out))
    assert loaded.model_names == ["model"]
    for eps in KEYS:
        assert loaded.accuracy("model", "fgsm", eps) == results["fgsm"][eps]
    assert loaded.accuracy("model") == results["clean"]
    assert loaded.correct("model", "pgd", EPS[0]).shape == y.shape
    for name in ("results.md", "results.csv", "correct.npz",
                 "accuracy_vs_eps.png"):
        assert (out / name).stat().st_size > 0
    markdown = (out / "results.md").read_text()
    assert "## keras-gradreg evaluate" in markdown
    assert "## Transfer" not in markdown  # one model: nothing to transfer
    assert f"clean accuracy: {100 * clean:.2f}%" in markdown
    printed = capsys.readouterr().out
    assert f"clean accuracy: {100 * clean:.2f}%" in printed
    assert "eps=0.1" in printed and "eps=0.10" not in printed


@pytest.mark.parametrize("drop, given", [
    ((), {"step_size": 0.02, "steps": 5}),
    # Own data without a step: the attack's own rule, 10 steps.
    (("--step_size", "--steps"), {"step_size": None, "steps": 10}),
])
def test_evaluate_runs_a_registered_attack_with_the_flags_it_takes(
    files, tmp_path, monkeypatch, drop, given
):
    calls = []

    def shift(model, x, y, eps, step_size=None, steps=10, clip_min=0.0,
              clip_max=1.0):
        calls.append({"step_size": step_size, "steps": steps,
                      "clip_max": clip_max})
        return np.clip(np.asarray(x) + eps, clip_min, clip_max)

    monkeypatch.setitem(attacks.ATTACKS, "shift", shift)
    out = tmp_path / "report"
    argv = _edit(_evaluate_argv(files, out), files,
                 [item for flag in drop for item in (flag, None)])
    argv[argv.index("fgsm,pgd")] = "shift"
    cli.main(argv)
    results = _table(out)
    model = keras.models.load_model(files / "model.keras")
    with np.load(files / "data.npz") as data:
        x, y = data["x"], data["y"]
    for eps in KEYS:
        x_adv = np.clip(x + float(eps), 0, 1)
        want = float(np.mean(np.argmax(model(x_adv), -1) == y))
        assert results["shift"][eps] == pytest.approx(want)
    # It takes a step size, so it gets --step_size and --steps.
    assert calls[0] == dict(given, clip_max=1.0)


def test_evaluate_keeps_existing_results_unless_overwrite(
    files, tmp_path, capsys
):
    out = tmp_path / "report"
    out.mkdir()
    (out / "results.json").write_text("precious")
    message = _fails(_evaluate_argv(files, out), capsys)
    assert "--overwrite" in message
    assert (out / "results.json").read_text() == "precious"
    cli.main(_evaluate_argv(files, out, "--overwrite", "--num_examples", "8"))
    assert "clean" in _table(out)


def test_paper_settings_fill_in_for_the_paper_datasets():
    parse = cli.build_parser().parse_args
    args = parse(["evaluate", "m.keras", "--dataset", "cifar10", "--out", "r"])
    assert cli.attack_settings(args, iterative=True) == cli.AttackSettings(
        (3.0, 6.0, 9.0), 1.0, 10, 0.0, 255.0
    )
    args = parse(["evaluate", "m.keras", "--dataset", "speech_commands",
                  "--out", "r", "--eps", "0.5", "--steps", "3"])
    assert cli.attack_settings(args, iterative=True) == cli.AttackSettings(
        (0.5,), 0.002, 3, None, None
    )


def test_finetune_on_own_data_evaluates_at_the_training_eps():
    args = cli.build_parser().parse_args(
        ["finetune", "m.keras", "--dataset", "npz:d.npz", "--train_eps",
         "0.05", "--clip_min", "0", "--clip_max", "1", "--out", "r.keras"])
    assert cli.attack_settings(args, iterative=True) == cli.AttackSettings(
        (0.05,), None, 10, 0.0, 1.0)


def test_each_attack_gets_only_the_flags_it_takes():
    from keras_gradreg.cli import _settings as _cli_settings

    args = cli.build_parser().parse_args(
        ["evaluate", "m.keras", "--dataset", "mnist", "--out", "r",
         "--queries", "300", "--autoattack_version", "fast",
         "--apgd_steps", "20"])
    settings = cli.attack_settings(args, iterative=True)
    specs = _cli_settings.attack_specs(
        ["autoattack", "square", "pgd", "apgd"], settings, args)
    clip = {"clip_min": 0.0, "clip_max": 1.0, "seed": 0}
    assert specs["autoattack"] == ("autoattack", dict(
        clip, steps=20, queries=300, version="fast"))
    assert specs["square"] == ("square", dict(clip, queries=300))
    assert specs["apgd"] == ("apgd", dict(clip, steps=20))
    assert "queries" not in specs["pgd"][1] and "version" not in specs["pgd"][1]


def test_mnist_by_name_with_paper_defaults(mnist_dir, tmp_path, capsys):
    path = tmp_path / "mnist.keras"
    keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                      keras.layers.Dense(10)]).save(path)
    out = tmp_path / "report"
    cli.main(["evaluate", str(path), "--dataset", "mnist", "--data_dir",
              str(mnist_dir), "--num_examples", "16", "--attacks", "fgsm",
              "--out", str(out)])
    assert list(_table(out)["fgsm"]) == ["0.1", "0.2", "0.3"]


# As a user runs it -----------------------------------------------------------


def _run(*argv):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "keras_gradreg", *map(str, argv)],
        capture_output=True, text=True, cwd=REPO, env=env, timeout=120,
    )


def test_python_m_evaluate(files, tmp_path):
    out = tmp_path / "report"
    argv = _evaluate_argv(files, out)
    argv[argv.index("fgsm,pgd")] = "fgsm"
    done = _run(*argv)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "clean accuracy" in done.stdout
    assert set(_table(out)) == {"clean", "fgsm"}


# Parsing and --help without TensorFlow ----------------------------------------


def _modules_after(*argv):
    """Runs ``python -m keras_gradreg ARGV`` in a fresh interpreter; returns
    its exit status, output and whether TensorFlow got imported."""
    code = (
        "import runpy, sys\n"
        f"sys.argv = ['keras-gradreg', *{list(argv)!r}]\n"
        "try:\n"
        "    runpy.run_module('keras_gradreg', run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    status = exit.code\n"
        "print('TENSORFLOW', 'tensorflow' in sys.modules, 'STATUS', status)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    *lines, last = done.stdout.strip().splitlines()
    return last, "\n".join(lines), done.stderr


@pytest.mark.parametrize("argv", [
    ["--help"], ["evaluate", "--help"], ["finetune", "--help"],
    ["evaluate", "m.keras", "--dataset", "mnist"],  # an error: no --out
])
def test_parsing_and_help_do_not_import_tensorflow(argv):
    last, printed, errors = _modules_after(*argv)
    status = 2 if "--help" not in argv else 0
    assert last == f"TENSORFLOW False STATUS {status}", errors
    if status:
        assert errors.strip() == ("keras-gradreg: error: the following "
                                  "arguments are required: --out (see "
                                  "keras-gradreg evaluate --help).")
    else:
        assert "usage: keras-gradreg" in printed


def test_help_shows_the_defaults():
    parser = cli.build_parser()
    commands = parser._subparsers._group_actions[0].choices
    evaluate = " ".join(commands["evaluate"].format_help().split())
    assert ("(default: fgsm,bim,cw,pgd, less those that do not support "
            "--norm)") in evaluate
    assert "(default: linf)" in evaluate and "l2 and l1 need --eps" in evaluate
    assert "1.33x the throughput" in evaluate
    assert "Use the first N examples only (default: all)." in evaluate
    finetune = " ".join(commands["finetune"].format_help().split())
    assert "Epochs of fine-tuning (default: 1)." in finetune
    assert "(default: n_fgsm)" in finetune
    assert "Examples to measure accuracy on (default: 1000)." in finetune
    assert "under fgsm and pgd before and after" in finetune
    top = " ".join(parser.format_help().split())
    assert "with GradRegModel" not in top
    assert "N-FGSM adversarial training" in top


def test_the_names_the_help_lists_are_the_registries():
    from keras_gradreg import adversarial_training
    from keras_gradreg import regularizers
    from keras_gradreg.attacks.autoattack import VERSIONS
    from keras_gradreg.cli import _finetune as _cli_finetune
    from keras_gradreg.cli import _parser as _cli_parser

    assert _cli_parser.ATTACK_NAMES == tuple(attacks.ATTACKS)
    assert _cli_parser.EVALUATE_ATTACKS == attacks.DEFAULT_ATTACKS
    assert _cli_parser.FINETUNE_ATTACKS == _cli_finetune.FINETUNE_ATTACKS
    assert _cli_parser.DATASETS == tuple(cli.PAPER_SETTINGS)
    assert _cli_parser.RECIPES == tuple(adversarial_training.RECIPES) + (
        _cli_parser.PENALTY_ONLY,)
    assert _cli_parser.REGULARIZERS == tuple(sorted(regularizers.REGULARIZERS))
    assert _cli_parser.PENALTY_NORMS == tuple(sorted(regularizers.NORMS))
    assert _cli_parser.AUTOATTACK_VERSIONS == tuple(sorted(VERSIONS))
    assert _cli_parser.THREAT_NORMS == tuple(attacks.NORMS)


def test_masking_warnings_are_printed_one_line_each(files, tmp_path, capsys,
                                                    monkeypatch):
    monkeypatch.setattr(Results, "warnings", property(
        lambda self: ["PGD beats FGSM\nby little", "second check"]))
    cli.main(_evaluate_argv(files, tmp_path / "report", "--num_examples", "8"))
    printed = capsys.readouterr().out.splitlines()
    assert "WARNING: PGD beats FGSM by little" in printed
    assert "WARNING: second check" in printed
    cli.main(_finetune_argv(files, files / "model.keras",
                            tmp_path / "robust.keras", "--num_examples", "8",
                            "--eval_examples", "8", "--no_tensorboard"))
    printed = capsys.readouterr().out.splitlines()
    assert "WARNING (after fine-tuning): second check" in printed


# Threat models ---------------------------------------------------------------


def test_evaluate_in_l2_runs_the_attacks_that_support_it(files, tmp_path,
                                                          capsys):
    out = tmp_path / "report"
    argv = _evaluate_argv(files, out, "--norm", "l2", "--num_examples", "8")
    argv[argv.index("--eps") + 1] = "0.5,1.0"
    argv[argv.index("--step_size") + 1] = "0.2"
    del argv[argv.index("--attacks"):argv.index("--attacks") + 2]
    cli.main(argv)
    results = Results.load(str(out))
    assert results.norm == "l2"
    # The default attacks less C&W, which is L-inf only.
    assert results.attack_names == ["fgsm", "bim", "pgd"]
    assert list(_table(out)["pgd"]) == ["0.5", "1"]
    assert 0 <= results.accuracy("model", "pgd", 1.0) <= results.accuracy(
        "model")


@pytest.mark.parametrize("extra, expected", [
    (["--norm", "l2", "--attacks", "fgsm,cw"],
     "attack 'cw' supports --norm linf, not l2"),
    (["--norm", "l1", "--attacks", "square"],
     "attack 'square' supports --norm linf, l2, not l1"),
    (["--norm", "l2", "--eps", None], "--norm l2 needs --eps"),
    (["--norm", "l3"], "invalid choice: 'l3'"),
])
def test_a_norm_the_attacks_do_not_support_is_refused_before_any_model_call(
    extra, expected, files, tmp_path, capsys, model_calls
):
    argv = _evaluate_argv(files, tmp_path / "report")
    for flag, value in zip(extra[::2], extra[1::2]):
        if value is None:
            del argv[argv.index(flag):argv.index(flag) + 2]
        else:
            argv = _set_flag(argv, flag, value)
    assert expected in _fails(argv, capsys)
    assert model_calls == []
    assert list(tmp_path.iterdir()) == []
