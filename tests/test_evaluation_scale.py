"""Evaluation at any scale: worst-case mode, resumable chunks, shards, merge."""

import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_gradreg.evaluation import Results
from keras_gradreg.evaluation import RobustnessReport
from keras_gradreg.evaluation import _batches

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mlp(seed=0, features=6, classes=3):
    init = keras.initializers.GlorotNormal(seed=seed)
    return keras.Sequential([
        keras.Input((features,)),
        keras.layers.Dense(10, activation="tanh", kernel_initializer=init),
        keras.layers.Dense(classes, kernel_initializer=init),
    ])


def _data(model, n=40, seed=0, features=6):
    """Inputs mostly labelled by the model itself (so that attacks have
    something to break), a few labels wrong (so that clean is not 100%)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, features)).astype("float32")
    y = np.argmax(np.asarray(model(x)), axis=1)
    y[::7] = (y[::7] + 1) % 3
    return x, y


def _same_arrays(a: Results, b: Results):
    keys = a.array_keys()
    assert keys == b.array_keys()
    for key in keys:
        np.testing.assert_array_equal(a.arrays()[key], b.arrays()[key],
                                      err_msg=str(key))


DETERMINISTIC = {"fgsm": ("fgsm", {}), "bim": ("bim", {"steps": 5})}


def test_worst_case_mode_gives_the_per_example_worst_case_of_the_full_report():
    model = _mlp()
    x, y = _data(model)
    full = RobustnessReport({"m": model}, DETERMINISTIC, [0.05, 0.2],
                            batch_size=16, verbose=0).run((x, y))
    worst = RobustnessReport({"m": model}, DETERMINISTIC, [0.05, 0.2],
                             batch_size=16, verbose=0,
                             worst_case_only=True).run((x, y))
    assert worst.worst_case_only and not full.worst_case_only
    for eps in (0.05, 0.2):
        np.testing.assert_array_equal(
            worst.correct("m", "worst_case", eps),
            full.correct("m", "worst_case", eps))
        # A column is what is left after that attack and those before it.
        np.testing.assert_array_equal(
            worst.correct("m", "fgsm", eps),
            full.correct("m") & full.correct("m", "fgsm", eps))
        assert worst.accuracy("m", "bim", eps) == worst.accuracy(
            "m", "worst_case", eps)
    assert 0 < worst.accuracy("m", "worst_case", 0.2) < worst.accuracy("m")
    assert "Worst-case mode" in worst.to_markdown()


def test_worst_case_mode_attacks_only_the_examples_still_correct(monkeypatch):
    model = _mlp()
    x, y = _data(model)
    seen = []
    craft = _batches.craft

    def counting(model, x, y, attack, eps, kwargs, breakers=False):
        seen.append((getattr(attack, "__name__", "?"), len(x)))
        return craft(model, x, y, attack, eps, kwargs, breakers)

    monkeypatch.setattr(_batches, "craft", counting)
    results = RobustnessReport({"m": model}, DETERMINISTIC, [0.2],
                               batch_size=len(x), verbose=0,
                               worst_case_only=True).run((x, y))
    clean = int(results.correct("m").sum())
    after_fgsm = int(results.correct("m", "fgsm", 0.2).sum())
    assert seen == [("fgsm", clean), ("bim", after_fgsm)]
    assert after_fgsm < clean  # the second attack got less to do


def test_worst_case_mode_runs_black_box_attacks_last_and_flags_masking():
    from test_autoattack import QuantizedLinear  # gradient-free model

    rng = np.random.default_rng(6)
    masked = QuantizedLinear(rng.normal(size=(12, 4)).astype("float32"))
    x = rng.uniform(0, 1, (48, 12)).astype("float32")
    y = np.argmax(masked(x), 1)
    report = RobustnessReport(
        {"masked": masked},
        {"square": ("square", {"queries": 200, "seed": 0}),
         "apgd": ("apgd", {"steps": 8, "seed": 0})},
        [0.2], verbose=0, worst_case_only=True)
    assert list(report.attacks) == ["apgd", "square"]
    results = report.run((x, y))
    share = results.model_entry("masked")["black_box_only"]["0.2"]
    expected = np.mean(results.correct("masked", "apgd", 0.2)
                       & ~results.correct("masked", "square", 0.2))
    assert share == pytest.approx(expected) and share > 0.01
    assert not next(c for c in results.masking_checks
                    if c["check"] == "black_box_beats_white_box")["passed"]
    assert {c["check"] for c in results.masking_checks}.isdisjoint(
        {"iterative_at_least_fgsm", "attacks_agree",
         "whitebox_at_least_transfer"})


def test_worst_case_mode_crafts_no_transfer_attacks():
    a, b = _mlp(0), _mlp(1)
    x, y = _data(a)
    results = RobustnessReport({"a": a, "b": b}, DETERMINISTIC, [0.1],
                               batch_size=16, verbose=0,
                               worst_case_only=True).run((x, y))
    assert not any(key[0] == "transfer" for key in results.array_keys())
    with pytest.raises(KeyError, match="no transfer"):
        results.transfer("a", "b", "fgsm")
    assert results.transfer("a", "a", "fgsm") == results.accuracy(
        "a", "fgsm", 0.1)
    assert "Transfer attacks" not in results.to_markdown()


def test_shards_merge_to_exactly_one_run_and_resume_from_their_chunks(tmp_path):
    model = _mlp()
    x, y = _data(model, n=50)
    specs = {"pgd": ("pgd", {"steps": 4, "seed": 3}), **DETERMINISTIC}

    def report():
        return RobustnessReport({"m": model}, specs, [0.1, 0.2],
                                batch_size=8, verbose=0, worst_case_only=True)

    whole = report().run((x, y))
    parts = [report().run((x, y), resume_dir=str(tmp_path / f"s{i}"),
                          shard=(i, 3)) for i in range(3)]
    assert [p.settings["num_examples"] for p in parts] == [18, 16, 16]
    assert parts[0].settings["examples"][:2] == [[0, 8], [24, 32]]
    merged = Results.merge(parts)
    _same_arrays(merged, whole)
    assert merged.to_dict()["models"] == whole.to_dict()["models"]
    assert merged.settings == whole.settings
    # Merging from the saved files gives the same.
    for i, part in enumerate(parts):
        part.save(str(tmp_path / f"saved{i}"))
    loaded = Results.merge([Results.load(str(tmp_path / f"saved{i}"))
                            for i in range(3)])
    _same_arrays(loaded, whole)
    # A rerun reads every chunk back and attacks nothing.
    calls = []
    original = _batches.craft
    _batches.craft = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        again = report().run((x, y), resume_dir=str(tmp_path / "s1"),
                             shard=(1, 3))
    finally:
        _batches.craft = original
    assert calls == []
    _same_arrays(again, parts[1])
    # Two of three shards: the examples they hold.
    partial = Results.merge(parts[:2])
    assert partial.settings["num_examples"] == 34
    assert partial.settings["total_examples"] == 50


def test_a_resume_dir_of_other_settings_weights_or_data_is_refused(tmp_path):
    model = _mlp()
    x, y = _data(model, n=16)
    folder = str(tmp_path / "run")
    RobustnessReport({"m": model}, DETERMINISTIC, [0.1], batch_size=8,
                     verbose=0).run((x, y), resume_dir=folder)
    with pytest.raises(ValueError, match="differs in settings"):
        RobustnessReport({"m": model}, DETERMINISTIC, [0.2], batch_size=8,
                         verbose=0).run((x, y), resume_dir=folder)
    other = _mlp(seed=5)
    with pytest.raises(ValueError, match="differs in models"):
        RobustnessReport({"m": other}, DETERMINISTIC, [0.1], batch_size=8,
                         verbose=0).run((x, y), resume_dir=folder)
    with pytest.raises(ValueError, match="other data"):
        RobustnessReport({"m": model}, DETERMINISTIC, [0.1], batch_size=8,
                         verbose=0).run((x[::-1], y[::-1]), resume_dir=folder)


def test_merge_refuses_parts_of_different_evaluations_or_overlaps(tmp_path):
    model = _mlp()
    x, y = _data(model, n=24)

    def shard(i, n=2, eps=0.1):
        return RobustnessReport({"m": model}, DETERMINISTIC, [eps],
                                batch_size=8, verbose=0).run(
                                    (x, y), shard=(i, n))

    with pytest.raises(ValueError, match="eps_values"):
        Results.merge([shard(0), shard(1, eps=0.2)])
    with pytest.raises(ValueError, match="overlap"):
        Results.merge([shard(0), shard(0)])
    with pytest.raises(ValueError, match="different sizes"):
        other = RobustnessReport({"m": model}, DETERMINISTIC, [0.1],
                                 batch_size=8, verbose=0).run(
                                     (x[:16], y[:16]), shard=(1, 2))
        Results.merge([shard(0), other])
    whole = RobustnessReport({"m": model}, DETERMINISTIC, [0.1], batch_size=8,
                             verbose=0).run((x, y))
    with pytest.raises(ValueError, match="not a shard"):
        Results.merge([whole, shard(1)])


@pytest.mark.parametrize("shard, error", [
    ((2, 2), "below the shard count"), ((0, 0), "shard count"),
    ("0/2", "pair"), ((0.5, 2), "integer")])
def test_a_bad_shard_is_refused(shard, error):
    model = _mlp()
    x, y = _data(model, n=8)
    with pytest.raises((TypeError, ValueError), match=error):
        RobustnessReport({"m": model}, DETERMINISTIC, [0.1],
                         verbose=0).run((x, y), shard=shard)


SHARD_SCRIPT = textwrap.dedent("""
    import os, sys
    import keras, numpy as np
    import keras_gradreg
    from keras_gradreg import RobustnessReport
    from keras_gradreg.evaluation import _batches

    folder, index, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    kill_after = int(os.environ.get("KILL_AFTER_CRAFTS", "0"))
    if kill_after:
        craft, calls = _batches.craft, []
        def dying(*args, **kwargs):
            calls.append(1)
            if len(calls) > kill_after:  # inside a chunk, after some attacks
                os._exit(9)
            return craft(*args, **kwargs)
        _batches.craft = dying
    model = keras.models.load_model(os.path.join(folder, "model.keras"))
    data = np.load(os.path.join(folder, "data.npz"))
    report = RobustnessReport(
        {"m": model},
        {"autoattack": ("autoattack", dict(version="fast", steps=4, seed=0)),
         "fgsm": ("fgsm", {})},
        [0.1, 0.3], batch_size=8, verbose=0, worst_case_only=True)
    results = report.run((data["x"], data["y"]),
                         resume_dir=os.path.join(folder, f"chunks{index}"),
                         shard=(index, count))
    results.save(os.path.join(folder, f"shard{index}"))
