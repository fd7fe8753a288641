"""Backend-neutral, crash-safe checkpoints for resumable training.

A checkpoint of step `S` in `directory` is two files plus an index:

* `ckpt-0000000S.npz`: the variable values of each named group (`"model"`, `"optimizer"`,
  `"ema"`, ...) as arrays `<group>/00000`, `<group>/00001`, ... in the order of the group's
  `.variables`, with their Keras paths in `<group>/__paths__`.
* `ckpt-0000000S.json`: `{"step": S, "groups": [...], "extra_state": {...}}` (epoch, RNG
  state, best metric, ...).
* `checkpoint.json`: `{"latest": S, "steps": [...]}`, the checkpoints that are complete.

Every file is written to a temporary file in the same directory, flushed, `fsync`ed and then
`os.replace`d over its final name, and the index is replaced last. A crash at any point leaves
the index pointing at the previous complete checkpoint. On opening, leftover temporary files
of an interrupted write are removed and checkpoints the index no longer lists are pruned.

Restoring looks the groups up by name, so a tool that needs only the model restores
`{"model": model}` from a checkpoint saved with its optimizer too. A damaged newest
checkpoint (or index) is reported and the newest intact one is restored instead.
"""

import contextlib
import json
import os
import pathlib
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import keras
import numpy as np

from attn_core.errors import UserError

