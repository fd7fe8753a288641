"""PPO training over a vector environment, then a greedy evaluation: `train_and_evaluate`.

The algorithm reads top to bottom, as in CleanRL's `ppo.py`: collect T steps from N
environments, compute GAE, then several epochs of clipped-objective minibatch updates.
With `memory=K`, training minibatches are sequence chunks of L steps, each preceded by the
K - 1 steps before it (from this rollout or the previous one), so the memory seen in
training is the memory the policy had while acting.

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
"""

import dataclasses
import functools
import json
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf

from attn_agents import cross_replica, model_dir, workers
from attn_agents.actor_critic import ActorCritic, zeros_like_space
from attn_agents.agent import Agent
from attn_agents.env_error import EnvError
from attn_agents.env_factory import make_vector_env
from attn_agents.evaluation import evaluate_policy
from attn_agents.gae import compute_gae
from attn_agents.obs_normalizer import ObsNormalizer
from attn_agents.ppo_loss import ppo_loss
from attn_core import checkpoint, metrics_file, precision, run_dir, strategy, summaries

LOSS_TAGS = ("policy", "value", "entropy", "approx_kl", "clipfrac")


@dataclasses.dataclass
class _State:
    update: int = 0
    global_step: int = 0
    train_seconds: float = 0.0
    rollout_seconds: float = 0.0  # acting, env steps, GAE and the training tensors
    update_seconds: float = 0.0  # the update's graph call, to its result
    episodes: int = 0
    last_return: float = 0.0
    rng: dict = dataclasses.field(default_factory=dict)
    obs_rms: dict = dataclasses.field(default_factory=dict)
    return_rms: dict = dataclasses.field(default_factory=dict)


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


def make_optimizer(pc, dist):
    """The PPO optimizer (Adam), created under `dist.scope()`.

    With one replica it clips the gradients' global norm to `pc.max_grad_norm` itself. With
    several it does not clip: Keras clips each replica's gradients before summing them, so
    `make_minibatch_step` clips the summed gradient instead.
    """
    with dist.scope():
        return keras.optimizers.Adam(
            pc.learning_rate, epsilon=1e-5,
            global_clipnorm=pc.max_grad_norm if dist.num_replicas_in_sync == 1 else None)


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

    Args:
        model: The `ActorCritic`.
        optimizer: Its Keras optimizer (`make_optimizer`: with several replicas, one that
            does not clip).
        pc: The `PPOConfig`.
        chunk: L, the query steps of each chunk (1 without memory).
        dist: The `tf.distribute.Strategy`.
        clip_coef: The clip epsilon: a variable (read at each step, for `anneal_clip`), or
            None for `pc.clip_coef`.

    Raises:
        ValueError: If the optimizer clips gradients under several replicas.
    """
    replicas = dist.num_replicas_in_sync
    if replicas > 1 and (optimizer.global_clipnorm or optimizer.clipnorm
                         or optimizer.clipvalue):
        raise ValueError(
            "Expected an optimizer that does not clip gradients under several replicas (see "
            "make_optimizer): Keras would clip each replica's gradients, not their sum. "
            f"Received: global_clipnorm={optimizer.global_clipnorm}, "
            f"clipnorm={optimizer.clipnorm}, clipvalue={optimizer.clipvalue}")

    clip = pc.clip_coef if clip_coef is None else clip_coef

    def replica_step(data, idx):
        batch_data = tf.nest.map_structure(lambda x: tf.gather(x, idx), data)
        flat = lambda x: tf.reshape(x, [-1])  # noqa: E731
        advantages = flat(batch_data["advantages"])
        adv_moments = (cross_replica.global_moments(advantages)
                       if pc.norm_adv and replicas > 1 else None)
        with tf.GradientTape() as tape:
            params, values = model.sequence_forward(batch_data["obs"], batch_data["starts"],
                                                    chunk)
            dist_ = model.distribution(tf.reshape(params, (-1, tf.shape(params)[-1])))
            actions = batch_data["actions"]
            actions = tf.reshape(actions, tf.concat([[-1], tf.shape(actions)[2:]], 0))
            terms = ppo_loss(dist_.log_prob(actions), flat(batch_data["log_probs"]),
                             advantages, flat(values),
                             flat(batch_data["values"]), flat(batch_data["returns"]),
                             dist_.entropy(), clip, pc.ent_coef, pc.vf_coef,
                             pc.clip_vloss, pc.norm_adv, adv_moments)
            loss = terms["loss"] / replicas
        grads = tape.gradient(loss, model.trainable_variables)
        if replicas > 1 and pc.max_grad_norm > 0:
            grads = cross_replica.clip_summed_gradients(grads, pc.max_grad_norm)
        optimizer.apply(grads, model.trainable_variables)
        return terms

    if replicas == 1:
        return replica_step

    keys = ("loss", *LOSS_TAGS)
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
            `terms` is the dict of float32 scalars of `ppo_loss`.
        data: The rollout's training tensors (gathered by chunk index).
        orders: int32 [E * M, B], the chunk indices of each of the E * M minibatches.
        num_minibatches: M.
        target_kl: The early-stop threshold.

    Returns:
        `(terms, epochs_run)`: the last minibatch's terms, and the epochs run (int32).
    """
    total = tf.shape(orders)[0]
    zero = tf.constant(0.0)
    terms = {k: zero for k in ("loss", *LOSS_TAGS)}

    def body(k, stop, terms):
        terms = minibatch_step(data, orders[k])
        terms = {key: tf.cast(terms[key], tf.float32) for key in ("loss", *LOSS_TAGS)}
        k = k + 1
        if target_kl:
            stop = tf.logical_and(tf.equal(k % num_minibatches, 0),
                                  terms["approx_kl"] > target_kl)
        return k, stop, terms

    k, _, terms = tf.while_loop(lambda k, stop, _: tf.logical_and(k < total, tf.logical_not(stop)),
                                body, (tf.constant(0), tf.constant(False), terms))
    return terms, k // num_minibatches


