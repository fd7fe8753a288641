"""A real TensorBoard and a headless Chromium, for the dashboard's browser tests and screenshots.

`TensorBoardProcess` runs `python -m attn_core.dashboard.serve` (TensorBoard with the
Attention tab) on 127.0.0.1 on a free port; `chrome()` opens Debian's headless Chromium
through Selenium (`/usr/bin/chromium`, `/usr/bin/chromedriver`: `apt-get install chromium
chromium-driver`); `open_view` loads the Attention view and waits until it has drawn.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from attn_core.errors import UserError

_ROOT = pathlib.Path(__file__).resolve().parents[2]
_URL_LINE = re.compile(r"TensorBoard \S+ at (http://\S+?/?) ")
CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER_PATHS = ("/usr/bin/chromedriver",)


def _first_existing(paths, name):
    for path in (os.environ.get(name), *paths):
        if path and os.access(path, os.X_OK):
            return path
    return None


def browser_missing() -> str | None:
    """Why `chrome()` cannot start, or None if it can.

    Returns:
        A one-line reason naming what to install, or None when Selenium, Chromium and
        chromedriver are all present (`$CHROMIUM` and `$CHROMEDRIVER` may name other paths).
    """
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install selenium (the test extras)"
    if _first_existing(CHROMIUM_PATHS, "CHROMIUM") is None:
        return "no Chromium at /usr/bin/chromium: apt-get install chromium chromium-driver"
    if _first_existing(CHROMEDRIVER_PATHS, "CHROMEDRIVER") is None:
        return "no chromedriver at /usr/bin/chromedriver: apt-get install chromium-driver"
    return None


def chrome(width: int = 1280, height: int = 900):
    """Starts headless Chromium under Selenium.

    Args:
        width, height: The window size in CSS pixels (screenshots have this size).

    Returns:
        A `selenium.webdriver.Chrome`; call `.quit()` when done.

    Raises:
        UserError: If Selenium, Chromium or chromedriver is missing (`browser_missing`).
    """
    reason = browser_missing()
    if reason is not None:
        raise UserError(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = _first_existing(CHROMIUM_PATHS, "CHROMIUM")
    # No --disable-gpu: with it, headless Chromium's screenshots can show a canvas before its
    # last redraw.
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--hide-scrollbars", f"--window-size={width},{height}",
                     "--force-device-scale-factor=1"):
        options.add_argument(argument)
    service = Service(_first_existing(CHROMEDRIVER_PATHS, "CHROMEDRIVER"))
    return webdriver.Chrome(options=options, service=service)


class TensorBoardProcess:
    """TensorBoard with the Attention tab over `logdir`, in a child process on 127.0.0.1.

    Usable as a context manager, which stops it.

    Args:
        logdir: The log directory.
        extra_args: More TensorBoard flags, e.g. `["--load_fast=false"]`.
        timeout: Seconds to wait for TensorBoard to print its URL.

    Raises:
        RuntimeError: If TensorBoard exits or prints no URL in time (its output attached).
    """

    def __init__(self, logdir, extra_args=(), timeout: float = 60.0):
        self.logdir = pathlib.Path(logdir)
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
               # This checkout's attn_core, whether or not the project is installed.
               "PYTHONPATH": os.pathsep.join(filter(None, [str(_ROOT),
                                                            os.environ.get("PYTHONPATH")]))}
        self._stderr_path = self.logdir.parent / f".tensorboard-{os.getpid()}-{id(self)}.log"
        self._stderr = open(self._stderr_path, "w+b")  # closed by stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "attn_core.dashboard.serve", f"--logdir={self.logdir}",
             "--host=127.0.0.1", "--port=0", *extra_args],
            cwd=_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=self._stderr,
            stderr=self._stderr, start_new_session=True)
        deadline = time.monotonic() + timeout
        self.url = None
        while self.url is None:
            match = _URL_LINE.search(self.output())
            if match:
                self.url = match.group(1).rstrip("/")
            elif self.process.poll() is not None or time.monotonic() > deadline:
                output = self.output()
                self.stop()
                raise RuntimeError(f"TensorBoard did not start:\n{output[-3000:]}")
            else:
                time.sleep(0.1)

    def output(self) -> str:
        """What TensorBoard printed so far."""
        self._stderr.flush()
        return self._stderr_path.read_bytes().decode("utf-8", "replace")

    def get(self, route: str, **params) -> tuple[int, str, object]:
        """GETs a route of this TensorBoard.

        Args:
            route: The path, e.g. `"/data/plugin/attention/tags"`.
            **params: Query arguments.

        Returns:
            `(status, content type, body)`, the body parsed if it is JSON, else text.
        """
        url = self.url + route + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                status, headers, body = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, headers, body = error.code, error.headers, error.read()
        content_type = headers.get("Content-Type", "")
        text = body.decode("utf-8", "replace")
        return status, content_type, json.loads(text) if "json" in content_type else text

    def wait_for(self, run: str, tag: str, timeout: float = 60.0, settle: float = 6.0) -> None:
        """Waits until TensorBoard lists `tag` of `run` (it reads the logdir in the background).

        Args:
            run, tag: What to wait for.
            timeout: Seconds to wait at most.
            settle: Give up sooner once TensorBoard lists some attention tags and its listing
                has not changed for this many seconds (it has read what the logdir holds).

        Raises:
            TimeoutError: If the tag is not listed in time.
        """
        start = changed = time.monotonic()
        listed = None
        while True:
            _, _, tags = self.get("/data/plugin/attention/tags")
            if tag in tags.get(run, {}):
                return
            now = time.monotonic()
            if tags != listed:
                listed, changed = tags, now
            if (now > start + timeout or (listed and now > changed + settle)
                    or self.process.poll() is not None):
                raise TimeoutError(f"TensorBoard did not list tag {tag!r} of run {run!r} "
                                   f"(it lists {tags}):\n{self.output()[-2000:]}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stops TensorBoard (and its data server, which exits with it)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self._stderr.closed:
            self._stderr.close()
        self._stderr_path.unlink(missing_ok=True)

    def __enter__(self) -> "TensorBoardProcess":
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def view_url(self, **selection) -> str:
        """The URL of the Attention view alone (the iframe TensorBoard's tab shows).

        Args:
            **selection: What to open (`run`, `tag`, `step`, `layer`, `head`, `query`,
                `mode`), passed in the URL's fragment.
        """
        return view_url(f"{self.url}/data/plugin_entry.html?name=attention", **selection)


_loads = 0


def view_url(page: str, **selection) -> str:
    """`page` (the plugin's iframe URL or a write_html file's URL) opening `selection`."""
    global _loads
    _loads += 1
    # A distinct query each time: a URL differing only in its fragment would not reload.
    separator = "&" if "?" in page else "?"
    fragment = urllib.parse.urlencode({k: v for k, v in selection.items() if v is not None})
    return f"{page}{separator}load={_loads}#{fragment}"


def wait_ready(driver, timeout: float = 30.0) -> None:
    """Waits until the view in `driver`'s current page has drawn a record.

    Raises:
        RuntimeError: If the view shows an error; TimeoutError if it is not ready in time.
    """
    deadline = time.monotonic() + timeout
    while True:
        state, message = driver.execute_script(
            "const r = document.getElementById('attention-root');"
            "const m = document.querySelector('.attn-message');"
            "return [r ? r.dataset.state : null, m ? m.textContent : ''];")
        if state == "ready":
            return
        if state == "error":
            raise RuntimeError(f"the attention view shows an error: {message}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the attention view did not draw (state {state!r})")
        time.sleep(0.05)


def open_view(driver, url: str, timeout: float = 30.0) -> None:
    """Loads `url` (from `view_url`) in `driver` and waits until the view has drawn."""
    driver.get(url)
    wait_ready(driver, timeout)



def readout(driver) -> dict:
    """What the view's readout holds: the selected query and its weights as drawn.

    Returns:
        `{"query": int or None, "layer": int, "head": "mean" or a head index as str,
        "values": [S floats]}`.
    """
    query, layer, head, values = driver.execute_script(
        "const r = document.querySelector('.attn-readout');"
        "return [r.dataset.queryIndex, r.dataset.layer, r.dataset.head, r.dataset.values];")
    return {"query": int(query) if query else None, "layer": int(layer), "head": head,
            "values": json.loads(values)}


def choose(driver, css: str, value) -> None:
    """Picks `value` in the view's <select> `css` (e.g. `.attn-head`) and waits for the redraw.

    The run, tag and step pickers set the view's state to "loading" at once and to "ready"
    once drawn; the layer and head pickers redraw before the change event returns.
    """
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(driver.find_element(By.CSS_SELECTOR, css)).select_by_value(str(value))
    wait_ready(driver)


def texts(driver, css: str) -> list[str]:
    """The text of every element matching `css`, in document order."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.textContent);", css)


def data_values(driver, css: str, name: str = "value") -> list[float]:
    """The `data-<name>` attribute of every element matching `css`, as floats."""
    return [float(v) for v in driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0]), e => e.dataset[arguments[1]]);",
        css, name)]
