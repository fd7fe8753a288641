"""One rollout and update on CartPole for each policy, outputs, resume and reproducibility."""

import json

import numpy as np
import pytest

from attn_agents.env_config import EnvConfig
from attn_agents.policy_config import PolicyConfig
from attn_agents.ppo_config import PPOConfig
from attn_core.flags import CommonConfig

TINY_POLICY = {"d_model": 16, "num_heads": 2, "ff_dim": 16}
ONE_UPDATE = PPOConfig(total_timesteps=64, num_steps=16, update_epochs=2, num_minibatches=2,
                       chunk_length=8, eval_episodes=2, checkpoint_every=1)


def _train(workdir, policy="attention", env=None, ppo=ONE_UPDATE, seed=0, **policy_kwargs):
    from attn_agents.ppo_trainer import train_and_evaluate

    lines = []
    env = env or EnvConfig(num_envs=4)
    common = CommonConfig(seed=seed)
    metrics = train_and_evaluate(env, PolicyConfig(policy=policy, **(TINY_POLICY | policy_kwargs)),
                                 ppo, common, workdir, log=lines.append, verbose=0)
    return metrics, lines


@pytest.mark.parametrize("policy, memory", [("attention", 0), ("mlp", 0), ("attention", 4)],
                         ids=["attention", "mlp", "attention_memory"])
def test_one_rollout_and_update_on_cartpole(tmp_path, policy, memory):
    env = EnvConfig(num_envs=4, mask_velocity=bool(memory), normalize_obs=True,
                    normalize_reward=True)
    metrics, _ = _train(tmp_path, policy, env=env, memory=memory)
    assert metrics["env_steps"] == 64 and metrics["updates"] == 1
    assert metrics["policy"] == policy and metrics["eval_episodes"] == 2
    for key in ("eval_mean_return", "eval_std_return", "steps_per_second", "env_id",
                "replicas"):
        assert key in metrics
    assert metrics["eval_mean_return"] >= 8  # CartPole lasts at least 8 steps
    # The phases are timed inside the training time (the rest: summaries, checkpoints).
    assert 0 < metrics["rollout_seconds"] and 0 < metrics["update_seconds"]
    assert metrics["rollout_seconds"] + metrics["update_seconds"] <= metrics["train_seconds"]
    assert json.loads((tmp_path / "metrics.json").read_text())["env_steps"] == 64
    assert list(tmp_path.glob("events.out.tfevents.*"))
    assert (tmp_path / "checkpoints" / "checkpoint.json").exists()
    assert json.loads((tmp_path / "agent_config.json").read_text())["policy"]["memory"] == memory


def test_tensorboard_tags_and_resume(tmp_path):
    import dataclasses

    import tensorflow as tf

    _train(tmp_path)
    metrics, lines = _train(tmp_path, ppo=dataclasses.replace(ONE_UPDATE, total_timesteps=128))
    assert "resumed from update 1 (step 64)" in lines
    assert "resuming with --total_timesteps=128 (was 64)" in lines  # the schedule may change
    assert metrics["env_steps"] == 128 and metrics["updates"] == 2
    tags = set()
    for path in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    expected = {"charts/SPS", "losses/policy", "losses/value", "losses/entropy",
                "losses/approx_kl", "losses/clipfrac", "hyperparameters", "charts/loss_scale",
                "charts/skipped_steps"}
    assert expected <= tags, expected - tags


def test_same_seed_same_run(tmp_path):
    a, _ = _train(tmp_path / "a", policy="mlp", seed=3)
    b, _ = _train(tmp_path / "b", policy="mlp", seed=3)
    assert a["eval_mean_return"] == b["eval_mean_return"]
    la = json.loads((tmp_path / "a" / "checkpoints" / "ckpt-00000001.json").read_text())
    lb = json.loads((tmp_path / "b" / "checkpoints" / "ckpt-00000001.json").read_text())
    assert la["extra_state"]["rng"] == lb["extra_state"]["rng"]
    wa = np.load(tmp_path / "a" / "checkpoints" / "ckpt-00000001.npz")
    wb = np.load(tmp_path / "b" / "checkpoints" / "ckpt-00000001.npz")
    for key in wa.files:
        if not key.endswith("__paths__"):  # the optimizer paths hold an instance counter
            np.testing.assert_array_equal(wa[key], wb[key])


def test_anneal_clip_decays_the_clip_with_the_learning_rate(tmp_path):
    import dataclasses

    import tensorflow as tf

    ppo = dataclasses.replace(ONE_UPDATE, total_timesteps=192, anneal_clip=True)
    metrics, _ = _train(tmp_path, policy="mlp", ppo=ppo)
    assert metrics["updates"] == 3
    logged = {}
    for path in tmp_path.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag in ("charts/clip_coef", "charts/learning_rate"):
                    logged.setdefault(value.tag, []).append(
                        float(tf.make_ndarray(value.tensor)))
    np.testing.assert_allclose(logged["charts/clip_coef"], [0.2, 0.2 * 2 / 3, 0.2 / 3],
                               rtol=1e-6)
    np.testing.assert_allclose(logged["charts/learning_rate"], [1e-3, 1e-3 * 2 / 3, 1e-3 / 3],
                               rtol=1e-6)