def train_and_evaluate(env_config, policy_config, ppo_config, common, workdir, log=print,
                       verbose=1):
    """Trains a PPO agent, checkpointing and resuming in `workdir`, then evaluates it.

    Args:
        env_config: `EnvConfig`.
        policy_config: `PolicyConfig`.
        ppo_config: `PPOConfig`.
        common: `attn_core.flags.CommonConfig` (seed, precision, strategy, jit_compile).
        workdir: The model directory; a checkpoint there is resumed. With several workers,
            the same (shared) directory for all: the chief creates and writes it, every
            worker resumes from it.
        log: Where progress lines go; the last one before the metrics is
            `weights fingerprint: <hex>` (identical on workers that stayed in sync).
        verbose: 1 shows a progress bar with an ETA, 0 hides it.

    Returns:
        The metrics dict also written to `workdir/metrics.json` (on workers other than the
        chief, which do not evaluate, with `eval_episodes` 0).

    Raises:
        EnvError: For unsupported environments or spaces, an invalid strategy (e.g. no
            `TF_CONFIG` for `multi_worker`), or `num_envs` not divisible by the number of
            workers.
        ValueError: If `chunk_length` does not divide `num_steps` with memory on, or a
            worker's part of a minibatch cannot be split between its replicas.
    """
    workdir = pathlib.Path(workdir)
    pc, ec = ppo_config, env_config
    memory = policy_config.memory
    prefix = max(memory - 1, 0)  # P: earlier steps in front of each training chunk
    chunk = pc.chunk_length if memory else 1  # L
    if memory and pc.num_steps % chunk:
        raise ValueError(f"Expected `chunk_length` to divide `num_steps` with memory. "
                         f"Received: chunk_length={chunk}, num_steps={pc.num_steps}")
    try:
        dist = strategy.make_strategy(common.strategy, common.cpu_devices)
    except ValueError as error:  # e.g. no TF_CONFIG for multi_worker: shown as one line
        raise EnvError(str(error)) from None
    share = workers.worker_share(ec.num_envs, dist)
    chief = share.chief
    precision.set_precision_policy(common.precision)
    run_dir.set_seeds(common.seed)  # the same model init and minibatch order on every worker
    if chief:
        workdir.mkdir(parents=True, exist_ok=True)
        model_dir.save_configs(workdir, ec, policy_config, pc)

    n, steps = share.num_envs, pc.num_steps  # this worker's N environments
    batch = ec.num_envs * steps  # the global batch, all workers' rollouts
    num_updates = max(pc.total_timesteps // batch, 1)
    num_chunks = n * steps // chunk  # this worker's chunks
    replicas = dist.num_replicas_in_sync
    local_replicas = replicas // share.count
    minibatch_chunks = num_chunks // pc.num_minibatches  # this worker's part of a minibatch
    if minibatch_chunks < 1 or minibatch_chunks % local_replicas:
        raise ValueError(
            f"Expected each worker's part of a minibatch ({num_chunks} chunks / "
            f"{pc.num_minibatches} minibatches) to hold a positive multiple of its "
            f"{local_replicas} replicas. Received: num_minibatches={pc.num_minibatches}")
    envs, reward_norm = make_vector_env(ec, num_envs=n, training=True, gamma=pc.gamma)

    with dist.scope():
        model = ActorCritic(policy_config, envs.single_observation_space,
                            envs.single_action_space, name="policy")
        optimizer = make_optimizer(pc, dist)
        checkpoint.build_optimizer(optimizer, model)
        # Set from the update number (not checkpointed), like the learning rate.
        clip_coef = (tf.Variable(pc.clip_coef, trainable=False, name="clip_coef")
                     if pc.anneal_clip else None)
    log(f"policy: {policy_config.policy}, {model.count_params():,} parameters, "
        f"{replicas} replica(s); {num_updates} updates of {ec.num_envs} envs x {steps} steps"
        + (f"; worker {share.index} of {share.count}: {n} envs" if share.count > 1
           else ""))

    # Every worker resumes from the chief's checkpoints in the shared model directory; only
    # the chief writes them.
    ckpts = checkpoint.CheckpointManager(workdir / "checkpoints", max_to_keep=2,
                                         read_only=not chief)
    state = _State()
    restored = ckpts.restore([model, optimizer])
    rng = np.random.default_rng(common.seed)
    if restored is not None:
        state = _State(**restored)
        rng.bit_generator.state = state.rng
        if reward_norm is not None and state.return_rms:
            _set_rms(reward_norm.return_rms, state.return_rms)
        log(f"resumed from update {state.update} (step {state.global_step})")

    agent = Agent(model, num_envs=n)
    obs_norm = (ObsNormalizer(envs.single_observation_space.shape, state.obs_rms)
                if ec.normalize_obs else None)

    def observe(raw):
        if obs_norm is None:
            return raw
        obs_norm.update(raw)
        return obs_norm(raw)

    # All epochs x minibatches of one rollout run in one graph call (XLA with --jit_compile
    # on one replica; under a strategy, `strategy.run` inside the loop). The loop is an
    # explicit `tf.while_loop` and every branch is on Python values, so AutoGraph is off: it
    # took about 1 s of the first update's tracing (CartPole, 2 cores).
    update = tf.function(
        functools.partial(run_update,
                          make_minibatch_step(model, optimizer, pc, chunk, dist, clip_coef),
                          num_minibatches=pc.num_minibatches,
                          target_kl=pc.target_kl),
        jit_compile=bool(common.jit_compile) and replicas == 1, autograph=False)

    # Buffers (CleanRL layout [T, N, ...]); obs and starts have P extra rows in front.
    obs_buf = _stack_buffer(envs.single_observation_space, (prefix + steps, n))
    starts_buf = np.ones((prefix + steps, n), bool)
    action_shape = () if model.discrete else (model.action_size,)
    actions_buf = np.zeros((steps, n, *action_shape), np.int64 if model.discrete else np.float32)
    log_probs_buf, values_buf, rewards_buf = (np.zeros((steps, n), np.float32) for _ in range(3))
    ends_buf = np.zeros((steps, n), bool)
    time_idx, env_idx = _chunk_indices(steps, n, chunk, prefix)
    query_time = time_idx[:, prefix:] - prefix  # [C, L] rollout step of each query
    query_env = env_idx[:, prefix:]

    writer = summaries.SummaryWriter(workdir, enabled=chief)
    if state.update == 0:
        writer.hparams_table(dataclasses.asdict(ec) | dataclasses.asdict(policy_config)
                             | dataclasses.asdict(pc) | dataclasses.asdict(common))
    progbar = keras.utils.Progbar(num_updates * batch, verbose=verbose, unit_name="step",
                                  stateful_metrics=["return", "SPS"])
    progbar.update(state.global_step)
    next_obs, _ = envs.reset(seed=common.seed + 7919 * state.update + share.env_seed_offset)
    next_obs = observe(next_obs)
    next_start = np.ones(n, bool)
    run_start, run_start_step = time.perf_counter(), state.global_step
    terms = {}

    while state.update < num_updates:
        update_start = time.perf_counter()
        state.update += 1
        learning_rate = pc.learning_rate
        remaining = 1.0 - (state.update - 1.0) / num_updates
        if pc.anneal_lr:
            learning_rate *= remaining
            optimizer.learning_rate.assign(learning_rate)
        clip_value = pc.clip_coef
        if clip_coef is not None:
            clip_value *= remaining
            clip_coef.assign(clip_value)
        if prefix:
            agent.rebuild_memory(
                tf.nest.map_structure(lambda x: np.swapaxes(x[:prefix], 0, 1), obs_buf),
                starts_buf[:prefix].T)
        for t in range(steps):
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
            next_obs = observe(next_obs)
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
                writer.scalars(state.global_step + (t + 1) * ec.num_envs, {
                    "charts/episodic_return": state.last_return,
                    "charts/episodic_length": float(np.mean(infos["episode"]["l"][done]))})
        state.global_step += batch
        next_value = agent.act(next_obs, next_start, greedy=True, commit=False).value
        advantages, returns = compute_gae(rewards_buf, values_buf, ends_buf, next_value,
                                          pc.gamma, pc.gae_lambda)

        data = {
            "obs": tf.nest.map_structure(lambda x: tf.constant(x[time_idx, env_idx]), obs_buf),
            "starts": tf.constant(starts_buf[time_idx, env_idx]),
            "actions": tf.constant(actions_buf[query_time, query_env]),
            "log_probs": tf.constant(log_probs_buf[query_time, query_env]),
            "values": tf.constant(values_buf[query_time, query_env]),
            "advantages": tf.constant(advantages[query_time, query_env]),
            "returns": tf.constant(returns[query_time, query_env]),
        }
        # The minibatches of each epoch: a fresh permutation of the chunks per epoch (the
        # same on every worker, each over its own chunks).
        orders = np.stack([rng.permutation(num_chunks) for _ in range(pc.update_epochs)])
        orders = orders.reshape(pc.update_epochs * pc.num_minibatches, minibatch_chunks)
        rollout_end = time.perf_counter()
        terms, epochs_run = update(data, tf.constant(orders, tf.int32))
        epochs_run = int(epochs_run)
        rollout_seconds = rollout_end - update_start
        update_seconds = time.perf_counter() - rollout_end
        state.rollout_seconds += rollout_seconds
        state.update_seconds += update_seconds
        # The last P steps become the next rollout's memory prefix.
        if prefix:
            tf.nest.map_structure(lambda buf: buf.__setitem__(slice(0, prefix), buf[-prefix:]),
                                  obs_buf)
            starts_buf[:prefix] = starts_buf[-prefix:]

        state.train_seconds += time.perf_counter() - update_start
        sps = (state.global_step - run_start_step) / max(time.perf_counter() - run_start, 1e-9)
        scalars = {f"losses/{k}": float(terms[k]) for k in LOSS_TAGS}
        variance = np.var(returns)
        scalars |= {
            "losses/explained_variance": float(
                1.0 - np.var(returns - values_buf) / variance) if variance > 0 else 0.0,
            "charts/learning_rate": learning_rate,
            "charts/clip_coef": clip_value,
            "charts/SPS": sps, "charts/epochs": epochs_run,
            "perf/rollout_ms": rollout_seconds * 1e3, "perf/update_ms": update_seconds * 1e3}
        writer.scalars(state.global_step, scalars)
        progbar.update(state.global_step, [("return", state.last_return), ("SPS", sps)])
        if state.update % pc.checkpoint_every == 0 or state.update == num_updates:
            state.rng = rng.bit_generator.state
            state.obs_rms = obs_norm.state() if obs_norm is not None else {}
            state.return_rms = (_rms_state(reward_norm.return_rms) if reward_norm is not None
                                else {})
            ckpts.save(state.update, [model, optimizer], dataclasses.asdict(state))
    envs.close()
    log(f"weights fingerprint: {strategy.weights_fingerprint(model.variables)}")

    eval_returns = eval_lengths = np.zeros(0)
    if chief:  # no collective ops in here: the other workers wait at the barrier below
        eval_returns, eval_lengths = evaluate_policy(
            model, ec, pc.eval_episodes, obs_rms=state.obs_rms or None,
            seed=common.seed + 100_003)
    metrics = {
        "eval_mean_return": float(np.mean(eval_returns)) if len(eval_returns) else 0.0,
        "eval_std_return": float(np.std(eval_returns)) if len(eval_returns) else 0.0,
        "eval_mean_length": float(np.mean(eval_lengths)) if len(eval_lengths) else 0.0,
        "eval_episodes": int(len(eval_returns)),
        "env_steps": int(state.global_step),
        "updates": int(state.update),
        "train_seconds": float(state.train_seconds),
        "rollout_seconds": float(state.rollout_seconds),
        "update_seconds": float(state.update_seconds),
        "steps_per_second": float(state.global_step / max(state.train_seconds, 1e-9)),
        "policy": policy_config.policy,
        "memory": int(memory),
        "env_id": ec.env_id,
        "seed": int(common.seed),
        "replicas": int(replicas),
        "parameters": int(model.count_params()),
    }
    writer.scalars(state.global_step, {"eval/mean_return": metrics["eval_mean_return"],
                                       "eval/std_return": metrics["eval_std_return"]})
    writer.close()
    if chief:
        metrics_file.write_metrics(workdir, metrics)
    strategy.barrier(dist)  # no worker leaves the cluster while another still needs it
    log(json.dumps(metrics, indent=2))
    return metrics
