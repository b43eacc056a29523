"""The mask explorer in a real browser: JupyterLab on 127.0.0.1, driven by Debian's Chromium
through Selenium (marker ``browser``).

The test starts JupyterLab with a random token on a free port, on a copy of notebook 08, runs
all cells from the Run menu, checks that the explorer renders as widget controls (not a text
repr, not "Loading widget..."), moves the frame slider with the keyboard and changes the map
drop-down, and checks that the image and the summary change each time. Screenshots go to the
test's ``tmp_path`` (``screenshots/``, a ``failure.png`` and the page source when it fails),
printed at the end. The server and its kernels are stopped by the fixture.

Chromium and chromedriver are the system's (``/usr/bin``; ``make browser-deps`` installs them
with apt-get on Debian as root); Selenium is given both paths, so Selenium Manager never runs
and nothing is downloaded. Without them the test is skipped, with the reason.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from mmslim.tutorial.runner import repo_root

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
NOTEBOOK = "08_mask_explorer.ipynb"
WAIT = 60  # s: the longest any one step may take (the notebook's run is the slowest)


def _missing() -> str | None:
    """Why the test cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.is_file():
            return (
                f"{path} not found: install Debian's chromium and chromium-driver "
                "(`make browser-deps` as root runs apt-get)"
            )
    for module in ("selenium", "jupyterlab", "ipywidgets"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed: pip install -e '.[notebooks,dev]'"
    return None


pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(_missing() is not None, reason=_missing() or ""),
]


# --------------------------------------------------------------------------- JupyterLab


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _api(url: str, token: str, path: str, method: str = "GET"):
    """A JupyterLab REST call; the decoded JSON reply (None for an empty one)."""
    req = urllib.request.Request(
        f"{url}{path}", method=method, headers={"Authorization": f"token {token}"}
    )
    with urllib.request.urlopen(req, timeout=10) as reply:
        body = reply.read()
    return json.loads(body) if body else None


