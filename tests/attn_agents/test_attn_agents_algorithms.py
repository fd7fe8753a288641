"""GAE, the PPO loss terms and the memory mask against hand-computed values; config checks."""

import numpy as np
import pytest
import tensorflow as tf

from attn_agents.env_config import EnvConfig
from attn_agents.gae import compute_gae
from attn_agents.policy_config import PolicyConfig
from attn_agents.ppo_config import PPOConfig
from attn_agents.ppo_loss import ppo_loss
from attn_agents.temporal_memory import memory_windows


def test_gae_matches_a_hand_computed_example():
    # One env, three steps, the episode ends after step 1 (index 1).
    rewards = [[1.0], [2.0], [3.0]]
    values = [[0.5], [1.0], [1.5]]
    ends = [[False], [True], [False]]
    gamma, lam = 0.9, 0.8
    # delta2 = 3 + 0.9*2.0 - 1.5 = 3.3               A2 = 3.3
    # delta1 = 2 + 0 - 1.0 = 1.0                      A1 = 1.0 (episode ended)
    # delta0 = 1 + 0.9*1.0 - 0.5 = 1.4                A0 = 1.4 + 0.72*1.0 = 2.12
    advantages, returns = compute_gae(rewards, values, ends, [2.0], gamma, lam)
    np.testing.assert_allclose(advantages[:, 0], [2.12, 1.0, 3.3], atol=1e-6)
    np.testing.assert_allclose(returns[:, 0], [2.62, 2.0, 4.8], atol=1e-6)


def test_gae_lambda_one_is_the_discounted_return_minus_value():
    rng = np.random.default_rng(0)
    rewards, values = rng.normal(size=(5, 2)), rng.normal(size=(5, 2))
    ends = np.zeros((5, 2), bool)
    advantages, _ = compute_gae(rewards, values, ends, np.zeros(2), 0.5, 1.0)
    expected = sum(0.5**k * rewards[k] for k in range(5)) - values[0]
    np.testing.assert_allclose(advantages[0], expected, atol=1e-5)


def test_gae_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="Received: rewards.shape=.2, 3."):
        compute_gae(np.zeros((2, 3)), np.zeros((2, 2)), np.zeros((2, 3), bool), np.zeros(3),
                    0.9, 0.9)


def test_ppo_loss_terms_on_a_fixed_batch():
    new_lp = tf.math.log(tf.constant([0.5, 0.9, 0.2, 0.5]))
    old_lp = tf.math.log(tf.constant([0.5, 0.5, 0.5, 0.5]))
    ratio = np.array([1.0, 1.8, 0.4, 1.0])
    adv = np.array([1.0, 1.0, -1.0, -1.0], np.float32)
    new_v, old_v = tf.constant([1.0, 2.0, 0.0, 0.5]), tf.constant([0.5, 0.5, 0.0, 0.0])
    returns = tf.constant([1.0, 1.0, 1.0, 1.0])
    entropy = tf.constant([0.6, 0.6, 0.6, 0.6])
    terms = ppo_loss(new_lp, old_lp, tf.constant(adv), new_v, old_v, returns, entropy,
                     clip_coef=0.2, ent_coef=0.01, vf_coef=0.5, clip_vloss=True, norm_adv=False)
    clipped = np.clip(ratio, 0.8, 1.2)
    policy = np.mean(np.maximum(-adv * ratio, -adv * clipped))
    # Values: unclipped (v - R)^2 = [0, 1, 1, 0.25]; clipped v = old + clip(v - old, ±0.2)
    # = [0.7, 0.7, 0.0, 0.2] -> (.. - R)^2 = [0.09, 0.09, 1, 0.64]; max -> [0.09, 1, 1, 0.64].
    value = 0.5 * np.mean([0.09, 1.0, 1.0, 0.64])
    np.testing.assert_allclose(float(terms["policy"]), policy, atol=1e-5)
    np.testing.assert_allclose(float(terms["value"]), value, atol=1e-5)
    np.testing.assert_allclose(float(terms["entropy"]), 0.6, atol=1e-6)
    np.testing.assert_allclose(float(terms["loss"]), policy - 0.006 + 0.5 * value, atol=1e-5)
    np.testing.assert_allclose(float(terms["clipfrac"]), 0.5, atol=1e-6)
    kl = np.mean((ratio - 1) - np.log(ratio))
    np.testing.assert_allclose(float(terms["approx_kl"]), kl, atol=1e-5)
    unclipped = ppo_loss(new_lp, old_lp, tf.constant(adv), new_v, old_v, returns, entropy,
                         0.2, 0.01, 0.5, clip_vloss=False, norm_adv=False)
    np.testing.assert_allclose(float(unclipped["value"]), 0.5 * np.mean([0, 1, 1, 0.25]),
                               atol=1e-5)


