"""Training and evaluation of the SAGAN: `Trainer` and `train_and_evaluate`.

`Trainer(...)` sets a run up (models, optimizers, the restored checkpoint, the input
streams, the compiled steps), calling it runs the training loop, and `finish()` saves,
samples, evaluates and writes `metrics.json`. `gan.train` does the rest: flags, data and
the model directory.
"""

import dataclasses
import json
import pathlib
import time

import keras
import numpy as np
import tensorflow as tf

from attn_core import (
    checkpoint,
    metrics_file,
    precision,
    seeds,
    strategy,
    summaries,
    worker_sync,
)
from attn_core.errors import Interrupted, UserError
from attn_core.heatmap import figure_to_png_bytes
from attn_core.interrupt import StopOnCtrlC
from attn_core.progress import Progress
from gan.attention_overlay import plot_attention_overlay
from gan.attention_view import generator_view
from gan.discriminator import Discriminator
from gan.ema import copy_weights, update_ema
from gan.evaluation import evaluate_generator
from gan.generator import Generator
from gan.hinge_loss import discriminator_hinge_loss, generator_hinge_loss
from gan.input_pipeline import make_dataset
from gan.sample_grid import save_grid

SAMPLE_COLUMNS = 8
ATTENTION_SAMPLES = 3
CHECKPOINTS = "checkpoints"


@dataclasses.dataclass
class _State:
    """What a checkpoint keeps besides the variables (its `extra_state`)."""

    step: int = 0
    train_seconds: float = 0.0
    real_images: int = 0
    d_skipped: int = 0
    g_skipped: int = 0


def build_models(model_config, train_config, policy_name):
    """G, D, the EMA G and both optimizers, built (call inside the strategy scope).

    Both optimizers go through `attn_core.precision.wrap_optimizer`: under `mixed_float16`
    each gets its own `LossScaleOptimizer` (Keras' `compile(auto_scale_loss=True)` would
    only wrap a model's one optimizer).

    Returns:
        (generator, discriminator, ema, g_optimizer, d_optimizer).
    """
    generator = Generator(model_config, name="generator").build_for()
    discriminator = Discriminator(model_config, name="discriminator").build_for()
    ema = Generator(model_config, name="generator_ema").build_for()
    copy_weights(generator, ema)
    tc = train_config
    optimizers = []
    for lr, model in ((tc.g_lr, generator), (tc.d_lr, discriminator)):
        optimizer = keras.optimizers.Adam(lr, beta_1=tc.beta_1, beta_2=tc.beta_2)
        optimizer = precision.wrap_optimizer(optimizer, policy_name)
        optimizers.append(checkpoint.build_optimizer(optimizer, model))
    return generator, discriminator, ema, optimizers[0], optimizers[1]


def checkpoint_groups(generator, discriminator, ema, g_opt, d_opt):
    """The named checkpoint groups. The EMA generator comes first, so that checkpoints of
    the older positional layout (the same objects in this order) still restore."""
    return {"ema": ema, "generator": generator, "discriminator": discriminator,
            "g_optimizer": precision.inner_optimizer(g_opt),
            "d_optimizer": precision.inner_optimizer(d_opt)}


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


