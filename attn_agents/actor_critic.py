"""`ActorCritic`: the policy network, attention or MLP, with optional temporal memory."""

import warnings

import gymnasium as gym
import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import ops

from attn_agents.attention_block import AttentionBlock
from attn_agents.attention_pooling import AttentionPooling
from attn_agents.discrete_tokenizer import DiscreteTokenizer
from attn_agents.episode_step import split_time, split_time_obs
from attn_agents.multi_categorical import multi_categorical
from attn_agents.policy_config import PolicyConfig
from attn_agents.temporal_memory import TemporalMemory
from attn_agents.tokenizer_factory import make_tokenizer
from attn_agents.tuple_tokenizer import TupleTokenizer
from attn_agents.vector_tokenizer import VectorTokenizer

tfd = tfp.distributions


def _dense(units, gain, activation=None, name=None):
    return keras.layers.Dense(units, activation=activation, name=name,
                              kernel_initializer=keras.initializers.Orthogonal(gain))


def zeros_like_space(space: gym.Space, batch: int):
    """A batch of zero observations of `space` (a dict for Dict spaces, a tuple for Tuple)."""
    if isinstance(space, gym.spaces.Dict):
        return {k: zeros_like_space(s, batch) for k, s in space.spaces.items()}
    if isinstance(space, gym.spaces.Tuple):
        return tuple(zeros_like_space(s, batch) for s in space.spaces)
    dtype = space.dtype if space.dtype is not None else np.float32
    return np.zeros((batch, *space.shape), dtype=dtype)


