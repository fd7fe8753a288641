"""A tiny trained model directory, shared by the tests that only read it."""

import pytest
from agent_tools import TINY_TRAIN, run_tool


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory):
    """The model directory of a `TINY_TRAIN` run (checkpoints 1 and 2; do not modify it:
    copy it)."""
    path = tmp_path_factory.mktemp("agents") / "model"
    result = run_tool("attn_agents.train", f"--model_dir={path}", *TINY_TRAIN)
    assert result.returncode == 0, result.stderr[-3000:]
    return path
