"""Training and evaluation of the SAGAN: `train_and_evaluate`."""

import dataclasses
import json
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf

from attn_core import checkpoint, metrics_file, precision, run_dir, strategy, summaries
from attn_core.heatmap import figure_to_png_bytes
from gan import replica_agreement
from gan.attention_overlay import plot_attention_overlay
from gan.discriminator import Discriminator
from gan.ema import copy_weights, update_ema
from gan.evaluation import evaluate_generator
from gan.generator import Generator
from gan.hinge_loss import discriminator_hinge_loss, generator_hinge_loss
from gan.input_pipeline import make_dataset
from gan.sample_grid import save_grid

SAMPLE_COLUMNS = 8
ATTENTION_SAMPLES = 3


@dataclasses.dataclass
class _State:
    step: int = 0
    train_seconds: float = 0.0
    real_images: int = 0
    d_skipped: int = 0
    g_skipped: int = 0


def build_models(model_config, train_config, policy_name):
    """G, D, the EMA G and both optimizers, built (call inside the strategy scope).

    Under `mixed_float16` both optimizers are wrapped in `LossScaleOptimizer` (Keras'
    `compile(auto_scale_loss=True)` would only wrap a model's one optimizer).
    """
    generator = Generator(model_config, name="generator").build_for()
    discriminator = Discriminator(model_config, name="discriminator").build_for()
    ema = Generator(model_config, name="generator_ema").build_for()
    copy_weights(generator, ema)
    tc = train_config
    optimizers = []
    for lr, model in ((tc.g_lr, generator), (tc.d_lr, discriminator)):
        optimizer = keras.optimizers.Adam(lr, beta_1=tc.beta_1, beta_2=tc.beta_2)
        if precision.needs_loss_scaling(policy_name):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizers.append(checkpoint.build_optimizer(optimizer, model))
    return generator, discriminator, ema, optimizers[0], optimizers[1]


def checkpoint_objects(generator, discriminator, ema, g_opt, d_opt):
    """The checkpointed objects; the EMA generator comes first so that `gan.generate`
    restores only it (`restore(..., prefix=True)`)."""
    return [ema, generator, discriminator, g_opt, d_opt]


def fixed_noise(model_config, seed):
    """The z [S, Z] and labels [S] of the sample grids: 8 columns, and one row per class
    when conditional (8 rows otherwise)."""
    rows = model_config.num_classes or SAMPLE_COLUMNS
    rng = np.random.default_rng(seed + 12345)
    z = rng.standard_normal((rows * SAMPLE_COLUMNS, model_config.z_dim)).astype(np.float32)
    labels = np.repeat(np.arange(rows), SAMPLE_COLUMNS).astype(np.int32)
    return z, labels


def _noise_dataset(batch_size, z_dim, num_classes, seed, start):
    """Batches of (z_d [B, Z], y_d [B], z_g [B, Z], y_g [B]): the noise and fake labels of D's
    and G's steps, drawn from stateless seeds (seed, example index), so that a resumed run
    continues the same stream.

    B is the global batch: zipped with the real images and distributed, replica r of R
    gets rows [r·B/R, (r+1)·B/R) of every batch, whatever the number of workers, and
    every worker draws the same global batch (the stream depends on nothing else).
    """

    def draw(index):
        seeds = tf.random.experimental.stateless_split(
            tf.stack([tf.constant(seed, tf.int64), index]), 4)
        z_d = tf.random.stateless_normal((z_dim,), seeds[0])
        z_g = tf.random.stateless_normal((z_dim,), seeds[1])
        classes = max(num_classes, 1)
        y_d = tf.random.stateless_uniform((), seeds[2], 0, classes, tf.int32)
        y_g = tf.random.stateless_uniform((), seeds[3], 0, classes, tf.int32)
        return z_d, y_d, z_g, y_g

    dataset = tf.data.Dataset.counter(start, dtype=tf.int64).map(draw)
    return dataset.batch(batch_size, drop_remainder=True)