def _wait_until_up(proc: subprocess.Popen, url: str, token: str, log: Path) -> None:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            _api(url, token, "/api/status")
            return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {WAIT} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen, url: str, token: str) -> None:
    """Shut the server and its kernels down; end, by pid, whatever of them is left."""
    import psutil

    try:
        started = psutil.Process(proc.pid).children(recursive=True)  # the kernels, mainly
    except psutil.NoSuchProcess:
        started = []
    try:
        _api(url, token, "/api/shutdown", "POST")  # stops the kernels, then the server
        proc.wait(timeout=30)
    except (urllib.error.URLError, ConnectionError, TimeoutError, subprocess.TimeoutExpired):
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    for p in started:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(started, timeout=10)
    for p in alive:
        p.kill()


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on 127.0.0.1 serving a copy of notebook 08: ``(url, token)``."""
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(repo_root() / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    settings = tmp_path / "lab-settings"
    notifications = settings / "@jupyterlab" / "apputils-extension"
    notifications.mkdir(parents=True)
    (notifications / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})  # no pop-ups, no network
    )
    # the kernel imports the mmslim this test imports; no user configuration leaks in
    python_path = [str(repo_root()), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(python_path),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "jupyter-runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(settings),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "lab-workspaces"),
    }
    port, token = _free_port(), secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "jupyterlab.log"
    cmd = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.news_url=None",
    ]  # fmt: skip
    if os.geteuid() == 0:  # CI containers run as root; JupyterLab refuses that unless told
        cmd.append("--allow-root")
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(proc, url, token, log)
        yield url, token
    finally:
        _stop(proc, url, token)


# --------------------------------------------------------------------------- Chromium


@pytest.fixture
def browser(tmp_path):
    """Headless Chromium under chromedriver, both from /usr/bin."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1400,1600", f"--user-data-dir={tmp_path / 'chromium'}"):  # fmt: skip
        options.add_argument(arg)
    service = Service(str(CHROMEDRIVER), log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


# --------------------------------------------------------------------------- the test


def test_the_explorer_renders_and_reacts_in_jupyterlab(lab, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    url, token = lab
    shots = tmp_path / "screenshots"
    shots.mkdir()
    wait = WebDriverWait(browser, WAIT, poll_frequency=0.25)

    def css(selector, root=None):
        return (root or browser).find_element(By.CSS_SELECTOR, selector)

    def control(kind: str, label: str):
        """The explorer's control of a widget class, found by its description."""
        xpath = f".//div[contains(@class, '{kind}')][.//label[normalize-space()='{label}']]"
        return explorer.find_element(By.XPATH, xpath)

    def shoot(name: str) -> None:
        """The window, scrolled to the explorer, and the explorer whole."""
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'})", explorer)
        browser.save_screenshot(shots / f"{name}-window.png")
        explorer.screenshot(str(shots / f"{name}-explorer.png"))

    def image_png() -> bytes:
        img = css(".widget-image", explorer)
        browser.execute_script("arguments[0].scrollIntoView()", img)
        return img.screenshot_as_png

    try:
        browser.get(f"{url}/lab/tree/{NOTEBOOK}?token={token}&reset")
        wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".jp-Notebook .jp-Cell")))
        wait.until(_kernel_idle)  # a kernel is connected: Run All will run
        run = "//li[contains(@class, 'lm-MenuBar-item')][normalize-space()='Run']"
        wait.until(ec.element_to_be_clickable((By.XPATH, run))).click()
        item = "//li[contains(@class, 'lm-Menu-item')][normalize-space()='Run All Cells']"
        wait.until(ec.element_to_be_clickable((By.XPATH, item))).click()

        # the explorer renders as controls, with its image and summary
        box = ".jp-OutputArea-output .widget-vbox"
        explorer = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, box)))
        wait.until(lambda d: css(".widget-image", explorer).get_attribute("src"))
        wait.until(lambda d: "frame" in css(".widget-html", explorer).text)
        output = explorer.find_element(
            By.XPATH, "ancestor::div[contains(@class, 'jp-OutputArea-output')]"
        )
        assert "Loading widget" not in output.text and "VBox(" not in output.text
        assert len(explorer.find_elements(By.CSS_SELECTOR, ".widget-slider")) == 3
        assert len(explorer.find_elements(By.CSS_SELECTOR, ".widget-dropdown select")) == 2
        wait.until(_all_cells_ran)  # so that the kernel is free to answer the widget
        shoot("1-started")

        # the frame slider, three steps with the keyboard as a user does: the explorer ends
        # on the last one (queued changes must not leave a stale frame)
        frame = control("widget-slider", "frame")
        start = int(css(".widget-readout", frame).text)
        pixels, summary = image_png(), css(".widget-html", explorer).text
        src = css(".widget-image", explorer).get_attribute("src")
        handle = css(".noUi-handle", frame)
        handle.click()
        handle.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
        wait.until(lambda d: css(".widget-readout", frame).text == str(start + 3))
        wait.until(lambda d: f"frame {start + 3} " in css(".widget-html", explorer).text)
        wait.until(lambda d: css(".widget-image", explorer).get_attribute("src") != src)
        assert css(".widget-html", explorer).text != summary
        assert image_png() != pixels
        shoot("2-frame-moved")

        # the map drop-down
        pixels, summary = image_png(), css(".widget-html", explorer).text
        src = css(".widget-image", explorer).get_attribute("src")
        Select(css("select", control("widget-dropdown", "map"))).select_by_visible_text("phase")
        wait.until(lambda d: "(phase)" in css(".widget-html", explorer).text)
        wait.until(lambda d: css(".widget-image", explorer).get_attribute("src") != src)
        assert css(".widget-html", explorer).text != summary
        assert re.search(r"rms error [\d.]+ rad", css(".widget-html", explorer).text)
        assert image_png() != pixels
        shoot("3-phase")
    except Exception:
        browser.save_screenshot(tmp_path / "failure.png")
        (tmp_path / "page.html").write_text(browser.page_source)
        raise
    finally:
        print(f"screenshots and logs: {tmp_path}")


def _kernel_idle(driver) -> bool:
    """The status bar shows a kernel, idle ("Python 3 (ipykernel) | Idle"; while none is
    connected it shows "No Kernel | ..." and the toolbar's indicator already says idle)."""
    from selenium.webdriver.common.by import By

    lines = [
        line.strip()
        for item in driver.find_elements(By.CSS_SELECTOR, ".jp-StatusBar-Widget")
        for line in item.text.splitlines()
    ]
    return any(l.endswith("| Idle") and not l.startswith("No Kernel") for l in lines)


def _all_cells_ran(driver) -> bool:
    """Every code cell shows an execution count ("[7]:", not "[ ]:" or "[*]:")."""
    from selenium.webdriver.common.by import By

    prompts = driver.find_elements(By.CSS_SELECTOR, ".jp-CodeCell .jp-InputPrompt")
    return bool(prompts) and all(p.text.strip("[]: ").isdigit() for p in prompts)