class Trainer:
    """Trains G and D with the hinge loss, keeps an EMA of G, and evaluates it.

    Construction sets the run up and resumes from `model_dir/checkpoints` when there is a
    checkpoint; calling the trainer runs the loop until `steps`, the time budget or Ctrl-C;
    `finish()` saves the last checkpoint, the last sample grid and `metrics.json`, and
    evaluates. The run writes sample grids (`model_dir/samples/step_XXXXXXX.png`),
    TensorBoard events (losses, D's logits, γ of the attention blocks, images/s, the loss
    scales and skipped steps of both optimizers) and attention figures, and logs
    `weights fingerprint: <hex>` (of G, D and the EMA G) after training.

    Under a `tf.distribute` strategy the batch size is global, and a step on R replicas
    is the single-replica step on the same global batch: each replica gets its slice of
    the real images and of the noise, G's batch norm uses the global statistics, the
    losses are means over the global batch and the gradients are summed over replicas.
    With several workers (`MultiWorkerMirroredStrategy`) all of them resume from the
    chief's checkpoints in the shared `model_dir`, but only the chief (worker 0) writes
    there and evaluates; every worker runs the same collective ops in the same order.

    Args:
        data: a `gan.image_data.ImageData` at the config's resolution.
        model_config: a `gan.model_config.ModelConfig`.
        train_config: a `gan.train_config.TrainConfig`.
        common: an `attn_core.flags.CommonConfig` (seed, precision, strategy, jit_compile).
        model_dir: the model directory (`gan.train` has opened and locked it).
        feature_extractor: a `gan.feature_extractor.FeatureExtractor` for the final
            metrics, or None to skip them (only the chief uses it).
        log: where progress lines go.
        dist: the `tf.distribute.Strategy` (default: made from `common.strategy` and
            `common.cpu_devices`; a multi-worker one must be made once per process, so
            pass it when it exists).

    Raises:
        UserError: when the batch size is not a multiple of the replicas, the checkpoint
            holds another model or none is intact, or the workers resumed from different
            steps.
    """

    def __init__(self, data, model_config, train_config, common, model_dir,
                 feature_extractor=None, log=print, dist=None):
        self.data, self.mc, self.tc, self.common = data, model_config, train_config, common
        self.model_dir = pathlib.Path(model_dir)
        self.feature_extractor = feature_extractor
        self.log = log
        self.dist = (dist if dist is not None else
                     strategy.make_strategy(common.strategy, common.cpu_devices))
        self.policy = precision.set_precision_policy(common.precision).name
        self.loss_scaling = precision.needs_loss_scaling(self.policy)
        seeds.set_seeds(common.seed)
        self.replicas = self.dist.num_replicas_in_sync
        self.tc.check_replicas(self.replicas)
        worker, workers = strategy.worker_info(self.dist)
        self.chief = strategy.is_chief(self.dist)
        if common.jit_compile and (self.replicas > 1 or workers > 1):
            raise UserError("Expected --jit_compile only on one device (XLA compiles each "
                            f"step for one device). Received: {self.replicas} replicas")
        if workers > 1:
            log(f"worker {worker} of {workers}" + (
                "" if self.chief else f": not the chief, writes nothing in {self.model_dir}"))
        self.budget = (train_config.time_budget_minutes * 60.0
                       if train_config.time_budget_minutes else float("inf"))
        self.ctrl_c = StopOnCtrlC(log, unit="step")
        self._restore()
        self._make_input()
        self._make_steps()
        self.attention_blocks = {name: model.attention for name, model in
                                 (("generator", self.generator),
                                  ("discriminator", self.discriminator))
                                 if model.attention is not None}
        self.z_fixed, self.y_fixed = fixed_noise(self.mc, common.seed)
        self.writer = summaries.SummaryWriter(self.model_dir, enabled=self.chief)
        if self.state.step == 0:
            self.writer.hparams_table(
                dataclasses.asdict(self.mc) | dataclasses.asdict(self.tc)
                | dataclasses.asdict(common)
                | {"precision_policy": self.policy, "dataset": data.name})
        self.warm = [0, 0.0]  # images and seconds of this process after its first step

    # Setup.

    def _restore(self):
        """Builds the models and restores the newest intact checkpoint, if any."""
        with self.dist.scope():
            (self.generator, self.discriminator, self.ema, self.g_opt,
             self.d_opt) = build_models(self.mc, self.tc, self.policy)
        self.log(f"generator: {self.generator.count_params():,} parameters, discriminator: "
                 f"{self.discriminator.count_params():,}, {self.replicas} replica(s), "
                 f"{self.policy}" + (", XLA" if self.common.jit_compile else ""))
        self.groups = checkpoint_groups(self.generator, self.discriminator, self.ema,
                                        self.g_opt, self.d_opt)
        self.ckpts = checkpoint.CheckpointManager(self.model_dir / CHECKPOINTS, max_to_keep=2,
                                                  read_only=not self.chief, log=self.log)
        self.state = _State()
        restored = self.ckpts.restore(self.groups)
        if restored is not None:
            fields = {f.name for f in dataclasses.fields(_State)}
            self.state = _State(**{k: v for k, v in restored.items() if k in fields})
            precision.restore_loss_scale(self.d_opt, restored.get("d_loss_scale"))
            precision.restore_loss_scale(self.g_opt, restored.get("g_loss_scale"))
            self.log(f"resumed from step {self.state.step}")
        worker_sync.check_same_step(self.dist, self.state.step)
        self.first_step = self.state.step

    def _make_input(self):
        """The distributed stream of (real batch, noise), continuing at the restored step."""
        tc, mc, seed, step = self.tc, self.mc, self.common.seed, self.state.step
        real = make_dataset(self.data.train_images, self.data.train_labels, tc.batch_size,
                            seed=seed + step)
        noise = _noise_dataset(tc.batch_size, mc.z_dim, mc.num_classes, seed,
                               step * tc.d_steps * tc.batch_size)
        dataset = tf.data.Dataset.zip((real, noise)).prefetch(tf.data.AUTOTUNE)
        options = tf.data.Options()  # every worker runs the pipeline, keeps its replicas' rows
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        self.batches = iter(self.dist.experimental_distribute_dataset(
            dataset.with_options(options)))

    def _make_steps(self):
        """The compiled D and G steps (`self.d_step(batch)`, `self.g_step(batch, decay)`)."""
        mc, dist = self.mc, self.dist
        generator, discriminator, ema = self.generator, self.discriminator, self.ema
        d_opt, g_opt, loss_scaling = self.d_opt, self.g_opt, self.loss_scaling
        global_batch = float(self.tc.batch_size)

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
                scaled = d_opt.scale_loss(loss)  # the identity unless float16
            grads = tape.gradient(scaled, discriminator.trainable_variables)
            if loss_scaling:  # every replica must skip, or apply, the same steps
                grads = worker_sync.poison_unless_all_finite(grads)
            d_opt.apply(grads, discriminator.trainable_variables)
            return loss, tf.reduce_sum(real_logits), tf.reduce_sum(fake_logits)

        def g_replica(batch):
            _, (_, _, z_g, y_g) = batch
            with tf.GradientTape() as tape:
                fakes = generator(z_g, labels_or_none(y_g), training=True)
                logits = discriminator(fakes, labels_or_none(y_g), training=False)
                loss = tf.reduce_sum(generator_hinge_loss(logits)) / global_batch
                scaled = g_opt.scale_loss(loss)
            grads = tape.gradient(scaled, generator.trainable_variables)
            if loss_scaling:
                grads = worker_sync.poison_unless_all_finite(grads)
            g_opt.apply(grads, generator.trainable_variables)
            return loss

        def total(value):
            return dist.reduce("SUM", value, axis=None)

        # The loss scales are read before the update: a LossScaleOptimizer halves its
        # scale exactly when it skips a step.
        # No AutoGraph (no Python control flow on tensors here): converting the Keras calls
        # beneath the steps only slows their first trace.
        @tf.function(jit_compile=self.common.jit_compile, autograph=False)
        def d_step(batch):
            before = precision.loss_scale(d_opt)
            loss, real_sum, fake_sum = dist.run(d_replica, args=(batch,))
            skipped = precision.skipped_step(d_opt, before)
            return (total(loss), total(real_sum) / global_batch,
                    total(fake_sum) / global_batch, skipped, precision.loss_scale(d_opt))

        @tf.function(jit_compile=self.common.jit_compile, autograph=False)
        def g_step(batch, decay):
            before = precision.loss_scale(g_opt)
            loss = total(dist.run(g_replica, args=(batch,)))
            skipped = precision.skipped_step(g_opt, before)
            update_ema(generator, ema, decay)  # cross-replica: every worker updates its copies
            return loss, skipped, precision.loss_scale(g_opt)

        self.d_step, self.g_step = d_step, g_step

    # The loop.

    def __call__(self) -> str:
        """Trains until `steps`, the time budget or Ctrl-C.

        Returns:
            Why it stopped: "steps" or "time_budget".

        Raises:
            Interrupted: after Ctrl-C, once the checkpoint of the last step is saved.
            FloatingPointError: when a loss is not finite (float16 skips such steps).
        """
        tc, state = self.tc, self.state
        progress = Progress(tc.steps, self.budget if self.budget < float("inf") else None,
                            initial=state.step, unit="step", description="train",
                            enabled=self.chief)
        window = [0, time.perf_counter()]
        shown = {}
        with progress, self.ctrl_c:
            while state.step < tc.steps:
                stop = self._stop_reason()
                if stop == "interrupted":
                    raise Interrupted(self.model_dir, self.save_checkpoint())
                if stop:
                    return stop
                out = self.train_step()
                window[0] += tc.batch_size * tc.d_steps
                if state.step % tc.log_every == 0 or state.step == tc.steps:
                    now = time.perf_counter()
                    rate = window[0] / max(now - window[1], 1e-9)
                    window[:] = [0, now]
                    self._write_scalars(out, rate)
                    shown = {"d": out["d_loss"], "g": out["g_loss"], "img/s": rate}
                progress.update(state.step, state.train_seconds, shown)
                if state.step % tc.sample_every == 0 and self.chief:
                    self.write_samples()
                if state.step % tc.checkpoint_every == 0 or state.step == tc.steps:
                    self.save_checkpoint()
                    window[1] = time.perf_counter()
        return "steps"

    def train_step(self) -> dict:
        """`d_steps` D steps and one G step, counted in the state (no logging or saving).

        Returns:
            The losses, D's mean logits, both loss scales after the step and the updates
            skipped in it (float16 only).

        Raises:
            FloatingPointError: when a loss is not finite (float16 skips such steps).
        """
        tc, state = self.tc, self.state
        start = time.perf_counter()
        d_skipped = 0
        for _ in range(tc.d_steps):
            batch = next(self.batches)
            d_loss, d_real, d_fake, d_skip, d_scale = self.d_step(batch)
            d_skipped += int(d_skip)
        decay = min(tc.ema_decay, (1.0 + state.step) / (10.0 + state.step))
        g_loss, g_skip, g_scale = self.g_step(batch, tf.constant(decay, tf.float32))
        state.d_skipped += d_skipped
        state.g_skipped += int(g_skip)
        d_loss, g_loss = float(d_loss), float(g_loss)
        # Under loss scaling a non-finite step is skipped (and counted), not applied.
        if not (np.isfinite(d_loss) and np.isfinite(g_loss)) and not self.loss_scaling:
            raise FloatingPointError(f"losses are d={d_loss}, g={g_loss} at step {state.step}")
        state.step += 1
        seconds = time.perf_counter() - start
        state.train_seconds += seconds
        images = tc.batch_size * tc.d_steps
        state.real_images += images
        if state.step > self.first_step + 1:  # the first step of a process traces
            self.warm[0] += images
            self.warm[1] += seconds
        return {"d_loss": d_loss, "g_loss": g_loss, "d_real": float(d_real),
                "d_fake": float(d_fake), "d_scale": float(d_scale), "g_scale": float(g_scale),
                "d_skipped": d_skipped, "g_skipped": int(g_skip)}

    def _stop_reason(self) -> str | None:
        """"time_budget", "interrupted" or None, the same on every worker: their clocks
        differ and Ctrl-C reaches one of them, so they vote (no op with one worker)."""
        over, interrupted = strategy.worker_sum(
            self.dist, [float(self.state.train_seconds >= self.budget),
                        float(self.ctrl_c.requested)]) > 0
        if interrupted:
            return "interrupted"
        return "time_budget" if over else None

    def _write_scalars(self, out, rate):
        scalars = {"losses/d": out["d_loss"], "losses/g": out["g_loss"],
                   "charts/d_real": out["d_real"], "charts/d_fake": out["d_fake"],
                   "charts/images_per_second": rate,
                   "charts/loss_scale_d": out["d_scale"], "charts/loss_scale_g": out["g_scale"],
                   "charts/skipped_steps_d": self.state.d_skipped,
                   "charts/skipped_steps_g": self.state.g_skipped}
        for name, block in self.attention_blocks.items():
            scalars[f"charts/gamma_{name}"] = float(block.gamma.numpy())
        self.writer.scalars(self.state.step, scalars)

    # Saving and evaluating.

    def save_checkpoint(self) -> int:
        """Saves the checkpoint of the current step (the chief; the others write nothing).

        Returns:
            The step saved.
        """
        extra = dataclasses.asdict(self.state) | {
            "d_loss_scale": precision.loss_scale_state(self.d_opt),
            "g_loss_scale": precision.loss_scale_state(self.g_opt)}
        if self.ckpts.latest() != self.state.step:
            self.ckpts.save(self.state.step, self.groups, extra)
        return self.state.step

    def write_samples(self) -> pathlib.Path:
        """Saves the EMA G's grid of the fixed noise, and its image summaries; with
        self-attention, also the overlay of fixed query pixels on the first
        `ATTENTION_SAMPLES` images (`attention/generator`, an image) and the whole attention
        map of the first one with that image (`attention/generator_0`, for the dashboard's
        Attention tab, where the user picks the query)."""
        ema, mc, step = self.ema, self.mc, self.state.step
        labels = self.y_fixed if mc.num_classes else None
        images = np.asarray(ema(self.z_fixed, labels, training=False))
        path = save_grid(self.model_dir / "samples" / f"step_{step:07d}.png", images,
                         SAMPLE_COLUMNS)
        self.writer.image("samples/ema", step, path.read_bytes())
        if ema.attention is not None:
            count = ATTENTION_SAMPLES
            fakes, scores = ema(self.z_fixed[:count],
                                None if labels is None else labels[:count],
                                training=False, return_attention_scores=True)
            figure = plot_attention_overlay(fakes, scores, title=f"step {step}")
            self.writer.image("attention/generator", step, figure_to_png_bytes(figure))
            self.writer.attention("attention/generator_0", step,
                                  **generator_view(fakes[0], scores[0]))
        return path

    def finish(self, stop_reason: str) -> dict:
        """Saves the last checkpoint and samples, evaluates (the chief) and writes
        `metrics.json`.

        Returns:
            The metrics dict.
        """
        tc, state, mc = self.tc, self.state, self.mc
        if self.chief:
            self.save_checkpoint()
        fingerprint = strategy.weights_fingerprint(  # equal on every worker that kept in sync
            self.generator.variables + self.discriminator.variables + self.ema.variables)
        self.log(f"weights fingerprint: {fingerprint}")
        if self.chief:
            self.log(f"\nsamples: {self.write_samples()}")
        warm_images, warm_seconds = self.warm
        metrics = {
            "steps": state.step,
            "images_per_second": (warm_images / warm_seconds if warm_seconds else
                                  state.real_images / max(state.train_seconds, 1e-9)),
            "steps_per_second": (warm_images / warm_seconds / (tc.batch_size * tc.d_steps)
                                 if warm_seconds else
                                 state.step / max(state.train_seconds, 1e-9)),
            "train_minutes": state.train_seconds / 60.0,
            "replicas": self.replicas,
            "precision_policy": self.policy,
            "jit_compile": self.common.jit_compile,
            "attention": mc.attention,
            "conditional": mc.conditional,
            "stop_reason": stop_reason,
            "skipped_steps_d": state.d_skipped,
            "skipped_steps_g": state.g_skipped,
            "loss_scale_d": float(keras.ops.convert_to_numpy(precision.loss_scale(self.d_opt))),
            "loss_scale_g": float(keras.ops.convert_to_numpy(precision.loss_scale(self.g_opt))),
        }
        for name, block in self.attention_blocks.items():
            metrics[f"gamma_{name}"] = float(block.gamma.numpy())
        if self.chief and self.feature_extractor is not None and tc.eval_samples:
            metrics |= self.evaluate()  # no collective ops: the other workers are done
        self.writer.close()
        if self.chief:
            metrics_file.write_metrics(self.model_dir, metrics)
        self.log(json.dumps(metrics, indent=2))
        return metrics

    def evaluate(self) -> dict:
        """FID, KID, precision/recall and the floor of the EMA G (see
        `gan.evaluation.evaluate_generator`), also written to TensorBoard."""
        start = time.perf_counter()
        metrics = evaluate_generator(self.ema, self.feature_extractor, self.data,
                                     self.tc.eval_samples, self.mc.z_dim,
                                     seed=self.common.seed, show_progress=self.chief)
        metrics["eval_seconds"] = time.perf_counter() - start
        self.writer.scalars(self.state.step, {
            f"eval/{k}": metrics[k] for k in ("fid", "kid", "precision", "recall",
                                              "fid_floor")})
        return metrics


def train_and_evaluate(data, model_config, train_config, common, model_dir,
                       feature_extractor=None, log=print, dist=None):
    """Trains (see `Trainer`), then saves, samples, evaluates and writes `metrics.json`.

    Returns:
        The metrics dict, also written to `model_dir/metrics.json` by the chief.

    Raises:
        Interrupted: after Ctrl-C, once the checkpoint is saved.
        UserError: see `Trainer`.
    """
    trainer = Trainer(data, model_config, train_config, common, model_dir,
                      feature_extractor, log=log, dist=dist)
    try:
        stop_reason = trainer()
    except BaseException:
        trainer.writer.close()
        raise
    return trainer.finish(stop_reason)