def train_and_evaluate(data, model_config, train_config, common, workdir,
                       feature_extractor=None, log=print, dist=None):
    """Trains G and D with the hinge loss, keeps an EMA of G, and evaluates it.

    Resumes from `workdir/checkpoints` when there is a checkpoint. Writes sample grids
    (`workdir/samples/step_XXXXXXX.png`), TensorBoard events, attention figures and, at
    the end, `metrics.json`. Logs `weights fingerprint: <hex>` (of G, D and the EMA G)
    after training.

    Under a `tf.distribute` strategy the batch size is global, and a step on R replicas
    is the single-replica step on the same global batch: each replica gets its slice of
    the real images and of the noise, G's batch norm uses the global statistics, the
    losses are means over the global batch and the gradients are summed over replicas.
    With several workers (`MultiWorkerMirroredStrategy`) all of them resume from the
    chief's checkpoints in the shared `workdir`, but only the chief (worker 0) writes
    there and evaluates; every worker runs the same collective ops in the same order.

    Args:
        data: a `gan.image_data.ImageData` at the config's resolution.
        model_config: a `gan.model_config.ModelConfig` (already saved in `workdir`).
        train_config: a `gan.train_config.TrainConfig`.
        common: an `attn_core.flags.CommonConfig` (seed, precision, strategy, ...).
        workdir: the model directory.
        feature_extractor: a `gan.feature_extractor.FeatureExtractor` for the final
            metrics, or None to skip them (only the chief uses it).
        log: where progress lines go.
        dist: the `tf.distribute.Strategy` (default: made from `common.strategy` and
            `common.cpu_devices`; a multi-worker one must be made once per process, so
            pass it when it exists).

    Returns:
        The metrics dict, also written to `workdir/metrics.json` by the chief.

    Raises:
        ValueError: when the batch size is not a multiple of the replicas.
        RuntimeError: when the workers resumed from different steps.
    """
    workdir = pathlib.Path(workdir)
    tc, mc = train_config, model_config
    if dist is None:
        dist = strategy.make_strategy(common.strategy, common.cpu_devices)
    precision.set_precision_policy(common.precision)
    run_dir.set_seeds(common.seed)
    replicas = dist.num_replicas_in_sync
    tc.check_replicas(replicas)
    worker, workers = strategy.worker_info(dist)
    chief = strategy.is_chief(dist)
    if workers > 1:
        log(f"worker {worker} of {workers}" + ("" if chief else
                                               f": not the chief, writes nothing in {workdir}"))
    fp16 = precision.needs_loss_scaling(common.precision)

    with dist.scope():
        generator, discriminator, ema, g_opt, d_opt = build_models(mc, tc, common.precision)
    log(f"generator: {generator.count_params():,} parameters, discriminator: "
        f"{discriminator.count_params():,}, {replicas} replica(s), {common.precision}")
    objects = checkpoint_objects(generator, discriminator, ema, g_opt, d_opt)
    ckpts = checkpoint.CheckpointManager(workdir / "checkpoints", max_to_keep=2,
                                         read_only=not chief)
    state = _State()
    restored = ckpts.restore(objects)
    if restored is not None:
        state = _State(**restored)
        log(f"resumed from step {state.step}")
    replica_agreement.check_same_step(dist, state.step)

    real = make_dataset(data.train_images, data.train_labels, tc.batch_size,
                        seed=common.seed + state.step)
    noise = _noise_dataset(tc.batch_size, mc.z_dim, mc.num_classes, common.seed,
                           state.step * tc.d_steps * tc.batch_size)
    dataset = tf.data.Dataset.zip((real, noise)).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()  # every worker runs the pipeline and keeps its replicas' rows
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    batches = iter(dist.experimental_distribute_dataset(dataset.with_options(options)))
    global_batch = float(tc.batch_size)

    def labels_or_none(labels):
        return labels if mc.num_classes else None

    def d_replica(batch):
        (images, labels), (z_d, y_d, _, _) = batch
        fakes = generator(z_d, labels_or_none(y_d), training=True)
        both = tf.concat([images, tf.stop_gradient(fakes)], 0)
        both_labels = labels_or_none(tf.concat([labels, y_d], 0))
        with tf.GradientTape() as tape:
            logits = discriminator(both, both_labels, training=True)  # float32 [2b]
            real_logits, fake_logits = tf.split(logits, 2)
            loss = tf.reduce_sum(discriminator_hinge_loss(real_logits, fake_logits))
            loss = loss / global_batch
            scaled = d_opt.scale_loss(loss) if fp16 else loss
        grads = tape.gradient(scaled, discriminator.trainable_variables)
        if fp16:  # every replica must skip, or apply, the same steps
            grads = replica_agreement.poison_unless_all_finite(grads)
        d_opt.apply(grads, discriminator.trainable_variables)
        return loss, tf.reduce_sum(real_logits), tf.reduce_sum(fake_logits)

    def g_replica(batch):
        _, (_, _, z_g, y_g) = batch
        with tf.GradientTape() as tape:
            fakes = generator(z_g, labels_or_none(y_g), training=True)
            logits = discriminator(fakes, labels_or_none(y_g), training=False)
            loss = tf.reduce_sum(generator_hinge_loss(logits)) / global_batch
            scaled = g_opt.scale_loss(loss) if fp16 else loss
        grads = tape.gradient(scaled, generator.trainable_variables)
        if fp16:
            grads = replica_agreement.poison_unless_all_finite(grads)
        g_opt.apply(grads, generator.trainable_variables)
        return loss

    def scale_of(optimizer):
        return optimizer.dynamic_scale.value if fp16 else tf.constant(1.0)

    def total(value):
        return dist.reduce("SUM", value, axis=None)

    @tf.function(jit_compile=False)
    def d_step(batch):
        before = scale_of(d_opt)
        loss, real_sum, fake_sum = dist.run(d_replica, args=(batch,))
        skipped = tf.cast(scale_of(d_opt) < before, tf.int32)
        return total(loss), total(real_sum) / global_batch, total(fake_sum) / global_batch, \
            skipped

    @tf.function(jit_compile=False)
    def g_step(batch, decay):
        before = scale_of(g_opt)
        loss = total(dist.run(g_replica, args=(batch,)))
        skipped = tf.cast(scale_of(g_opt) < before, tf.int32)
        update_ema(generator, ema, decay)  # cross-replica: every worker updates its copies
        return loss, skipped

    attention_blocks = {name: model.attention for name, model in
                        (("generator", generator), ("discriminator", discriminator))
                        if model.attention is not None}
    z_fixed, y_fixed = fixed_noise(mc, common.seed)
    writer = summaries.SummaryWriter(workdir, enabled=chief)
    if state.step == 0:
        writer.hparams_table(dataclasses.asdict(mc) | dataclasses.asdict(tc)
                             | dataclasses.asdict(common) | {"dataset": data.name})

    def write_samples():
        images = np.asarray(ema(z_fixed, y_fixed if mc.num_classes else None, training=False))
        path = save_grid(workdir / "samples" / f"step_{state.step:07d}.png", images,
                         SAMPLE_COLUMNS)
        png = tf.io.read_file(str(path))
        with writer._writer.as_default():  # SummaryWriter has no generic image method yet
            tf.summary.image("samples/ema", tf.io.decode_png(png)[tf.newaxis], step=state.step)
            if ema.attention is not None:
                count = ATTENTION_SAMPLES
                fakes, scores = ema(z_fixed[:count], y_fixed[:count] if mc.num_classes else None,
                                    training=False, return_attention_scores=True)
                figure = plot_attention_overlay(fakes, scores, title=f"step {state.step}")
                attention_png = figure_to_png_bytes(figure)
                tf.summary.image("attention/generator",
                                 tf.io.decode_png(attention_png, 4)[tf.newaxis], step=state.step)
        return path

    budget = tc.time_budget_minutes * 60.0 if tc.time_budget_minutes else float("inf")
    progbar = keras.utils.Progbar(tc.steps, unit_name="step",
                                  stateful_metrics=["d", "g", "img/s"])
    progbar.update(state.step)
    window = [0, time.perf_counter()]
    warm = [0, 0.0]  # images and seconds of this process after its first (tracing) step
    stop_reason = "steps"
    first_step = state.step
    while state.step < tc.steps:
        # The workers' clocks differ: they vote, so that all stop after the same step.
        over_budget = state.train_seconds >= budget
        if budget < float("inf") and replica_agreement.any_worker(dist, over_budget):
            stop_reason = "time_budget"
            break
        start = time.perf_counter()
        for _ in range(tc.d_steps):
            batch = next(batches)
            d_loss, d_real, d_fake, d_skip = d_step(batch)
        decay = min(tc.ema_decay, (1.0 + state.step) / (10.0 + state.step))
        g_loss, g_skip = g_step(batch, tf.constant(decay, tf.float32))
        d_loss, g_loss = float(d_loss), float(g_loss)
        if not (np.isfinite(d_loss) and np.isfinite(g_loss)) and not fp16:
            raise FloatingPointError(f"losses are d={d_loss}, g={g_loss} at step {state.step}")
        state.step += 1
        seconds = time.perf_counter() - start
        state.train_seconds += seconds
        if state.step > first_step + 1:
            warm[0] += tc.batch_size * tc.d_steps
            warm[1] += seconds
        state.real_images += tc.batch_size * tc.d_steps
        state.d_skipped += int(d_skip)
        state.g_skipped += int(g_skip)
        window[0] += tc.batch_size * tc.d_steps
        if state.step % tc.log_every == 0 or state.step == tc.steps:
            now = time.perf_counter()
            rate = window[0] / max(now - window[1], 1e-9)
            window[:] = [0, now]
            scalars = {"losses/d": d_loss, "losses/g": g_loss, "charts/d_real": float(d_real),
                       "charts/d_fake": float(d_fake), "charts/images_per_second": rate}
            for name, block in attention_blocks.items():
                scalars[f"charts/gamma_{name}"] = float(block.gamma.numpy())
            if fp16:
                scalars |= {"charts/loss_scale_d": float(d_opt.dynamic_scale.numpy()),
                            "charts/loss_scale_g": float(g_opt.dynamic_scale.numpy()),
                            "charts/skipped_steps_d": state.d_skipped,
                            "charts/skipped_steps_g": state.g_skipped}
            writer.scalars(state.step, scalars)
            progbar.update(state.step, [("d", d_loss), ("g", g_loss), ("img/s", rate)])
        if state.step % tc.sample_every == 0 and chief:
            write_samples()
        if state.step % tc.checkpoint_every == 0 or state.step == tc.steps:
            ckpts.save(state.step, objects, dataclasses.asdict(state))
            window[1] = time.perf_counter()
    if chief and ckpts.latest() != state.step:
        ckpts.save(state.step, objects, dataclasses.asdict(state))
    fingerprint = strategy.weights_fingerprint(  # equal on every worker that kept in sync
        generator.variables + discriminator.variables + ema.variables)
    log(f"weights fingerprint: {fingerprint}")
    if chief:
        log(f"\nsamples: {write_samples()}")

    metrics = {
        "steps": state.step,
        "images_per_second": (warm[0] / warm[1] if warm[1] else
                              state.real_images / max(state.train_seconds, 1e-9)),
        "steps_per_second": (warm[0] / warm[1] / (tc.batch_size * tc.d_steps) if warm[1] else
                             state.step / max(state.train_seconds, 1e-9)),
        "train_minutes": state.train_seconds / 60.0,
        "replicas": replicas,
        "precision_policy": common.precision,
        "attention": mc.attention,
        "conditional": mc.conditional,
        "stop_reason": stop_reason,
    }
    for name, block in attention_blocks.items():
        metrics[f"gamma_{name}"] = float(block.gamma.numpy())
    if fp16:
        metrics |= {"skipped_steps_d": state.d_skipped, "skipped_steps_g": state.g_skipped}
    if chief and feature_extractor is not None and tc.eval_samples:  # no collective ops
        eval_start = time.perf_counter()
        metrics |= evaluate_generator(ema, feature_extractor, data, tc.eval_samples, mc.z_dim,
                                      seed=common.seed)
        metrics["eval_seconds"] = time.perf_counter() - eval_start
        writer.scalars(state.step, {f"eval/{k}": metrics[k]
                                    for k in ("fid", "kid", "precision", "recall", "fid_floor")})
    writer.close()
    if chief:
        metrics_file.write_metrics(workdir, metrics)
    log(json.dumps(metrics, indent=2))
    return metrics