class ActorCritic(keras.Model):
    """Observation -> summary -> (memory) -> action distribution and value.

    Attention policy: the observation becomes tokens (`tokenizer_factory`), goes through
    `attention_layers` pre-LN self-attention blocks and is pooled by a learned query into the
    summary; the episode's time (an `EpisodeTime` component, `--episode_step`), projected, is
    added to the summary instead of becoming a token. MLP policy: the flattened observation
    through one tanh layer. With `memory=K`, a `TemporalMemory` block lets each step attend
    over the summaries of its last K steps. Actor and critic heads each have one tanh hidden
    layer of width D.

    Letters: B batch, T tokens, L query steps, S memory steps, D width, A action size (the
    logits of all components for MultiDiscrete actions).

    Args:
        config: `PolicyConfig`.
        observation_space: The single-environment observation space.
        action_space: Discrete(A), MultiDiscrete(nvec) (A = sum(nvec)) or Box of shape (A,).

    Attributes:
        action_shape: The shape of one action: () for Discrete, (C,) for MultiDiscrete,
            (A,) for Box.
        action_dtype: np.int64 for Discrete and MultiDiscrete, np.float32 for Box.
    """

    def __init__(self, config: PolicyConfig, observation_space, action_space, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        self.observation_space = observation_space
        self.action_space = action_space
        self.discrete = isinstance(action_space, gym.spaces.Discrete)
        self.multi_discrete = isinstance(action_space, gym.spaces.MultiDiscrete)
        if self.discrete:
            self.action_size, self.action_shape = int(action_space.n), ()
        elif self.multi_discrete:
            self.nvec = [int(n) for n in action_space.nvec]
            self.action_size, self.action_shape = sum(self.nvec), (len(self.nvec),)
        else:
            self.action_size = int(action_space.shape[0])
            self.action_shape = (self.action_size,)
        self.action_dtype = np.int64 if self.discrete or self.multi_discrete else np.float32
        d = config.d_model
        # The time (`--episode_step`) is added to the attention policy's summary, not
        # tokenized (see `EpisodeStep`); the MLP takes it with the rest.
        self.time_at, token_space = (split_time(observation_space)
                                     if config.policy == "attention" else (None, None))
        self.wrap_obs = isinstance(token_space, gym.spaces.Box) and len(token_space.shape) == 2
        self.time_projection = (keras.layers.Dense(d, name="time_projection")
                                if self.time_at is not None else None)
        if config.policy == "attention":
            self.tokenizer, self.layout = make_tokenizer(token_space, d, config.patch_size)
            self.blocks = [AttentionBlock(d, config.num_heads, config.ff_dim, name=f"block_{i}")
                           for i in range(config.attention_layers)]
            self.pooling = AttentionPooling(d, config.num_heads, name="pooling")
        else:
            self.tokenizer, self.layout, self.blocks, self.pooling = None, None, [], None
            self.torso = _dense(d, np.sqrt(2), "tanh", name="torso")
        self.memory = (TemporalMemory(d, config.num_heads, config.ff_dim, config.memory,
                                      gate=config.memory_gate, read=config.memory_read,
                                      name="memory")
                       if config.memory else None)
        self.actor_hidden = _dense(d, np.sqrt(2), "tanh", name="actor_hidden")
        self.actor_out = _dense(self.action_size, 0.01, name="actor_out")
        self.critic_hidden = _dense(d, np.sqrt(2), "tanh", name="critic_hidden")
        self.critic_out = _dense(1, 1.0, name="critic_out")
        if not (self.discrete or self.multi_discrete):
            self.log_std = self.add_weight(
                shape=(self.action_size,), name="log_std",
                initializer=keras.initializers.Constant(config.log_std_init))
            self.action_low = np.asarray(action_space.low, np.float32)
            self.action_high = np.asarray(action_space.high, np.float32)
        self.build_all()

    def build_all(self):
        """Creates every variable by running a batch of zero observations through."""
        obs = zeros_like_space(self.observation_space, 1)
        summary, _ = self.summarize(tf.nest.map_structure(tf.constant, obs))
        if self.memory is not None:
            k = self.config.memory
            self.remember(summary, tf.repeat(summary[:, None], k, axis=1),
                          tf.ones((1, k), tf.bool))
        self.heads(summary)
        self.built = True

    def _flatten(self, obs, space):
        """The MLP's input: [B, F], one-hot integers (Discrete, MultiDiscrete), scaled pixels."""
        if isinstance(space, gym.spaces.Dict):
            return ops.concatenate([self._flatten(obs[k], s) for k, s in space.spaces.items()],
                                   axis=-1)
        if isinstance(space, gym.spaces.Tuple):
            return ops.concatenate([self._flatten(x, s) for x, s in zip(obs, space.spaces,
                                                                          strict=True)],
                                   axis=-1)
        if isinstance(space, gym.spaces.Discrete):
            return ops.one_hot(ops.reshape(ops.cast(obs, "int32") - int(space.start), (-1,)),
                               int(space.n))
        if isinstance(space, gym.spaces.MultiDiscrete):
            x = ops.cast(obs, "int32") - np.asarray(space.start, np.int32)  # [B, C]
            return ops.concatenate([ops.one_hot(x[:, i], int(n))
                                    for i, n in enumerate(space.nvec)], axis=-1)
        x = ops.cast(obs, "float32")
        if space.dtype == np.uint8:
            x = x / 255.0
        return ops.reshape(x, (ops.shape(x)[0], -1))

    def summarize(self, obs, training=False):
        """Encodes one step's observations.

        Args:
            obs: A batch of observations (a dict of [B, ...] for Dict spaces).

        Returns:
            `(summary, token_weights)`: [B, D], and the pooling weights [B, T] over the
            tokens (attention policy) or [B, 0] (MLP).
        """
        if self.tokenizer is None:
            x = self.torso(self._flatten(obs, self.observation_space))
            return x, tf.zeros((tf.shape(x)[0], 0))
        time = None
        if self.time_at is not None:
            obs, time = split_time_obs(obs, self.time_at)
        tokens, mask = self.tokenizer({"obs": obs} if self.wrap_obs else obs)  # [B,T,D], [B,T]
        factors = None
        if isinstance(self.tokenizer, VectorTokenizer):  # rank-1 tokens, none of them padding
            factors, mask = self.tokenizer.factors(obs), None
        elif isinstance(self.tokenizer, DiscreteTokenizer | TupleTokenizer):
            mask = None  # no padding: every token is real
        with warnings.catch_warnings():
            # A Discrete observation is one token: Keras warns (while tracing) that a softmax
            # over one key is always 1, which is what attention over one token is.
            warnings.filterwarnings("ignore", "You are using a softmax over axis",
                                    UserWarning)
            for block in self.blocks:
                tokens = block(tokens, mask=mask, factors=factors)
                factors = None
            summary, weights = self.pooling(tokens, mask=mask)
        if time is not None:  # [B, 2F] -> [B, D]
            summary = summary + self.time_projection(time)
        return summary, weights

    def remember(self, queries, windows, mask):
        """Temporal attention: queries [B, D], windows [B, K, D], mask bool [B, K].

        Returns `(h, weights)`: [B, D] and [B, K] (oldest step first).
        """
        return self.memory(queries, windows, mask)

    def heads(self, h):
        """Actor and critic: h [B, D] -> (distribution parameters [B, A], value [B])."""
        params = self.actor_out(self.actor_hidden(h))
        value = self.critic_out(self.critic_hidden(h))[:, 0]
        return ops.cast(params, "float32"), ops.cast(value, "float32")

    def distribution(self, params):
        """Categorical(logits) for Discrete, a product of Categoricals for MultiDiscrete
        (`multi_categorical`), Normal(mean, exp(log_std)) per dim for Box."""
        if self.discrete:
            return tfd.Categorical(logits=params)
        if self.multi_discrete:
            return multi_categorical(params, self.nvec)
        scale = tf.exp(tf.cast(self.log_std, tf.float32)) * tf.ones_like(params)
        return tfd.Independent(tfd.Normal(params, scale), reinterpreted_batch_ndims=1)

    def sequence_forward(self, obs, starts, num_queries):
        """The training forward pass over sequence chunks.

        Args:
            obs: Observations [C, S, ...], S = P + L: P = K - 1 earlier steps, then L steps.
                (Without memory, P = 0.)
            starts: bool [C, S], True where a step starts an episode.
            num_queries: L.

        Returns:
            `(params, values)` for the last L steps: [C, L, A] and [C, L].
        """
        flat = tf.nest.map_structure(
            lambda x: tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0)), obs)
        summary, _ = self.summarize(flat, training=True)  # [C*S, D]
        chunks = tf.shape(starts)[0]
        summary = tf.reshape(summary, (chunks, -1, self.config.d_model))  # [C, S, D]
        if self.memory is not None:  # = remember() over each query's memory_windows
            h, _ = self.memory.attend_sequence(summary, starts, num_queries)  # [C*L, D]
        else:
            h = tf.reshape(summary[:, -num_queries:], (-1, self.config.d_model))
        params, values = self.heads(h)  # h: [C*L, D]
        return (tf.reshape(params, (chunks, num_queries, -1)),
                tf.reshape(values, (chunks, num_queries)))

    def env_action(self, action):
        """Actions as the environment takes them: ints (shifted by the space's `start`) for
        Discrete and MultiDiscrete, clipped for Box."""
        action = np.asarray(action)
        if self.discrete or self.multi_discrete:
            return action.astype(np.int64) + np.asarray(self.action_space.start, np.int64)
        return np.clip(action, self.action_low, self.action_high)
