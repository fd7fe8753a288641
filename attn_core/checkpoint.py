"""Backend-neutral, crash-safe checkpoints for resumable training.

A checkpoint of step `S` in `directory` is two files plus an index:

* `ckpt-0000000S.npz`: the variable values (NumPy arrays `v00000`, `v00001`, ... in the order
  of the flattened `[obj.variables for obj in objects]`) and their Keras paths (`__paths__`).
* `ckpt-0000000S.json`: `{"step": S, "extra_state": {...}}` (epoch, RNG state, best metric, ...).
* `checkpoint.json`: `{"latest": S, "steps": [...]}`, the checkpoints that are complete.

Every file is written to a temporary file in the same directory, flushed, `fsync`ed and then
`os.replace`d over its final name, and the index is replaced last. A crash at any point leaves
the index pointing at the previous complete checkpoint.
"""

import contextlib
import json
import os
import pathlib
import tempfile
import zipfile
from collections.abc import Callable
from typing import Any, BinaryIO

import keras
import numpy as np

INDEX_NAME = "checkpoint.json"


def _fsync_directory(directory: pathlib.Path) -> None:
    """Makes a rename in `directory` durable (POSIX); a no-op where directories can't be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path: str | pathlib.Path, write: Callable[[BinaryIO], Any]) -> None:
    """Writes a file atomically: readers see either the old or the complete new content.

    Args:
        path: Destination file; its directory must exist.
        write: Called with a binary file object opened on a temporary file next to `path`.
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(path.parent)


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _flatten_variables(objects: Any) -> list:
    """Returns the variables of `objects` (one object or a sequence) in a deterministic order."""
    if hasattr(objects, "variables"):
        objects = [objects]
    variables = []
    for obj in objects:
        if not hasattr(obj, "variables"):
            raise ValueError(
                "Expected Keras models, layers or optimizers (objects with `.variables`). "
                f"Received: object of type {type(obj).__name__}"
            )
        variables.extend(obj.variables)
    return variables


def build_optimizer(optimizer: keras.optimizers.Optimizer, model_or_variables: Any):
    """Creates an optimizer's slot variables so that `CheckpointManager.restore` can fill them.

    Keras 3 optimizers create their slots (e.g. Adam's momentums) lazily on the first update,
    so a fresh optimizer has fewer variables than the saved one. Call this before restoring.

    Args:
        optimizer: The Keras optimizer.
        model_or_variables: A model/layer (its `trainable_variables` are used) or a list of
            trainable variables, in the same order as during training.

    Returns:
        The same optimizer, now built.
    """
    if hasattr(model_or_variables, "trainable_variables"):
        model_or_variables = model_or_variables.trainable_variables
    if not optimizer.built:
        optimizer.build(list(model_or_variables))
    return optimizer


