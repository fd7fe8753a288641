"""The Attention tab in a real browser: a real TensorBoard (with its Rust data server) over
records written with `attn_core.summaries.attention`, driven by headless Chromium."""

import time

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

pytest.importorskip("selenium", reason="browser tests need Selenium: pip install selenium")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

from attn_core import attention_record, summaries  # noqa: E402
from attn_core.dashboard import browser, screenshot  # noqa: E402
from attn_core.dashboard.browser import choose, data_values, readout, texts  # noqa: E402

RNG = np.random.default_rng(18)


def _attention(shape, sharpness=3.0):
    logits = RNG.normal(size=shape) * sharpness
    e = np.exp(logits - logits.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


SOURCE = ["<s>", "el", "gato", "negro", "duerme", "."]
TARGET = ["the", "black", "cat", "sleeps", "."]
LOGGED = {
    # run -> tag -> (weights, query labels, key labels, make_record keyword arguments)
    "nmt": {
        "attention/dev_0": (_attention((2, 3, 5, 6)), TARGET, SOURCE,
                            {"layer_names": ["decoder 0", "decoder 1"]}),
        "attention/big": (_attention((6, 8, 64, 64)), [f"t{i}" for i in range(64)],
                          [f"s{i}" for i in range(64)], {}),
    },
    "agent": {
        "agent/features": (_attention((2, 1, 5)), ["policy"],
                           ["x", "x_dot", "theta", "theta_dot", "memory"], {"view": "bars"}),
        "agent/grid": (_attention((2, 10)), ["obs", "obs+1"],
                       [f"cell {i}" for i in range(9)] + ["carried"],
                       {"view": "grid", "key_grid": (3, 3)}),
    },
    "gan": {
        "gan/attention": (_attention((2, 16, 16)), [f"({i // 4},{i % 4})" for i in range(16)],
                          [f"({i // 4},{i % 4})" for i in range(16)],
                          {"view": "image", "key_grid": (4, 4),
                           "image": RNG.uniform(size=(8, 8, 3))}),
    },
}
STEPS = (100, 200)


def _logged(run, tag, step=STEPS[-1]):
    """The [L, H, T, S] weights logged at `step` (the second step's are the first's squared)."""
    weights = LOGGED[run][tag][0]
    weights = weights.reshape((1,) * (4 - weights.ndim) + weights.shape)
    return weights if step == STEPS[0] else weights**2


@pytest.fixture(scope="module")
def driver(chromium):
    return chromium


def _wait_until(condition, what, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _hover_query_label(driver, t):
    """Moves the mouse onto query label `t` until the readout shows that row. Once, on a
    loaded machine (three test workers), the readout was still empty after the first move;
    each try finds the labels again, in case the view redrew them in between."""
    def hovered():
        label = driver.find_elements(By.CSS_SELECTOR, ".attn-query-label")[t]
        ActionChains(driver).move_to_element(label).perform()
        return readout(driver)["query"] == t

    _wait_until(hovered, f"the readout of query {t}", timeout=10.0)


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("dashboard") / "logs"
    for run, tags in LOGGED.items():
        writer = tf.summary.create_file_writer(str(logdir / run))
        with writer.as_default():
            for step in STEPS:
                for tag, (weights, queries, keys, kwargs) in tags.items():
                    logged = weights if step == STEPS[0] else weights**2
                    summaries.attention(tag, logged, queries, keys, step=step, **kwargs)
        writer.close()
    with browser.TensorBoardProcess(logdir) as board:
        for run, tags in LOGGED.items():
            for tag in tags:
                board.wait_for(run, tag)
        yield board


def _show(driver, board, **selection):
    browser.open_view(driver, board.view_url(**selection))


def _close(values, expected):
    np.testing.assert_allclose(np.asarray(values, np.float64), expected, rtol=1e-6, atol=1e-7)


def test_pickers_list_each_runs_tags_and_steps(driver, board):
    _show(driver, board)
    assert texts(driver, ".attn-run option") == ["agent", "gan", "nmt"]
    for run, tags in LOGGED.items():
        choose(driver, ".attn-run", run)
        assert texts(driver, ".attn-tag option") == sorted(tags)
        assert texts(driver, ".attn-step option") == [str(s) for s in STEPS]
        # A tag opens at its latest step.
        assert driver.find_element(By.CSS_SELECTOR, ".attn-step").get_attribute("value") == "200"


def test_matrix_labels_and_hovered_values_are_the_logged_ones(driver, board):
    _show(driver, board, run="nmt", tag="attention/dev_0", step=100)
    weights = _logged("nmt", "attention/dev_0", 100)
    assert texts(driver, ".attn-query-label") == TARGET
    assert texts(driver, ".attn-key-label") == SOURCE
    assert texts(driver, ".attn-layer option") == ["decoder 0", "decoder 1"]
    assert texts(driver, ".attn-head option") == ["mean of heads", "head 0", "head 1", "head 2"]
    assert readout(driver)["query"] is None

    _hover_query_label(driver, 2)
    shown = readout(driver)
    assert (shown["query"], shown["layer"], shown["head"]) == (2, 0, "mean")
    _close(shown["values"], weights[0, :, 2].mean(0))
    _close(data_values(driver, ".attn-key-label"),
           weights[0, :, 2].mean(0))
    top = int(np.argmax(weights[0, :, 2].mean(0)))
    assert driver.find_element(By.CSS_SELECTOR, ".attn-readout-key").text.startswith(SOURCE[top])

    choose(driver, ".attn-head", "1")
    choose(driver, ".attn-layer", "1")
    _hover_query_label(driver, 4)
    shown = readout(driver)
    assert (shown["query"], shown["layer"], shown["head"]) == (4, 1, "1")
    assert shown["values"] == weights[1, 1, 4].tolist()  # float32 -> JSON -> float32 exactly

    # Hovering a cell of the matrix picks its row and names the cell's value.
    canvas = driver.find_element(By.CSS_SELECTOR, ".attn-matrix-canvas")
    cell = int(canvas.get_attribute("data-cell"))
    width, height = canvas.size["width"], canvas.size["height"]
    ActionChains(driver).move_to_element_with_offset(
        canvas, int(3.5 * cell - width / 2), int(1.5 * cell - height / 2)).perform()
    assert readout(driver)["query"] == 1
    cell_text = driver.find_element(By.CSS_SELECTOR, ".attn-readout-cell").text
    assert cell_text == f"“{TARGET[1]}” → “{SOURCE[3]}”: {weights[1, 1, 1, 3]:.3f}"
    # A click keeps the query after the mouse leaves.
    ActionChains(driver).click().move_to_element(
        driver.find_element(By.CSS_SELECTOR, ".attn-info")).perform()
    assert readout(driver)["query"] == 1


def _pixel(driver, css, x, y):
    return driver.execute_script(
        "const c = document.querySelector(arguments[0]);"
        "return Array.from(c.getContext('2d').getImageData(arguments[1], arguments[2], 1, 1)"
        ".data);", css, x, y)


def test_head_selector_redraws_the_matrix(driver, board):
    _show(driver, board, run="nmt", tag="attention/dev_0", head="0")
    weights = _logged("nmt", "attention/dev_0")
    canvas = driver.find_element(By.CSS_SELECTOR, ".attn-matrix-canvas")
    cell = int(canvas.get_attribute("data-cell"))
    for head in ("0", "2", "mean"):
        choose(driver, ".attn-head", head)
        matrix = weights[0].mean(0) if head == "mean" else weights[0, int(head)]
        t, s = np.unravel_index(np.argmax(matrix), matrix.shape)
        low_t, low_s = np.unravel_index(np.argmin(matrix), matrix.shape)
        # The largest weight is drawn in the colour map's top colour (viridis' yellow), the
        # smallest near its bottom (dark violet).
        top = _pixel(driver, ".attn-matrix-canvas", int((s + 0.5) * cell), int((t + 0.5) * cell))
        bottom = _pixel(driver, ".attn-matrix-canvas", int((low_s + 0.5) * cell),
                        int((low_t + 0.5) * cell))
        assert top == [253, 231, 37, 255]
        assert bottom[2] > bottom[1] and bottom[0] < 90, bottom


def test_lines_view_shows_the_hovered_querys_weights(driver, board):
    _show(driver, board, run="nmt", tag="attention/dev_0", mode="lines", layer=1, head="2")
    weights = _logged("nmt", "attention/dev_0")
    assert driver.find_element(By.CSS_SELECTOR, ".attn-stage").get_attribute("data-view") \
        == "lines"
    assert texts(driver, ".attn-lines-query") == TARGET
    assert texts(driver, ".attn-lines-key") == SOURCE
    ActionChains(driver).move_to_element(
        driver.find_elements(By.CSS_SELECTOR, ".attn-lines-query")[3]).perform()
    assert readout(driver)["values"] == weights[1, 2, 3].tolist()
    _close(data_values(driver, ".attn-lines-key"),
           weights[1, 2, 3])
    driver.find_element(By.CSS_SELECTOR, ".attn-mode-button[data-mode=matrix]").click()
    assert driver.find_element(By.CSS_SELECTOR, ".attn-stage").get_attribute("data-view") \
        == "matrix"


def test_bars_view_draws_each_heads_weights(driver, board):
    _show(driver, board, run="agent", tag="agent/features")
    weights = _logged("agent", "agent/features")
    assert texts(driver, ".attn-bar-label") == LOGGED["agent"]["agent/features"][2]
    for head in ("mean", "0", "1"):
        choose(driver, ".attn-head", head)
        expected = weights[0, :, 0].mean(0) if head == "mean" else weights[0, int(head), 0]
        _close(data_values(driver, ".attn-bar"), expected)
        widths = driver.execute_script("return Array.from(document.querySelectorAll("
                                       "'.attn-bar'), b => parseFloat(b.style.width));")
        _close(np.asarray(widths) / 100, expected / expected.max())


def test_grid_view_maps_keys_to_cells_and_lists_the_rest(driver, board):
    _show(driver, board, run="agent", tag="agent/grid")
    weights = _logged("agent", "agent/grid")[0, 0]
    canvas = driver.find_element(By.CSS_SELECTOR, ".attn-grid-canvas")
    assert (canvas.get_attribute("data-grid-h"), canvas.get_attribute("data-grid-w")) \
        == ("3", "3")
    assert readout(driver)["values"] == weights[0].tolist()
    driver.find_elements(By.CSS_SELECTOR, ".attn-query-chip")[1].click()
    assert readout(driver)["values"] == weights[1].tolist()
    assert texts(driver, ".attn-bar-label") == ["carried"]
    _close([data_values(driver, ".attn-bar")[0]], [weights[1, 9]])
    # The brightest cell is the query's largest weight among the 9 grid keys.
    cell = int(canvas.get_attribute("data-cell"))
    r, c = divmod(int(np.argmax(weights[1, :9])), 3)
    assert _pixel(driver, ".attn-grid-canvas", int((c + 0.5) * cell), int((r + 0.5) * cell)) \
        == [253, 231, 37, 255]
    # Hovering a cell names its key and value.
    ActionChains(driver).move_to_element_with_offset(
        canvas, int((0.5 - 1.5) * cell), int((2.5 - 1.5) * cell)).perform()
    assert driver.find_element(By.CSS_SELECTOR, ".attn-readout-cell").text \
        == f"“obs+1” → “cell 6”: {weights[1, 6]:.3f}"


def test_image_view_click_picks_the_query_pixel(driver, board):
    _show(driver, board, run="gan", tag="gan/attention", head="1")
    weights = _logged("gan", "gan/attention")[0, 1]
    assert readout(driver)["query"] == 2 * 4 + 2  # the centre of the 4 x 4 map
    canvas = driver.find_element(By.CSS_SELECTOR, ".attn-image-canvas")
    _wait_until(lambda: canvas.get_attribute("data-loaded") == "true", "the generated image")
    width, height = canvas.size["width"], canvas.size["height"]
    # Click inside the map cell at row 3, column 1.
    ActionChains(driver).move_to_element_with_offset(
        canvas, int(1.5 / 4 * width - width / 2), int(3.5 / 4 * height - height / 2)).click() \
        .perform()
    shown = readout(driver)
    assert shown["query"] == 13 and shown["values"] == weights[13].tolist()
    # The query's strongest key is overlaid in the colour map's top colour, over the image.
    r, c = divmod(int(np.argmax(weights[13])), 4)
    overlay = _pixel(driver, ".attn-image-canvas", int((c + 0.5) / 4 * width),
                     int((r + 0.5) / 4 * height))
    # The canvas shows each of the 8 x 8 image's pixels as a 48 px square, a map cell as 2 x 2
    # of them: the cell's centre is the top-left corner of image pixel (2r + 1, 2c + 1).
    image = LOGGED["gan"]["gan/attention"][3]["image"]
    plain = np.round(image[2 * r + 1, 2 * c + 1] * 255)
    blended = [round(0.3 * p + 0.7 * v)
               for p, v in zip(plain, (253, 231, 37), strict=True)]
    assert all(abs(a - b) <= 3 for a, b in zip(overlay[:3], blended, strict=True)), \
        (overlay, blended)


def test_switching_heads_stays_fast_on_64x64_with_8_heads_and_6_layers(driver, board):
    _show(driver, board, run="nmt", tag="attention/big")
    times = driver.execute_script("""
        const root = document.getElementById('attention-root');
        const layer = document.querySelector('.attn-layer');
        const head = document.querySelector('.attn-head');
        const times = [];
        for (const mode of ['matrix', 'lines']) {
          document.querySelector(`.attn-mode-button[data-mode=${mode}]`).click();
          for (let l = 0; l < 6; l++) {
            layer.value = String(l);
            layer.dispatchEvent(new Event('change'));
            for (const h of ['mean', '0', '1', '2', '3', '4', '5', '6', '7']) {
              head.value = h;
              const start = performance.now();
              head.dispatchEvent(new Event('change'));
              times.push([mode, performance.now() - start, Number(root.dataset.renderMs)]);
            }
          }
        }
        return times;""")
    assert len(times) == 2 * 6 * 9
    slowest = {mode: max(t for m, t, _ in times if m == mode) for mode in ("matrix", "lines")}
    print(f"head switch on 6x8x64x64, slowest: {slowest}")
    assert max(slowest.values()) < 100, slowest
    weights = _logged("nmt", "attention/big")
    ActionChains(driver).move_to_element(
        driver.find_elements(By.CSS_SELECTOR, ".attn-query-label")[63]).perform()
    assert readout(driver)["values"] == weights[5, 7, 63].tolist()


def test_tensorboard_shows_the_attention_tab(driver, board):
    driver.get(f"{board.url}/#attention")
    _wait_until(lambda: driver.find_elements(By.CSS_SELECTOR, "iframe"),
                "TensorBoard's plugin iframe for #attention")
    driver.switch_to.frame(driver.find_element(By.CSS_SELECTOR, "iframe"))
    try:
        browser.wait_ready(driver)
        assert texts(driver, ".attn-run option") == ["agent", "gan", "nmt"]
        assert texts(driver, ".attn-tag option") == sorted(LOGGED["agent"])
    finally:
        driver.switch_to.default_content()


@pytest.mark.parametrize("route, params, code, fragment", [
    ("steps", {"run": "nmt"}, 400, "Missing query argument 'tag'"),
    ("steps", {"run": "missing", "tag": "attention/dev_0"}, 404, "Unknown run 'missing'"),
    ("steps", {"run": "nmt", "tag": "../../etc/passwd"}, 404, "Unknown tag"),
    ("record", {"run": "nmt", "tag": "attention/dev_0", "step": "x"}, 400, "integer 'step'"),
    ("record", {"run": "nmt", "tag": "attention/dev_0", "step": "7"}, 404, "No attention "
     "record at step 7"),
    ("record", {"run": "/", "tag": "attention/dev_0", "step": "100"}, 404, "Unknown run '/'"),
])
def test_routes_of_the_real_server_reject_bad_requests(board, route, params, code, fragment):
    status, content_type, body = board.get(f"/data/plugin/attention/{route}", **params)
    assert (status, content_type) == (code, "application/json")
    assert list(body) == ["error"] and fragment in body["error"]


def test_write_html_page_draws_the_same_view(driver, tmp_path):
    records = []
    for tags in LOGGED.values():
        for tag, (weights, queries, keys, kwargs) in tags.items():
            if tag != "attention/big":
                records.append(attention_record.make_record(tag, weights, queries, keys,
                                                            **kwargs))
    page = attention_record.write_html(tmp_path / "attention.html", records, "Shared view")
    browser.open_view(driver, browser.view_url(page.as_uri(), tag="attention/dev_0", head="2"))
    assert driver.title == "Shared view"
    assert driver.find_element(By.CSS_SELECTOR, ".attn-run").is_displayed() is False
    assert texts(driver, ".attn-tag option") == [r["name"] for r in records]
    assert texts(driver, ".attn-query-label") == TARGET
    ActionChains(driver).move_to_element(
        driver.find_elements(By.CSS_SELECTOR, ".attn-query-label")[1]).perform()
    assert readout(driver)["values"] == LOGGED["nmt"]["attention/dev_0"][0][0, 2, 1].tolist()
    choose(driver, ".attn-tag", "gan/attention")
    assert driver.find_element(By.CSS_SELECTOR, ".attn-stage").get_attribute("data-view") \
        == "image"


def test_screenshot_of_a_write_html_page(driver, tmp_path):
    weights, queries, keys, kwargs = LOGGED["nmt"]["attention/dev_0"]
    record = attention_record.make_record("attention/dev_0", weights, queries, keys, **kwargs)
    page = attention_record.write_html(tmp_path / "page.html", [record], "t")
    out = screenshot.screenshot(tmp_path / "docs" / "view.png", html=page, tag="attention/dev_0",
                                query=2, driver=driver)
    with Image.open(out) as png:
        # The view's own box: narrower than the window, and showing the highlighted row.
        assert 300 < png.size[0] < 1000 and 200 < png.size[1] <= 1000
        assert (255, 140, 0) in {pixel[:3] for pixel in png.convert("RGB").getdata()}
