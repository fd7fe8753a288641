"""Model directories: one behaviour for every trainer and tool.

A model directory holds one run: its saved configs, checkpoints, TensorBoard events,
`metrics.json` and plots. The rules, in the order a trainer meets them:

1. Validate every input (flags, data files, environment id) before writing anything:
   `resolve` only names the directory and checks it can be one; `read_json` and
   `reconcile_config` only read.
2. On resume the saved config wins. A model setting given explicitly that differs from the
   saved one is a `UserError` naming each field (saved vs given); schedule settings (steps,
   budget, cadence, learning rate) may change, and each change is logged.
3. `ModelDir.open` creates the directory, takes its lock (one trainer per directory; the
   second fails at once naming the holder's PID and host; the lock dies with its process),
   and removes the temporary files of writes a kill interrupted. A run that fails before its
   first checkpoint removes the directory it created.
4. Every file is written atomically (`attn_core.checkpoint.atomic_write`) with the user's
   umask.

Output files of the tools (`--output_file`, plots, exports) go through `prepare_output_file`
and `prepare_output_dir`: their folders are created (unless a tool asks for an existing
folder), and a path through an existing file is a `UserError` before any work is done.
"""

import contextlib
import dataclasses
import datetime
import errno
import fcntl
import hashlib
import json
import os
import pathlib
import shutil
import socket
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any

from attn_core.checkpoint import atomic_write_text, remove_temporaries
from attn_core.errors import UserError

LOCK_NAME = ".lock"


def _check_not_through_file(path: pathlib.Path, what: str) -> None:
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.is_dir():
            through = "" if parent == path else f" (through {parent})"
            raise UserError(f"Expected {what} to be a directory. Received: {path} is a "
                            f"file{through}")


def resolve(model_dir: str | os.PathLike | None, default_parts: Sequence[object] = (),
            root: str | os.PathLike = "runs", flag: str = "--model_dir",
            now: datetime.datetime | None = None) -> pathlib.Path:
    """The absolute path of the model directory, checked but not created.

    Args:
        model_dir: The directory the user gave, or None for a fresh run directory
            `<root>/<part1>__<part2>__...__<UTC time>` (CleanRL's naming).
        default_parts: The parts of a fresh run directory's name (data, model, seed...).
        root: Where fresh run directories go.
        flag: The flag named in errors.
        now: For tests: the timestamp of a fresh name.

    Raises:
        UserError: If the path is empty, or it or one of its parents is a file.
    """
    if model_dir is None:
        parts = [str(p).replace("/", "-").replace("\\", "-").replace(":", "-")
                 for p in default_parts] or ["run"]
        now = now or datetime.datetime.now(datetime.UTC)
        base = pathlib.Path(root).expanduser().resolve() / "__".join(
            [*parts, now.strftime("%Y%m%d-%H%M%S")])
        path, attempt = base, 0
        while path.exists():
            attempt += 1
            path = base.with_name(f"{base.name}-{attempt}")
        _check_not_through_file(path, flag)
        return path
    if not str(model_dir):
        raise UserError(f"Expected {flag} to be a non-empty path. Received: {flag}=''")
    path = pathlib.Path(model_dir).expanduser().resolve()
    _check_not_through_file(path, f"{flag}={model_dir}")
    return path


def read_json(path: str | os.PathLike, what: str = "file") -> Any | None:
    """The JSON in `path`, or None when there is no such file.

    Raises:
        UserError: If the file exists but is not valid JSON.
    """
    path = pathlib.Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"Expected a valid {what}. Received: {path} ({error})") from None


def write_json(path: str | os.PathLike, value: Any) -> None:
    """Writes `value` (a dataclass, or JSON-able) as indented, sorted JSON, atomically."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    atomic_write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def fingerprint(*parts: Any) -> str:
    """A 16-hex-digit digest of `parts` (str, bytes, or JSON-able values)."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, str):
            part = part.encode("utf-8")
        elif not isinstance(part, bytes):
            part = json.dumps(part, sort_keys=True, default=str).encode("utf-8")
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    return digest.hexdigest()[:16]