class CheckpointManager:
    """Saves, prunes and restores numbered checkpoints in one directory.

    Only one process (the chief in multi-worker training) should save into a directory; the
    other workers open it with `read_only=True` so that they can resume from it.

    Args:
        directory: Checkpoint directory; created if missing (unless `read_only`).
        max_to_keep: How many of the most recent checkpoints to keep (`None` keeps all).
        read_only: `save` writes nothing and returns `None` (non-chief workers).

    Raises:
        ValueError: If `max_to_keep` is not a positive integer or `None`.
    """

    def __init__(self, directory: str | pathlib.Path, max_to_keep: int | None = 3,
                 read_only: bool = False):
        if max_to_keep is not None and (not isinstance(max_to_keep, int) or max_to_keep < 1):
            raise ValueError(
                f"Expected `max_to_keep` to be a positive integer or None. "
                f"Received: max_to_keep={max_to_keep!r}"
            )
        self.directory = pathlib.Path(directory)
        self.read_only = bool(read_only)
        if not self.read_only:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.max_to_keep = max_to_keep

    @property
    def index_path(self) -> pathlib.Path:
        return self.directory / INDEX_NAME

    def checkpoint_path(self, step: int) -> pathlib.Path:
        """Path of the `.npz` file of checkpoint `step`."""
        return self.directory / f"ckpt-{step:08d}.npz"

    def _state_path(self, step: int) -> pathlib.Path:
        return self.directory / f"ckpt-{step:08d}.json"

    def _read_index(self) -> dict:
        try:
            index = json.loads(self.index_path.read_text())
            steps = [int(s) for s in index["steps"]]
            latest = None if index["latest"] is None else int(index["latest"])
        except FileNotFoundError:
            return {"latest": None, "steps": []}
        except (ValueError, KeyError, TypeError) as e:
            raise ValueError(
                f"Expected a valid checkpoint index. Received: {self.index_path} is corrupt "
                f"({type(e).__name__}: {e})"
            ) from e
        return {"latest": latest, "steps": steps}

    @property
    def steps(self) -> list[int]:
        """The steps of the complete checkpoints on disk, oldest first."""
        return self._read_index()["steps"]

    def latest(self) -> int | None:
        """Returns the step of the most recently saved checkpoint, or `None` if there is none."""
        return self._read_index()["latest"]

    def save(self, step: int, objects: Any,
             extra_state: dict | None = None) -> pathlib.Path | None:
        """Atomically saves the variables of `objects` and `extra_state` as checkpoint `step`.

        Args:
            step: Non-negative training step (or epoch) number; saving an existing step
                overwrites it.
            objects: A Keras model/layer/optimizer or a sequence of them (anything with
                `.variables`). Restore must receive the same objects in the same order.
            extra_state: JSON-serializable dict (NumPy scalars and arrays are converted),
                e.g. `{"epoch": 3, "best_bleu": 21.4}`; returned by `restore`.

        Returns:
            The path of the written `.npz` file (`None` when the manager is read-only).

        Raises:
            ValueError: If `step` is invalid or `extra_state` is not JSON-serializable.
        """
        if self.read_only:
            return None
        if isinstance(step, bool) or not isinstance(step, int | np.integer) or step < 0:
            raise ValueError(
                f"Expected `step` to be a non-negative integer. Received: step={step!r}"
            )
        step = int(step)
        try:
            state_json = json.dumps(
                {"step": step, "extra_state": dict(extra_state or {})},
                default=_json_default,
                indent=2,
            )
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"Expected `extra_state` to be a JSON-serializable dict. Received: error {e}"
            ) from e
        variables = _flatten_variables(objects)
        arrays = {}
        for i, variable in enumerate(variables):
            array = np.asarray(keras.ops.convert_to_numpy(variable))
            if array.dtype.kind == "V" or array.dtype.name == "bfloat16":
                array = array.astype(np.float32)  # ml_dtypes can't round-trip through .npz.
            arrays[f"v{i:05d}"] = array
        paths = np.array([str(getattr(v, "path", v.name)) for v in variables], dtype=str)

        atomic_write(self.checkpoint_path(step), lambda f: np.savez(f, __paths__=paths, **arrays))
        atomic_write(self._state_path(step), lambda f: f.write(state_json.encode()))

        steps = [s for s in self.steps if s != step] + [step]
        keep = steps if self.max_to_keep is None else steps[-self.max_to_keep :]
        index = json.dumps({"latest": step, "steps": keep}, indent=2)
        atomic_write(self.index_path, lambda f: f.write(index.encode()))
        for old in steps[: len(steps) - len(keep)]:
            for path in (self.checkpoint_path(old), self._state_path(old)):
                path.unlink(missing_ok=True)
        return self.checkpoint_path(step)

    def _load(self, step: int) -> tuple[list[str], list[np.ndarray], dict]:
        path = self.checkpoint_path(step)
        try:
            with np.load(path, allow_pickle=False) as data:
                names = [str(p) for p in data["__paths__"]]
                arrays = [data[f"v{i:05d}"] for i in range(len(names))]
            path = self._state_path(step)
            state = json.loads(path.read_text())
            if not isinstance(state, dict) or not isinstance(state.get("extra_state"), dict):
                raise ValueError("no 'extra_state' object")
        except (OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as e:
            raise ValueError(
                f"Expected a readable checkpoint for step {step}. Received: {path} is missing, "
                f"truncated or corrupt ({type(e).__name__}: {e})"
            ) from e
        return names, arrays, state

    def restore(self, objects: Any, step: int | None = None, prefix: bool = False) -> dict | None:
        """Assigns the saved values to the variables of `objects`.

        Variables are matched by position, so `objects` must be built the same way as when
        saving; a fresh optimizer must first be built with `build_optimizer`. Nothing is
        assigned unless every variable matches.

        Args:
            objects: The same kind of objects, in the same order, as passed to `save`.
            step: Checkpoint to restore; defaults to `latest()`.
            prefix: Restore only the first values, as many as `objects` has variables: a
                model from a checkpoint saved as `[model, optimizer]`.

        Returns:
            The saved `extra_state` dict, or `None` if there is no checkpoint.

        Raises:
            ValueError: If the checkpoint file is missing or corrupt, or the number or shapes
                of the variables do not match.
        """
        step = self.latest() if step is None else step
        if step is None:
            return None
        names, arrays, state = self._load(step)
        variables = _flatten_variables(objects)
        path = self.checkpoint_path(step)
        if prefix and len(arrays) >= len(variables):
            arrays, names = arrays[: len(variables)], names[: len(variables)]
        if len(arrays) != len(variables):
            raise ValueError(
                f"Expected {path} to hold one value per variable ({len(variables)}). Received: "
                f"{len(arrays)} saved values. Are the models built and the optimizers built with "
                "build_optimizer()?"
            )
        for variable, array, name in zip(variables, arrays, names, strict=True):
            if tuple(variable.shape) != array.shape:
                raise ValueError(
                    f"Expected the saved value of variable {name} in {path} to match "
                    f"{getattr(variable, 'path', variable.name)}. Received: saved shape "
                    f"{array.shape}, variable shape {tuple(variable.shape)}"
                )
        for variable, array in zip(variables, arrays, strict=True):
            variable.assign(array)
        return state["extra_state"]
