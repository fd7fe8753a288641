"""The temporal memory: reset at episode starts, the same memory in acting and training,
its GTrXL gate and its sigmoid read."""

import json

import gymnasium as gym
import keras
import numpy as np
import pytest
import tensorflow as tf

from attn_agents import model_dir as agent_dir
from attn_agents.actor_critic import ActorCritic
from attn_agents.agent import Agent
from attn_agents.env_config import EnvConfig
from attn_agents.gru_gate import GRUGate
from attn_agents.policy_config import PolicyConfig
from attn_agents.ppo_config import PPOConfig
from attn_agents.temporal_memory import TemporalMemory, memory_windows

OBS = gym.spaces.Box(-5, 5, (3,), np.float32)
ACTIONS = gym.spaces.Discrete(2)


def _model(memory=3, policy="attention", gate="none"):
    tf.keras.utils.set_random_seed(0)
    config = PolicyConfig(policy=policy, d_model=16, num_heads=2, ff_dim=16, memory=memory,
                          memory_gate=gate)
    return ActorCritic(config, OBS, ACTIONS)


def _play(agent, observations, starts):
    return [agent.act(o[None], np.array([s]), greedy=True) for o, s in
            zip(observations, starts, strict=True)]


def test_memory_resets_at_episode_boundaries():
    model = _model()
    rng = np.random.default_rng(0)
    history, fresh = rng.normal(size=(4, 3)).astype(np.float32), rng.normal(
        size=(2, 3)).astype(np.float32)
    with_past = Agent(model)
    outs = _play(with_past, np.concatenate([history, fresh]), [1, 0, 0, 0, 1, 0])
    alone = _play(Agent(model), fresh, [1, 0])
    for a, b in zip(outs[4:], alone, strict=True):  # after a start, the past is forgotten
        np.testing.assert_allclose(a.value, b.value, atol=1e-5)
        np.testing.assert_allclose(a.memory_weights, b.memory_weights, atol=1e-6)
    # Without the start flag the same observations see the past, and the values differ.
    continued = _play(Agent(model), np.concatenate([history, fresh]), [1, 0, 0, 0, 0, 0])
    assert abs(float(continued[4].value[0]) - float(alone[0].value[0])) > 1e-4
    # At an episode start only the current step gets weight; the window is K = 3 wide.
    np.testing.assert_allclose(outs[4].memory_weights[0], [0, 0, 1], atol=1e-6)
    assert (continued[5].memory_weights[0] > 0).all()


def test_memory_knows_the_order_of_past_steps():
    # Velocity from positions needs order: the same past steps in another order must give
    # another output (a memory without position embeddings sees only the set of steps).
    model = _model(memory=3)
    rng = np.random.default_rng(3)
    a, b, now = rng.normal(size=(3, 3)).astype(np.float32)
    first = _play(Agent(model), np.stack([a, b, now]), [1, 0, 0])[-1]
    swapped = _play(Agent(model), np.stack([b, a, now]), [1, 0, 0])[-1]
    assert abs(float(first.value[0]) - float(swapped.value[0])) > 1e-5


def test_reset_forgets_and_first_call_starts_an_episode():
    model = _model()
    obs = np.ones((1, 3), np.float32)
    agent = Agent(model)
    first = agent.act(obs, greedy=True)
    agent.act(obs, greedy=True)
    agent.reset()
    np.testing.assert_allclose(agent.act(obs, greedy=True).value, first.value, atol=1e-6)


def test_training_chunks_recompute_the_memory_used_while_acting():
    model = _model(memory=3)
    rng = np.random.default_rng(1)
    steps, starts = rng.normal(size=(7, 3)).astype(np.float32), [1, 0, 0, 1, 0, 0, 0]
    acted = _play(Agent(model), steps, starts)
    # A chunk of the last L = 3 steps with the K - 1 = 2 steps before it as prefix.
    params, values = model.sequence_forward(tf.constant(steps[None, 2:]),
                                            tf.constant(np.array(starts[2:], bool)[None]), 3)
    np.testing.assert_allclose(np.asarray(values)[0], [o.value[0] for o in acted[4:]],
                               atol=1e-5)


@pytest.mark.parametrize("gate, read, jit_compile", [
    ("none", "softmax", False), ("none", "softmax", True), ("gru", "softmax", False),
    ("none", "sigmoid", False), ("none", "sigmoid", True)])
