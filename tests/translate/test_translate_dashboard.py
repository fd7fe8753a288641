"""translate and the attention dashboard: the trainer logs the cross-attention of the fixed dev
sentences (every layer and head) with their tokens, and `translate.translate --html` writes the
same records as one self-contained page."""

import json

import numpy as np
import pytest
from attention_records import event_records, html_records, open_in_tensorboard
from translate_tools import run_tool

from attn_core import attention_record
from translate.model_dir import load_tokenizers
from translate.trainer import FIXED_DEV_SENTENCES


def _dev_sources(model_dir):
    return (model_dir / "data" / "dev.src").read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize("fixture, dims", [("trained_dir", (1, 1)),
                                           ("trained_transformer_dir", (2, 2))],
                         ids=["rnn", "transformer"])
def test_training_logs_the_fixed_dev_sentences_attention_with_their_tokens(request, fixture,
                                                                           dims):
    """At each evaluation (steps 1 and 2), one record per fixed dev sentence: [L, H, T, S] with
    every decoder layer and head, the source pieces (EOS included) as keys, one target piece a
    row, and rows that are distributions over the source."""
    model_dir = request.getfixturevalue(fixture)
    records = event_records(model_dir)
    tags = [f"attention/dev_{i}" for i in range(FIXED_DEV_SENTENCES)]
    assert sorted(records) == tags
    src_tok, _ = load_tokenizers(model_dir)
    sources = _dev_sources(model_dir)
    for i, tag in enumerate(tags):
        assert [step for step, _ in records[tag]] == [1, 2]
        for _, record in records[tag]:
            assert record["name"] == tag and record["view"] == "matrix"
            layers, heads, t, s = record["shape"]
            assert (layers, heads) == dims
            assert record["key_labels"] == src_tok.pieces(sources[i]) + ["</s>"]
            assert len(record["query_labels"]) == t >= 1 and s == len(record["key_labels"])
            assert record["layer_names"] == (
                ["decoder layer 0", "decoder layer 1"] if fixture == "trained_transformer_dir"
                else ["layer 0"])  # the RNN's one attention: the record's default name
            np.testing.assert_allclose(attention_record.weights_array(record).sum(-1), 1.0,
                                       atol=1e-4)
    # The images they replace are gone: no image summaries, no PNGs.
    assert not (model_dir / "attention").exists()


def test_html_holds_every_sentence_as_attention_json_does_and_matches_training(
        trained_transformer_dir, tmp_path):
    """--html and --attention_json of the same decoding agree (tokens, every head's weights);
    the page is self-contained; and the trainer's record of the fixed dev sentences is that
    decoding at one of its evaluations (the best checkpoint's)."""
    model_dir = trained_transformer_dir
    sources = _dev_sources(model_dir)[:FIXED_DEV_SENTENCES]
    (tmp_path / "in.txt").write_text("\n".join(sources) + "\n", encoding="utf-8")
    page, jsonl = tmp_path / "attention.html", tmp_path / "attention.jsonl"
    # Greedy, as the trainer's dev evaluations decode.
    result = run_tool("translate.translate", f"--model_dir={model_dir}",
                      f"--input_file={tmp_path / 'in.txt'}", f"--html={page}",
                      f"--attention_json={jsonl}", "--beam_width=1")
    assert result.returncode == 0, result.stderr
    records = html_records(page)
    lines = [json.loads(line) for line in jsonl.read_text(encoding="utf-8").splitlines()]
    assert [r["name"] for r in records] == [f"sentence {i}" for i in range(len(sources))]
    for record, line in zip(records, lines, strict=True):
        assert record["view"] == "matrix"
        assert record["query_labels"] == line["target_tokens"]
        assert record["key_labels"] == line["source_tokens"]
        np.testing.assert_allclose(attention_record.weights_array(record), line["attention"],
                                   atol=1e-5)  # the JSON lines are rounded to 5 digits
    logged = event_records(model_dir)
    for i, record in enumerate(records):
        assert any(
            old["query_labels"] == record["query_labels"]
            and np.allclose(attention_record.weights_array(old),
                            attention_record.weights_array(record), atol=1e-5)
            for _, old in logged[f"attention/dev_{i}"])
    assert "<title>translate.translate: model (step " in page.read_text(encoding="utf-8")


def test_html_into_a_missing_folder_is_one_line_before_any_work(trained_dir, tmp_path):
    out = tmp_path / "missing" / "attention.html"
    run_tool("translate.translate", f"--model_dir={trained_dir}",
             f"--output_file={tmp_path / 'out.txt'}",
             f"--html={out}").one_line_error("--html", "does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_tensorboard_attention_tab_shows_the_runs_sentences(chromium, trained_transformer_dir):
    """A real TensorBoard over the tiny Transformer run, in headless Chromium: its three tags
    and two steps, the sentence's tokens, the decoder layers and heads, and the hovered target
    token's weights over the source are the logged ones (the mean of the heads, then one
    head)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from attn_core.dashboard.browser import choose, readout, texts

    driver = chromium
    _, record = event_records(trained_transformer_dir)["attention/dev_1"][-1]
    weights = attention_record.weights_array(record)
    with open_in_tensorboard(driver, trained_transformer_dir, "attention/dev_1"):
        assert texts(driver, ".attn-tag option") == [f"attention/dev_{i}" for i in range(3)]
        assert texts(driver, ".attn-step option") == ["1", "2"]
        assert texts(driver, ".attn-query-label") == record["query_labels"]
        assert texts(driver, ".attn-key-label") == record["key_labels"]
        assert texts(driver, ".attn-layer option") == ["decoder layer 0", "decoder layer 1"]
        assert texts(driver, ".attn-head option") == ["mean of heads", "head 0", "head 1"]
        last = len(record["query_labels"]) - 1
        labels = driver.find_elements(By.CSS_SELECTOR, ".attn-query-label")
        ActionChains(driver).move_to_element(labels[last]).perform()
        np.testing.assert_allclose(readout(driver)["values"], weights[0, :, last].mean(0),
                                   rtol=1e-6, atol=1e-7)
        choose(driver, ".attn-layer", "1")
        choose(driver, ".attn-head", "1")
        ActionChains(driver).move_to_element(labels[0]).perform()
        assert readout(driver)["values"] == weights[1, 1, 0].tolist()
