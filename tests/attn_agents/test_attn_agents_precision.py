"""PPO under mixed precision: the same first losses as float32, finite updates, resume."""

import json

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_agents.env_config import EnvConfig
from attn_agents.policy_config import PolicyConfig
from attn_agents.ppo_config import PPOConfig
from attn_core import checkpoint, precision
from attn_core.flags import CommonConfig

OBS, ACTIONS = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2)
MEMORY_CHUNK = 2  # with memory 3: chunks of 2 earlier steps + 2 query steps
KEYS = ("loss", "policy", "value", "entropy", "approx_kl", "clipfrac")


def _batch(memory, chunks=8):
    """Fixed rollout tensors: `chunks` chunks of P + L steps, L = 2 with memory, else 1."""
    rng = np.random.default_rng(0)
    length = MEMORY_CHUNK if memory else 1
    steps = max(memory - 1, 0) + length
    shape = (chunks, length)
    return {"obs": tf.constant(rng.normal(size=(chunks, steps, 3)), tf.float32),
            "starts": tf.constant(rng.random((chunks, steps)) < 0.2),
            "actions": tf.constant(rng.integers(0, 2, shape)),
            "log_probs": tf.constant(np.log(rng.uniform(0.3, 0.7, shape)), tf.float32),
            **{k: tf.constant(rng.normal(size=shape), tf.float32)
               for k in ("values", "advantages", "returns")}}


def _first_terms_and_update(policy_name, memory, weights=None):
    """The terms of a first minibatch step, then 3 more steps: `(terms, weights, skipped)`."""
    from attn_agents.actor_critic import ActorCritic
    from attn_agents.ppo_trainer import make_minibatch_step, make_optimizer, run_update

    dist = tf.distribute.get_strategy()
    with precision.precision_policy(policy_name):
        keras.utils.set_random_seed(0)
        model = ActorCritic(PolicyConfig(d_model=16, num_heads=2, ff_dim=16, memory=memory),
                            OBS, ACTIONS)
        if weights is not None:
            model.set_weights(weights)
        pc = PPOConfig(num_minibatches=2, update_epochs=2, chunk_length=MEMORY_CHUNK)
        optimizer = make_optimizer(pc, dist, policy_name)
        checkpoint.build_optimizer(optimizer, model)
        step = make_minibatch_step(model, optimizer, pc, MEMORY_CHUNK if memory else 1, dist)
        data = _batch(memory)
        first = {k: float(v) for k, v in step(data, tf.range(4)).items()}
        orders = np.stack([np.random.default_rng(e).permutation(8) for e in range(2)])
        terms, _ = run_update(step, data, tf.constant(orders.reshape(4, 4), tf.int32), 2, 0.0)
        after = [np.asarray(v, np.float32) for v in model.get_weights()]
    return first, after, int(terms["skipped_steps"]) + int(first["skipped"])


@pytest.mark.parametrize("memory", [0, 3], ids=["no_memory", "memory"])
def test_first_losses_under_mixed_precision_are_close_to_float32(memory):
    reference, weights, skipped = _first_terms_and_update("float32", memory)
    assert skipped == 0
    from attn_agents.actor_critic import ActorCritic

    keras.utils.set_random_seed(0)
    initial = ActorCritic(PolicyConfig(d_model=16, num_heads=2, ff_dim=16, memory=memory),
                          OBS, ACTIONS).get_weights()
    for policy_name, tolerance in (("mixed_float16", 1e-2), ("mixed_bfloat16", 5e-2)):
        first, after, skipped = _first_terms_and_update(policy_name, memory, initial)
        for key in KEYS:
            np.testing.assert_allclose(first[key], reference[key], rtol=tolerance,
                                       atol=tolerance, err_msg=f"{policy_name} {key}")
        assert all(np.isfinite(w).all() for w in after), policy_name
        assert skipped < 5  # float16 may skip its first steps while the scale settles
        moved = max(np.abs(a - b).max() for a, b in zip(after, initial, strict=True))
        assert moved > 0, policy_name


def _train(model_dir, policy_name, total_timesteps, log, eval_episodes=0):
    from attn_agents.ppo_trainer import train_and_evaluate

    return train_and_evaluate(
        EnvConfig(num_envs=2, mask_velocity=True),
        PolicyConfig(d_model=16, num_heads=2, ff_dim=16, memory=3),
        PPOConfig(total_timesteps=total_timesteps, num_steps=16, chunk_length=8,
                  update_epochs=2, checkpoint_every=1, eval_episodes=eval_episodes),
        CommonConfig(precision=policy_name), model_dir, log=log.append, verbose=0)


def test_training_with_memory_under_mixed_precision_and_resume(tmp_path):
    """The acting cache, the loss scale and the checkpoint under float16, then a resume
    under bfloat16 (the checkpoint holds the inner optimizer, whatever the precision)."""
    log = []
    metrics = _train(tmp_path, "mixed_float16", 32, log)
    assert "precision: mixed_float16" in log
    assert metrics["precision"] == "mixed_float16" and metrics["updates"] == 1
    saved = json.loads((tmp_path / "agent_config.json").read_text())
    assert saved["run"]["precision"] == "mixed_float16"
    state = json.loads((tmp_path / "checkpoints" / "ckpt-00000001.json").read_text())
    scale = state["extra_state"]["loss_scale"]
    assert 0 < scale <= 2.0**15
    assert state["extra_state"]["skipped_steps"] == metrics["skipped_steps"] == round(
        np.log2(2.0**15 / scale))  # each skipped step halved the scale
    log.clear()
    metrics = _train(tmp_path, "mixed_bfloat16", 64, log, eval_episodes=1)
    assert "resumed from update 1 (step 32)" in log and metrics["updates"] == 2
    assert metrics["precision"] == "mixed_bfloat16" and metrics["eval_mean_return"] >= 1
    assert json.loads((tmp_path / "metrics.json").read_text())["precision"] == "mixed_bfloat16"