def test_ppo_loss_normalizes_advantages():
    lp = tf.zeros(4)
    ones = tf.ones(4)
    big = ppo_loss(lp, lp, tf.constant([10.0, 20.0, 30.0, 40.0]), ones, ones, ones, ones,
                   0.2, 0.0, 0.5)
    small = ppo_loss(lp, lp, tf.constant([1.0, 2.0, 3.0, 4.0]), ones, ones, ones, ones,
                     0.2, 0.0, 0.5)
    np.testing.assert_allclose(float(big["policy"]), float(small["policy"]), atol=1e-5)
    np.testing.assert_allclose(float(big["policy"]), 0.0, atol=1e-5)


def test_memory_windows_golden():
    summaries = tf.constant(np.arange(4, dtype=np.float32)[None, :, None])  # step t -> [t]
    windows, mask = memory_windows(summaries, tf.constant([[True, False, True, False]]),
                                   num_queries=2, memory=3)
    np.testing.assert_array_equal(np.asarray(windows)[0, :, :, 0], [[0, 1, 2], [1, 2, 3]])
    np.testing.assert_array_equal(np.asarray(mask)[0], [[0, 0, 1], [0, 1, 1]])
    _, mask = memory_windows(summaries, tf.constant([[True, False, False, False]]),
                             num_queries=2, memory=2)
    np.testing.assert_array_equal(np.asarray(mask)[0], [[1, 1], [1, 1]])
    # A window reaching before the sequence: those positions are padding, never visible.
    windows, mask = memory_windows(summaries[:, 2:], tf.constant([[False, False]]),
                                   num_queries=2, memory=3)
    np.testing.assert_array_equal(np.asarray(windows)[0, :, :, 0], [[0, 0, 2], [0, 2, 3]])
    np.testing.assert_array_equal(np.asarray(mask)[0], [[0, 0, 1], [0, 1, 1]])


@pytest.mark.parametrize("cls, kwargs, message", [
    (PolicyConfig, {"policy": "lstm"}, "Received: policy='lstm'"),
    (PolicyConfig, {"d_model": 30, "num_heads": 4}, "Received: d_model=30, num_heads=4"),
    (PolicyConfig, {"memory": -1}, "Received: memory=-1"),
    (PPOConfig, {"num_steps": 0}, "Received: num_steps=0"),
    (PPOConfig, {"gamma": 1.5}, "Received: gamma=1.5"),
    (EnvConfig, {"num_envs": 0}, "Received: num_envs=0"),
])
def test_configs_validate_their_arguments(cls, kwargs, message):
    with pytest.raises(ValueError, match=message):
        cls(**kwargs)


def _chunk_batch(rng, chunks, old_prob):
    """A rollout of `chunks` one-step chunks of a 3-feature, 2-action task, as the trainer's
    `data` dict; every old action had probability `old_prob`."""
    return {"obs": tf.constant(rng.normal(size=(chunks, 1, 3)), tf.float32),
            "starts": tf.constant(rng.random((chunks, 1)) < 0.2),
            "actions": tf.constant(rng.integers(0, 2, (chunks, 1))),
            **{k: tf.constant(rng.normal(size=(chunks, 1)), tf.float32)
               for k in ("values", "advantages", "returns")},
            "log_probs": tf.constant(np.full((chunks, 1), np.log(old_prob)), tf.float32)}


