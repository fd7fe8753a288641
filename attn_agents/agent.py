"""`Agent`: acts with an `ActorCritic`, and carries its temporal memory between calls."""

import dataclasses

import numpy as np
import tensorflow as tf

_ZERO_SEED = np.zeros(2, np.int32)
# `greedy` is a graph input, not a Python argument: sampling and greedy acting (the trainer's
# bootstrap values) share one compiled graph, so a run compiles the policy step once.
_GREEDY = {False: np.array(False), True: np.array(True)}


@dataclasses.dataclass
class ActOutput:
    """What `Agent.act` returns for a batch of N environments.

    Attributes:
        action: [N] int or [N, A] float, as sampled (Box actions unclipped).
        env_action: The same, clipped to the action bounds, for `env.step`.
        log_prob: [N], log pi(action).
        value: [N], V(obs).
        token_weights: [N, T], the pooling attention over the observation's tokens that led
            to this action ([N, 0] for the MLP policy).
        memory_weights: [N, K], attention over the memory (oldest first, current step last;
            [N, 0] without memory).
    """

    action: np.ndarray
    env_action: np.ndarray
    log_prob: np.ndarray
    value: np.ndarray
    token_weights: np.ndarray
    memory_weights: np.ndarray


class Agent:
    """Runs a policy over N environments and keeps its memory state for the caller.

    With `memory=K` the agent keeps the summaries of each environment's last K - 1 steps;
    an episode start (`episode_start=True`, or the first call after `reset`) forgets them.

    Example:
        agent = Agent(model, num_envs=1)
        obs, _ = env.reset()
        while True:
            out = agent.act(obs[None], greedy=True)   # first call: a new episode
            obs, reward, term, trunc, _ = env.step(out.env_action[0])
            if term or trunc: break

    The policy step (forward pass, sampling or the greedy action, log-prob) is one
    XLA-compiled graph (`jit_compile=True`), shared by every `Agent` of the same model and by
    greedy and sampled acting, so acting costs one graph call per step and one compilation
    per batch shape; the memory stays in tensors between calls.

    Args:
        model: An `ActorCritic`.
        num_envs: N.
        jit_compile: XLA-compile the policy step (the first call per batch shape compiles).
    """

    def __init__(self, model, num_envs=1, jit_compile=True):
        self.model = model
        self.cache_length = max(model.config.memory - 1, 0)
        self._act = _compiled(model, "act", _act_graph, jit_compile)
        self._rebuild = _compiled(model, "rebuild", _rebuild_graph, False)
        self.reset(num_envs)

    def reset(self, num_envs=None):
        """Forgets the memory; the next `act` starts new episodes in all N environments."""
        self.num_envs = num_envs or self.num_envs
        d = self.model.config.d_model
        # The summaries of past steps, in the dtype the model computes them in (float16 or
        # bfloat16 under a mixed precision policy).
        self.cache = tf.zeros((self.num_envs, self.cache_length, d),
                              self.model.compute_dtype)  # [N, K-1, D]
        self.cache_valid = tf.zeros((self.num_envs, self.cache_length), tf.bool)  # [N, K-1]
        self._fresh = True

    def act(self, obs, episode_start=None, greedy=False, seed=None, commit=True) -> ActOutput:
        """Chooses actions for a batch of observations.

        Args:
            obs: [N, ...] observations (a dict of such arrays for Dict spaces).
            episode_start: bool [N], True where `obs` is the first of an episode. Defaults
                to True on the first call after `reset` and False afterwards.
            greedy: Take the distribution's mode instead of sampling.
            seed: int or [2] ints for the stateless sampler (reproducible sampling).
            commit: Advance the memory (False: evaluate without changing the state, e.g. the
                value of a final observation).

        Returns:
            An `ActOutput`.
        """
        if episode_start is None:
            episode_start = np.full(self.num_envs, self._fresh)
        seed = _ZERO_SEED if seed is None else np.resize(np.asarray(seed, np.int32), 2)
        out = _call(self._act, (obs, np.asarray(episode_start, bool), self.cache,
                                self.cache_valid, seed, _GREEDY[bool(greedy)]))
        action, log_prob, value, cache, cache_valid, token_w, memory_w = out
        if commit:
            self.cache, self.cache_valid = cache, cache_valid
            self._fresh = False
        action = action.numpy()
        return ActOutput(action, self.model.env_action(action), log_prob.numpy(), value.numpy(),
                         token_w.numpy(), memory_w.numpy())

    def rebuild_memory(self, obs, starts):
        """Recomputes the memory from the last K - 1 raw observations with the current weights.

        Args:
            obs: [N, K-1, ...] observations, oldest first.
            starts: bool [N, K-1] episode-start flags of those steps.
        """
        if self.cache_length == 0:
            return
        self.cache, self.cache_valid = self._rebuild(obs, np.asarray(starts, bool))


