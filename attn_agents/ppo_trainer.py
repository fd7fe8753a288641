"""PPO training over a vector environment, then a greedy evaluation: `train_and_evaluate`.

The algorithm reads top to bottom, as in CleanRL's `ppo.py`: collect T steps from N
environments, compute GAE, then several epochs of clipped-objective minibatch updates.
With `memory=K`, training minibatches are sequence chunks of L steps, each preceded by the
K - 1 steps before it (from this rollout or the previous one), so the memory seen in
training is the memory the policy had while acting.

A run has three phases (`PPOTrainer`): setup validates every input (sizes, environment,
saved config) before anything is written, then opens the model directory (creates and
locks it), builds the model and resumes from the newest intact checkpoint; the loop
alternates rollouts and updates, checkpointing every `checkpoint_every` updates and on
Ctrl-C; the finish evaluates greedily and writes `metrics.json`. At each checkpoint the
chief also logs where the policy looks (TensorBoard's Attention tab): the token and memory
attention of the first `ATTENTION_EPISODE_STEPS` greedy steps of a fixed evaluation episode.

With `eval_every`, the chief also evaluates the policy greedily every `eval_every` updates,
on episodes of their own seed (`SELECTION_SEED_OFFSET`), and keeps the policy of the best of
these evaluations in `best/` (as in SB3's `EvalCallback`); the finish evaluates that policy
too, on the final evaluation's episodes, which it was not selected on.

Under a `tf.distribute` strategy the learner update runs under the strategy (see
`make_minibatch_step`). With `MultiWorkerMirroredStrategy` the sizes stay global: each
worker steps its share of the `num_envs` environments (seeded differently), all workers draw
the same model initialization and minibatch permutations (same seed), and the replica of
each worker trains on its own rollout's part of every minibatch. Running statistics of
`normalize_obs` and `normalize_reward` are kept per worker, from that worker's
environments; the checkpoint holds the chief's, which every worker starts from when it
resumes and which the final evaluation uses. Only the chief (worker 0) writes the model
directory (configs, checkpoints, TensorBoard events, episode returns, `metrics.json`) and
runs the final evaluation; all workers share the same directory.

Under a mixed precision policy the model computes in float16 or bfloat16 and keeps float32
variables; the losses, the action distribution and the values are float32. Under float16
the optimizer is a `LossScaleOptimizer` (`attn_core.precision.wrap_optimizer`): the loss is
scaled before the gradient, and a step with non-finite gradients is skipped and halves the
scale (`charts/loss_scale`, `charts/skipped_steps`).
"""

import dataclasses
import functools
import json
import pathlib
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from attn_agents import model_dir as agent_dir
from attn_agents import workers
from attn_agents.actor_critic import ActorCritic, zeros_like_space
from attn_agents.agent import Agent
from attn_agents.attention_view import episode_views
from attn_agents.env_error import EnvError
from attn_agents.env_factory import make_vector_env
from attn_agents.episode_recording import record_episode
from attn_agents.evaluation import evaluate_policy
from attn_agents.gae import compute_gae
from attn_agents.obs_normalizer import ObsNormalizer
from attn_agents.ppo_config import rollout_sizes
from attn_agents.ppo_loss import ppo_loss
from attn_core import (
    checkpoint,
    metrics_file,
    precision,
    progress,
    seeds,
    strategy,
    summaries,
    worker_sync,
)
from attn_core import model_dir as core_model_dir
from attn_core.errors import Interrupted, UserError
from attn_core.interrupt import StopOnCtrlC

LOSS_TAGS = ("policy", "value", "entropy", "approx_kl", "clipfrac")
EVAL_SEED_OFFSET = 100_003  # the final evaluation's environments: seed + this
# The periodic evaluations' environments, which choose the best policy: seed + this. Not the
# final evaluation's, so that the best policy's reported return is on episodes it was not
# chosen on (a maximum over noisy evaluations overestimates on its own episodes).
SELECTION_SEED_OFFSET = 200_003
# Greedy steps of the fixed evaluation episode whose attention is logged at each checkpoint:
# enough to see the policy at work, few enough to cost well under a second.
ATTENTION_EPISODE_STEPS = 32


@dataclasses.dataclass
class _State:
    update: int = 0
    global_step: int = 0
    train_seconds: float = 0.0
    rollout_seconds: float = 0.0  # acting, env steps, GAE and the training tensors
    update_seconds: float = 0.0  # the update's graph call, to its result
    episodes: int = 0
    last_return: float = 0.0
    skipped_steps: int = 0  # float16: optimizer steps skipped for non-finite gradients
    loss_scale: float | None = None  # float16: the LossScaleOptimizer's scale
    loss_scale_steps: int = 0  # and its count of finite steps since the scale last changed
    rng: dict = dataclasses.field(default_factory=dict)
    obs_rms: dict = dataclasses.field(default_factory=dict)
    return_rms: dict = dataclasses.field(default_factory=dict)
    # The best periodic evaluation (`eval_every`) so far, whose policy is in `best/`: its mean
    # return (None: none yet), global step and update.
    best_return: float | None = None
    best_step: int = 0
    best_update: int = 0