def reconcile_config(saved: Mapping[str, Any] | None, given: Mapping[str, Any],
                     explicit: Collection[str], may_change: Collection[str] = (),
                     where: str = "the model directory", log: Callable[[str], Any] = print,
                     flag_names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The config of a run: `given` for a new one, the saved one (plus changes) on resume.

    Args:
        saved: The config saved in the model directory (flat), or None for a new run.
        given: The config built from the command line (flat, same keys).
        explicit: The fields the user set explicitly (flags given on the command line).
        may_change: Fields that may change on resume (the schedule); an explicit new value
            replaces the saved one and the change is logged.
        where: Names the directory in the error.
        log: Where the changes are reported.
        flag_names: `{field: flag}` where a field's flag is not `--<field>`.

    Returns:
        The config to run with.

    Raises:
        UserError: If an explicit field outside `may_change` differs from the saved value;
            every such field is named, with both values.
    """
    if saved is None:
        return dict(given)
    flag_names = dict(flag_names or {})
    flag = {name: flag_names.get(name, f"--{name}") for name in given}
    conflicts = [name for name in given if name in explicit and name not in may_change
                 and name in saved and saved[name] != given[name]]
    if conflicts:
        details = ", ".join(f"{flag[n]} (saved {saved[n]!r}, given {given[n]!r})"
                            for n in conflicts)
        raise UserError(f"{where} holds a model with other settings: {details}; drop these "
                        "flags to resume it, or use a new --model_dir")
    merged = {**given, **saved}
    for name in may_change:
        if name in explicit and name in given and name in saved and saved[name] != given[name]:
            log(f"resuming with {flag[name]}={given[name]!r} (was {saved.get(name)!r})")
            merged[name] = given[name]
    return merged


def prepare_output_file(path: str | os.PathLike, flag: str,
                        create_folder: bool = True) -> pathlib.Path:
    """Checks an output file's path and creates its folder, before any work is done.

    Args:
        path: The file.
        flag: The flag named in errors.
        create_folder: False: the folder must exist already (for a file that goes beside
            the user's other files, where a typo in the folder is more likely than a new
            folder).

    Raises:
        UserError: If the path is a directory, or goes through an existing file, or its
            folder can't be created (or, without `create_folder`, does not exist).
    """
    path = pathlib.Path(path).expanduser()
    if path.is_dir():
        raise UserError(f"Expected {flag} to name a file. Received: {path} is a directory")
    _check_not_through_file(path.parent, f"the folder of {flag}={path}")
    if not create_folder:
        if not path.parent.is_dir():
            raise UserError(f"Expected the folder of {flag}={path} to exist. Received: "
                            f"{path.parent} does not exist")
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{flag}={path}: cannot create its folder: {error.strerror}") from None
    return path


def prepare_output_dir(path: str | os.PathLike, flag: str) -> pathlib.Path:
    """Checks an output directory's path and creates it, before any work is done.

    Raises:
        UserError: If the path, or one of its parents, is a file, or it can't be created.
    """
    path = pathlib.Path(path).expanduser()
    _check_not_through_file(path, f"{flag}={path}")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UserError(f"{flag}={path}: cannot create it: {error.strerror}") from None
    return path


def require_existing(path: str | os.PathLike, flag: str = "--model_dir",
                     marker: str | None = None, hint: str = "") -> pathlib.Path:
    """An existing model directory for an evaluation tool (checked before any input is read).

    Args:
        path: The directory.
        flag: The flag named in the error.
        marker: A file the directory must hold (its saved config).
        hint: How to make one, appended to the error.

    Raises:
        UserError: If the directory or its marker file is missing.
    """
    if path is None or not str(path):
        raise UserError(f"Expected {flag}. Received: none")
    resolved = pathlib.Path(path).expanduser()
    if not resolved.is_dir():
        raise UserError(f"Expected {flag} to be an existing model directory. Received: "
                        f"{flag}={path} {'is a file' if resolved.exists() else 'does not exist'}"
                        f"{hint}")
    if marker and not (resolved / marker).is_file():
        raise UserError(f"Expected {flag} to hold a trained model. Received: {flag}={path} "
                        f"has no {marker}{hint}")
    return resolved


class ModelDir:
    """An open model directory: created, locked (by the chief) and cleaned.

    Use as a context manager around the whole run:

        with ModelDir.open(path, chief=True) as run_dir:
            ...  # write configs, train, checkpoint

    Args:
        path: The directory (from `resolve`).
        chief: Only the chief creates, locks and cleans; the other workers of a multi-worker
            run share the directory by design and only read from it.
    """

    def __init__(self, path: pathlib.Path, chief: bool = True):
        self.path = pathlib.Path(path)
        self.chief = chief
        self.created = False
        self._lock_fd: int | None = None

    @classmethod
    def open(cls, path: str | os.PathLike, chief: bool = True) -> "ModelDir":
        """Creates (the chief), locks (the chief) and cleans the model directory.

        Raises:
            UserError: If another process holds the directory, or it can't be created.
        """
        run_dir = cls(pathlib.Path(path), chief)
        if chief:
            run_dir._create()
            try:
                run_dir._lock()
                for folder in [run_dir.path, *[p for p in run_dir.path.iterdir() if p.is_dir()]]:
                    remove_temporaries(folder)
            except BaseException:
                run_dir.close(failed=True)
                raise
        return run_dir

    def _create(self) -> None:
        existed = self.path.is_dir()
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"--model_dir={self.path}: cannot create it: "
                            f"{error.strerror}") from None
        self.created = not existed

    def _lock(self) -> None:
        lock_path = self.path / LOCK_NAME
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            holder = lock_path.read_text(errors="replace").strip() or "another process"
            raise UserError(f"--model_dir={self.path} is in use by {holder}; wait for it to "
                            "finish, or use another --model_dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"PID {os.getpid()} on host {socket.gethostname()}\n".encode())
        self._lock_fd = fd

    def has_checkpoint(self) -> bool:
        return any(self.path.glob("*/ckpt-*.npz"))

    def close(self, failed: bool = False) -> None:
        """Releases the lock; after a failed run that wrote no checkpoint, removes the
        directory if this run created it."""
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                (self.path / LOCK_NAME).unlink()
            os.close(self._lock_fd)
            self._lock_fd = None
        if failed and self.created and not self.has_checkpoint():
            shutil.rmtree(self.path, ignore_errors=True)
            self.created = False

    def __enter__(self) -> "ModelDir":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        # Ctrl-C after a checkpoint keeps the directory (has_checkpoint); before one there is
        # nothing to resume.
        self.close(failed=exc_type is not None)
