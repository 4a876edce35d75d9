"""Reliability of GradRegModel training: resume, determinism, multi-worker."""

import json
import os
import pathlib
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_gradreg import GradRegModel


def _base():
    return keras.Sequential(
        [keras.Input((3,)), keras.layers.Dense(8, activation="tanh"),
         keras.layers.Dense(4)]
    )


def _data(n=64):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(n, 3)).astype("float32"),
            rng.integers(0, 4, size=n).astype("int32"))


def _compiled(c=0.5):
    model = GradRegModel(_base(), c=c)
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


@pytest.fixture
def deterministic():
    from tensorflow.python.framework import config  # no public "disable"

    tf.config.experimental.enable_op_determinism()
    yield
    config.disable_op_determinism()


class _Interrupt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise RuntimeError("simulated interruption")


def _weights(model):
    return [w.numpy() for w in model.weights]


def test_interrupted_fit_resumes_to_same_weights(tmp_path, deterministic):
    x, y = _data()
    fit_args = dict(batch_size=16, epochs=4, shuffle=False, verbose=0)
    keras.utils.set_random_seed(1)
    reference = _compiled()
    reference.fit(x, y, **fit_args)

    keras.utils.set_random_seed(1)
    model = _compiled()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(RuntimeError, match="simulated"):
        model.fit(x, y, callbacks=[backup, _Interrupt(1)], **fit_args)
    keras.utils.set_random_seed(123)  # the new process would not share RNG state
    resumed = _compiled()
    # No Dropout in _base(): Keras' BackupAndRestore does not checkpoint
    # seed-generator state, so random layers draw new masks after a resume.
    history = resumed.fit(x, y, callbacks=[backup], **fit_args)
    assert len(history.history["loss"]) == 2
    for a, b in zip(_weights(reference), _weights(resumed)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def _run_resume_worker(phase, folder):
    script = pathlib.Path(__file__).with_name("_resume_worker.py")
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    process = subprocess.run(
        [sys.executable, str(script), phase, str(folder)], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300,
    )
    assert process.returncode == 0, process.stdout[-3000:]


def test_randomized_training_resumes_exactly_in_a_fresh_process(tmp_path):
    # The random starts of N-FGSM and PGD and the penalized subset of
    # penalty_fraction come from seed generators whose state is saved with
    # the weights, so the resumed process draws what the uninterrupted run drew.
    _run_resume_worker("interrupt", tmp_path)
    _run_resume_worker("resume", tmp_path)
    for kind in ("n_fgsm", "pgd", "penalty_fraction"):
        reference = np.load(tmp_path / f"{kind}_reference.npz")
        resumed = np.load(tmp_path / f"{kind}_resumed.npz")
        for key in reference.files:
            np.testing.assert_allclose(
                resumed[key], reference[key], rtol=1e-6, atol=1e-7,
                err_msg=kind)


def test_weights_saved_without_random_state_still_load():
    from keras_gradreg import AdversarialTrainingModel

    model = AdversarialTrainingModel.n_fgsm(_base(), eps=0.1, c=0.5,
                                            penalty_fraction=0.5)
    state = model.seed_generator.state.numpy().copy()
    model.load_own_variables({"0": np.float32(0.25)})  # c only
    assert model.c == 0.25
    np.testing.assert_array_equal(model.seed_generator.state.numpy(), state)
    with pytest.raises(ValueError):
        model.load_own_variables({str(i): np.zeros(2) for i in range(4)})


def test_same_seed_same_weights_bit_for_bit(deterministic):
    x, y = _data()
    runs = []
    for _ in range(2):
        keras.utils.set_random_seed(42)
        model = _compiled()
        model.fit(x, y, batch_size=16, epochs=2, verbose=0)
        runs.append(_weights(model))
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_multi_worker_mirrored_strategy_trains(tmp_path):
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    script = pathlib.Path(__file__).with_name("_multiworker_worker.py")
    processes = []
    for index in range(2):
        env = dict(os.environ)
        env["TF_CONFIG"] = json.dumps(
            {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        )
        env["CUDA_VISIBLE_DEVICES"] = ""
        processes.append(subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / f"worker{index}.npz")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    outputs = [p.communicate(timeout=240)[0] for p in processes]
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    results = [np.load(tmp_path / f"worker{i}.npz") for i in range(2)]
    for key in results[0].files:
        np.testing.assert_allclose(results[0][key], results[1][key], rtol=1e-6)
    assert np.all(results[0]["grad_loss"] > 0)
