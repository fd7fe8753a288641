"""`metrics.json`: the final metrics of a run, written atomically for scripts and CI to read."""

import json
import math
import pathlib
from typing import Any

import numpy as np

from attn_core.checkpoint import atomic_write

METRICS_NAME = "metrics.json"


def _to_json(value: Any, key: str) -> Any:
    """Converts NumPy values to Python ones and rejects non-finite floats (named by `key`)."""
    if isinstance(value, np.ndarray | np.generic):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _to_json(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_to_json(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"Expected every metric to be a finite number. Received: {key}={value}")
    if value is not None and not isinstance(value, str | int | float):
        raise ValueError(
            "Expected metrics to be numbers, strings, lists or dicts. "
            f"Received: {key}={value!r} of type {type(value).__name__}"
        )
    return value


def write_metrics(run_dir: str | pathlib.Path, metrics: dict[str, Any]) -> pathlib.Path:
    """Atomically writes `<run_dir>/metrics.json` (sorted keys, indent 2).

    Args:
        run_dir: Existing run directory.
        metrics: Metric name -> value. NumPy scalars/arrays become Python numbers/lists;
            nested dicts and lists are allowed.

    Returns:
        The path of `metrics.json`.

    Raises:
        ValueError: If a value is NaN or infinite (the message names its key) or of an
            unsupported type.
    """
    if not isinstance(metrics, dict):
        raise ValueError(f"Expected `metrics` to be a dict. Received: metrics={metrics!r}")
    clean = {str(k): _to_json(v, str(k)) for k, v in metrics.items()}
    text = json.dumps(clean, sort_keys=True, indent=2, allow_nan=False) + "\n"
    path = pathlib.Path(run_dir) / METRICS_NAME
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def read_metrics(run_dir: str | pathlib.Path) -> dict[str, Any]:
    """Reads `<run_dir>/metrics.json`.

    Args:
        run_dir: Run directory.

    Returns:
        The metrics dict.

    Raises:
        FileNotFoundError: If there is no `metrics.json`.
        ValueError: If the file is not a JSON object.
    """
    path = pathlib.Path(run_dir) / METRICS_NAME
    try:
        metrics = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"Expected {path} to hold JSON. Received: invalid JSON ({e})") from e
    if not isinstance(metrics, dict):
        raise ValueError(
            f"Expected {path} to hold a JSON object. Received: {type(metrics).__name__}"
        )
    return metrics