def is_improvement(candidate, best):
    """Whether a periodic evaluation's mean return replaces the best so far (None: none yet).

    Only a strictly greater return does: on a tie the earlier policy stays, so a plateau of
    equal returns (CartPole's 500) keeps the first policy that reached it.
    """
    return best is None or candidate > best


def _statistic(function, values):
    """`function(values)` as a float; 0.0 for no values (`eval_episodes` 0, or a worker
    other than the chief, which does not evaluate)."""
    return float(function(values)) if len(values) else 0.0


def _rms_state(rms):
    return {"mean": np.asarray(rms.mean).tolist(), "var": np.asarray(rms.var).tolist(),
            "count": float(rms.count)}


def _set_rms(rms, state):
    rms.mean = np.asarray(state["mean"], np.float64)
    rms.var = np.asarray(state["var"], np.float64)
    rms.count = float(state["count"])


def _stack_buffer(space, leading):
    """Preallocated [*leading, ...] buffers matching an observation batch's structure."""
    return tf.nest.map_structure(
        lambda x: np.zeros((*leading, *x.shape[1:]), x.dtype), zeros_like_space(space, 1))


def _chunk_indices(num_steps, num_envs, chunk, prefix):
    """Time and env indices [C, P + L] of the chunks of a prefixed [P + T, N] buffer."""
    per_env = num_steps // chunk
    starts = np.arange(per_env) * chunk  # chunk j covers rollout steps [jL, jL + L)
    time_idx = starts[None, :, None] + np.arange(prefix + chunk)[None, None, :]  # [1, J, S]
    time_idx = np.broadcast_to(time_idx, (num_envs, per_env, prefix + chunk))
    env_idx = np.broadcast_to(np.arange(num_envs)[:, None, None], time_idx.shape)
    return time_idx.reshape(-1, prefix + chunk), env_idx.reshape(-1, prefix + chunk)


def make_optimizer(pc, dist, precision_name="float32"):
    """The PPO optimizer (Adam), created under `dist.scope()`.

    With one replica it clips the gradients' global norm to `pc.max_grad_norm` itself. With
    several it does not clip: Keras clips each replica's gradients before summing them, so
    `make_minibatch_step` clips the summed gradient instead. Under float16 it is wrapped in a
    `LossScaleOptimizer` (`attn_core.precision.wrap_optimizer`).
    """
    with dist.scope():
        adam = keras.optimizers.Adam(
            pc.learning_rate, epsilon=1e-5,
            global_clipnorm=pc.max_grad_norm if dist.num_replicas_in_sync == 1 else None)
        return precision.wrap_optimizer(adam, precision_name)


def make_minibatch_step(model, optimizer, pc, chunk, dist, clip_coef=None):
    """`(data, idx) -> terms`: one PPO optimizer step on the sequence chunks `idx` of `data`.

    Under a strategy with several replicas, each worker's `data` is its own rollout and
    `idx` the chunks of its part of the global minibatch (the union over the workers); `idx`
    is split between the worker's local replicas (`strategy.run`). Each replica's loss is
    divided by the number of replicas in sync, the gradients are all-reduced by the strategy
    and clipped to `pc.max_grad_norm` as one global gradient, the advantages are normalized
    with the mean and std of the global minibatch, and the terms are averaged over all
    replicas, so every worker gets the same terms (and takes the same target-KL decision).
    One update on R replicas thus equals one update of a single replica on the global batch.

    The loss goes through `optimizer.scale_loss` (an identity unless the optimizer is a
    `LossScaleOptimizer`), whose `apply` unscales the gradients and skips non-finite ones.

    Args:
        model: The `ActorCritic`.
        optimizer: Its Keras optimizer (`make_optimizer`: with several replicas, one that
            does not clip).
        pc: The `PPOConfig`.
        chunk: L, the query steps of each chunk (1 without memory).
        dist: The `tf.distribute.Strategy`.
        clip_coef: The clip epsilon: a variable (read at each step, for `anneal_clip`), or
            None for `pc.clip_coef`.

    Returns:
        The step function; its terms are those of `ppo_loss` plus `skipped` (1.0 when the
        optimizer skipped the step for non-finite gradients, float16 only).

    Raises:
        ValueError: If the optimizer clips gradients under several replicas.
    """
    replicas = dist.num_replicas_in_sync
    inner = precision.inner_optimizer(optimizer)
    if replicas > 1 and (inner.global_clipnorm or inner.clipnorm or inner.clipvalue):
        raise ValueError(
            "Expected an optimizer that does not clip gradients under several replicas (see "
            "make_optimizer): Keras would clip each replica's gradients, not their sum. "
            f"Received: global_clipnorm={inner.global_clipnorm}, "
            f"clipnorm={inner.clipnorm}, clipvalue={inner.clipvalue}")
    scaling = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    clip = pc.clip_coef if clip_coef is None else clip_coef

    def replica_step(data, idx):
        # The name scopes label the update's parts in a profile
        # (benchmarks/profile_ppo_update.py).
        with tf.name_scope("minibatch_gather"):
            batch_data = tf.nest.map_structure(lambda x: tf.gather(x, idx), data)
        flat = lambda x: tf.reshape(x, [-1])  # noqa: E731
        advantages = flat(batch_data["advantages"])
        adv_moments = (worker_sync.global_moments(advantages)
                       if pc.norm_adv and replicas > 1 else None)
        with tf.GradientTape() as tape:
            params, values = model.sequence_forward(batch_data["obs"], batch_data["starts"],
                                                    chunk)
            dist_ = model.distribution(tf.reshape(params, (-1, tf.shape(params)[-1])))
            actions = batch_data["actions"]
            actions = tf.reshape(actions, tf.concat([[-1], tf.shape(actions)[2:]], 0))
            with tf.name_scope("ppo_loss"):
                terms = ppo_loss(dist_.log_prob(actions), flat(batch_data["log_probs"]),
                                 advantages, flat(values),
                                 flat(batch_data["values"]), flat(batch_data["returns"]),
                                 dist_.entropy(), clip, pc.ent_coef, pc.vf_coef,
                                 pc.clip_vloss, pc.norm_adv, adv_moments)
            loss = optimizer.scale_loss(terms["loss"] / replicas)
        grads = tape.gradient(loss, model.trainable_variables)
        scale_before = precision.loss_scale(optimizer)
        if replicas > 1:
            if scaling:  # every replica skips, or none
                grads = worker_sync.poison_unless_all_finite(grads)
            if pc.max_grad_norm > 0:  # the gradients are still scaled here
                grads = worker_sync.clip_summed_gradients(grads,
                                                          pc.max_grad_norm * scale_before)
        optimizer.apply(grads, model.trainable_variables)
        terms["skipped"] = tf.cast(precision.skipped_step(optimizer, scale_before), tf.float32)
        return terms

    if replicas == 1:
        return replica_step

    keys = ("loss", *LOSS_TAGS, "skipped")
    local_replicas = len(dist.extended.worker_devices)

    def minibatch_step(data, idx):
        # Global replica ids run worker by worker: this worker's are a block of
        # `local_replicas` consecutive ids.
        shards = tf.split(idx, local_replicas)
        per_replica = dist.experimental_distribute_values_from_function(
            lambda ctx: shards[ctx.replica_id_in_sync_group % local_replicas])
        stacked = dist.run(
            lambda d, i: tf.stack([tf.cast(t, tf.float32) for t in
                                   map(replica_step(d, i).get, keys)]),
            args=(data, per_replica))
        mean = tf.unstack(dist.reduce("MEAN", stacked, axis=None))  # one all-reduce
        return dict(zip(keys, mean, strict=True))

    return minibatch_step


