"""A session fixture's directory built once per test run, not once per pytest-xdist worker.

Each xdist worker has its own session, so a session fixture that trains a model would train
it in every worker that runs a file using it (each training costs tens of seconds of
tracing). `built_once` builds the directory in the first worker that asks for it, under a
lock in the run's shared temporary folder; the other workers wait for it and reuse it. The
fixtures that use it hand out directories that the tests only read (they copy them first).
"""

import fcntl
import os
import pathlib
import shutil


def built_once(tmp_path_factory, name, build, leaf="model"):
    """The directory `<folder name>/<leaf>`, filled by `build(path)` in one worker of the run.

    Args:
        tmp_path_factory: pytest's session `tmp_path_factory`.
        name: the name of the directory's folder, unique among the run's shared fixtures.
        build: called with the (not yet existing) directory's path to create and fill it; it
            raises or asserts if that fails.
        leaf: the directory's own name.

    Returns:
        The directory's `pathlib.Path`.
    """
    if "PYTEST_XDIST_WORKER" not in os.environ:  # one process: an ordinary session fixture
        path = tmp_path_factory.mktemp(name) / leaf
        build(path)
        return path
    # The workers' base temporary folders (.../pytest-N/popen-gwK) share this parent.
    root = pathlib.Path(tmp_path_factory.getbasetemp()).parent / "built_once"
    root.mkdir(exist_ok=True)
    path, done = root / name / leaf, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not done.exists():
            # A worker whose build failed leaves no marker: build again (and fail the same
            # way) rather than hand out a partial directory.
            shutil.rmtree(path.parent, ignore_errors=True)
            path.parent.mkdir()
            build(path)
            done.touch()
    return path


def trained_once(tmp_path_factory, name, run_tool, module, *flags, leaf="model"):
    """`built_once` for a directory that one CLI run fills: `run_tool(module,
    --model_dir=<dir>, *flags)`, which must exit 0 (else its stderr's tail fails the test).

    Args:
        tmp_path_factory: pytest's session `tmp_path_factory`.
        name: the name of the directory's folder, unique among the run's shared fixtures.
        run_tool: the app's test helper that runs `python -m module *args`.
        module: the CLI module, e.g. "translate.train".
        *flags: its flags besides --model_dir.
        leaf: the directory's own name.

    Returns:
        The directory's `pathlib.Path`.
    """
    def build(path):
        result = run_tool(module, f"--model_dir={path}", *flags)
        assert result.returncode == 0, result.stderr[-3000:]

    return built_once(tmp_path_factory, name, build, leaf=leaf)
