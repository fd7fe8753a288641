"""PPO under tf.distribute: two replicas update like one, two workers stay in sync.

Run as a script (`python test_attn_agents_distributed.py STRATEGY OUT.npz`), this file does
one PPO update on a fixed synthetic batch under STRATEGY and saves the weights: logical CPU
devices for `mirrored` must be set up before TensorFlow starts, so that runs in a subprocess.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHUNKS, MEMORY, CHUNK_LENGTH = 8, 2, 2  # 8 chunks of 1 + 2 steps (1 memory prefix step)
TINY = ["--env_id=CartPole-v1", "--num_envs=4", "--num_steps=16", "--update_epochs=2",
        "--num_minibatches=2", "--policy=mlp", "--d_model=16", "--eval_episodes=2",
        "--noprogress", "--seed=3"]


def _synthetic_batch():
    """Fixed rollout tensors: C = 8 chunks of P + L = 3 observation steps, L = 2 queries."""
    rng = np.random.default_rng(0)
    steps = MEMORY - 1 + CHUNK_LENGTH
    shape = (CHUNKS, CHUNK_LENGTH)
    # Advantages of different means and scales in the two halves of every minibatch, so
    # per-replica normalization would differ from the global one.
    advantages = rng.normal(size=shape) * np.where(np.arange(CHUNKS) % 2, 3.0, 0.5)[:, None]
    return {
        "obs": rng.normal(size=(CHUNKS, steps, 3)).astype(np.float32),
        "starts": rng.random((CHUNKS, steps)) < 0.3,
        "actions": rng.integers(0, 2, shape),
        "log_probs": np.log(rng.uniform(0.3, 0.7, shape)).astype(np.float32),
        "values": rng.normal(size=shape).astype(np.float32),
        "advantages": (advantages + 2.0).astype(np.float32),
        "returns": rng.normal(size=shape).astype(np.float32),
    }


def one_update(strategy_name):
    """One PPO update (2 epochs x 2 minibatches of 4 chunks) under `strategy_name`.

    Returns:
        dict of NumPy arrays: `before` and `after` (the weights, concatenated), `terms`
        (the last minibatch's loss terms), `epochs` and `replicas`.
    """
    from attn_core.strategy import make_strategy

    dist = make_strategy(strategy_name, cpu_devices=2 if strategy_name == "mirrored" else 0)
    import gymnasium as gym
    import keras
    import tensorflow as tf

    from attn_agents.actor_critic import ActorCritic
    from attn_agents.policy_config import PolicyConfig
    from attn_agents.ppo_config import PPOConfig
    from attn_agents.ppo_trainer import LOSS_TAGS, make_minibatch_step, make_optimizer, run_update
    from attn_core import checkpoint

    # A small max_grad_norm, so that the clipping of the global gradient is exercised.
    pc = PPOConfig(num_minibatches=2, update_epochs=2, learning_rate=1e-2, norm_adv=True,
                   max_grad_norm=0.05, target_kl=1e9, chunk_length=CHUNK_LENGTH)
    keras.utils.set_random_seed(0)
    with dist.scope():
        model = ActorCritic(PolicyConfig(policy="mlp", d_model=16, memory=MEMORY),
                            gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2))
        optimizer = make_optimizer(pc, dist)
        checkpoint.build_optimizer(optimizer, model)
    flat = lambda: np.concatenate([np.ravel(keras.ops.convert_to_numpy(v))  # noqa: E731
                                   for v in model.trainable_variables])
    before = flat()
    data = {k: tf.constant(v) for k, v in _synthetic_batch().items()}
    orders = np.stack([np.random.default_rng(e).permutation(CHUNKS) for e in range(2)])
    step = make_minibatch_step(model, optimizer, pc, CHUNK_LENGTH, dist)
    update = tf.function(lambda d, o: run_update(step, d, o, pc.num_minibatches, pc.target_kl),
                         autograph=False)  # as the trainer's
    terms, epochs = update(data, tf.constant(orders.reshape(4, CHUNKS // 2), tf.int32))
    return {"before": before, "after": flat(), "epochs": np.asarray(int(epochs)),
            "terms": np.asarray([float(terms[k]) for k in ("loss", *LOSS_TAGS)]),
            "replicas": np.asarray(dist.num_replicas_in_sync)}


def test_one_update_on_two_replicas_equals_one_replica_on_the_global_batch(tmp_path):
    """Mirrored over 2 logical CPUs (each replica gets half of every minibatch) vs default.

    Global advantage normalization, the summed gradients' clipping and the 1/replicas loss
    scale make the two updates the same function of the batch; only float32 summation order
    differs (per-replica partial sums, float64 moments, the all-reduce). Those rounding
    differences (~1e-7 relative) pass through Adam, whose step g / (|g| + 1e-5) amplifies an
    absolute gradient error by up to lr / eps = 1e3, over 4 steps. The weights (of order
    0.1-1) moved by up to 3e-2 and differ by about 1e-7 when this was written; atol 2e-5
    leaves room for other CPUs' rounding, while normalizing the advantages per replica or
    letting Keras clip each replica's gradients missed by 2.6e-2 and 3.3e-2.
    """
    out = tmp_path / "mirrored.npz"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "",
           "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen([sys.executable, __file__, "mirrored", str(out)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    single = one_update("default")  # meanwhile, in this process
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    mirrored = dict(np.load(out))
    assert int(mirrored["replicas"]) == 2 and int(single["replicas"]) == 1
    np.testing.assert_array_equal(mirrored["before"], single["before"])  # same init
    assert int(mirrored["epochs"]) == int(single["epochs"]) == 2
    assert np.abs(single["after"] - single["before"]).max() > 1e-3  # it did train
    np.testing.assert_allclose(mirrored["after"], single["after"], rtol=0, atol=2e-5)
    np.testing.assert_allclose(mirrored["terms"], single["terms"], rtol=1e-4, atol=1e-6)


def _fingerprint(stdout):
    lines = [line for line in stdout.splitlines() if line.startswith("weights fingerprint: ")]
    assert len(lines) == 1, stdout
    return lines[0].split(": ")[1]


def test_two_workers_stay_in_sync_resume_and_only_the_chief_writes(tmp_path, run_two_workers):
    model_dir = tmp_path / "shared"  # not created: the chief creates it

    def args(*extra):
        return lambda index: ["--strategy=multi_worker", f"--model_dir={model_dir}",
                              "--total_timesteps=128", *TINY, *extra]

    first = run_two_workers("attn_agents.train", args())  # 2 updates of 4 x 16 steps
    fingerprint = _fingerprint(first[0].stdout)
    assert _fingerprint(first[1].stdout) == fingerprint
    assert "worker 1 of 2: 2 envs" in first[1].stdout
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert (metrics["replicas"], metrics["env_steps"], metrics["updates"]) == (2, 128, 2)
    assert metrics["eval_episodes"] == 2
    # Only the chief wrote: one event file, the checkpoint, the configs and the metrics.
    files = sorted(str(p.relative_to(model_dir)) for p in model_dir.rglob("*") if p.is_file())
    events = [f for f in files if f.startswith("events.out.tfevents.")]
    assert len(events) == 1, files
    assert sorted(set(files) - set(events)) == [
        "agent_config.json", "checkpoints/checkpoint.json", "checkpoints/ckpt-00000002.json",
        "checkpoints/ckpt-00000002.npz", "metrics.json"]

    # Both workers resume from the chief's checkpoint (nothing left to train): same weights.
    second = run_two_workers("attn_agents.train", args("--eval_episodes=0"))
    for result in second:
        assert "resumed from update 2 (step 128)" in result.stdout, result.stdout
        assert _fingerprint(result.stdout) == fingerprint


def test_multi_worker_without_tf_config_is_an_env_error(tmp_path, monkeypatch):
    """Shown by attn_agents.train as one line with exit status 2, like every EnvError."""
    from attn_agents.env_config import EnvConfig
    from attn_agents.env_error import EnvError
    from attn_agents.policy_config import PolicyConfig
    from attn_agents.ppo_config import PPOConfig
    from attn_agents.ppo_trainer import train_and_evaluate
    from attn_core.flags import CommonConfig

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(EnvError, match="Expected the TF_CONFIG environment variable"):
        train_and_evaluate(EnvConfig(), PolicyConfig(), PPOConfig(),
                           CommonConfig(strategy="multi_worker"), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_num_envs_must_split_evenly_between_workers():
    import tensorflow as tf

    from attn_agents.env_error import EnvError
    from attn_agents.workers import worker_share

    class FakeMultiWorker:  # what worker_info reads of a MultiWorkerMirroredStrategy
        cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec({"worker": ["a:1", "b:1"]}), task_type="worker", task_id=1)

    share = worker_share(6, FakeMultiWorker())
    assert (share.index, share.count, share.num_envs, share.env_seed_offset) == (1, 2, 3, 3)
    assert not share.chief
    with pytest.raises(EnvError, match=r"--num_envs .* multiple of the 2 workers.*num_envs=3"):
        worker_share(3, FakeMultiWorker())
    assert worker_share(3, tf.distribute.get_strategy()).num_envs == 3


if __name__ == "__main__":
    np.savez(sys.argv[2], **one_update(sys.argv[1]))
