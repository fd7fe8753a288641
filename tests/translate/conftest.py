"""Fixtures of the translate tests."""

import pytest
from translate_tools import TINY_FLAGS, run_tool


@pytest.fixture(scope="session")
def trained_dir(tmp_path_factory):
    """A model directory of a tiny two-step translate.train run (do not modify it: copy it)."""
    path = tmp_path_factory.mktemp("trained") / "model"
    result = run_tool("translate.train", f"--model_dir={path}", *TINY_FLAGS)
    assert result.returncode == 0, result.stderr[-3000:]
    return path
