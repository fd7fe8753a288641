"""Reading back what the applications wrote for the attention dashboard: the attention records
of a run's event files, and those of an `--html` page, which must load nothing from the
network."""

import json
import pathlib
import re

from attn_core import attention_record

_RECORDS = re.compile(
    r'<script type="application/json" id="attention-records">(.*?)</script>', re.S)
# Anything the browser would fetch: a src/href to another origin, a CSS url() or an import
# of a module from a URL.
_FETCHES = re.compile(
    r"""(\b(src|href)\s*=\s*["']?\s*(https?:|//))|(url\(\s*["']?\s*(https?:|//))"""
    r"""|(\bimport\b[^;\n]*["'](https?:|//))""", re.I)


def event_records(logdir):
    """{tag: [(step, record), ...]} of every attention summary in the event files of
    `logdir`, in the order written, each checked to carry the attention plugin's metadata."""
    import tensorflow as tf

    found = {}
    for path in sorted(pathlib.Path(logdir).glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "attention":
                    record = attention_record.decode_record(
                        tf.make_ndarray(value.tensor).item())
                    found.setdefault(value.tag, []).append((event.step, record))
    return found


def html_records(path):
    """The records inlined in an `--html` page, after checking that the page is
    self-contained (one inline data block; no script, style, image or module from a URL)."""
    page = pathlib.Path(path).read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert not _FETCHES.search(page), _FETCHES.search(page).group(0)
    [data] = _RECORDS.findall(page)
    return [attention_record.decode_record(json.dumps(record)) for record in json.loads(data)]


def open_in_tensorboard(driver, logdir, tag, **selection):
    """Starts TensorBoard with the Attention tab over `logdir` (the run "."), waits until it
    lists `tag` and opens the view of `tag` in `driver`.

    Returns:
        The `attn_core.dashboard.browser.TensorBoardProcess`; stop it (it is a context
        manager).
    """
    from attn_core.dashboard import browser

    board = browser.TensorBoardProcess(logdir)
    try:
        board.wait_for(".", tag)
        browser.open_view(driver, board.view_url(run=".", tag=tag, **selection))
    except BaseException:
        board.stop()
        raise
    return board
