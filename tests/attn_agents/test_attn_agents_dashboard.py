"""attn_agents and the attention dashboard: at each checkpoint the trainer logs the token and
memory attention of a fixed evaluation episode, and `attn_agents.evaluate --html` writes the
recorded episode's as one self-contained page."""

import json

import numpy as np
from agent_tools import run_tool
from attention_records import event_records, html_records, open_in_tensorboard

from attn_agents.attention_view import episode_views, memory_labels
from attn_agents.episode_recording import record_episode
from attn_agents.model_dir import CONFIG_NAME, load_agent
from attn_agents.ppo_trainer import ATTENTION_EPISODE_STEPS, EVAL_SEED_OFFSET
from attn_agents.tokenizer_factory import TokenLayout
from attn_core import attention_record


def test_training_logs_the_fixed_episodes_token_and_memory_attention(trained_dir):
    """The tiny run (masked CartPole, memory 3, a checkpoint after each of its 2 updates of 32
    steps): "bars" over the two kept features and a "matrix" over the 3 steps back, one row per
    step of the episode; the last checkpoint's records are the episode replayed with the saved
    policy."""
    records = event_records(trained_dir)
    assert sorted(records) == ["attention/memory", "attention/tokens"]
    for tag in records:
        assert [step for step, _ in records[tag]] == [32, 64]
    for (_, tokens), (_, memory) in zip(records["attention/tokens"], records["attention/memory"],
                                        strict=True):
        n = tokens["shape"][2]
        assert 1 <= n <= ATTENTION_EPISODE_STEPS
        assert tokens["view"] == "bars" and tokens["shape"] == [1, 1, n, 2]
        assert tokens["key_labels"] == ["x0", "x1"]
        assert tokens["query_labels"] == [f"step {i}" for i in range(n)]
        assert memory["view"] == "matrix" and memory["shape"] == [1, 1, n, 3]
        assert memory["key_labels"] == ["t-2", "t-1", "t"]
        assert memory["query_labels"] == tokens["query_labels"]
        for record in (tokens, memory):
            np.testing.assert_allclose(attention_record.weights_array(record).sum(-1), 1.0,
                                       atol=1e-5)
    model, env_config, _, state = load_agent(trained_dir, log=lambda line: None)
    seed = json.loads((trained_dir / CONFIG_NAME).read_text())["run"]["seed"]
    _, _, token_w, memory_w, _ = record_episode(
        model, env_config, state.get("obs_rms") or None, seed + EVAL_SEED_OFFSET,
        render=False, max_steps=ATTENTION_EPISODE_STEPS, jit_compile=False)
    _, tokens = records["attention/tokens"][-1]
    np.testing.assert_allclose(attention_record.weights_array(tokens)[0, 0], token_w, atol=1e-5)
    _, memory = records["attention/memory"][-1]
    np.testing.assert_allclose(attention_record.weights_array(memory)[0, 0], memory_w,
                               atol=1e-5)


def test_episode_views_label_grids_and_skip_what_is_not_there():
    grid = TokenLayout("grid", ("c0,0", "c0,1", "c1,0", "c1,1", "direction"), (2, 2))
    token_w = np.full((3, 5), 0.2, np.float32)
    views = episode_views(grid, token_w, np.zeros((3, 0), np.float32))
    assert list(views) == ["tokens"]  # no memory
    assert views["tokens"]["view"] == "grid" and views["tokens"]["key_grid"] == (2, 2)
    assert views["tokens"]["key_labels"] == list(grid.labels)
    views = episode_views(None, np.zeros((3, 0)), np.full((3, 4), 0.25))  # the MLP policy
    assert list(views) == ["memory"]
    assert views["memory"]["key_labels"] == memory_labels(4) == ["t-3", "t-2", "t-1", "t"]
    for view in episode_views(grid, token_w, np.full((3, 4), 0.25)).values():
        attention_record.make_record("x", **view)  # every view is a valid record


def test_evaluate_html_holds_the_recorded_episode(trained_dir, tmp_path):
    page = tmp_path / "attention.html"
    result = run_tool("attn_agents.evaluate", f"--model_dir={trained_dir}", "--episodes=0",
                      "--max_video_steps=20", f"--html={page}")
    assert result.returncode == 0, result.stderr
    assert f"attention page: {page}" in result.stdout
    tokens, memory = html_records(page)
    n = tokens["shape"][2]
    assert 1 <= n <= 20
    assert (tokens["name"], tokens["view"], tokens["key_labels"]) == ("tokens", "bars",
                                                                      ["x0", "x1"])
    assert (memory["name"], memory["view"], memory["key_labels"]) == (
        "memory", "matrix", ["t-2", "t-1", "t"])
    assert memory["query_labels"] == [f"step {i}" for i in range(n)]
    assert "<title>CartPole-v1 (attention, step 64)" in page.read_text(encoding="utf-8")


def test_evaluate_html_into_a_missing_folder_is_one_line_before_any_work(trained_dir, tmp_path):
    run_tool("attn_agents.evaluate", f"--model_dir={trained_dir}", "--episodes=1",
             f"--output_json={tmp_path / 'scores.json'}",
             f"--html={tmp_path / 'missing' / 'a.html'}").one_line_error(
        "--html", "does not exist")
    assert list(tmp_path.iterdir()) == []


def test_tensorboard_attention_tab_shows_the_episodes_attention(chromium, trained_dir):
    """A real TensorBoard over the tiny run, in headless Chromium: both tags and both
    checkpoints' steps, the features as bars and the steps as queries; picking a step shows
    its logged weights; the memory's matrix is labelled with the steps back."""
    from selenium.webdriver.common.by import By

    from attn_core.dashboard.browser import choose, readout, texts

    driver = chromium
    logged = event_records(trained_dir)
    _, tokens = logged["attention/tokens"][-1]
    _, memory = logged["attention/memory"][-1]
    with open_in_tensorboard(driver, trained_dir, "attention/tokens"):
        assert texts(driver, ".attn-tag option") == ["attention/memory", "attention/tokens"]
        assert texts(driver, ".attn-step option") == ["32", "64"]
        assert texts(driver, ".attn-bar-label") == ["x0", "x1"]
        assert texts(driver, ".attn-query-chip") == tokens["query_labels"]
        driver.find_elements(By.CSS_SELECTOR, ".attn-query-chip")[1].click()
        assert readout(driver)["values"] == attention_record.weights_array(tokens)[
            0, 0, 1].tolist()
        choose(driver, ".attn-tag", "attention/memory")
        assert texts(driver, ".attn-key-label") == ["t-2", "t-1", "t"]
        assert texts(driver, ".attn-query-label") == memory["query_labels"]