""")


def test_autoattack_shards_killed_mid_chunk_resume_and_merge_exactly(tmp_path):
    """Two shards in two processes, one killed inside a chunk and run again:
    merged, per example exactly what one uninterrupted process gives."""
    model = _mlp(features=6)
    x, y = _data(model, n=40)
    model.save(str(tmp_path / "model.keras"))
    np.savez(tmp_path / "data.npz", x=x, y=y)
    script = tmp_path / "shard.py"
    script.write_text(SHARD_SCRIPT)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get(
        "PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="3")

    def run(index, count, kill_after=0):
        return subprocess.run(
            [sys.executable, str(script), str(tmp_path), str(index),
             str(count)], env=dict(env, KILL_AFTER_CRAFTS=str(kill_after)),
            capture_output=True, text=True, timeout=600)

    killed = run(0, 2, kill_after=5)  # 4 crafts a chunk: dies in chunk 2
    assert killed.returncode == 9, killed.stderr[-2000:]
    kept = sorted(os.listdir(tmp_path / "chunks0"))
    assert kept == ["chunk-000000.npz", "run.json"]
    for index in (0, 1):
        done = run(index, 2)
        assert done.returncode == 0, done.stderr[-2000:]
    merged = Results.merge([Results.load(str(tmp_path / f"shard{i}"))
                            for i in (0, 1)])
    alone = run(0, 1)  # one process, the whole run
    assert alone.returncode == 0, alone.stderr[-2000:]
    whole = Results.load(str(tmp_path / "shard0"))
    _same_arrays(merged, whole)
    assert merged.to_dict()["models"] == whole.to_dict()["models"]
    assert 0 < whole.accuracy("m", "worst_case", 0.1) < whole.accuracy("m")


def test_two_logical_devices_give_the_numbers_of_one():
    """Shards pinned to two logical CPU devices merge to the one-device run
    (tf.config splits the host's CPU before TensorFlow starts, so the check
    runs in a fresh process)."""
    code = textwrap.dedent("""
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from keras_gradreg import RobustnessReport, Results
        devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        assert len(devices) == 2, devices
        init = keras.initializers.GlorotNormal(seed=0)
        model = keras.Sequential([keras.Input((6,)), keras.layers.Dense(
            10, activation="tanh", kernel_initializer=init),
            keras.layers.Dense(3, kernel_initializer=init)])
        rng = np.random.default_rng(0)
        x = rng.uniform(0, 1, (32, 6)).astype("float32")
        y = np.argmax(np.asarray(model(x)), 1)
        def report():
            return RobustnessReport({"m": model}, {"pgd": ("pgd", {
                "steps": 4, "seed": 1})}, [0.1, 0.3], batch_size=8,
                verbose=0, worst_case_only=True)
        with tf.device(devices[0]):
            one = report().run((x, y))
        parts = []
        for i, device in enumerate(devices):
            with tf.device(device):
                parts.append(report().run((x, y), shard=(i, 2)))
        merged = Results.merge(parts)
        for key in one.array_keys():
            assert np.array_equal(one.arrays()[key], merged.arrays()[key]), key
        print("same", one.accuracy("m", "worst_case", 0.3))
    """)
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get(
        "PYTHONPATH", ""), TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", code], env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "same" in done.stdout