def run_update(minibatch_step, data, orders, num_minibatches, target_kl):
    """The epochs of minibatch updates on one rollout, as one in-graph loop.

    Minibatch `k` (epoch `k // num_minibatches`) trains on the chunks `orders[k]`. After the
    last minibatch of each epoch, the update stops early when that minibatch's approximate
    KL exceeds `target_kl` (0: never), as in CleanRL.

    Args:
        minibatch_step: `(data, idx) -> terms`, one optimizer step on the chunks `idx`;
            `terms` is the dict of float32 scalars of `ppo_loss` (and optionally `skipped`).
        data: The rollout's training tensors (gathered by chunk index).
        orders: int32 [E * M, B], the chunk indices of each of the E * M minibatches.
        num_minibatches: M.
        target_kl: The early-stop threshold.

    Returns:
        `(terms, epochs_run)`: the last minibatch's terms with `skipped_steps`, the steps
        skipped over the update (int32), and the epochs run (int32).
    """
    keys = ("loss", *LOSS_TAGS)
    total = tf.shape(orders)[0]
    zero = tf.constant(0.0)
    terms = {k: zero for k in keys}

    def body(k, stop, terms, skipped):
        out = minibatch_step(data, orders[k])
        terms = {key: tf.cast(out[key], tf.float32) for key in keys}
        if "skipped" in out:
            skipped = skipped + tf.cast(out["skipped"], tf.int32)
        k = k + 1
        if target_kl:
            stop = tf.logical_and(tf.equal(k % num_minibatches, 0),
                                  terms["approx_kl"] > target_kl)
        return k, stop, terms, skipped

    k, _, terms, skipped = tf.while_loop(
        lambda k, stop, *_: tf.logical_and(k < total, tf.logical_not(stop)),
        body, (tf.constant(0), tf.constant(False), terms, tf.constant(0)))
    return terms | {"skipped_steps": skipped}, k // num_minibatches