def _compiled(model, name, graph, jit_compile):
    """`graph(model, ...)` as a tf.function cached on the model, one per (name, jit_compile).

    Agents of one model (the trainer's, the evaluation's) share it, so each batch shape is
    traced and compiled once per model rather than once per agent.
    """
    cache = model.__dict__.setdefault("_agent_functions", {})
    key = (name, bool(jit_compile))
    if key not in cache:
        cache[key] = tf.function(lambda *args: graph(model, *args), jit_compile=jit_compile,
                                 reduce_retracing=not jit_compile, autograph=False)
    return cache[key]


def _call(function, args, *static):
    """`function(*args, *static)`, through the concrete function traced for these inputs.

    A `tf.function` call binds its arguments and looks up its trace on every call, Python
    work that costs more than the policy's own compute on a batch of a few environments.
    The concrete function for each input signature (shapes, dtypes and the
    Python `static` arguments) is kept on `function`, and called on the flat tensors. The
    key is read from the arrays' own shapes and dtypes, before any conversion, so a call
    costs one `tf.constant` per array on top of the function's execution.

    Args:
        function: A `tf.function`.
        args: Its tensor arguments (arrays, tensors, or nests of them, e.g. dict observations).
        *static: Its trailing Python arguments (part of the signature).

    Returns:
        What `function` returns.
    """
    flat = [x if isinstance(x, (np.ndarray, tf.Tensor)) else np.asarray(x)
            for x in tf.nest.flatten(args)]
    key = (static, *map(_signature, flat))
    cache = function.__dict__.setdefault("_concrete_by_signature", {})
    concrete = cache.get(key)
    if concrete is None:
        concrete = cache[key] = function.get_concrete_function(
            *tf.nest.map_structure(tf.convert_to_tensor, args), *static)
    tensors = [x if isinstance(x, tf.Tensor) else tf.constant(x) for x in flat]
    call_flat = getattr(concrete, "_call_flat", None)  # TF's fast path; public call otherwise
    if call_flat is None:
        return concrete(*tf.nest.pack_sequence_as(args, tensors))
    return call_flat(tensors, concrete.captured_inputs)


def _signature(x):
    """(shape, dtype) of an array or tensor: the part of `_call`'s cache key it gives."""
    if isinstance(x, np.ndarray):
        return x.shape, x.dtype
    return tuple(x.shape), x.dtype


def _act_graph(model, obs, starts, cache, cache_valid, seed, greedy):
    summary, token_weights = model.summarize(obs)  # [N, D], [N, T]
    if model.memory is not None:
        cache_valid = tf.logical_and(cache_valid, tf.logical_not(starts)[:, None])
        window = tf.concat([cache, summary[:, None, :]], axis=1)  # [N, K, D], oldest first
        valid = tf.concat([cache_valid, tf.ones_like(starts)[:, None]], axis=1)  # [N, K]
        h, memory_weights = model.remember(summary, window, valid)  # [N, D], [N, K]
        cache, cache_valid = window[:, 1:], valid[:, 1:]
    else:
        h, memory_weights = summary, tf.zeros((tf.shape(summary)[0], 0))
    params, value = model.heads(h)
    dist = model.distribution(params)
    action = tf.where(greedy, dist.mode(), dist.sample(seed=seed))  # greedy: bool []
    return (action, dist.log_prob(action), value, cache, cache_valid, token_weights,
            memory_weights)


def _rebuild_graph(model, obs, starts):
    flat = tf.nest.map_structure(
        lambda x: tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0)), obs)
    summary, _ = model.summarize(flat)
    summary = tf.reshape(summary, (tf.shape(starts)[0], -1, model.config.d_model))
    later = tf.cumsum(tf.cast(starts, tf.int32), axis=1, exclusive=True, reverse=True)
    return summary, tf.equal(later, 0)
