"""translate.train under tf.distribute: global batches split over the replicas, two workers
that stay in sync (only the chief writes), and one step on two replicas that is the
single-process step on the same global batch."""

import json
import os
import pathlib
import re
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

from attn_core.checkpoint import CheckpointManager
from attn_core.flags import CommonConfig
from translate import builtin_corpus
from translate.data_error import DataError
from translate.input_pipeline import make_dataset, smallest_batch, split_batches
from translate.model_config import ModelConfig
from translate.tokenizer import Tokenizer
from translate.train_config import TrainConfig

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The tiny configuration of test_translate_train, without dropout (a replica's dropout masks
# are not the single process's) and with a clip norm below the first gradient's (~0.36), so
# that the gradient clipping is part of the comparison.
TINY = ["--architecture=rnn", "--train_size=200", "--dev_size=8", "--test_size=8",
        "--units=32", "--embedding_dim=16", "--num_layers=1", "--dropout=0", "--clip_norm=0.1",
        "--tokens_per_batch=256",
        "--eval_every=1", "--warmup_steps=1", "--decay_steps=10", "--dev_eval_sentences=8",
        "--time_budget_minutes=0"]
TIMEOUT = 900  # seconds a run may take on a machine busy with other work
FINGERPRINT = re.compile(r"^weights fingerprint: ([0-9a-f]{16})$", re.MULTILINE)


def test_split_batches_gives_every_row_to_exactly_one_replica():
    rows = tf.data.Dataset.from_tensor_slices([7, 3, 5, 4]).map(
        lambda n: {"source": tf.reshape(tf.range(n * 2), (n, 2)), "target": tf.range(n)[:, None]})
    for num_parts, first, count in [(2, 0, 2), (3, 0, 3), (3, 1, 2), (4, 2, 1)]:
        parts = list(split_batches(rows, num_parts, first, count).as_numpy_iterator())
        assert len(parts) == 4 * count
        for b, n in enumerate([7, 3, 5, 4]):
            mine = parts[b * count:(b + 1) * count]
            sizes = [len(p["target"]) for p in mine]
            bounds = [i * n // num_parts for i in range(num_parts + 1)]
            assert sizes == [bounds[i + 1] - bounds[i] for i in range(first, first + count)]
            got = np.concatenate([p["target"][:, 0] for p in mine])
            np.testing.assert_array_equal(got, np.arange(bounds[first], bounds[first + count]))
            assert all(p["source"].shape[1] == 2 for p in mine)  # the batch's padded width
    assert split_batches(rows, 1) is rows
    with pytest.raises(ValueError, match="first \\+ count <= num_parts"):
        split_batches(rows, 2, 1, 2)


def test_smallest_batch_is_that_of_the_longest_pairs():
    src, tgt = [[5] * 3, [5] * 19, [6] * 7], [[5] * 4, [6] * 2, [7] * 9]
    assert smallest_batch(src, tgt, 100) == (5, 20)  # 19 tokens + EOS; 100 // 20
    dataset = make_dataset(src * 20, tgt * 20, 100, shuffle=False, repeat=True)
    sizes = [len(b["target"]) for b in dataset.take(12).as_numpy_iterator()]
    assert min(sizes) == 5 and max(sizes) > 5


def test_a_batch_too_small_for_the_replicas_is_a_clear_error(tmp_path):
    from translate.trainer import train_and_evaluate

    data = builtin_corpus.builtin_corpus("en-fr", train_size=50, dev_size=2, test_size=2, seed=1)
    src = Tokenizer.fit([s for s, _ in data.train], "en")
    tgt = Tokenizer.fit([t for _, t in data.train], "fr")
    config = ModelConfig(src_vocab_size=src.vocab_size, tgt_vocab_size=tgt.vocab_size)
    longest = 1 + max(len(ids) for ids in src.encode_batch([s for s, _ in data.train])
                      + tgt.encode_batch([t for _, t in data.train]))
    four_replicas = types.SimpleNamespace(num_replicas_in_sync=4)  # checked before use
    with pytest.raises(DataError, match=f"cannot be split over 4 replicas.*>= {4 * longest}"):
        train_and_evaluate(data, (src, tgt), config, TrainConfig(tokens_per_batch=3 * longest),
                           CommonConfig(), tmp_path, log=lambda line: None, dist=four_replicas)


def _train_command(model_dir, steps, *flags):
    return [sys.executable, "-m", "translate.train", f"--model_dir={model_dir}",
            f"--max_steps={steps}", *TINY, *flags]


@pytest.fixture(scope="module")
def one_step_runs(tmp_path_factory):
    """One step, single process and mirrored over 2 logical CPUs, started in the background
    (each needs a fresh interpreter: the CPU is split before TensorFlow starts) so that they
    run beside the two-worker test. Call it with a name to wait for that run's directory."""
    root = tmp_path_factory.mktemp("one_step")
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env |= {"CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    runs = {"default": [], "mirrored": ["--strategy=mirrored", "--cpu_devices=2"]}
    procs = {}
    for name, flags in runs.items():
        with open(root / f"{name}.out", "w") as out, open(root / f"{name}.err", "w") as err:
            procs[name] = subprocess.Popen(_train_command(root / name, 1, *flags), cwd=ROOT,
                                           env=env, stdout=out, stderr=err)

    def wait(name):
        returncode = procs[name].wait(timeout=TIMEOUT)
        err = (root / f"{name}.err").read_text()
        assert returncode == 0, f"{name} run failed:\n{err[-3000:]}"
        return root / name, (root / f"{name}.out").read_text()

    yield wait
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _arrays(model_dir, step):
    """The saved weights and Adam moments of checkpoint `step`: (names, arrays)."""
    manager = CheckpointManager(model_dir / "checkpoints", read_only=True)
    names, arrays = [], []
    with np.load(manager.checkpoint_path(step)) as saved:
        for group in ("model", "optimizer"):
            paths = [str(p) for p in saved[f"{group}/__paths__"]]
            names += [f"{group}/{path}" for path in paths]
            arrays += [saved[f"{group}/{i:05d}"] for i in range(len(paths))]
    return names, arrays


def _assert_same_step(model_dir, reference_dir, step=1):
    """The checkpoint holds the weights and Adam's moments (m = 0.1 g, v = 0.02 g^2 after a
    step), so it compares the gradients themselves, not only Adam's first update, which moves
    every weight by about ±learning rate whatever the gradient's scale.

    Tolerance: the replicas' sums run in another order (float32, ~250 tokens, backprop
    through the GRU) and oneDNN picks kernels by batch size, which changes the last bits
    (float32 rounding, around 1e-7 here). rtol=1e-4, atol=1e-6 is far above that and still
    catches a per-replica token mean or per-replica clipping, which are off by the replicas'
    token imbalance (percents)."""
    names, arrays = _arrays(model_dir, step)
    ref_names, reference = _arrays(reference_dir, step)
    assert names == ref_names
    for name, array, expected in zip(names, arrays, reference, strict=True):
        np.testing.assert_allclose(array, expected, rtol=1e-4, atol=1e-6, err_msg=name)


def test_two_workers_stay_in_sync_and_only_the_chief_writes(run_two_workers, tmp_path,
                                                            one_step_runs):
    # The one-step runs (the fixture) train meanwhile, in the background.
    shared = tmp_path / "model"  # created by the chief: the other may start first
    results = run_two_workers("translate.train", lambda index: [
        f"--model_dir={shared}", "--strategy=multi_worker", "--max_steps=2", *TINY],
        timeout=TIMEOUT)
    prints = [FINGERPRINT.findall(result.stdout) for result in results]
    assert len(prints[0]) == 1 and prints[0] == prints[1], prints
    assert all("2 replica(s)" in result.stdout for result in results)
    metrics = json.loads((shared / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["train_steps"] == 2 and "bleu" in metrics
    # One writer: one events file (its name carries the writer's pid), and only the chief
    # decoded (at steps 1 and 2) and saved.
    assert len(list(shared.glob("events.out.tfevents.*"))) == 1
    assert [result.stdout.count("dev BLEU") for result in results] == [2, 0]
    assert CheckpointManager(shared / "checkpoints", read_only=True).steps == [1, 2]
    # The first step of the two workers is the single-process step on the same batch.
    _assert_same_step(shared, one_step_runs("default")[0])


def test_one_step_on_two_replicas_is_the_single_process_step(one_step_runs):
    reference, _ = one_step_runs("default")
    mirrored, out = one_step_runs("mirrored")
    assert json.loads((mirrored / "metrics.json").read_text())["replicas"] == 2
    assert "2 replica(s)" in out
    _assert_same_step(mirrored, reference)