def test_attend_sequence_equals_the_block_over_each_window(gate, read, jit_compile):
    """The training path (keys normed and projected once per step) computes the block over
    each query's window (`call`, as acting does): outputs, weights and gradients."""
    keras.utils.set_random_seed(0)
    layer = TemporalMemory(16, 2, 16, 3, gate=gate, read=read)
    rng = np.random.default_rng(0)
    summaries = tf.constant(rng.normal(size=(2, 6, 16)), tf.float32)
    starts = tf.constant(np.array([[1, 0, 0, 1, 0, 0], [0, 0, 1, 0, 0, 0]], bool))
    layer(summaries[:, 0], tf.zeros((2, 3, 16)), tf.ones((2, 3), bool))
    # Every weight random, the biases (zero at init) and the norms' scales included.
    layer.set_weights([rng.normal(scale=0.5, size=w.shape) for w in layer.get_weights()])

    def by_window():
        windows, mask = memory_windows(summaries, starts, 4, 3)  # [2, 4, 3, 16], [2, 4, 3]
        return layer(tf.reshape(summaries[:, -4:], (-1, 16)),
                     tf.reshape(windows, (-1, 3, 16)), tf.reshape(mask, (-1, 3)))

    def with_gradients(forward):
        with tf.GradientTape() as tape:
            h, weights = forward()
            loss = tf.reduce_sum(tf.sin(h)) + tf.reduce_sum(weights * tf.range(3.0))
        return h, weights, tape.gradient(loss, layer.trainable_variables)

    results = [tf.function(lambda f=f: with_gradients(f), jit_compile=jit_compile,
                           autograph=False)()
               for f in (by_window, lambda: layer.attend_sequence(summaries, starts, 4))]
    (h, weights, grads), (h_seq, weights_seq, grads_seq) = results
    assert h_seq.shape == (8, 16) and weights_seq.shape == (8, 3)
    np.testing.assert_allclose(h_seq, h, atol=1e-5)
    np.testing.assert_allclose(weights_seq, weights, atol=1e-6)
    np.testing.assert_array_equal(weights_seq[1, :2], 0.0)  # query 3 starts an episode
    for a, b in zip(grads_seq, grads, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4, rtol=1e-4)


def test_rebuild_memory_equals_acting_through_the_steps():
    model = _model(memory=3)
    rng = np.random.default_rng(2)
    steps = rng.normal(size=(3, 3)).astype(np.float32)
    played = Agent(model)
    _play(played, steps[:2], [1, 0])
    rebuilt = Agent(model)
    rebuilt.rebuild_memory(steps[None, :2], np.array([[True, False]]))
    a = played.act(steps[2:], np.array([False]), greedy=True)
    b = rebuilt.act(steps[2:], np.array([False]), greedy=True)
    np.testing.assert_allclose(a.value, b.value, atol=1e-5)


def test_mlp_policy_with_memory_and_no_token_weights():
    model = _model(memory=2, policy="mlp")
    out = Agent(model).act(np.zeros((1, 3), np.float32), greedy=True)
    assert out.token_weights.shape == (1, 0) and out.memory_weights.shape == (1, 2)


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_gru_gate_is_gtrxl_formula():
    keras.utils.set_random_seed(1)
    gate = GRUGate(6)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2, 4, 6)).astype(np.float32)
    gate(x, y)
    w_y = np.asarray(gate.from_y.kernel)  # [D, 3D]: W_r, W_z, W_g
    w_x = np.asarray(gate.from_x.kernel)  # [D, 2D]: U_r, U_z
    u_g, b_g = np.asarray(gate.candidate.kernel), np.asarray(gate.gate_bias)
    wr, wz, wg = np.split(y @ w_y, 3, axis=-1)
    ur, uz = np.split(x @ w_x, 2, axis=-1)
    r, z = _sigmoid(wr + ur), _sigmoid(wz + uz - b_g)
    expected = (1 - z) * x + z * np.tanh(wg + (r * x) @ u_g)
    np.testing.assert_allclose(np.asarray(gate(x, y)), expected, atol=1e-5)
    np.testing.assert_allclose(b_g, 2.0)  # GTrXL's initial bias


def test_gru_gate_starts_near_the_identity():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 16)).astype(np.float32)
    y = np.maximum(rng.normal(size=(256, 16)), 0).astype(np.float32)  # a ReLU'd sublayer
    out = np.asarray(GRUGate(16)(x, y))
    gated = np.linalg.norm(out - x) / np.linalg.norm(x)
    plain = np.linalg.norm(y) / np.linalg.norm(x)  # the residual addition x + y
    assert gated < 0.3 and gated < plain / 2, (gated, plain)
    # The bias is what holds it there: a closed gate is the identity, an open one is not.
    np.testing.assert_allclose(np.asarray(GRUGate(16, bias=30.0)(x, y)), x, atol=1e-6)
    assert np.abs(np.asarray(GRUGate(16, bias=-30.0)(x, y)) - x).mean() > 0.5


