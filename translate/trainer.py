"""Training and evaluation of the translation model: `train_and_evaluate`."""

import dataclasses
import json
import pathlib
import time

import keras
import numpy as np
import sacrebleu
import tensorflow as tf

from attn_core import checkpoint, metrics_file, precision, run_dir, strategy, summaries
from translate.input_pipeline import filter_max_length, make_dataset
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


def train_and_evaluate(corpus, tokenizers, model_config, train_config, common, workdir,
                       log=print):
    """Trains on `corpus.train`, keeps the best checkpoint by dev BLEU, and
    evaluates it on `corpus.test`.

    Args:
        corpus: a `translate.corpus.Corpus`.
        tokenizers: (source, target) fitted `Tokenizer`s (already saved in `workdir`).
        model_config: `ModelConfig` with the vocabulary sizes filled in.
        train_config: `TrainConfig`.
        common: `attn_core.flags.CommonConfig` (seed, precision, strategy, ...).
        workdir: the model directory; a checkpoint there is resumed.
        log: where progress lines go.

    Returns:
        The metrics dict also written to `workdir/metrics.json`.
    """
    workdir = pathlib.Path(workdir)
    tc = train_config
    dist = strategy.make_strategy(common.strategy, common.cpu_devices)
    precision.set_precision_policy(common.precision)
    run_dir.set_seeds(common.seed)
    src_tok, tgt_tok = tokenizers

    src_ids = src_tok.encode_batch([s for s, _ in corpus.train])
    tgt_ids = tgt_tok.encode_batch([t for _, t in corpus.train])
    src_ids, tgt_ids, dropped = filter_max_length(src_ids, tgt_ids, tc.max_length)
    log(f"training pairs: {len(src_ids)} (--max_length={tc.max_length} dropped {dropped})")

    with dist.scope():
        model = build_model(model_config)
        model({"source": tf.ones((1, 3), tf.int32), "decoder_in": tf.ones((1, 3), tf.int32)})
        optimizer = keras.optimizers.Adam(
            WarmupCosine(tc.learning_rate, tc.warmup_steps, tc.decay_steps),
            beta_2=0.98, epsilon=1e-9, global_clipnorm=tc.clip_norm,
        )
        if precision.needs_loss_scaling(common.precision):
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    log(f"model: {model.count_params():,} parameters, {dist.num_replicas_in_sync} replica(s)")

    ckpts = checkpoint.CheckpointManager(workdir / "checkpoints", max_to_keep=2)
    best = checkpoint.CheckpointManager(workdir / "best", max_to_keep=1)
    state = _State()
    restored = ckpts.restore([model, optimizer])
    if restored is not None:
        state = _State(**restored)
        log(f"resumed from step {state.step}")

    dataset = make_dataset(src_ids, tgt_ids, tc.tokens_per_batch, shuffle=True,
                           seed=common.seed + state.step, repeat=True)
    batches = iter(dist.experimental_distribute_dataset(dataset))
    replicas = dist.num_replicas_in_sync

    def replica_step(batch):
        with tf.GradientTape() as tape:
            logits = model({"source": batch["source"], "decoder_in": batch["decoder_in"]},
                           training=True)
            loss_sum, count = smoothed_loss_sums(batch["target"], logits, tc.label_smoothing)
            loss = loss_sum / tf.maximum(count, 1.0) / replicas
            scaled = optimizer.scale_loss(loss) if hasattr(optimizer, "scale_loss") else loss
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss_sum, count

    @tf.function(jit_compile=common.jit_compile, reduce_retracing=True)
    def replica_call(batch):
        return replica_step(batch)

    @tf.function(reduce_retracing=True)
    def train_step(batch):
        loss_sum, count = dist.run(replica_call if common.jit_compile else replica_step,
                                   args=(batch,))
        return (dist.reduce("SUM", loss_sum, axis=None), dist.reduce("SUM", count, axis=None))

    dev_pairs = corpus.dev[:tc.dev_eval_sentences]
    fixed = corpus.dev[:FIXED_DEV_SENTENCES]
    writer = summaries.SummaryWriter(workdir)
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
        eval_start = time.perf_counter()
        bleu = run_eval()
        log(f"\nstep {state.step}: dev BLEU {bleu:.2f} "
            f"(eval {time.perf_counter() - eval_start:.0f}s)")
        if bleu > state.best_bleu:
            state.best_bleu, state.evals_since_best = bleu, 0
            best.save(state.step, [model], dataclasses.asdict(state))
        else:
            state.evals_since_best += 1
        ckpts.save(state.step, [model, optimizer], dataclasses.asdict(state))

    stop_reason = "max_steps"
    last_eval = state.step if restored is not None else -1
    while state.step < tc.max_steps:
        if state.train_seconds >= budget:
            stop_reason = "time_budget"
            break
        start = time.perf_counter()
        loss_sum, count = train_step(next(batches))
        loss = float(loss_sum / tf.maximum(count, 1.0))
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
    metrics = {
        "bleu": test_bleu,
        "chrf": test_chrf,
        "bleu_greedy": greedy_bleu,
        "best_dev_bleu": state.best_bleu,
        "test_sentences": len(corpus.test),
        "decode": "greedy" if tc.beam_width == 1 else "beam",
        "beam_width": tc.beam_width,
        "train_steps": state.step,
        "train_minutes": state.train_seconds / 60.0,
        "tokens_per_second": state.target_tokens / max(state.train_seconds, 1e-9),
        "decode_sentences_per_second": len(corpus.test) / max(decode_seconds, 1e-9),
        "replicas": replicas,
        "stop_reason": stop_reason,
    }
    writer.scalars(state.step, {"eval/test_bleu": test_bleu, "eval/test_chrf": test_chrf})
    writer.close()
    metrics_file.write_metrics(workdir, metrics)
    (workdir / "test_translations.txt").write_text("\n".join(test_hyps) + "\n", encoding="utf-8")
    log(json.dumps(metrics, indent=2))
    return metrics
