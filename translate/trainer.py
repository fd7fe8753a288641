"""Training and evaluation of the translation model: `train_and_evaluate`.

Distributed training (`tf.distribute`: mirrored replicas, or several workers) is synchronous
data parallelism over global batches: every replica trains on its own rows of each batch
(`input_pipeline.split_batches`), its loss sum is divided by the token count of the whole
batch, and the gradients are summed over the replicas, so a step is the single-process step
on the same batch. Under several workers only the chief writes into the model directory
(checkpoints, summaries, metrics) and decodes; the others read its checkpoints to resume,
and all agree on the values that steer the loop (time budget, dev BLEU: `worker_sync`).
"""

import dataclasses
import itertools
import json
import pathlib
import time

import keras
import numpy as np
import sacrebleu
import tensorflow as tf

from attn_core import checkpoint, metrics_file, precision, run_dir, strategy, summaries
from translate import worker_sync
from translate.data_error import DataError
from translate.input_pipeline import filter_max_length, make_dataset, smallest_batch, split_batches
from translate.rnn_seq2seq import RNNSeq2Seq
from translate.transformer_seq2seq import TransformerSeq2Seq
from translate.translator import Translator

FIXED_DEV_SENTENCES = 3  # dev sentences whose alignments are logged at every evaluation


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak`, then cosine decay to 10% of it over `decay_steps`."""

    def __init__(self, peak, warmup_steps, decay_steps):
        self.peak, self.warmup_steps, self.decay_steps = peak, warmup_steps, decay_steps

    def __call__(self, step):
        step = keras.ops.cast(step, "float32")
        warm = self.peak * (step + 1.0) / max(self.warmup_steps, 1)
        progress = keras.ops.clip((step - self.warmup_steps) / max(self.decay_steps, 1), 0.0, 1.0)
        decayed = self.peak * (0.1 + 0.9 * 0.5 * (1.0 + keras.ops.cos(np.pi * progress)))
        return keras.ops.where(step < self.warmup_steps, warm, decayed)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": self.warmup_steps,
                "decay_steps": self.decay_steps}


def smoothed_loss_sums(target, logits, smoothing):
    """Masked label-smoothed cross-entropy: (sum over real tokens, token count).

    Args:
        target: int32 [B, T], 0 is padding.
        logits: float32 [B, T, V].
        smoothing: ε; the target gets 1 − ε and every class ε / V.
    """
    log_probs = tf.nn.log_softmax(tf.cast(logits, tf.float32))  # [B, T, V]
    nll = -tf.gather(log_probs, target, batch_dims=2)  # [B, T]
    uniform = -tf.reduce_mean(log_probs, axis=-1)  # [B, T]
    loss = (1.0 - smoothing) * nll + smoothing * uniform
    mask = tf.cast(tf.not_equal(target, 0), tf.float32)
    return tf.reduce_sum(loss * mask), tf.reduce_sum(mask)


def build_model(model_config):
    cls = RNNSeq2Seq if model_config.architecture == "rnn" else TransformerSeq2Seq
    return cls(model_config, name="translator")


def corpus_bleu(hypotheses, references):
    """Cased sacreBLEU and chrF on detokenized text: (bleu, chrf)."""
    bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
    chrf = sacrebleu.corpus_chrf(hypotheses, [references]).score
    return float(bleu), float(chrf)


def evaluate(translator, pairs, batch_size=64):
    """Translates the sources of `pairs`; returns (bleu, chrf, hypotheses, seconds)."""
    start = time.perf_counter()
    outputs = translator.translate([s for s, _ in pairs], batch_size=batch_size)
    seconds = time.perf_counter() - start
    hypotheses = [out[0].text for out in outputs]
    bleu, chrf = corpus_bleu(hypotheses, [t for _, t in pairs])
    return bleu, chrf, hypotheses, seconds


@dataclasses.dataclass
class _State:
    step: int = 0
    best_bleu: float = -1.0
    evals_since_best: int = 0
    train_seconds: float = 0.0
    target_tokens: float = 0.0


def _scale_gradient(grad, factor):
    if grad is None:
        return None
    if isinstance(grad, tf.IndexedSlices):
        return tf.IndexedSlices(grad.values * factor, grad.indices, grad.dense_shape)
    return grad * factor


def _check_split(src_ids, tgt_ids, tokens_per_batch, replicas):
    """Raises `DataError` unless every batch gives each of `replicas` at least one sentence."""
    sentences, longest = smallest_batch(src_ids, tgt_ids, tokens_per_batch)
    if sentences < replicas:
        raise DataError(
            f"tokens_per_batch={tokens_per_batch} cannot be split over {replicas} replicas: "
            f"batches of the longest training pairs ({longest} tokens) hold {sentences} "
            f"sentence(s); use tokens_per_batch >= {replicas * longest} or a smaller max_length"
        )


def train_and_evaluate(corpus, tokenizers, model_config, train_config, common, workdir,
                       log=print, dist=None):
    """Trains on `corpus.train`, keeps the best checkpoint by dev BLEU, and
    evaluates it on `corpus.test`.

    Batch sizes (`train_config.tokens_per_batch`) are global: R replicas share each batch.
    Under several workers, every worker calls this with the same arguments and the same
    `workdir` (a shared directory); only the chief (`attn_core.strategy.is_chief`) writes
    there and decodes the dev and test sets. Every worker logs
    `weights fingerprint: <hex>` of the trained weights: the same on all of them.

    Args:
        corpus: a `translate.corpus.Corpus`.
        tokenizers: (source, target) fitted `Tokenizer`s (the chief has saved them in
            `workdir`).
        model_config: `ModelConfig` with the vocabulary sizes filled in.
        train_config: `TrainConfig`.
        common: `attn_core.flags.CommonConfig` (seed, precision, strategy, ...).
        workdir: the model directory; a checkpoint there is resumed (on every worker).
        log: where progress lines go.
        dist: the `tf.distribute.Strategy` (default: made from `common.strategy` and
            `common.cpu_devices`).

    Returns:
        The metrics dict the chief also writes to `workdir/metrics.json`; the other workers
        return the training part of it (no test scores).

    Raises:
        DataError: if a batch cannot be split over the replicas, or the workers do not hold
            the same run (model directory, flags, data).
    """
    workdir = pathlib.Path(workdir)
    tc = train_config
    if dist is None:
        dist = strategy.make_strategy(common.strategy, common.cpu_devices)
    chief = strategy.is_chief(dist)
    worker, workers = strategy.worker_info(dist)
    replicas = dist.num_replicas_in_sync
    local_replicas = replicas // workers
    precision.set_precision_policy(common.precision)
    run_dir.set_seeds(common.seed)
    src_tok, tgt_tok = tokenizers

    src_ids = src_tok.encode_batch([s for s, _ in corpus.train])
    tgt_ids = tgt_tok.encode_batch([t for _, t in corpus.train])
    src_ids, tgt_ids, dropped = filter_max_length(src_ids, tgt_ids, tc.max_length)
    log(f"training pairs: {len(src_ids)} (--max_length={tc.max_length} dropped {dropped})")
    _check_split(src_ids, tgt_ids, tc.tokens_per_batch, replicas)
    # Before the model: different vocabularies would fail in its variables' broadcast.
    worker_sync.check_workers_agree(dist, chief, {"config and data": worker_sync.fingerprint_int(
        str(dataclasses.asdict(model_config)), str(dataclasses.asdict(tc)),
        str((common.seed, common.precision)),
        np.array([len(ids) for ids in src_ids + tgt_ids], np.int64),
        np.fromiter(itertools.chain.from_iterable(src_ids + tgt_ids), np.int64))})

    with dist.scope():
        model = build_model(model_config)
        model({"source": tf.ones((1, 3), tf.int32), "decoder_in": tf.ones((1, 3), tf.int32)})
        # Every replica hands the optimizer the global gradient / R (see replica_step), and
        # Keras clips before it sums the replicas: so clip at clip_norm / R.
        optimizer = keras.optimizers.Adam(
            WarmupCosine(tc.learning_rate, tc.warmup_steps, tc.decay_steps),
            beta_2=0.98, epsilon=1e-9, global_clipnorm=tc.clip_norm / replicas,
        )
        if precision.needs_loss_scaling(common.precision):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    where = f", worker {worker} of {workers}{' (chief)' if chief else ''}" if workers > 1 else ""
    log(f"model: {model.count_params():,} parameters, {replicas} replica(s){where}")

    ckpts = checkpoint.CheckpointManager(workdir / "checkpoints", max_to_keep=2,
                                         read_only=not chief)
    best = checkpoint.CheckpointManager(workdir / "best", max_to_keep=1, read_only=not chief)
    state = _State()
    restored = ckpts.restore([model, optimizer])
    if restored is not None:
        state = _State(**restored)
        log(f"resumed from step {state.step}")
    worker_sync.check_workers_agree(dist, chief, {
        "step": state.step,
        "weights": worker_sync.fingerprint_int(strategy.weights_fingerprint(model.variables)),
    })

    def dataset_fn(context):
        """This worker's input pipeline: its replicas' parts of the same global batches."""
        dataset = make_dataset(src_ids, tgt_ids, tc.tokens_per_batch, shuffle=True,
                               seed=common.seed + state.step, repeat=True)
        return split_batches(dataset, replicas, context.input_pipeline_id * local_replicas,
                             local_replicas)

    batches = iter(dist.distribute_datasets_from_function(dataset_fn))

    def replica_step(batch, seconds):
        """One replica's part of a step.

        Args:
            batch: this replica's rows of the global batch ("source" [b, S], "decoder_in"
                and "target" [b, T], int32).
            seconds: float32 [], this worker's training seconds so far.

        Returns:
            float32 [3], the same on every replica: the global batch's loss sum and target
            token count, and the workers' mean training seconds.
        """
        context = tf.distribute.get_replica_context()
        with tf.GradientTape() as tape:
            logits = model({"source": batch["source"], "decoder_in": batch["decoder_in"]},
                           training=True)
            loss_sum, count = smoothed_loss_sums(batch["target"], logits, tc.label_smoothing)
            totals = context.all_reduce("SUM", tf.stop_gradient(
                tf.stack([loss_sum, count, seconds / replicas])))
            loss = loss_sum / tf.maximum(totals[1], 1.0)  # this replica's share of the mean
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        if replicas > 1:
            # Keras clips (and checks loss-scaled gradients for inf) on each replica before it
            # sums the replicas' gradients: hand every replica the same global gradient / R.
            grads = context.all_reduce("SUM", grads)
            grads = [_scale_gradient(g, 1.0 / replicas) for g in grads]
        optimizer.apply(grads, model.trainable_variables)
        return totals

    @tf.function(jit_compile=common.jit_compile, reduce_retracing=True)
    def replica_call(batch, seconds):
        return replica_step(batch, seconds)

    @tf.function(reduce_retracing=True)
    def train_step(batch, seconds):
        totals = dist.run(replica_call if common.jit_compile else replica_step,
                          args=(batch, seconds))
        return dist.experimental_local_results(totals)[0]

    dev_pairs = corpus.dev[:tc.dev_eval_sentences]
    fixed = corpus.dev[:FIXED_DEV_SENTENCES]
    writer = summaries.SummaryWriter(workdir, enabled=chief)
    if state.step == 0:
        writer.hparams_table(dataclasses.asdict(model_config) | dataclasses.asdict(tc)
                             | dataclasses.asdict(common))
    greedy = Translator(model, src_tok, tgt_tok)
    budget = tc.time_budget_minutes * 60.0 if tc.time_budget_minutes else float("inf")
    progbar = keras.utils.Progbar(tc.max_steps, stateful_metrics=["loss", "tok/s"],
                                  unit_name="step")
    progbar.update(state.step)
    window_tokens, window_start = 0.0, time.perf_counter()

    def run_eval():
        bleu, chrf, hyps, _ = evaluate(greedy, dev_pairs)
        writer.scalars(state.step, {"eval/bleu": bleu, "eval/chrf": chrf})
        for i, out in enumerate(greedy.translate([s for s, _ in fixed])):
            out = out[0]
            writer.attention_image(f"attention/dev_{i}", state.step, out.alignments,
                                   x_labels=out.source_pieces, y_labels=out.target_pieces)
        writer.text("samples/dev", state.step, "\n\n".join(
            f"**src** {s}  \n**ref** {t}  \n**hyp** {h}"
            for (s, t), h in zip(dev_pairs[:5], hyps[:5], strict=False)))
        return bleu

    def evaluate_and_keep_best():
        bleu = 0.0
        if chief:  # the others wait for its score
            eval_start = time.perf_counter()
            bleu = run_eval()
            log(f"\nstep {state.step}: dev BLEU {bleu:.2f} "
                f"(eval {time.perf_counter() - eval_start:.0f}s)")
        [bleu] = worker_sync.chief_values(dist, chief, [bleu])
        if bleu > state.best_bleu:
            state.best_bleu, state.evals_since_best = bleu, 0
            best.save(state.step, [model], dataclasses.asdict(state))
        else:
            state.evals_since_best += 1
        ckpts.save(state.step, [model, optimizer], dataclasses.asdict(state))

    stop_reason = "max_steps"
    last_eval = state.step if restored is not None else -1
    # The budget is judged on one clock for all workers: their mean training time, as of the
    # start of the last step (every step all-reduces it), so they all stop at the same step.
    agreed_seconds = state.train_seconds
    while state.step < tc.max_steps:
        if (state.train_seconds if workers == 1 else agreed_seconds) >= budget:
            stop_reason = "time_budget"
            break
        start = time.perf_counter()
        totals = train_step(next(batches), tf.constant(state.train_seconds, tf.float32))
        loss_sum, count, agreed_seconds = (float(x) for x in totals)
        loss = loss_sum / max(count, 1.0)
        if not np.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss} at step {state.step}")
        state.step += 1
        state.train_seconds += time.perf_counter() - start
        state.target_tokens += float(count)
        window_tokens += float(count)
        if state.step % 50 == 0 or state.step == tc.max_steps:
            now = time.perf_counter()
            rate = window_tokens / max(now - window_start, 1e-9)
            window_tokens, window_start = 0.0, now
            lr = float(optimizer.learning_rate)
            writer.scalars(state.step, {"losses/train": loss, "charts/learning_rate": lr,
                                        "charts/tokens_per_second": rate})
            progbar.update(state.step, [("loss", loss), ("tok/s", rate)])
        if state.step % tc.eval_every == 0 or state.step == tc.max_steps:
            evaluate_and_keep_best()
            last_eval = state.step
            window_tokens, window_start = 0.0, time.perf_counter()
            if tc.patience and state.evals_since_best >= tc.patience:
                stop_reason = "early_stopping"
                break
    if last_eval != state.step:  # stopped between evaluations (time budget): judge the end too
        evaluate_and_keep_best()
    log(f"weights fingerprint: {strategy.weights_fingerprint(model.variables)}")

    training = {
        "best_dev_bleu": state.best_bleu,
        "train_steps": state.step,
        "train_minutes": state.train_seconds / 60.0,
        "tokens_per_second": state.target_tokens / max(state.train_seconds, 1e-9),
        "replicas": replicas,
        "stop_reason": stop_reason,
    }
    if not chief:  # the chief decodes the test set and writes the metrics
        writer.close()
        log(json.dumps(training, indent=2))
        return training
    if best.latest() is not None:
        best.restore([model])
    test_bleu, test_chrf, test_hyps, decode_seconds = evaluate(
        Translator(model, src_tok, tgt_tok, beam_width=tc.beam_width,
                   length_penalty=tc.length_penalty, coverage_penalty=tc.coverage_penalty),
        corpus.test,
    )
    greedy_bleu = test_bleu
    if tc.beam_width > 1:
        greedy_bleu = evaluate(greedy, corpus.test)[0]
    metrics = training | {
        "bleu": test_bleu,
        "chrf": test_chrf,
        "bleu_greedy": greedy_bleu,
        "test_sentences": len(corpus.test),
        "decode": "greedy" if tc.beam_width == 1 else "beam",
        "beam_width": tc.beam_width,
        "decode_sentences_per_second": len(corpus.test) / max(decode_seconds, 1e-9),
    }
    writer.scalars(state.step, {"eval/test_bleu": test_bleu, "eval/test_chrf": test_chrf})
    writer.close()
    metrics_file.write_metrics(workdir, metrics)
    (workdir / "test_translations.txt").write_text("\n".join(test_hyps) + "\n", encoding="utf-8")
    log(json.dumps(metrics, indent=2))
    return metrics