class _Rollout:
    """The rollout buffers of one worker and the loop that fills them.

    Buffers follow CleanRL's layout [T, N, ...]; observations and episode starts have P
    extra rows in front, the last P steps of the previous rollout (the memory prefix).
    """

    def __init__(self, envs, model, sizes, pc, share, num_envs_total, obs_norm, writer,
                 jit_compile):
        self.envs, self.model, self.sizes, self.pc = envs, model, sizes, pc
        self.share, self.num_envs_total = share, num_envs_total
        self.obs_norm, self.writer = obs_norm, writer
        prefix, steps, n = sizes.prefix, sizes.num_steps, sizes.num_envs
        self.obs = _stack_buffer(envs.single_observation_space, (prefix + steps, n))
        self.starts = np.ones((prefix + steps, n), bool)
        self.actions = np.zeros((steps, n, *model.action_shape), model.action_dtype)
        self.log_probs, self.values, self.rewards = (np.zeros((steps, n), np.float32)
                                                     for _ in range(3))
        self.ends = np.zeros((steps, n), bool)
        self.time_idx, self.env_idx = _chunk_indices(steps, n, sizes.chunk, prefix)
        self.query_time = self.time_idx[:, prefix:] - prefix  # [C, L] rollout step of queries
        self.query_env = self.env_idx[:, prefix:]
        self.agent = Agent(model, num_envs=n, jit_compile=jit_compile)
        self.next_obs = self.next_start = None

    def observe(self, raw):
        if self.obs_norm is None:
            return raw
        self.obs_norm.update(raw)
        return self.obs_norm(raw)

    def reset(self, seed):
        next_obs, _ = self.envs.reset(seed=seed)
        self.next_obs = self.observe(next_obs)
        self.next_start = np.ones(self.sizes.num_envs, bool)

    def collect(self, state, rng):
        """Steps the environments T times; returns `(advantages, returns)`, [T, N] each.

        Episode returns go to TensorBoard and `state`.
        """
        sizes, pc, share, agent, envs = self.sizes, self.pc, self.share, self.agent, self.envs
        prefix, n = sizes.prefix, sizes.num_envs
        obs_buf, starts_buf, obs_norm = self.obs, self.starts, self.obs_norm
        actions_buf, log_probs_buf, values_buf = self.actions, self.log_probs, self.values
        rewards_buf, ends_buf = self.rewards, self.ends
        next_obs, next_start = self.next_obs, self.next_start
        if prefix:
            agent.rebuild_memory(
                tf.nest.map_structure(lambda x: np.swapaxes(x[:prefix], 0, 1), obs_buf),
                starts_buf[:prefix].T)
        for t in range(sizes.num_steps):
            row = prefix + t
            tf.nest.map_structure(lambda buf, x, r=row: buf.__setitem__(r, x), obs_buf,
                                  next_obs)
            starts_buf[row] = next_start
            act_seed = rng.integers(0, 2**31 - 1, size=2)  # the same draws on every worker,
            if share.index:  # but other action samples
                act_seed[1] = (act_seed[1] + share.index) % (2**31 - 1)
            out = agent.act(next_obs, next_start, seed=act_seed)
            actions_buf[t], log_probs_buf[t], values_buf[t] = out.action, out.log_prob, out.value
            next_obs, reward, terminated, truncated, infos = envs.step(out.env_action)
            next_obs = self.observe(next_obs)
            reward = np.asarray(reward, np.float32)
            cut = np.logical_and(truncated, np.logical_not(terminated))
            if cut.any():  # bootstrap time limits with V(final observation)
                final = infos["final_obs"]
                final_obs = tf.nest.map_structure(
                    lambda *xs: np.stack(xs),
                    *[final[i] if cut[i] else
                      tf.nest.map_structure(lambda x, i=i: x[i], next_obs) for i in range(n)])
                if obs_norm is not None:
                    final_obs = obs_norm(final_obs)
                final_value = agent.act(final_obs, np.zeros(n, bool), greedy=True,
                                        commit=False).value  # in the (scaled) reward units
                reward = reward + pc.gamma * cut * final_value
            rewards_buf[t] = reward
            next_start = np.logical_or(terminated, truncated)
            ends_buf[t] = next_start
            if "_episode" in infos and infos["_episode"].any():
                done = infos["_episode"]
                returns = infos["episode"]["r"][done]
                state.episodes += int(done.sum())
                state.last_return = float(np.mean(returns))
                self.writer.scalars(state.global_step + (t + 1) * self.num_envs_total, {
                    "charts/episodic_return": state.last_return,
                    "charts/episodic_length": float(np.mean(infos["episode"]["l"][done]))})
        self.next_obs, self.next_start = next_obs, next_start
        next_value = agent.act(next_obs, next_start, greedy=True, commit=False).value
        return compute_gae(rewards_buf, values_buf, ends_buf, next_value, pc.gamma,
                           pc.gae_lambda)

    def training_data(self, advantages, returns):
        """The rollout's training tensors, gathered by chunk ([C, P + L] or [C, L])."""
        time_idx, env_idx = self.time_idx, self.env_idx
        query_time, query_env = self.query_time, self.query_env
        return {
            "obs": tf.nest.map_structure(lambda x: tf.constant(x[time_idx, env_idx]),
                                         self.obs),
            "starts": tf.constant(self.starts[time_idx, env_idx]),
            "actions": tf.constant(self.actions[query_time, query_env]),
            "log_probs": tf.constant(self.log_probs[query_time, query_env]),
            "values": tf.constant(self.values[query_time, query_env]),
            "advantages": tf.constant(advantages[query_time, query_env]),
            "returns": tf.constant(returns[query_time, query_env]),
        }

    def keep_prefix(self):
        """The last P steps become the next rollout's memory prefix."""
        prefix = self.sizes.prefix
        if prefix:
            tf.nest.map_structure(lambda buf: buf.__setitem__(slice(0, prefix), buf[-prefix:]),
                                  self.obs)
            self.starts[:prefix] = self.starts[-prefix:]


