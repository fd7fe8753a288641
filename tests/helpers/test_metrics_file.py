"""Tests for attn_core.metrics_file."""

import json
import math

import numpy as np
import pytest

from attn_core.metrics_file import read_metrics, write_metrics


def test_round_trip_converts_numpy_and_sorts_keys(tmp_path):
    metrics = {
        "eval/bleu": np.float32(21.5),
        "charts/episodes": np.int64(12),
        "converged": True,
        "per_class": {"b": np.array([1.0, 2.0]), "a": 0.25},
        "env_id": "CartPole-v1",
    }
    path = write_metrics(tmp_path, metrics)
    assert path == tmp_path / "metrics.json"
    text = path.read_text()
    assert text.endswith("\n")
    loaded = read_metrics(tmp_path)
    assert loaded == {
        "eval/bleu": 21.5,
        "charts/episodes": 12,
        "converged": True,
        "per_class": {"a": 0.25, "b": [1.0, 2.0]},
        "env_id": "CartPole-v1",
    }
    assert type(loaded["charts/episodes"]) is int
    assert text == json.dumps(loaded, sort_keys=True, indent=2) + "\n"
    assert list(json.loads(text)) == sorted(metrics)


@pytest.mark.parametrize(
    "metrics, key",
    [
        ({"eval/bleu": float("nan")}, "eval/bleu"),
        ({"losses/total": np.float32("nan")}, "losses/total"),
        ({"charts/x": math.inf}, "charts/x"),
        ({"eval": {"loss": np.nan}}, "eval.loss"),
    ],
)
def test_non_finite_values_are_rejected_naming_the_key(tmp_path, metrics, key):
    with pytest.raises(ValueError, match=f"Received: {key}="):
        write_metrics(tmp_path, metrics)
    assert not (tmp_path / "metrics.json").exists()


def test_rewrite_replaces_previous_file(tmp_path):
    write_metrics(tmp_path, {"a": 1})
    write_metrics(tmp_path, {"b": 2})
    assert read_metrics(tmp_path) == {"b": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_unsupported_value_and_bad_file(tmp_path):
    with pytest.raises(ValueError, match="Received: obj="):
        write_metrics(tmp_path, {"obj": object()})
    (tmp_path / "metrics.json").write_text("{oops")
    with pytest.raises(ValueError, match="metrics.json"):
        read_metrics(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_metrics(tmp_path / "missing")