def test_gated_memory_shapes_gradients_and_config():
    model = _model(memory=3, gate="gru")
    assert len(model.memory.gates) == 2
    extra = model.count_params() - _model(memory=3).count_params()
    assert extra == 2 * (6 * 16 * 16 + 16)  # per gate: W_r,z,g and U_r,z,g [D, D], b_g [D]
    rng = np.random.default_rng(1)
    steps, starts = rng.normal(size=(1, 6, 3)).astype(np.float32), np.zeros((1, 6), bool)
    starts[0, 0] = True
    with tf.GradientTape() as tape:
        params, values = model.sequence_forward(tf.constant(steps), tf.constant(starts), 4)
        loss = tf.reduce_sum(values) + tf.reduce_sum(params)
    assert params.shape == (1, 4, 2) and values.shape == (1, 4)
    grads = dict(zip([v.path for v in model.trainable_variables],
                     tape.gradient(loss, model.trainable_variables), strict=True))
    gate_grads = [g for path, g in grads.items() if "_gate/" in path]
    assert len(gate_grads) == 8 and all(float(tf.norm(g)) > 0 for g in gate_grads)
    layer = TemporalMemory.from_config(model.memory.get_config())
    assert layer.gate == "gru"
    with pytest.raises(ValueError, match="Received: gate='lstm'"):
        TemporalMemory(16, 2, 16, 3, gate="lstm")


def test_memory_gate_config_round_trip_and_old_directories(tmp_path):
    policy = PolicyConfig(d_model=16, num_heads=2, ff_dim=16, memory=3, memory_gate="gru")
    agent_dir.save_configs(tmp_path, EnvConfig(), policy, PPOConfig())
    assert agent_dir.load_configs(tmp_path)[1] == policy
    assert agent_dir.read_saved(tmp_path)["memory_gate"] == "gru"
    # A directory from before the field: it loads, and reads as the ungated memory it is.
    path = tmp_path / agent_dir.CONFIG_NAME
    raw = json.loads(path.read_text())
    del raw["policy"]["memory_gate"]
    path.write_text(json.dumps(raw))
    assert agent_dir.load_configs(tmp_path)[1].memory_gate == "none"
    assert agent_dir.read_saved(tmp_path)["memory_gate"] == "none"
    with pytest.raises(ValueError, match="`memory` > 0 with `memory_gate`='gru'"):
        PolicyConfig(memory_gate="gru")


def test_sigmoid_read_is_a_sum_that_counts_the_matching_steps(tmp_path):
    """`read="sigmoid"`: each weight is sigmoid(q·k - log K) on its own, so the read sums
    the visible steps' values, and n steps that match alike read n times one of them (a
    softmax read would give the same for every n)."""
    keras.utils.set_random_seed(0)
    layer = TemporalMemory(4, 2, 8, 4, read="sigmoid")
    layer(np.zeros((1, 4), "float32"), np.zeros((1, 4, 4), "float32"), np.ones((1, 4), bool))
    rng = np.random.default_rng(0)
    q, k, v = (rng.normal(size=shape).astype("float32") for shape in
               ((3, 4), (3, 4, 4), (3, 4, 4)))  # [B, N·Dk], [B, K, N·Dk], [B, K, N·Dv]
    mask = np.array([[1, 1, 1, 1], [0, 1, 1, 1], [0, 0, 0, 1]], bool)
    out, weights = layer._sigmoid_read(q, k, v, mask)  # [B, 1, D], [B, N, 1, K]
    scores = np.einsum("bnd,bknd->bnk", q.reshape(3, 2, 2), k.reshape(3, 4, 2, 2))
    expected = mask[:, None, :] / (1 + np.exp(-(scores - np.log(4))))  # [B, N, K]
    context = np.einsum("bnk,bknd->bnd", expected, v.reshape(3, 4, 2, 2)).reshape(3, 4)
    kernel, bias = (np.asarray(w) for w in layer.attention.output_weights())
    np.testing.assert_allclose(weights[:, :, 0], expected, atol=1e-6)
    np.testing.assert_allclose(out[:, 0], context @ kernel + bias, rtol=1e-5, atol=1e-5)
    same = np.repeat(k[:1, :1], 4, axis=1), np.repeat(v[:1, :1], 4, axis=1)  # [1, 4, 4] each
    reads = [np.asarray(layer._sigmoid_read(q[:1], *same, np.arange(4)[None] >= 4 - n)[0])
             - bias for n in (1, 2, 3)]
    np.testing.assert_allclose(reads[1], 2 * reads[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(reads[2], 3 * reads[0], rtol=1e-5, atol=1e-6)
    assert TemporalMemory.from_config(layer.get_config()).read == "sigmoid"
    policy = PolicyConfig(d_model=16, num_heads=2, ff_dim=16, memory=3, memory_read="sigmoid")
    agent_dir.save_configs(tmp_path, EnvConfig(), policy, PPOConfig())
    assert agent_dir.load_configs(tmp_path)[1] == policy
    with pytest.raises(ValueError, match="Received: read='sum'"):
        TemporalMemory(16, 2, 16, 3, read="sum")
