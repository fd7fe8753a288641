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


@pytest.fixture(scope="session")
def trained_transformer_dir(tmp_path_factory):
    """A tiny two-step Transformer of 2 decoder layers of 2 heads, trained with guided
    alignment on the built-in corpus (do not modify it: copy it)."""
    path = tmp_path_factory.mktemp("trained_transformer") / "model"
    result = run_tool("translate.train", f"--model_dir={path}", *TINY_FLAGS,
                      "--architecture=transformer", "--num_layers=2", "--heads=2",
                      "--ff_dim=32")
    assert result.returncode == 0, result.stderr[-3000:]
    return path
