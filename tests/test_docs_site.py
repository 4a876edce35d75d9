"""The user docs as a reader sees them, checked in a real (headless) browser.

``mkdocs build --strict`` builds the site (mkdocs.yml) into the test's
temporary folder; a static server on a free 127.0.0.1 port serves it, and
Debian's ``chromium`` driven by ``playwright`` opens the API page of
``GradRegModel``: the page shows its signature (``c``, ``regularizer``,
``norm`` with their defaults) and its docstring's example as code. Skips when
chromium, playwright or mkdocs is absent. A full-page screenshot goes into
the temporary folder, and also into ``$KGR_SCREENSHOT_DIR`` when set.
"""

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading

import pytest

pytestmark = pytest.mark.browser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHROMIUM = os.environ.get("KGR_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking",
                 "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
TIMEOUT_MS = 30_000
SCREENSHOT = "docs_gradregmodel.png"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The built site's folder."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    pytest.importorskip("material")
    out = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1",
           "PYTHONPATH": os.pathsep.join(
               [ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p])}
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet",
         "--config-file", os.path.join(ROOT, "mkdocs.yml"),
         "--site-dir", str(out)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out


@pytest.fixture(scope="module")
def site_url(site):
    """The site served on 127.0.0.1 (a free port) while the tests run."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler,
                                directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def page():
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"no chromium at {CHROMIUM}")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=CHROMIUM_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


def test_site_has_every_page(site):
    for page_path in ["index.html", "training/index.html",
                      "evaluating/index.html", "tensorboard/index.html",
                      "cli/index.html", "RESULTS/index.html",
                      "reference/GradRegModel/index.html",
                      "reference/attacks/index.html"]:
        assert (site / page_path).exists(), page_path


def test_gradregmodel_page_shows_signature_and_example(page, site_url,
                                                       tmp_path):
    page.goto(f"{site_url}/reference/GradRegModel/", timeout=TIMEOUT_MS)
    page.wait_for_selector(".doc-signature", timeout=TIMEOUT_MS)
    signature = page.locator(".doc-signature").first.inner_text()
    assert signature.startswith("GradRegModel(")
    for default in [r"c: float = 0\.01",
                    r'regularizer: Union\[str, Callable\] = "logit_margin"',
                    r'norm: Union\[str, Callable\] = "squared_l2"',
                    r"penalty_fraction: float = 1\.0"]:
        assert re.search(default, signature), (default, signature)

    # The docstring's example renders as code, one line per line.
    code = "\n".join(page.locator(".doc-contents pre code").all_inner_texts())
    assert ">>> model = GradRegModel(base, c=0.01)" in code
    assert ">>> sorted(history.history)" in code
    assert "['accuracy', 'grad_loss', 'loss']" in code
    text = page.locator("article").inner_text()
    assert "Wraps a classifier and trains it with an input-gradient penalty" in (
        text)

    shot = tmp_path / SCREENSHOT
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    folder = os.environ.get("KGR_SCREENSHOT_DIR")
    if folder:
        os.makedirs(folder, exist_ok=True)
        shutil.copy(shot, os.path.join(folder, SCREENSHOT))
