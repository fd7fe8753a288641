r"""Screenshot the Attention view of one record, as headless Chromium draws it (for docs/).

    python -m attn_core.dashboard.screenshot --logdir=runs/nmt --run=. --tag=attention/dev_0 \
        --head=mean --query=3 --out=docs/dashboard_translate.png
    python -m attn_core.dashboard.screenshot --html=attention.html --tag=gan/attention \
        --out=docs/dashboard_gan.png

With --logdir it starts TensorBoard with the Attention tab on 127.0.0.1 (as
`attn_core.dashboard.serve`), with --html it opens a page written by `write_html`; either way
it needs Chromium and chromedriver (`apt-get install chromium chromium-driver`) and Selenium.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

import pathlib  # noqa: E402
import time  # noqa: E402

from absl import flags  # noqa: E402

from attn_core.errors import UserError  # noqa: E402

FLAGS = flags.FLAGS


def define_flags(flag_values=None):
    """Defines the tool's flags (on `flag_values`, default the global `FLAGS`)."""
    flag_values = FLAGS if flag_values is None else flag_values
    flags.DEFINE_string("logdir", None, "A TensorBoard log directory holding attention records "
                        "(give this or --html).", flag_values=flag_values)
    flags.DEFINE_string("html", None, "A page written by write_html / the apps' --html "
                        "(give this or --logdir).", flag_values=flag_values)
    flags.DEFINE_string("run", ".", "The run (a subdirectory of --logdir; '.' is --logdir "
                        "itself). Ignored with --html.", flag_values=flag_values)
    flags.DEFINE_string("tag", None, "The record's tag (its name).", flag_values=flag_values)
    flags.DEFINE_integer("step", None, "The step (default: the latest).", lower_bound=0,
                         flag_values=flag_values)
    flags.DEFINE_integer("layer", None, "The layer index (default: the first).", lower_bound=0,
                         flag_values=flag_values)
    flags.DEFINE_string("head", None, "'mean' or a head index (default: mean of heads).",
                        flag_values=flag_values)
    flags.DEFINE_integer("query", None, "The query to highlight (default: none for the matrix, "
                         "the first or the centre for the others).", lower_bound=0,
                         flag_values=flag_values)
    flags.DEFINE_enum("mode", "matrix", ["matrix", "lines"], "How a 'matrix' record is drawn.",
                      flag_values=flag_values)
    flags.DEFINE_integer("width", 1100, "Browser window width in pixels.", lower_bound=320,
                         flag_values=flag_values)
    flags.DEFINE_integer("height", 900, "Browser window height in pixels.", lower_bound=240,
                         flag_values=flag_values)
    flags.DEFINE_string("out", None, "Output PNG (its folder is created).",
                        flag_values=flag_values)
    flags.mark_flag_as_required("tag", flag_values=flag_values)
    flags.mark_flag_as_required("out", flag_values=flag_values)


def screenshot(out, *, tag, logdir=None, html=None, run=".", step=None, layer=None, head=None,
               query=None, mode="matrix", width=1100, height=900,
               driver=None) -> pathlib.Path:
    """Draws one record in headless Chromium and saves the view as a PNG.

    Args:
        out: The PNG to write (its folder is created).
        tag: The record's tag.
        logdir: A log directory, served by a TensorBoard this starts and stops; or
        html: a page written by `attention_record.write_html`. Exactly one of the two.
        run: The run, relative to `logdir` (`"."` for `logdir` itself).
        step, layer, head, query, mode: What to show (see the flags); None for the defaults.
        width, height: The browser window size, when this starts the browser.
        driver: A Selenium driver to use (and leave open) instead of starting Chromium.

    Returns:
        The path written.

    Raises:
        UserError: If both or neither of `logdir` and `html` are given, a path, run or tag is
            missing, or Chromium is not installed.
    """
    from attn_core.dashboard import browser

    if (logdir is None) == (html is None):
        raise UserError("Expected exactly one of --logdir and --html. Received: "
                        f"logdir={logdir!r}, html={html!r}")
    source = pathlib.Path(logdir if logdir is not None else html)
    if not source.exists():
        raise UserError(f"No such {'log directory' if logdir else 'page'}: {source}")
    if head is not None and head != "mean" and not str(head).isdigit():
        raise UserError(f"Expected --head 'mean' or a head index. Received: head={head!r}")
    selection = {"tag": tag, "step": step, "layer": layer, "head": head, "query": query,
                 "mode": mode}
    own_driver = driver is None
    if own_driver:
        driver = browser.chrome(width, height)
    board = None
    try:
        if logdir is not None:
            board = browser.TensorBoardProcess(source)
            try:
                board.wait_for(run, tag, timeout=60)
            except TimeoutError:
                _, _, tags = board.get("/data/plugin/attention/tags")
                raise UserError(f"No attention tag {tag!r} in run {run!r} of {source}; "
                                f"it holds: {_listing(tags)}") from None
            url = board.view_url(run=run, **selection)
        else:
            url = browser.view_url(source.resolve().as_uri(), **selection)
        browser.open_view(driver, url)
        shown = driver.execute_script(
            "return JSON.parse(document.getElementById('attention-root').dataset.record)")
        if shown[1] != tag:
            raise UserError(f"No attention record named {tag!r} in {source}")
        _settle(driver)
        out = pathlib.Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        from selenium.webdriver.common.by import By

        png = driver.find_element(By.ID, "attention-root").screenshot_as_png
        out.write_bytes(png)
        return out
    finally:
        if own_driver:
            driver.quit()
        if board is not None:
            board.stop()


def _listing(tags):
    return "; ".join(f"{run}: {', '.join(run_tags)}" for run, run_tags in tags.items()) or "none"


def _settle(driver):
    """Waits until an image view has its image, so the screenshot shows it."""
    for _ in range(100):
        if driver.execute_script(
                "const c = document.querySelector('.attn-image-canvas');"
                "return !c || c.dataset.loaded === 'true';"):
            return
        time.sleep(0.05)


def main(argv, flag_values=FLAGS):
    del argv
    f = flag_values
    path = screenshot(f.out, tag=f.tag, logdir=f.logdir, html=f.html, run=f.run, step=f.step,
                      layer=f.layer, head=f.head, query=f.query, mode=f.mode, width=f.width,
                      height=f.height)
    print(f"screenshot: {path}")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