def _eager_update(step, data, orders, num_minibatches, target_kl):
    """The reference: the Python loop over epochs and minibatches, KL checked per epoch."""
    epochs, terms = 0, None
    for epoch in range(len(orders) // num_minibatches):
        for m in range(num_minibatches):
            terms = step(data, orders[epoch * num_minibatches + m])
        epochs += 1
        if target_kl and float(terms["approx_kl"]) > target_kl:
            break
    return terms, epochs


@pytest.mark.parametrize("target_kl", [0.0, 1e-9, 1e9])
def test_in_graph_update_equals_the_eager_loop(target_kl):
    """`run_update` in one (XLA) graph: same steps, same weights, same KL early stop."""
    import gymnasium as gym
    import keras

    from attn_agents.actor_critic import ActorCritic
    from attn_agents.ppo_trainer import make_minibatch_step, run_update

    obs_space, act_space = gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2)
    ppo = PPOConfig(num_minibatches=2, update_epochs=3, target_kl=target_kl)
    rng = np.random.default_rng(0)
    chunks = 8
    data = _chunk_batch(rng, chunks, old_prob=0.5)
    orders = np.stack([rng.permutation(chunks) for _ in range(3)]).reshape(6, 4)
    results = []
    for compiled in (False, True):
        keras.utils.set_random_seed(0)
        model = ActorCritic(PolicyConfig(d_model=16, num_heads=2, ff_dim=16), obs_space,
                            act_space)
        optimizer = keras.optimizers.Adam(1e-2, epsilon=1e-5, global_clipnorm=0.5)
        step = make_minibatch_step(model, optimizer, ppo, 1, tf.distribute.get_strategy())
        if compiled:
            update = tf.function(lambda d, o, s=step: run_update(s, d, o, 2, target_kl),
                                 jit_compile=True, autograph=False)  # as the trainer's
            terms, epochs = update(data, tf.constant(orders, tf.int32))
        else:
            terms, epochs = _eager_update(step, data, tf.constant(orders, tf.int32), 2,
                                          target_kl)
        results.append((int(epochs), int(optimizer.iterations), float(terms["approx_kl"]),
                        [v.numpy() for v in model.trainable_variables]))
    (eager_epochs, eager_steps, eager_kl, eager_w), (epochs, steps, kl, w) = results
    assert (epochs, steps) == (eager_epochs, eager_steps) == ({1e-9: 1}.get(target_kl, 3),
                                                              {1e-9: 2}.get(target_kl, 6))
    np.testing.assert_allclose(kl, eager_kl, rtol=1e-3, atol=1e-6)
    for a, b in zip(w, eager_w, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)


def test_a_clip_variable_is_read_at_every_step():
    """`anneal_clip`: the compiled step reads the clip epsilon's current value."""
    import gymnasium as gym
    import keras

    from attn_agents.actor_critic import ActorCritic
    from attn_agents.ppo_trainer import make_minibatch_step

    chunks = 8
    # Old probabilities far from the policy's (about 0.5), so every ratio is near 10.
    data = _chunk_batch(np.random.default_rng(0), chunks, old_prob=0.05)
    keras.utils.set_random_seed(0)
    model = ActorCritic(PolicyConfig(d_model=16, num_heads=2, ff_dim=16),
                        gym.spaces.Box(-1, 1, (3,), np.float32), gym.spaces.Discrete(2))
    clip = tf.Variable(0.2, trainable=False)
    step = tf.function(make_minibatch_step(
        model, keras.optimizers.SGD(0.0), PPOConfig(), 1, tf.distribute.get_strategy(), clip),
        autograph=False)
    idx = tf.range(chunks)
    assert float(step(data, idx)["clipfrac"]) == 1.0  # |ratio - 1| ~ 9 > 0.2
    clip.assign(100.0)
    assert float(step(data, idx)["clipfrac"]) == 0.0
