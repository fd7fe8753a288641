"""gan and the attention dashboard: at each sample grid the trainer logs the EMA generator's
attention for the first image of the fixed noise, with that image, and `gan.attention_map
--html` writes each sample's as one self-contained page."""

import json
import time

import numpy as np
from attention_records import event_records, html_records, open_in_tensorboard
from gan_cases import assert_one_error_line, run_main

from attn_core import attention_record
from gan import attention_map
from gan.attention_view import generator_view
from gan.model_dir import load_ema_generator
from gan.trainer import ATTENTION_SAMPLES, fixed_noise

SIDE = 8  # the tiny model's g_attention_res
LABELS = [f"({r},{c})" for r in range(SIDE) for c in range(SIDE)]


def _image(record):
    import base64
    import io

    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(record["image"]))))


def test_training_logs_the_ema_generators_attention_with_its_image(trained_dir):
    """Steps 1 and 2 (and the final samples): the 8×8 map's positions as queries and keys,
    the 8×8 image, rows that are distributions; the last record is the saved EMA generator's
    attention on the first fixed noise vector."""
    records = event_records(trained_dir)
    assert sorted(records) == ["attention/generator_0"]
    logged = records["attention/generator_0"]
    assert {step for step, _ in logged} == {1, 2}
    for _, record in logged:
        assert record["view"] == "image" and record["key_grid"] == [SIDE, SIDE]
        assert record["shape"] == [1, 1, SIDE * SIDE, SIDE * SIDE]
        assert record["query_labels"] == record["key_labels"] == LABELS
        assert _image(record).shape == (8, 8, 3)
        np.testing.assert_allclose(attention_record.weights_array(record).sum(-1), 1.0,
                                   atol=1e-5)
    generator, config, step = load_ema_generator(trained_dir, log=lambda line: None)
    seed = json.loads((trained_dir / "train_config.json").read_text())["seed"]
    z, labels = fixed_noise(config, seed)
    images, scores = generator(z[:ATTENTION_SAMPLES],
                               labels[:ATTENTION_SAMPLES] if config.num_classes else None,
                               training=False, return_attention_scores=True)
    expected = generator_view(np.asarray(images)[0], np.asarray(scores)[0])
    _, last = logged[-1]
    assert step == 2
    np.testing.assert_allclose(attention_record.weights_array(last)[0, 0], expected["weights"],
                               atol=1e-5)
    assert np.abs(_image(last).astype(int) - expected["image"]).max() <= 1


def test_generator_view_shares_each_pooled_key_between_its_four_positions():
    rng = np.random.default_rng(0)
    pooled = rng.random((16, 4)).astype(np.float32)  # a 4×4 map, keys pooled to 2×2
    pooled /= pooled.sum(-1, keepdims=True)
    view = generator_view(np.zeros((8, 8, 1), np.float32), pooled)
    weights = view["weights"].reshape(16, 2, 2, 2, 2)  # [P, key row, dy, key col, dx]
    np.testing.assert_allclose(weights.sum(axis=(2, 4)).reshape(16, 4), pooled, rtol=1e-6)
    np.testing.assert_allclose(weights, np.broadcast_to(
        weights[:, :, :1, :, :1], weights.shape), rtol=1e-6)  # even within each block
    assert view["key_grid"] == (4, 4) and view["image"].dtype == np.uint8
    assert view["image"].shape == (8, 8, 3) and (view["image"] == 128).all()  # 0 -> mid-grey
    attention_record.make_record("x", **view)
    # A map too big for a record is coarsened 2×2: mean over queries, sum over keys.
    coarse = generator_view(np.zeros((8, 8, 1), np.float32), pooled, max_weights=255)
    assert coarse["key_grid"] == (2, 2) and coarse["query_labels"] == [
        "(0,0)", "(0,1)", "(1,0)", "(1,1)"]
    fine = view["weights"].reshape(2, 2, 2, 2, 2, 2, 2, 2)  # [qr, dqr, qc, dqc, kr, dkr, ...]
    np.testing.assert_allclose(coarse["weights"],
                               fine.mean(axis=(1, 3)).sum(axis=(3, 5)).reshape(4, 4),
                               rtol=1e-6)
    np.testing.assert_allclose(coarse["weights"].sum(-1), 1.0, rtol=1e-6)


def test_attention_map_html_holds_every_sample(capsys, trained_dir, tmp_path):
    page = tmp_path / "attention.html"
    code = run_main(attention_map, [f"--model_dir={trained_dir}", "--samples=2",
                                    f"--html={page}"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"written to {page}" in out
    records = html_records(page)
    assert [r["name"] for r in records] == ["sample 0", "sample 1"]
    for record in records:
        assert record["view"] == "image" and record["key_grid"] == [SIDE, SIDE]
        assert record["query_labels"] == LABELS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attention.html"]  # no PNG


def test_attention_map_html_into_a_missing_folder_is_one_line(capsys, trained_dir, tmp_path,
                                                             monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the default --out would go
    code = run_main(attention_map, [f"--model_dir={trained_dir}",
                                    f"--html={tmp_path / 'missing' / 'a.html'}"])
    assert_one_error_line(code, capsys.readouterr().err, "--html", "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_tensorboard_attention_tab_shows_the_generators_attention(chromium, trained_dir):
    """A real TensorBoard over the tiny run, in headless Chromium: the tag and its steps, the
    generated image, the centre query's logged weights, and a click on another map cell picks
    that query."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from attn_core.dashboard.browser import readout, texts

    driver = chromium
    _, record = event_records(trained_dir)["attention/generator_0"][-1]
    weights = attention_record.weights_array(record)[0, 0]
    with open_in_tensorboard(driver, trained_dir, "attention/generator_0"):
        assert texts(driver, ".attn-tag option") == ["attention/generator_0"]
        assert texts(driver, ".attn-step option") == ["1", "2"]
        canvas = driver.find_element(By.CSS_SELECTOR, ".attn-image-canvas")
        assert (canvas.get_attribute("data-grid-h"), canvas.get_attribute("data-grid-w")) \
            == (str(SIDE), str(SIDE))
        centre = SIDE // 2 * SIDE + SIDE // 2
        shown = readout(driver)
        assert shown["query"] == centre and shown["values"] == weights[centre].tolist()
        deadline = time.monotonic() + 30
        while canvas.get_attribute("data-loaded") != "true":
            assert time.monotonic() < deadline, "the generated image did not load"
            time.sleep(0.05)
        width, height = canvas.size["width"], canvas.size["height"]
        ActionChains(driver).move_to_element_with_offset(  # the cell at row 1, column 6
            canvas, int(6.5 / SIDE * width - width / 2),
            int(1.5 / SIDE * height - height / 2)).click().perform()
        shown = readout(driver)
        assert shown["query"] == SIDE + 6 and shown["values"] == weights[SIDE + 6].tolist()
        assert record["query_labels"][SIDE + 6] == "(1,6)"