class PPOTrainer:
    """One training run in a model directory: `run()` = setup, the loop, the finish.

    Args:
        env_config: `EnvConfig`.
        policy_config: `PolicyConfig`.
        ppo_config: `PPOConfig`.
        common: `attn_core.flags.CommonConfig` (seed, precision, strategy, jit_compile).
        model_dir: The model directory (see `train_and_evaluate`).
        log: Where progress lines go.
        verbose: 1 shows the progress (a bar on a terminal, periodic lines otherwise).
    """

    def __init__(self, env_config, policy_config, ppo_config, common, model_dir, log=print,
                 verbose=1):
        self.ec, self.policy_config, self.pc, self.common = (env_config, policy_config,
                                                             ppo_config, common)
        self.path = pathlib.Path(model_dir)
        self.log, self.verbose = log, verbose
        self.state = _State()
        self.envs = self.writer = self.best_ckpts = None

    # ---- setup: every input is validated before the model directory is written -----------

    def _validate(self):
        """Strategy, sizes, saved config, precision and environments; writes nothing."""
        try:
            self.dist = strategy.make_strategy(self.common.strategy, self.common.cpu_devices)
        except ValueError as error:  # e.g. no TF_CONFIG for multi_worker: shown as one line
            raise EnvError(str(error)) from None
        self.share = workers.worker_share(self.ec.num_envs, self.dist)
        self.replicas = self.dist.num_replicas_in_sync
        self.sizes = rollout_sizes(self.pc, self.policy_config.memory, self.ec.num_envs,
                                   self.share.count, self.replicas // self.share.count)
        given = agent_dir.RunConfig(self.ec, self.policy_config, self.pc, self.common.seed)
        agent_dir.reconcile(self.path, agent_dir.read_saved(self.path), given,
                            explicit=given.flat(), log=self.log)
        self.precision = precision.set_precision_policy(self.common.precision).name
        self.log(f"precision: {self.precision}")
        seeds.set_seeds(self.common.seed)  # the same model init and minibatch order everywhere
        self.envs, self.reward_norm = make_vector_env(self.ec, num_envs=self.sizes.num_envs,
                                                      training=True, gamma=self.pc.gamma)

    def _build(self):
        """The model, its optimizer and the compiled update."""
        pc, envs = self.pc, self.envs
        with self.dist.scope():
            self.model = ActorCritic(self.policy_config, envs.single_observation_space,
                                     envs.single_action_space, name="policy")
            self.optimizer = make_optimizer(pc, self.dist, self.precision)
            checkpoint.build_optimizer(self.optimizer, self.model)
            # Set from the update number (not checkpointed), like the learning rate.
            self.clip_coef = (tf.Variable(pc.clip_coef, trainable=False, name="clip_coef")
                              if pc.anneal_clip else None)
        sizes, share = self.sizes, self.share
        self.log(f"policy: {self.policy_config.policy}, {self.model.count_params():,} "
                 f"parameters, {self.replicas} replica(s); {sizes.num_updates} updates of "
                 f"{self.ec.num_envs} envs x {sizes.num_steps} steps"
                 + (f"; worker {share.index} of {share.count}: {sizes.num_envs} envs"
                    if share.count > 1 else ""))
        # All epochs x minibatches of one rollout run in one graph call (XLA with
        # --jit_compile on one replica; under a strategy, `strategy.run` inside the loop).
        # The loop is an explicit `tf.while_loop` and every branch is on Python values, so
        # AutoGraph is off: its conversion would only slow the first update's tracing.
        step = make_minibatch_step(self.model, self.optimizer, pc, sizes.chunk, self.dist,
                                   self.clip_coef)
        self.update_fn = tf.function(
            functools.partial(run_update, step, num_minibatches=pc.num_minibatches,
                              target_kl=pc.target_kl),
            jit_compile=bool(self.common.jit_compile) and self.replicas == 1,
            autograph=False)

    def _groups(self):
        """The checkpoint's named groups: the optimizer is the inner one, so a run resumes
        under another precision; a float16 loss scale is kept in the state."""
        return {"model": self.model, "optimizer": precision.inner_optimizer(self.optimizer)}

    def _restore(self):
        """Resumes from the newest intact checkpoint (every worker, from the chief's)."""
        self.ckpts = checkpoint.CheckpointManager(self.path / agent_dir.CHECKPOINTS,
                                                  max_to_keep=2, read_only=not self.share.chief,
                                                  log=self.log)
        restored = self.ckpts.restore(self._groups())
        self.rng = np.random.default_rng(self.common.seed)
        if restored is not None:
            self.state = _State(**restored)
            self.rng.bit_generator.state = self.state.rng
            if self.reward_norm is not None and self.state.return_rms:
                _set_rms(self.reward_norm.return_rms, self.state.return_rms)
            if self.state.loss_scale is not None:
                precision.restore_loss_scale(self.optimizer, {
                    "scale": self.state.loss_scale, "good_steps": self.state.loss_scale_steps})
            self.log(f"resumed from update {self.state.update} "
                     f"(step {self.state.global_step})")
        elif self.share.chief and (self.path / agent_dir.BEST).is_dir():
            # A best policy of an earlier attempt that died before its first checkpoint: this
            # run starts over, and its own periodic evaluations choose its best.
            shutil.rmtree(self.path / agent_dir.BEST)
            self.log(f"removed {self.path / agent_dir.BEST}: a run without a checkpoint")
        worker_sync.check_same_step(self.dist, self.state.update)

    def _write_configs(self):
        if self.share.chief:
            agent_dir.save_configs(self.path, self.ec, self.policy_config, self.pc,
                                   seed=self.common.seed, precision=self.precision)

    # ---- the loop: rollouts and updates ----------------------------------------------------

    def _start_loop(self):
        """The writer, the rollout buffers and the first observations, before `_update`s."""
        state, share = self.state, self.share
        obs_norm = (ObsNormalizer(self.envs.single_observation_space.shape, state.obs_rms)
                    if self.ec.normalize_obs else None)
        self.writer = summaries.SummaryWriter(self.path, enabled=share.chief)
        if state.update == 0:
            self.writer.hparams_table(
                dataclasses.asdict(self.ec) | dataclasses.asdict(self.policy_config)
                | dataclasses.asdict(self.pc) | dataclasses.asdict(self.common)
                | {"precision": self.precision})
        self.rollout = _Rollout(self.envs, self.model, self.sizes, self.pc, share,
                                self.ec.num_envs, obs_norm, self.writer,
                                jit_compile=bool(self.common.jit_compile))
        self.rollout.reset(self.common.seed + 7919 * state.update + share.env_seed_offset)
        self._run_start, self._run_start_step = time.perf_counter(), state.global_step

    def _train(self):
        state, sizes, share = self.state, self.sizes, self.share
        self._start_loop()
        bar = progress.Progress(sizes.num_updates * sizes.batch, initial=state.global_step,
                                unit="step", description="train",
                                enabled=share.chief and self.verbose > 0)
        with bar, StopOnCtrlC(self.log, unit="update") as interrupt:
            while state.update < sizes.num_updates:
                sps = self._update()
                bar.update(state.global_step, state.train_seconds,
                           {"return": state.last_return, "SPS": sps})
                stop = worker_sync.any_worker(self.dist, interrupt.requested)
                # Before the checkpoint, which then holds its best. A new best is checkpointed
                # at once (the chief's own files, no collective op), so that a run killed
                # after it resumes with the best that best/ holds, not an older one.
                improved = not stop and self._periodic_eval()
                scheduled = (state.update % self.pc.checkpoint_every == 0
                             or state.update == sizes.num_updates or stop)
                if scheduled or improved:
                    self._save()
                if scheduled and not stop:
                    self._log_attention()
                if stop:
                    self.log(f"saved update {state.update} (step {state.global_step})")
                    raise Interrupted(self.path, state.update)

    def _schedule(self):
        """Anneals the learning rate and the clip for this update; returns both."""
        pc, state = self.pc, self.state
        remaining = 1.0 - (state.update - 1.0) / self.sizes.num_updates
        learning_rate = pc.learning_rate
        if pc.anneal_lr:
            learning_rate *= remaining
            self.optimizer.learning_rate.assign(learning_rate)
        clip_value = pc.clip_coef
        if self.clip_coef is not None:
            clip_value *= remaining
            self.clip_coef.assign(clip_value)
        return learning_rate, clip_value

    def _update(self):
        """One rollout and its update; returns the env-steps/s of this session so far."""
        state, sizes, pc, rollout = self.state, self.sizes, self.pc, self.rollout
        update_start = time.perf_counter()
        state.update += 1
        learning_rate, clip_value = self._schedule()
        advantages, returns = rollout.collect(state, self.rng)
        state.global_step += sizes.batch
        data = rollout.training_data(advantages, returns)
        # The minibatches of each epoch: a fresh permutation of the chunks per epoch (the
        # same on every worker, each over its own chunks).
        orders = np.stack([self.rng.permutation(sizes.num_chunks)
                           for _ in range(pc.update_epochs)])
        orders = orders.reshape(pc.update_epochs * pc.num_minibatches, sizes.minibatch_chunks)
        rollout_end = time.perf_counter()
        terms, epochs_run = self.update_fn(data, tf.constant(orders, tf.int32))
        epochs_run = int(epochs_run)
        rollout_seconds = rollout_end - update_start
        update_seconds = time.perf_counter() - rollout_end
        state.rollout_seconds += rollout_seconds
        state.update_seconds += update_seconds
        state.skipped_steps += int(terms["skipped_steps"])
        rollout.keep_prefix()
        state.train_seconds += time.perf_counter() - update_start
        sps = ((state.global_step - self._run_start_step)
               / max(time.perf_counter() - self._run_start, 1e-9))
        scalars = {f"losses/{k}": float(terms[k]) for k in LOSS_TAGS}
        variance = np.var(returns)
        scalars |= {
            "losses/explained_variance": float(
                1.0 - np.var(returns - rollout.values) / variance) if variance > 0 else 0.0,
            "charts/learning_rate": learning_rate,
            "charts/clip_coef": clip_value,
            "charts/SPS": sps, "charts/epochs": epochs_run,
            "charts/loss_scale": float(precision.loss_scale(self.optimizer)),
            "charts/skipped_steps": state.skipped_steps,
            "perf/rollout_ms": rollout_seconds * 1e3, "perf/update_ms": update_seconds * 1e3}
        self.writer.scalars(state.global_step, scalars)
        return sps

    def _save(self):
        state = self.state
        state.rng = self.rng.bit_generator.state
        state.obs_rms = self._obs_rms()
        state.return_rms = (_rms_state(self.reward_norm.return_rms)
                            if self.reward_norm is not None else {})
        scale = precision.loss_scale_state(self.optimizer)
        if scale:
            state.loss_scale, state.loss_scale_steps = scale["scale"], scale["good_steps"]
        self.ckpts.save(state.update, self._groups(), dataclasses.asdict(state))

    def _obs_rms(self):
        """The current observation statistics (`{}` without `normalize_obs`)."""
        obs_norm = self.rollout.obs_norm
        return obs_norm.state() if obs_norm is not None else {}

    def _periodic_eval(self):
        """Every `eval_every` updates (the chief only, no collective ops): a greedy evaluation
        of `eval_every_episodes` episodes on the selection seed, logged; a strictly better
        mean return than the best so far keeps the policy in `best/` (`_save_best`).

        Returns:
            Whether this update's policy became the best.
        """
        pc, state = self.pc, self.state
        if not (self.share.chief and pc.eval_every and state.update % pc.eval_every == 0):
            return False
        obs_rms = self._obs_rms()  # this update's: the state's are the last checkpoint's
        returns, _ = self._evaluate(pc.eval_every_episodes, obs_rms,
                                    self.common.seed + SELECTION_SEED_OFFSET)
        mean = float(np.mean(returns))
        self.writer.scalars(state.global_step, {"eval/periodic_mean_return": mean})
        better = is_improvement(mean, state.best_return)
        if better:
            self._save_best(mean, obs_rms)
        self.log(f"periodic evaluation at update {state.update} (step {state.global_step}): "
                 f"mean return {mean:.2f} over {len(returns)} episodes; "
                 + ("the best so far, kept in best/" if better else
                    f"the best is {state.best_return:.2f} (step {state.best_step})"))
        return better

    def _save_best(self, mean, obs_rms):
        """Keeps the current policy in `best/` and records it in the state.

        `best/` is a checkpoint folder (atomic: a crash leaves the previous best intact),
        holding the model's weights and, in its state, what an evaluation needs."""
        state = self.state
        state.best_return, state.best_step, state.best_update = (mean, state.global_step,
                                                                 state.update)
        if self.best_ckpts is None:
            self.best_ckpts = checkpoint.CheckpointManager(self.path / agent_dir.BEST,
                                                           max_to_keep=2, log=self.log)
        self.best_ckpts.save(state.update, {"model": self.model}, {
            "update": state.update, "global_step": state.global_step, "obs_rms": obs_rms,
            "selection_return": mean})

    def _log_attention(self):
        """Logs the token and memory attention (`attention_view.episode_views`) of the first
        `ATTENTION_EPISODE_STEPS` greedy steps of the fixed evaluation episode (the final
        evaluation's seed), at the global step; the chief only. Call it after `_save`, which
        brings the observation statistics up to date."""
        if not self.share.chief:
            return
        state = self.state
        _, _, token_w, memory_w, _ = record_episode(
            self.model, self.ec, state.obs_rms or None, self.common.seed + EVAL_SEED_OFFSET,
            render=False, max_steps=ATTENTION_EPISODE_STEPS,
            jit_compile=False)  # a few dozen steps: tracing alone costs less than XLA's compile
        for name, view in episode_views(self.model.layout, token_w, memory_w).items():
            self.writer.attention(f"attention/{name}", state.global_step, **view)

    # ---- the finish: greedy evaluation and metrics.json ----------------------------------

    def _evaluate(self, episodes, obs_rms, seed):
        """Greedy episodes of the model as it is, scaled by `obs_rms` (a dict or None);
        the policy step is XLA-compiled with --jit_compile, as the rollout's."""
        return evaluate_policy(self.model, self.ec, episodes, obs_rms=obs_rms or None,
                               seed=seed, jit_compile=bool(self.common.jit_compile))

    def _finish(self):
        state, ec, pc = self.state, self.ec, self.pc
        self._close_envs()
        self.log(f"weights fingerprint: {strategy.weights_fingerprint(self.model.variables)}")
        eval_returns = eval_lengths = np.zeros(0)
        if self.share.chief:  # no collective ops in here: the other workers wait below
            eval_returns, eval_lengths = self._evaluate(
                pc.eval_episodes, state.obs_rms, self.common.seed + EVAL_SEED_OFFSET)
        metrics = {
            "eval_mean_return": _statistic(np.mean, eval_returns),
            "eval_std_return": _statistic(np.std, eval_returns),
            "eval_mean_length": _statistic(np.mean, eval_lengths),
            "eval_episodes": int(len(eval_returns)),
            "env_steps": int(state.global_step),
            "updates": int(state.update),
            "train_seconds": float(state.train_seconds),
            "rollout_seconds": float(state.rollout_seconds),
            "update_seconds": float(state.update_seconds),
            "steps_per_second": float(state.global_step / max(state.train_seconds, 1e-9)),
            "policy": self.policy_config.policy,
            "memory": int(self.policy_config.memory),
            "env_id": ec.env_id,
            "seed": int(self.common.seed),
            "precision": self.precision,
            "skipped_steps": int(state.skipped_steps),
            "replicas": int(self.replicas),
            "parameters": int(self.model.count_params()),
        }
        scalars = {"eval/mean_return": metrics["eval_mean_return"],
                   "eval/std_return": metrics["eval_std_return"]}
        if self.share.chief and state.best_return is not None:
            metrics |= self._evaluate_best()
            if "best_eval_mean_return" in metrics:
                scalars["eval/best_mean_return"] = metrics["best_eval_mean_return"]
        # One call: each set of tags is a graph of its own (`SummaryWriter.scalars`), and a
        # run tracing five of them gets TensorFlow's frequent-retracing warning.
        self.writer.scalars(state.global_step, scalars)
        self.writer.close()
        self.writer = None
        if self.share.chief:
            metrics_file.write_metrics(self.path, metrics)
        strategy.barrier(self.dist)  # no worker leaves the cluster while another needs it
        self.log(json.dumps(metrics, indent=2))
        return metrics

    def _evaluate_best(self):
        """The metrics of the best policy (`best/`) on the final evaluation's episodes; the
        chief only. The model gets its final weights back afterwards.

        Returns:
            `best_eval_mean_return`, `best_eval_std_return`, `best_step` and
            `best_selection_return` (the periodic evaluation it was chosen on), from the
            policy read back from `best/`; `{}` if none can be read (logged).
        """
        state, pc = self.state, self.pc
        final_weights = self.model.get_weights()
        manager = checkpoint.CheckpointManager(self.path / agent_dir.BEST, read_only=True,
                                               log=self.log)
        reason = f"no checkpoint in {manager.directory}"
        try:
            best = manager.restore({"model": self.model})
        except UserError as error:  # every one damaged: still write the run's own metrics
            best, reason = None, str(error)
        if best is None:
            self.model.set_weights(final_weights)
            self.log(f"warning: not evaluating the best policy of step {state.best_step}: "
                     f"{reason}")
            return {}
        try:
            returns, _ = self._evaluate(pc.eval_episodes, best.get("obs_rms"),
                                        self.common.seed + EVAL_SEED_OFFSET)
        finally:
            self.model.set_weights(final_weights)
        metrics = {
            "best_eval_mean_return": _statistic(np.mean, returns),
            "best_eval_std_return": _statistic(np.std, returns),
            "best_step": int(best["global_step"]),
            "best_selection_return": float(best["selection_return"]),
        }
        self.log(f"best policy (step {metrics['best_step']}, chosen on a return of "
                 f"{metrics['best_selection_return']:.2f}): {metrics['best_eval_mean_return']:.2f}"
                 f" on the final evaluation's {len(returns)} episodes")
        return metrics

    def run(self):
        """Trains (resuming from the model directory's newest intact checkpoint), evaluates.

        Returns:
            The metrics dict also written to `metrics.json`.

        Raises:
            Interrupted: After Ctrl-C, once the checkpoint of the current update is saved.
        """
        try:
            self._validate()
            with core_model_dir.ModelDir.open(self.path, chief=self.share.chief):
                self._build()
                self._restore()
                self._write_configs()
                self._train()
                try:
                    return self._finish()
                except KeyboardInterrupt:  # training is over and saved: resume evaluates
                    raise Interrupted(self.path, self.state.update) from None
        finally:
            self._close_envs()
            if self.writer is not None:
                self.writer.close()

    def _close_envs(self):
        if self.envs is not None:
            self.envs.close()
            self.envs = None


def train_and_evaluate(env_config, policy_config, ppo_config, common, model_dir, log=print,
                       verbose=1):
    """Trains a PPO agent, checkpointing and resuming in `model_dir`, then evaluates it.

    Args:
        env_config: `EnvConfig`.
        policy_config: `PolicyConfig`.
        ppo_config: `PPOConfig`.
        common: `attn_core.flags.CommonConfig` (seed, precision, strategy, jit_compile).
        model_dir: The model directory; a checkpoint there is resumed, if its saved config
            matches (only the schedule, `attn_agents.model_dir.SCHEDULE`, may differ). With
            several workers, the same (shared) directory for all: the chief creates, locks
            and writes it, every worker resumes from it.
        log: Where progress lines go; the last one before the metrics is
            `weights fingerprint: <hex>` (identical on workers that stayed in sync).
        verbose: 1 shows the progress with an ETA, 0 hides it.

    Returns:
        The metrics dict also written to `model_dir/metrics.json` (on workers other than the
        chief, which do not evaluate, with `eval_episodes` 0); with a best policy kept by
        `eval_every`, also its `best_eval_mean_return`, `best_eval_std_return`, `best_step`
        and `best_selection_return`.

    Raises:
        EnvError: For unsupported environments or spaces, an invalid strategy (e.g. no
            `TF_CONFIG` for `multi_worker`), or `num_envs` not divisible by the number of
            workers.
        UserError: If `chunk_length` does not divide `num_steps` with memory on, a worker's
            part of a minibatch cannot be split between its replicas, the directory holds a
            run with other settings or is in use, or its checkpoints are all damaged.
        Interrupted: After Ctrl-C, once a checkpoint is saved.
    """
    return PPOTrainer(env_config, policy_config, ppo_config, common, model_dir, log=log,
                      verbose=verbose).run()
