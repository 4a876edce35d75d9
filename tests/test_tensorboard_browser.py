"""What a person sees in TensorBoard, checked in a real (headless) browser.

A tiny run made by the package's callbacks (two GradRegModels with different
c, 2 epochs each) is served by ``tensorboard`` on a free localhost port and
opened in Debian's ``chromium`` driven by ``playwright``: the Time Series page
shows the ``input_gradient`` scalar cards and the ``weights/conv1/kernel``
histogram card, and the HPARAMS tab lists both runs with their c. Skips when
chromium, playwright or tensorboard is absent. Screenshots go into the
test's temporary folder, and also into ``$KGR_SCREENSHOT_DIR`` when set
(that is how ``docs/images/`` was made).
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import keras
import numpy as np
import pytest

from keras_gradreg import GradRegModel
from keras_gradreg.callbacks import GradientNormLogger
from keras_gradreg.callbacks import WeightHistogramLogger
from keras_gradreg.callbacks import log_hparams
from keras_gradreg.callbacks import log_robustness

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("KGR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-quic", "--no-first-run",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
C_VALUES = (0.01, 0.1)
TIMEOUT_MS = 30_000


def _tiny_runs(root) -> dict:
    """Two 2-epoch Logit-reg runs under ``root``: ``{run name: c}``."""
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(64, 8, 8, 1)).astype("float32")
    y = rng.integers(0, 3, 64)
    runs = {}
    for c in C_VALUES:
        keras.utils.set_random_seed(0)
        base = keras.Sequential([
            keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3, name="conv1"),
            keras.layers.Flatten(), keras.layers.Dense(3, name="fc2")])
        model = GradRegModel(base, c=c)
        model.compile("adam", keras.losses.SparseCategoricalCrossentropy(
            from_logits=True), metrics=["accuracy"])
        name = f"logit_reg_c{c:g}"
        log_dir = os.path.join(root, name)
        model.fit(x, y, epochs=2, verbose=0, validation_data=(x[:16], y[:16]),
                  callbacks=[
                      GradientNormLogger(log_dir, (x[:16], y[:16])),
                      WeightHistogramLogger(log_dir, ["conv1", "fc2"]),
                      keras.callbacks.TensorBoard(log_dir, write_graph=False)])
        metrics = log_robustness(log_dir, {"clean": 0.9, "fgsm": {
            "0.1": 0.5 + c, "0.2": 0.2 + c}})
        log_hparams(log_dir, {"regularizer": "logit_margin", "c": c},
                    metrics)
        runs[name] = c
    return runs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serves_every_run(url, runs) -> bool:
    """Whether the server has loaded every run's last summaries."""
    try:
        with urllib.request.urlopen(
                f"{url}/data/plugin/scalars/tags", timeout=2) as response:
            scalars = json.loads(response.read())
        with urllib.request.urlopen(
                f"{url}/data/plugin/histograms/tags", timeout=2) as response:
            histograms = json.loads(response.read())
    except OSError:
        return False
    return all(
        "input_gradient/l2" in scalars.get(f"{name}/train", {})
        and "final/clean_accuracy" in scalars.get(name, {})
        and "weights/fc2/kernel" in histograms.get(f"{name}/train", {})
        for name in runs)


@pytest.fixture
def tensorboard_url(tmp_path):
    pytest.importorskip("tensorboard")
    root = tmp_path / "logs"
    root.mkdir()
    port = _free_port()
    log = open(tmp_path / "tensorboard.log", "w")
    # Started first: it imports for seconds while the runs train, and
    # reloads the folder every second. The default loader (the Rust data
    # server when installed) reads every event file of a run folder; the
    # Python one (--load_fast=false) stops reading a file once a newer one
    # appears, and would miss what the three writers of train/ add later.
    process = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(root),
         "--host", "127.0.0.1", "--port", str(port),
         "--reload_interval", "1"],
        stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        runs = _tiny_runs(str(root))
        deadline = time.monotonic() + 60
        while not _serves_every_run(url, runs):
            if process.poll() is not None:
                pytest.fail(f"tensorboard exited: {process.returncode}")
            if time.monotonic() > deadline:
                pytest.fail("tensorboard did not serve the runs within 60 s")
            time.sleep(0.5)
        yield url, runs
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture
def page():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(TIMEOUT_MS)
            yield page
        finally:
            browser.close()


def _screenshot(page, tmp_path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path))
    target = os.environ.get("KGR_SCREENSHOT_DIR")
    if target:
        os.makedirs(target, exist_ok=True)
        shutil.copy(path, os.path.join(target, path.name))


def _filter_tags(page, regex: str) -> None:
    box = page.locator("input[placeholder='Filter tags (regex)']")
    box.fill(regex)
    box.press("Enter")


def test_time_series_and_hparams_in_a_browser(tensorboard_url, page,
                                              tmp_path):
    url, runs = tensorboard_url
    page.goto(f"{url}/#timeseries")
    _filter_tags(page, "input_gradient")
    for norm in ("l1", "l2", "linf", "grad_loss"):
        page.get_by_text(f"input_gradient/{norm}", exact=True).first.wait_for()
    page.wait_for_timeout(1500)  # let the charts draw
    _screenshot(page, tmp_path, "tensorboard_input_gradient")

    _filter_tags(page, "weights/conv1/kernel$")
    page.get_by_text("weights/conv1/kernel", exact=True).first.wait_for()
    page.wait_for_timeout(1500)
    _screenshot(page, tmp_path, "tensorboard_conv1_histogram")

    page.goto(f"{url}/#hparams")
    for name, c in runs.items():
        page.get_by_text(name, exact=True).first.wait_for()
        # The table prints 5 significant digits: 0.1 as 0.10000.
        shown = re.compile(r"^\s*" + re.escape(f"{c:.5g}") + r"0*\s*$")
        page.get_by_text(shown).filter(visible=True).first.wait_for()
    page.get_by_text("clean_accuracy", exact=True).first.wait_for()
    _screenshot(page, tmp_path, "tensorboard_hparams")