INDEX_NAME = "checkpoint.json"
_CKPT_RE = re.compile(r"^ckpt-(\d{8,})\.(npz|json)$")


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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

    The file gets the permissions of an ordinary new file (0666 less the umask): `mkstemp`
    creates 0600 files, which the other users of a shared filesystem could not read.

    Args:
        path: Destination file; its directory must exist.
        write: Called with a binary file object opened on a temporary file next to `path`.
    """
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_current_umask())
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


def atomic_write_text(path: str | pathlib.Path, text: str) -> None:
    """`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def remove_temporaries(directory: str | pathlib.Path) -> list[pathlib.Path]:
    """Deletes the `.<name>.*.tmp` files `atomic_write` leaves when killed mid-write.

    Only the chief calls it, at start, holding the model directory's lock.

    Returns:
        The deleted paths.
    """
    removed = []
    for path in pathlib.Path(directory).glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _variables_of(obj: Any) -> list:
    """The variables of a Keras object, or of a list of them, in a deterministic order."""
    if hasattr(obj, "variables"):
        return list(obj.variables)
    if isinstance(obj, list | tuple):
        return [v for item in obj for v in _variables_of(item)]
    raise ValueError(
        "Expected Keras models, layers or optimizers (objects with `.variables`). "
        f"Received: object of type {type(obj).__name__}"
    )


def _groups(objects: Any) -> dict[str, list]:
    """`{name: variables}` of a mapping of groups; a bare object or list is one group "all"."""
    if isinstance(objects, Mapping):
        if not objects or not all(isinstance(k, str) and k and "/" not in k for k in objects):
            raise ValueError("Expected a non-empty mapping of group names (without '/') to "
                             f"Keras objects. Received: keys {list(objects)!r}")
        return {name: _variables_of(obj) for name, obj in objects.items()}
    return {"all": _variables_of(objects)}


def _path_of(variable) -> str:
    return str(getattr(variable, "path", variable.name))


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


class DamagedCheckpoint(ValueError):
    """A checkpoint file that is missing, truncated or corrupt."""


class CheckpointManager:
    """Saves, prunes and restores numbered checkpoints in one directory.

    Only one process (the chief in multi-worker training) should save into a directory; the
    other workers, and the evaluation tools, open it with `read_only=True`.

    Args:
        directory: Checkpoint directory; created if missing (unless `read_only`).
        max_to_keep: How many of the most recent checkpoints to keep (`None` keeps all). At
            least two are kept, so that a damaged newest one leaves an intact one to resume.
        read_only: `save` writes nothing and returns `None`, and nothing is cleaned up.
        log: Where the one-line notices (a damaged checkpoint skipped) go.

    Raises:
        ValueError: If `max_to_keep` is not a positive integer or `None`.
    """

    def __init__(self, directory: str | pathlib.Path, max_to_keep: int | None = 2,
                 read_only: bool = False, log: Callable[[str], Any] = print):
        if max_to_keep is not None and (isinstance(max_to_keep, bool)
                                        or not isinstance(max_to_keep, int) or max_to_keep < 1):
            raise ValueError(
                f"Expected `max_to_keep` to be a positive integer or None. "
                f"Received: max_to_keep={max_to_keep!r}"
            )
        self.directory = pathlib.Path(directory)
        self.read_only = bool(read_only)
        self.max_to_keep = None if max_to_keep is None else max(max_to_keep, 2)
        self.log = log
        self.restored: int | None = None
        if not self.read_only:
            self.directory.mkdir(parents=True, exist_ok=True)
            remove_temporaries(self.directory)
            self._prune_orphans()

    @property
    def index_path(self) -> pathlib.Path:
        return self.directory / INDEX_NAME

    def checkpoint_path(self, step: int) -> pathlib.Path:
        """Path of the `.npz` file of checkpoint `step`."""
        return self.directory / f"ckpt-{step:08d}.npz"

    def _state_path(self, step: int) -> pathlib.Path:
        return self.directory / f"ckpt-{step:08d}.json"

    def _steps_on_disk(self) -> list[int]:
        """Steps with both files present, oldest first (whatever the index says)."""
        if not self.directory.is_dir():
            return []
        found: dict[int, set] = {}
        for path in self.directory.iterdir():
            match = _CKPT_RE.match(path.name)
            if match:
                found.setdefault(int(match.group(1)), set()).add(match.group(2))
        return sorted(step for step, kinds in found.items() if kinds == {"npz", "json"})

    def _read_index(self) -> dict | None:
        """The index, `{"latest": None, "steps": []}` when absent, `None` when damaged."""
        try:
            index = json.loads(self.index_path.read_text())
            steps = [int(s) for s in index["steps"]]
            latest = None if index["latest"] is None else int(index["latest"])
        except FileNotFoundError:
            return {"latest": None, "steps": []}
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return {"latest": latest, "steps": steps}

    def _index_or_disk(self) -> list[int]:
        index = self._read_index()
        if index is None:
            return self._steps_on_disk()
        return index["steps"]

    def _prune_orphans(self) -> None:
        index = self._read_index()
        if index is None or not index["steps"]:
            return  # a damaged or missing index: the files on disk are all there is
        listed = set(index["steps"])
        for step in self._steps_on_disk():
            if step not in listed:
                for path in (self.checkpoint_path(step), self._state_path(step)):
                    path.unlink(missing_ok=True)

    @property
    def steps(self) -> list[int]:
        """The steps of the complete checkpoints (the index's, or the files' if it is damaged)."""
        return self._index_or_disk()

    def latest(self) -> int | None:
        """The step of the newest checkpoint, or `None` if there is none."""
        steps = self.steps
        return steps[-1] if steps else None

    def save(self, step: int, objects: Any,
             extra_state: dict | None = None) -> pathlib.Path | None:
        """Atomically saves the variables of `objects` and `extra_state` as checkpoint `step`.

        Args:
            step: Non-negative training step (or epoch) number; saving an existing step
                overwrites it.
            objects: A mapping of group names to Keras objects (models, layers, optimizers,
                or lists of them), e.g. `{"model": model, "optimizer": optimizer}`; restore
                looks the groups up by these names. A bare object or list is one group.
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
        groups = _groups(objects)
        try:
            state_json = json.dumps(
                {"step": step, "groups": list(groups), "extra_state": dict(extra_state or {})},
                default=_json_default,
                indent=2,
            )
        except (TypeError, ValueError) as e:
            raise ValueError(
                f"Expected `extra_state` to be a JSON-serializable dict. Received: error {e}"
            ) from e
        arrays = {}
        for name, variables in groups.items():
            for i, variable in enumerate(variables):
                array = np.asarray(keras.ops.convert_to_numpy(variable))
                if array.dtype.kind == "V" or array.dtype.name == "bfloat16":
                    array = array.astype(np.float32)  # ml_dtypes can't round-trip via .npz.
                arrays[f"{name}/{i:05d}"] = array
            arrays[f"{name}/__paths__"] = np.array([_path_of(v) for v in variables], dtype=str)

        atomic_write(self.checkpoint_path(step), lambda f: np.savez(f, **arrays))
        atomic_write(self._state_path(step), lambda f: f.write(state_json.encode()))

        steps = [s for s in self._index_or_disk() if s != step] + [step]
        keep = steps if self.max_to_keep is None else steps[-self.max_to_keep :]
        index = json.dumps({"latest": step, "steps": keep}, indent=2)
        atomic_write(self.index_path, lambda f: f.write(index.encode()))
        for old in steps[: len(steps) - len(keep)]:
            for path in (self.checkpoint_path(old), self._state_path(old)):
                path.unlink(missing_ok=True)
        return self.checkpoint_path(step)

    def _load(self, step: int) -> tuple[dict[str, tuple[list[str], list[np.ndarray]]], dict]:
        """`({group: (paths, arrays)}, state)` of checkpoint `step`.

        Raises:
            DamagedCheckpoint: If a file is missing, truncated or corrupt.
        """
        path = self.checkpoint_path(step)
        try:
            groups = {}
            with np.load(path, allow_pickle=False) as data:
                keys = set(data.files)
                if "__paths__" in keys:  # the older layout: one positional group
                    names = [str(p) for p in data["__paths__"]]
                    groups["all"] = (names, [data[f"v{i:05d}"] for i in range(len(names))])
                for key in sorted(k for k in keys if k.endswith("/__paths__")):
                    group = key[: -len("/__paths__")]
                    names = [str(p) for p in data[key]]
                    groups[group] = (names, [data[f"{group}/{i:05d}"]
                                             for i in range(len(names))])
            path = self._state_path(step)
            state = json.loads(path.read_text())
            if not isinstance(state, dict) or not isinstance(state.get("extra_state"), dict):
                raise ValueError("no 'extra_state' object")
        except (OSError, EOFError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as e:
            raise DamagedCheckpoint(
                f"{path} is missing, truncated or corrupt ({type(e).__name__}: {e})"
            ) from e
        return groups, state

    def _match(self, step: int, saved: dict, objects: Any, prefix: bool) -> list:
        """The (variable, array) pairs to assign, or a `UserError` naming the first mismatch."""
        path = self.checkpoint_path(step)
        if isinstance(objects, Mapping) and "all" in saved and len(saved) == 1:
            # A checkpoint of the older, positional layout: the groups in the order given.
            wanted = {"all": [v for vs in _groups(objects).values() for v in vs]}
            prefix = True
        else:
            wanted = _groups(objects)
        pairs = []
        for group, variables in wanted.items():
            if group not in saved:
                raise UserError(f"Expected {path} to hold the group {group!r}. Received: "
                                f"groups {sorted(saved)}")
            names, arrays = saved[group]
            if prefix and len(arrays) > len(variables):
                names, arrays = names[: len(variables)], arrays[: len(variables)]
            for i, variable in enumerate(variables):
                if i >= len(arrays):
                    raise UserError(
                        f"{path} holds another model: {group!r} has {len(arrays)} saved "
                        f"values, the model has {len(variables)} variables; the first without "
                        f"a saved value is {_path_of(variable)}")
                if tuple(variable.shape) != arrays[i].shape:
                    raise UserError(
                        f"{path} holds another model: the first mismatching variable is "
                        f"{_path_of(variable)}, shape {tuple(variable.shape)}, saved as "
                        f"{names[i]} with shape {arrays[i].shape}")
                pairs.append((variable, arrays[i]))
            if len(arrays) > len(variables):
                raise UserError(
                    f"{path} holds another model: {group!r} has {len(arrays)} saved values, "
                    f"the model has {len(variables)} variables; the first extra saved value "
                    f"is {names[len(variables)]}. Is every optimizer built with "
                    "build_optimizer()?")
        return pairs

    def restore(self, objects: Any, step: int | None = None, prefix: bool = False) -> dict | None:
        """Assigns the saved values to the variables of `objects`.

        With `step=None` the newest intact checkpoint is restored: a damaged newer one is
        skipped with a one-line notice through `log`.

        Args:
            objects: A mapping of group names to Keras objects, as passed to `save`; it may
                name fewer groups than were saved (a model without its optimizer). A bare
                object or list matches a checkpoint saved the same way.
            step: Checkpoint to restore; defaults to the newest intact one.
            prefix: Within a group, restore only the first values, as many as `objects` has.

        Returns:
            The saved `extra_state` dict, or `None` if there is no checkpoint. The step restored
            is kept in `self.restored`.

        Raises:
            UserError: If no checkpoint is intact, or the saved variables do not match those of
                `objects` (another model); nothing is assigned then.
        """
        candidates = [step] if step is not None else list(reversed(self.steps))
        if not candidates:
            return None
        if step is None and self._read_index() is None:
            self.log(f"warning: {self.index_path} is damaged; using the checkpoint files "
                     f"found in {self.directory}")
        damaged = []
        for candidate in candidates:
            try:
                saved, state = self._load(candidate)
            except DamagedCheckpoint as error:
                damaged.append((candidate, str(error)))
                continue
            for variable, array in self._match(candidate, saved, objects, prefix):
                variable.assign(array)
            self.restored = candidate
            if damaged:
                steps = ", ".join(str(s) for s, _ in damaged)
                self.log(f"warning: skipping the damaged checkpoint of step {steps} "
                         f"({damaged[0][1]}); restored step {candidate}")
            return dict(state["extra_state"])
        raise UserError(f"no intact checkpoint in {self.directory}: {damaged[-1][1]}")

    def restored_step(self) -> int | None:
        """The step `restore()` would pick: the newest checkpoint that loads (None if none)."""
        for candidate in reversed(self.steps):
            try:
                self._load(candidate)
            except DamagedCheckpoint:
                continue
            return candidate
        return None
