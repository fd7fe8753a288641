"""Seeding and run-directory helpers shared by the training entry points."""

import datetime
import pathlib
import random
from collections.abc import Sequence

import keras
import numpy as np


def set_seeds(seed: int) -> None:
    """Seeds Python's `random`, NumPy's global generator and the Keras backend.

    Args:
        seed: A non-negative integer below `2**32`.

    Raises:
        ValueError: If `seed` is not such an integer.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or not 0 <= seed < 2**32:
        raise ValueError(f"Expected `seed` to be an integer in [0, 2**32). Received: seed={seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 -- seeding the legacy global generator is the point.
    keras.utils.set_random_seed(seed)


def make_run_dir(
    root: str | pathlib.Path,
    name_parts: Sequence[object],
    now: datetime.datetime | None = None,
) -> pathlib.Path:
    """Creates a fresh CleanRL-style run directory `<root>/<part1>__<part2>__...__<UTC time>`.

    For example `make_run_dir("runs", ["CartPole-v1", "ppo", 1])` creates
    `runs/CartPole-v1__ppo__1__20240131-235959`. If that directory already exists (two runs in
    the same second) a `-1`, `-2`, ... suffix is added.

    Args:
        root: Parent directory; created if missing.
        name_parts: Non-empty sequence of name components (e.g. env, experiment, seed);
            each is converted with `str()` and must not be empty or contain a path separator.
        now: Timestamp to use instead of the current UTC time (for tests).

    Returns:
        The path of the new, empty directory.

    Raises:
        ValueError: If `name_parts` is empty or a part is empty or contains `/` or `\\`.
    """
    parts = [str(part) for part in name_parts]
    if not parts or any(not p or "/" in p or "\\" in p for p in parts):
        raise ValueError(
            "Expected `name_parts` to be a non-empty list of non-empty names without path "
            f"separators. Received: name_parts={list(name_parts)!r}"
        )
    now = now or datetime.datetime.now(datetime.UTC)
    base = "__".join([*parts, now.strftime("%Y%m%d-%H%M%S")])
    root = pathlib.Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        path = root / (base if attempt == 0 else f"{base}-{attempt}")
        try:
            path.mkdir()
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"Could not create a unique run directory for {root / base}")


def resolve_workdir(workdir: str | pathlib.Path) -> pathlib.Path:
    """Creates (if needed) an explicit, reusable work directory, e.g. from `--workdir`.

    Unlike `make_run_dir`, the same path is reused across restarts so that training can resume
    from the checkpoints inside it.

    Args:
        workdir: Directory path; `~` is expanded.

    Returns:
        The absolute path of the existing directory.

    Raises:
        ValueError: If `workdir` is empty or names an existing non-directory.
    """
    if workdir is None or not str(workdir):
        raise ValueError(
            f"Expected `workdir` to be a non-empty path. Received: workdir={workdir!r}"
        )
    path = pathlib.Path(workdir).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(
            f"Expected `workdir` to be a directory. Received: workdir={str(workdir)!r} (a file)"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path
