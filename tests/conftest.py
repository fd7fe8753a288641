"""Shared fixtures: the global dtype policy is restored after every test; TensorFlow runs its
graphs without Grappler, and its test processes without the cyclic garbage collector."""

import os
import signal

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# A shell starts background jobs (`cmd &`, nohup) with Ctrl-C ignored, and children inherit
# that. attn_core.interrupt leaves an ignored SIGINT alone, as Python does, so the Ctrl-C
# tests need it back: with a handler here, every process the tests start gets the default.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import keras  # noqa: E402
import pytest  # noqa: E402

if keras.backend.backend() == "tensorflow":
    import tensorflow as tf

    # Grappler's graph rewrites pay off over thousands of steps; a test runs a few, so
    # optimizing each new graph cost more than it saved. (Processes the tests start keep it.)
    tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})

    # No cyclic garbage collection in a TensorFlow test process. In the xdist suite a
    # collection that frees the models, datasets and functions of earlier tests can wait for
    # tens of seconds without computing, in whichever test triggers it. With the collector off
    # those waits are gone; the objects in reference cycles stay until the worker exits.
    import gc

    gc.disable()


@pytest.fixture(autouse=True)
def _restore_dtype_policy():
    previous = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(previous)


def _run_functions_eagerly():
    import tensorflow as tf

    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


@pytest.fixture
def eager_functions():
    """Runs every `tf.function` eagerly during the test (TensorFlow backend).

    For tests of what one or two steps compute (each attention variant, each precision
    policy), not of how they trace: tracing a tiny train step costs seconds per model,
    running one or two steps eagerly a fraction of that. (A decoding loop over many
    sentences is faster traced.) The graph path is tested by the end-to-end runs, and every
    score layer is tested under XLA in tests/layers.
    """
    yield from _run_functions_eagerly()


@pytest.fixture(scope="module")
def eager_module():
    """`eager_functions` for a whole module, its module-scoped fixtures included (request
    it with `pytestmark = pytest.mark.usefixtures("eager_module")`)."""
    yield from _run_functions_eagerly()


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.fixture
def run_two_workers():
    """Runs `python -m module` as the two workers of a MultiWorkerMirroredStrategy cluster.

    Call it as `run_two_workers(module, args_for_worker)`, where `args_for_worker(index)`
    returns the command-line arguments of worker `index` (0 is the chief). Both processes
    get `TF_CONFIG` for a cluster on 127.0.0.1 and no GPU. Returns the two
    `subprocess.CompletedProcess`es (text stdout/stderr), after asserting both exited with 0.
    """
    import json
    import pathlib
    import subprocess
    import sys

    root = pathlib.Path(__file__).resolve().parents[1]

    def run(module, args_for_worker, timeout=300):
        workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
        procs = []
        for index in range(2):
            tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "CUDA_VISIBLE_DEVICES": "",
                   "PYTHONPATH": str(root), "TF_CPP_MIN_LOG_LEVEL": "3"}
            procs.append(subprocess.Popen(
                [sys.executable, "-m", module, *args_for_worker(index)], cwd=root, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        results = []
        try:
            for proc in procs:
                out, err = proc.communicate(timeout=timeout)
                results.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
        for index, result in enumerate(results):
            assert result.returncode == 0, f"worker {index} failed:\n{result.stderr[-3000:]}"
        return results

    return run


@pytest.fixture(scope="module")
def chromium():
    """Headless Chromium under Selenium (`attn_core.dashboard.browser.chrome`), one per test
    module; the module's tests using it are skipped, with the reason, if Chromium,
    chromedriver or Selenium is not installed."""
    from attn_core.dashboard import browser

    reason = browser.browser_missing()
    if reason is not None:
        pytest.skip(f"browser tests need Chromium: {reason}")
    driver = browser.chrome(1280, 1000)
    yield driver
    driver.quit()


# The files that take longest, longest first (from a full run with `--durations=0`,
# 2026-12-01). dev.sh hands whole files to two workers in collection order
# (`--dist loadfile --no-loadscope-reorder`); xdist's own order, most tests first, left the
# heavy files with few tests (translate_cache: 7 tests) to the end, where one worker ran them
# while the other idled. Longest first lets the short files fill in at the end.
SLOWEST_FILES = [
    "translate/test_translate_cli.py", "translate/test_translate_train.py",
    "translate/test_translate_cache.py", "attn_agents/test_attn_agents_train.py",
    "gan/test_gan_cli.py", "gan/test_gan_training.py",
    "translate/test_translate_distributed.py", "layers/test_attention_rnn_cell.py",
    "attn_agents/test_attn_agents_algorithms.py", "translate/test_translate_ensemble.py",
    "gan/test_gan_models.py", "gan/test_gan_distributed.py",
    "attn_agents/test_attn_agents_cli.py", "attn_agents/test_attn_agents_popgym.py",
    "attn_agents/test_attn_agents_precision.py", "helpers/test_strategy.py",
    "layers/test_chunked_attention.py", "attn_agents/test_attn_agents_distributed.py",
    "test_demo.py", "attn_agents/test_attn_agents_memory.py",
]


def pytest_collection_modifyitems(config, items):
    """Orders the files longest first (`SLOWEST_FILES`; the others keep their order after
    them). dev.sh runs the JAX pass on tests/layers only: a backend_neutral test elsewhere
    would silently never run on JAX, so it fails the collection instead."""
    import pathlib

    here = pathlib.Path(__file__).parent
    rank = {name: i for i, name in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(
        pathlib.Path(item.path).relative_to(here).as_posix(), len(rank)))  # stable
    layers = here / "layers"
    stray = [item.nodeid for item in items if item.get_closest_marker("backend_neutral")
             and layers not in pathlib.Path(item.path).parents]
    if stray:
        raise pytest.UsageError(f"backend_neutral tests must be under tests/layers: {stray[:3]}")
