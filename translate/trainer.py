"""Training and evaluation of the translation model: `Trainer` and `train_and_evaluate`.

A `Trainer` is built in three stages, so that nothing is written before every input is
checked and the model directory is locked:

1. `Trainer(...)` validates and encodes the training data and builds the model and its
   optimizer; it writes nothing.
2. `start()`, inside `attn_core.model_dir.ModelDir.open` (which creates and locks the
   directory), writes the run's files and restores the newest intact checkpoint.
3. Calling the trainer runs the training loop (evaluating and saving as it goes); `finish()`
   decodes the test set with the best checkpoint and writes `metrics.json`.

Guided alignment (Garg et al. 2019; OpenNMT's `guided_alignment_type=ce`): when the corpus
comes with gold word alignments (`alignments`, the built-in corpus) and
`guided_alignment_weight` is positive, the loss adds that weight times the cross-entropy of
the model's attention (the RNN's; the head mean of the Transformer's last decoder layer)
against the gold distribution of every aligned target token, summed and divided by the same
target token count as the translation loss. The dev evaluations then also log the AER of the
greedy translations' attention, and `metrics.json` holds the test AER.

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
import sys
import time

import keras
import numpy as np
import sacrebleu
import tensorflow as tf

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
from attn_core import model_dir as core_dir
from attn_core.errors import Interrupted, UserError
from attn_core.interrupt import StopOnCtrlC
from translate import alignment, schedule
from translate import model_dir as nmt_dir
from translate.attention_view import translation_view
from translate.data_error import DataError
from translate.input_pipeline import kept_by_length, make_dataset, smallest_batch, split_batches
from translate.rnn_seq2seq import RNNSeq2Seq
from translate.transformer_seq2seq import TransformerSeq2Seq
from translate.translator import Translator

FIXED_DEV_SENTENCES = 3  # dev sentences whose attention is logged at every evaluation
LOG_EVERY = 50  # steps between TensorBoard scalars (and the progress bar's metrics)
# Steps of this process after which the schedule is laid out again over the steps the time
# budget allows (then every LOG_EVERY steps); the first steps trace the train step, so the
# pace is measured from PACE_FROM on.
PLAN_AT = (10, 20, 30)
PACE_FROM = 3
_LOG_EPSILON = 1e-7  # the attention's log is clipped here (as Keras' cross-entropy does)



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


def guided_alignment_sum(gold, attention):
    """The guided-alignment cross-entropy, summed: -sum gold * log(attention).

    Args:
        gold: float32 [B, T, S], each aligned target token's gold distribution over the
            source tokens (rows of 0 for the others).
        attention: float [B, T, S], the model's attention.
    """
    attention = tf.clip_by_value(tf.cast(attention, tf.float32), _LOG_EPSILON, 1.0)
    return -tf.reduce_sum(gold * tf.math.log(attention))


def build_model(model_config):
    cls = RNNSeq2Seq if model_config.architecture == "rnn" else TransformerSeq2Seq
    return cls(model_config, name="translator")


def corpus_bleu(hypotheses, references):
    """Cased sacreBLEU and chrF on detokenized text: (bleu, chrf)."""
    bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
    chrf = sacrebleu.corpus_chrf(hypotheses, [references]).score
    return float(bleu), float(chrf)


def evaluate(translator, pairs, batch_size=64, progress=None, gold=None):
    """Translates the sources of `pairs`; returns (bleu, chrf, hypotheses, seconds), and the
    AER of the translations' attention (its head mean) against `gold` (word links of each
    pair) when given.

    `progress`, if given, is called with the number of sentences decoded so far."""
    start = time.perf_counter()
    outputs = translator.translate([s for s, _ in pairs], batch_size=batch_size,
                                   progress=progress)
    seconds = time.perf_counter() - start
    hypotheses = [out[0].text for out in outputs]
    bleu, chrf = corpus_bleu(hypotheses, [t for _, t in pairs])
    if gold is None:
        return bleu, chrf, hypotheses, seconds
    aer = translator.alignment_error_rate(
        [out[0] for out in outputs], [alignment.GoldAlignment.of_links(g) for g in gold])
    return bleu, chrf, hypotheses, seconds, aer


@dataclasses.dataclass
class _State:
    """What a checkpoint's extra state holds besides the variables."""

    step: int = 0
    best_bleu: float = -1.0
    best_step: int | None = None
    evals_since_best: int = 0
    train_seconds: float = 0.0
    target_tokens: float = 0.0
    skipped_steps: int = 0
    warmup_steps: int = 0  # the schedule's layout (0: not laid out yet)
    planned_steps: int = 0

    @classmethod
    def from_dict(cls, saved):
        """The state of a checkpoint; fields an older checkpoint lacks keep their defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in names})


class _LossScaleVariables:
    """The variables a `LossScaleOptimizer` adds to its inner optimizer's (scale, counter).

    They are a checkpoint group of their own, so that the optimizer's group is the same under
    every precision policy and a run may resume under another one.
    """

    def __init__(self, optimizer):
        inner = {id(v) for v in optimizer.inner_optimizer.variables}
        self.variables = [v for v in optimizer.variables if id(v) not in inner]


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


def _token_links(pairs, word_links, tokenizers):
    """The gold links of `pairs` between token positions (the tokenizers' pieces): word links
    as they are for word-level tokenizers, else mapped to the pieces of the words."""
    src_tok, tgt_tok = tokenizers
    if src_tok.kind == "word" and tgt_tok.kind == "word":
        return [list(links) for links in word_links]
    out = []
    for (source, target), links in zip(pairs, word_links, strict=True):
        source_ids, _ = alignment.word_ids(src_tok.pieces(source), src_tok.kind, src_tok.lang)
        target_ids, _ = alignment.word_ids(tgt_tok.pieces(target), tgt_tok.kind, tgt_tok.lang)
        out.append(alignment.piece_links(links, source_ids, target_ids))
    return out


def training_ids(corpus, tokenizers, train_config, replicas, log=print, word_links=None):
    """The training pairs as token ids, those longer than `max_length` left out.

    Args:
        corpus, tokenizers, train_config: as for `Trainer`.
        replicas: The replicas a batch is split over.
        log: Where the count of pairs goes.
        word_links: Optional gold word links of every training pair (guided alignment).

    Returns:
        (source ids, target ids, their gold links between token positions or None).

    Raises:
        DataError: When no pair is short enough, or a batch cannot be split over `replicas`.
    """
    src_tok, tgt_tok = tokenizers
    src_ids = src_tok.encode_batch([s for s, _ in corpus.train])
    tgt_ids = tgt_tok.encode_batch([t for _, t in corpus.train])
    max_length = train_config.max_length
    kept = kept_by_length(src_ids, tgt_ids, max_length)
    dropped = len(src_ids) - len(kept)
    links = None
    if word_links is not None:
        links = _token_links(corpus.train, word_links, tokenizers)
        links = [links[i] for i in kept]
    src_ids, tgt_ids = [src_ids[i] for i in kept], [tgt_ids[i] for i in kept]
    if not src_ids:
        shortest = 1 + min(max(len(s), len(t)) for s, t in zip(
            src_tok.encode_batch([s for s, _ in corpus.train]),
            tgt_tok.encode_batch([t for _, t in corpus.train]), strict=True))
        raise DataError(f"every one of the {dropped} training pairs has a side longer than "
                        f"--max_length={max_length} tokens (EOS included; the shortest pair "
                        f"needs {shortest}): raise --max_length")
    log(f"training pairs: {len(src_ids)} (--max_length={max_length} dropped {dropped})")
    _check_split(src_ids, tgt_ids, train_config.tokens_per_batch, replicas)
    return src_ids, tgt_ids, links


def _on_terminal():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Trainer:
    """Trains on `corpus.train`, keeps the best checkpoint by dev BLEU, evaluates it on
    `corpus.test` (see the module docstring for the stages).

    Batch sizes (`train_config.tokens_per_batch`) are global: R replicas share each batch.
    Under several workers, every worker builds a trainer with the same arguments and the
    same `model_dir` (a shared directory); only the chief (`attn_core.strategy.is_chief`)
    writes there and decodes the dev and test sets. Every worker logs
    `weights fingerprint: <hex>` of the trained weights: the same on all of them.

    Args:
        corpus: a `translate.corpus.Corpus`.
        tokenizers: (source, target) fitted `Tokenizer`s.
        model_config: `ModelConfig` with the vocabulary sizes filled in.
        train_config: `TrainConfig`.
        common: `attn_core.flags.CommonConfig` (seed, precision, strategy, ...).
        model_dir: the model directory; a checkpoint there is resumed (on every worker).
        log: where progress lines go.
        dist: the `tf.distribute.Strategy` (default: made from `common.strategy` and
            `common.cpu_devices`).
        alignments: optional `translate.alignment.CorpusAlignments`, the gold word links of
            the corpus (its train links are used for guided alignment when
            `train_config.guided_alignment_weight > 0`; dev and test give AERs and are
            written to `data/` in the model directory).

    Raises:
        DataError: if no training pair is short enough, a batch cannot be split over the
            replicas, or the workers do not hold the same run (model directory, flags, data).
    """

    def __init__(self, corpus, tokenizers, model_config, train_config, common, model_dir,
                 log=print, dist=None, alignments=None):
        self.corpus, self.tokenizers = corpus, tokenizers
        self.model_config, self.config, self.common = model_config, train_config, common
        self.model_dir = pathlib.Path(model_dir)
        self.log = log
        self.dist = dist or strategy.make_strategy(common.strategy, common.cpu_devices)
        self.chief = strategy.is_chief(self.dist)
        self.worker, self.workers = strategy.worker_info(self.dist)
        self.replicas = self.dist.num_replicas_in_sync
        self.policy = precision.resolve_precision(common.precision)
        self.alignments = alignments
        guided = (alignments is not None and alignments.train is not None
                  and train_config.guided_alignment_weight > 0)
        self.src_ids, self.tgt_ids, self.train_links = training_ids(
            corpus, tokenizers, train_config, self.replicas, log,
            word_links=alignments.train if guided else None)
        if guided:
            log(f"guided alignment: weight {train_config.guided_alignment_weight} on the gold "
                "alignments of the training pairs")
        self._check_workers_hold_the_same_run()
        precision.set_precision_policy(self.policy)
        log(f"precision: {self.policy}")
        seeds.set_seeds(common.seed)
        self._build_model()
        self.state = _State()
        self.stop_reason = None
        self.losses = []  # the loss of every step this process ran, for tests
        self.loss_scale = 1.0
        self._batches = None
        self._ctrl_c = StopOnCtrlC(self.log, unit="step")
        self._saved_step = None
        self._last_eval = None
        self._agreed_seconds = 0.0
        self._window = [0.0, time.perf_counter()]  # target tokens since, and start of, the window
        self._shown = {}
        self._greedy = None
        self.guided_loss = 0.0
        self.ckpts = self.best = self.writer = self.progress = None

    # Setup.

    def _check_workers_hold_the_same_run(self):
        # Before the model: different vocabularies would fail in its variables' broadcast.
        worker_sync.check_workers_agree(self.dist, self.chief, {
            "config and data": worker_sync.fingerprint_int(
                str(dataclasses.asdict(self.model_config)), str(dataclasses.asdict(self.config)),
                str((self.common.seed, self.policy)),
                np.array([len(ids) for ids in self.src_ids + self.tgt_ids], np.int64),
                np.fromiter(itertools.chain.from_iterable(self.src_ids + self.tgt_ids),
                            np.int64))})

    def _build_model(self):
        tc = self.config
        with self.dist.scope():
            self.model = build_model(self.model_config)
            self.model({"source": tf.ones((1, 3), tf.int32),
                        "decoder_in": tf.ones((1, 3), tf.int32)})
            # Every replica hands the optimizer the global gradient / R (see _replica_step),
            # and Keras clips before it sums the replicas: so clip at clip_norm / R.
            warmup, total = schedule.layout(tc, tc.max_steps)
            self.schedule = schedule.WarmupCosine(tc.learning_rate, warmup, total)
            inner = keras.optimizers.Adam(
                self.schedule,
                beta_2=0.98, epsilon=1e-9, global_clipnorm=tc.clip_norm / self.replicas,
            )
            self.optimizer = precision.wrap_optimizer(inner, self.policy)
            self.optimizer.build(self.model.trainable_variables)
        self.inner_optimizer = inner
        where = ""
        if self.workers > 1:
            where = f", worker {self.worker} of {self.workers}{' (chief)' if self.chief else ''}"
        self.log(f"model: {self.model.count_params():,} parameters, {self.replicas} "
                 f"replica(s){where}")
        self._step_fn = None  # made at the first step, from the input pipeline's element spec

    def _checkpoint_groups(self):
        groups = {"model": self.model, "optimizer": self.inner_optimizer}
        if self.optimizer is not self.inner_optimizer:
            groups["loss_scale"] = _LossScaleVariables(self.optimizer)
        return groups

    def start(self, data_record=None):
        """Writes the run's files (the chief), restores the newest intact checkpoint and
        opens the summaries. Call it with the model directory open (`ModelDir.open`).

        Args:
            data_record: What `corpus.json` records about the data and the tokenizers
                (default: the corpus fingerprint and the tokenizer kind).
        """
        if self.chief:
            self._write_run_files(data_record)
            self._write_gold_files()
        self.ckpts = checkpoint.CheckpointManager(self.model_dir / "checkpoints",
                                                  max_to_keep=self.config.keep_checkpoints,
                                                  read_only=not self.chief, log=self.log)
        self.best = checkpoint.CheckpointManager(self.model_dir / "best", max_to_keep=1,
                                                 read_only=not self.chief, log=self.log)
        resumed = self._restore()
        worker_sync.check_same_step(self.dist, self.state.step)
        worker_sync.check_workers_agree(self.dist, self.chief, {
            "step": self.state.step,
            "weights": worker_sync.fingerprint_int(
                strategy.weights_fingerprint(self.model.variables)),
        })
        self._last_eval = self.state.step if resumed else None
        self._saved_step = self.state.step if resumed else None
        self._agreed_seconds = self.state.train_seconds
        if self.state.planned_steps:
            self.schedule.set_plan(self.state.warmup_steps, self.state.planned_steps)
        self.writer = summaries.SummaryWriter(self.model_dir, enabled=self.chief)
        if not resumed:
            self.writer.hparams_table(dataclasses.asdict(self.model_config)
                                      | dataclasses.asdict(self.config)
                                      | dataclasses.asdict(self.common)
                                      | {"precision": self.policy})

    def _write_run_files(self, data_record):
        """Writes the tokenizers and configs, after checking that a resumed directory holds
        this very run (`translate.train` has reconciled its flags with it already)."""
        src, tgt = self.tokenizers
        fingerprint = nmt_dir.corpus_fingerprint(self.corpus.train, src.lang, tgt.lang)
        data_record = data_record or {"fingerprint": fingerprint, "subword": src.kind}
        saved_model, _, saved_record = nmt_dir.saved_configs(self.model_dir)
        if saved_model is not None and saved_model != dataclasses.asdict(self.model_config):
            raise UserError(f"{self.model_dir} holds a model with another config; resume it "
                            "with its saved config, or use a new model directory")
        if saved_record is not None and saved_record.get("fingerprint") != fingerprint:
            raise UserError(f"{self.model_dir} holds tokenizers fitted on another corpus; "
                            "resume it with its own data, or use a new model directory")
        if saved_record is None or not nmt_dir.has_tokenizers(self.model_dir):
            nmt_dir.save_tokenizers(self.model_dir, self.tokenizers, data_record)
        if saved_model is None:
            nmt_dir.save_model_config(self.model_dir, self.model_config)
        core_dir.write_json(self.model_dir / nmt_dir.TRAIN_CONFIG,
                            dataclasses.asdict(self.config)
                            | {"precision": self.policy, "seed": self.common.seed})

    def _write_gold_files(self):
        """With gold alignments: data/{dev,test}.{src,ref,align}, the files that
        `translate.evaluate --ref_alignments` takes."""
        if self.alignments is None:
            return
        for split in ("dev", "test"):
            pairs, links = getattr(self.corpus, split), getattr(self.alignments, split)
            base = self.model_dir / "data" / split
            base.parent.mkdir(exist_ok=True)
            for suffix, lines in (("src", [s for s, _ in pairs]), ("ref", [t for _, t in pairs]),
                                  ("align", [alignment.format_pharaoh(x) for x in links])):
                checkpoint.atomic_write_text(base.with_suffix(f".{suffix}"),
                                             "".join(line + "\n" for line in lines))

    def _restore(self):
        """Restores the newest intact checkpoint; returns whether there was one.

        A `best/` that a kill or damage left behind the regular checkpoints is mended here,
        at the start, rather than found out after the whole training.
        """
        if not self.ckpts.steps:
            return False
        best_step = self.best.restored_step() if self.best.steps else None
        best_state = None
        if best_step is not None:  # checks that it holds this model (overwritten next)
            best_state = self.best.restore({"model": self.model}, step=best_step)
        groups = self._checkpoint_groups()
        scale_group = groups.pop("loss_scale", None)
        restored = self.ckpts.restore(groups)
        self.state = _State.from_dict(restored)
        if scale_group is not None:
            try:
                self.ckpts.restore({"loss_scale": scale_group}, step=self.ckpts.restored)
            except UserError:
                self.log("the checkpoint has no loss scale (another precision): it starts "
                         "afresh")
        self.log(f"resumed from step {self.state.step}")
        self._mend_best(best_step, best_state)
        return True

    def _mend_best(self, best_step, best_state):
        """Makes `best/` (newest intact step `best_step`, its state `best_state`) and the
        resumed state agree on which step is the best."""
        state = self.state
        expected = state.best_step  # None: never evaluated, or a checkpoint without it
        if best_step is not None and expected in (None, best_step):
            return
        if best_step is None and expected is None and not self.best.steps:
            return
        if expected is not None and expected == self.ckpts.restored:
            # Killed between the regular checkpoint and best/ of the same step: the regular
            # one holds those very weights.
            self.best.save(state.step, {"model": self.model}, dataclasses.asdict(state))
            self.log(f"saved the best checkpoint of step {state.step} again (it was missing)")
        elif best_state is not None:
            if best_step < expected:
                self.log(f"warning: the best checkpoint of step {expected} is damaged or "
                         f"missing; keeping that of step {best_step}")
            state.best_bleu = float(best_state.get("best_bleu", -1.0))
            state.best_step = best_step
        else:
            self.log(f"warning: {self.best.directory} holds no intact checkpoint; the next "
                     "evaluation saves a new best")
            state.best_bleu, state.best_step = -1.0, None

    # One step.

    def _replica_step(self, batch, seconds):
        """One replica's part of a step.

        Args:
            batch: this replica's rows of the global batch ("source" [b, S], "decoder_in"
                and "target" [b, T], int32; "alignment" [b, T, S] float32 with guided
                alignment).
            seconds: float32 [], this worker's training seconds so far.

        Returns:
            float32 [4], the same on every replica: the global batch's loss sum and target
            token count, the workers' mean training seconds, and the guided-alignment sum
            (0 without); and float32 [2]: the loss scale after the update and 1.0 if the
            update was skipped (float16 only).
        """
        model, optimizer, replicas = self.model, self.optimizer, self.replicas
        context = tf.distribute.get_replica_context()
        inputs = {"source": batch["source"], "decoder_in": batch["decoder_in"]}
        with tf.GradientTape() as tape:
            guided = tf.constant(0.0)
            if "alignment" in batch:
                logits, attention = model.call_with_attention(inputs, training=True)
                guided = guided_alignment_sum(batch["alignment"], attention)
            else:
                logits = model(inputs, training=True)
            loss_sum, count = smoothed_loss_sums(batch["target"], logits,
                                                 self.config.label_smoothing)
            totals = context.all_reduce("SUM", tf.stop_gradient(
                tf.stack([loss_sum, count, seconds / replicas, guided])))
            # This replica's share of the mean.
            loss = ((loss_sum + self.config.guided_alignment_weight * guided)
                    / tf.maximum(totals[1], 1.0))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        if replicas > 1:
            # Keras clips (and checks loss-scaled gradients for inf) on each replica before it
            # sums the replicas' gradients: hand every replica the same global gradient / R.
            grads = context.all_reduce("SUM", grads)
            grads = [_scale_gradient(g, 1.0 / replicas) for g in grads]
        scale_before = precision.loss_scale(optimizer)
        optimizer.apply(grads, model.trainable_variables)
        skipped = precision.skipped_step(optimizer, scale_before)
        health = tf.stack([precision.loss_scale(optimizer), tf.cast(skipped, tf.float32)])
        return totals, health

    def _make_step_fn(self, batch_spec):
        """The distributed train step, traced once for every batch shape: `batch_spec` (the
        input pipeline's, with [None, None] token tensors) is its input signature, where
        `reduce_retracing` alone traced it twice, for the first shape and then for any."""
        dist, jit_compile = self.dist, self.common.jit_compile

        # No AutoGraph (the step has no Python control flow on tensors): converting the Keras
        # calls beneath it only slowed the first step.
        @tf.function(jit_compile=jit_compile, reduce_retracing=True, autograph=False)
        def replica_call(batch, seconds):
            return self._replica_step(batch, seconds)

        @tf.function(input_signature=[batch_spec, tf.TensorSpec([], tf.float32)],
                     autograph=False)
        def train_step(batch, seconds):
            totals, health = dist.run(replica_call if jit_compile else self._replica_step,
                                      args=(batch, seconds))
            return (dist.experimental_local_results(totals)[0],
                    dist.experimental_local_results(health)[0])

        return train_step

    def _next_batch(self):
        if self._batches is None:
            local_replicas = self.replicas // self.workers

            def dataset_fn(context):
                """This worker's input pipeline: its replicas' parts of the same global
                batches, shuffled from where a resumed run left off."""
                dataset = make_dataset(self.src_ids, self.tgt_ids, self.config.tokens_per_batch,
                                       shuffle=True, seed=self.common.seed + self.state.step,
                                       repeat=True, alignments=self.train_links)
                return split_batches(dataset, self.replicas,
                                     context.input_pipeline_id * local_replicas, local_replicas)

            self._batches = iter(self.dist.distribute_datasets_from_function(dataset_fn))
        return next(self._batches)

    def train_step(self):
        """Runs one optimizer step on the next global batch; returns its mean loss.

        Raises:
            FloatingPointError: when the loss is not finite.
        """
        state = self.state
        start = time.perf_counter()
        batch = self._next_batch()
        if self._step_fn is None:
            self._step_fn = self._make_step_fn(self._batches.element_spec)
        totals, health = self._step_fn(batch, tf.constant(state.train_seconds, tf.float32))
        loss_sum, count, self._agreed_seconds, guided = (float(x) for x in totals)
        self.loss_scale, skipped = (float(x) for x in health)
        loss = loss_sum / max(count, 1.0)
        self.guided_loss = guided / max(count, 1.0)
        if not np.isfinite(loss):
            raise FloatingPointError(f"training loss is {loss} at step {state.step}")
        state.step += 1
        state.train_seconds += time.perf_counter() - start
        state.target_tokens += count
        state.skipped_steps += int(skipped)
        self._window[0] += count
        self.losses.append(loss)
        return loss

    # The loop.

    def __call__(self):
        """Trains until `max_steps`, the time budget or early stopping; returns why it
        stopped ("max_steps", "time_budget" or "early_stopping").

        Raises:
            attn_core.errors.Interrupted: after Ctrl-C, once a checkpoint is saved.
        """
        tc, state = self.config, self.state
        budget = tc.time_budget_minutes * 60.0 if tc.time_budget_minutes else float("inf")
        self.progress = progress.Progress(
            tc.max_steps, budget_seconds=tc.time_budget_minutes * 60.0, initial=state.step,
            unit="step", description="train", enabled=self.chief)
        self._window = [0.0, time.perf_counter()]
        self.stop_reason = "max_steps"
        first_step, pace_from = state.step, None
        try:
            with self._ctrl_c:
                while state.step < tc.max_steps:
                    self._stop_if_interrupted()
                    if self._used_seconds() >= budget:
                        self.stop_reason = "time_budget"
                        break
                    loss = self.train_step()
                    done = state.step - first_step
                    if done == PACE_FROM:
                        pace_from = (state.step, self._used_seconds())
                    elif done in PLAN_AT or (done > PLAN_AT[-1] and state.step % LOG_EVERY == 0):
                        self._plan_schedule(pace_from, budget)
                    if state.step % LOG_EVERY == 0 or state.step == tc.max_steps:
                        self._write_scalars(loss)
                    self.progress.update(state.step, state.train_seconds, self._shown)
                    if state.step % tc.eval_every == 0 or state.step == tc.max_steps:
                        self.evaluate_and_save()
                        if tc.patience and state.evals_since_best >= tc.patience:
                            self.stop_reason = "early_stopping"
                            break
                if self._last_eval != state.step:  # stopped between evaluations: judge the end
                    self.evaluate_and_save()
                self._stop_if_interrupted()
        finally:
            self.progress.close()
        self.log(f"weights fingerprint: {strategy.weights_fingerprint(self.model.variables)}")
        return self.stop_reason

    def _used_seconds(self):
        """The training seconds the budget is judged on: under several workers, their mean
        as of the start of the last step (every step all-reduces it), one clock for all, so
        that they all stop, and lay out the schedule, at the same step."""
        return self.state.train_seconds if self.workers == 1 else self._agreed_seconds

    def _plan_schedule(self, pace_from, budget):
        """Lays the learning-rate schedule out again over the steps that `max_steps` and the
        time budget (at the pace measured since `pace_from`, (step, seconds)) allow."""
        state, tc = self.state, self.config
        used = self._used_seconds()
        pace = (used - pace_from[1]) / max(state.step - pace_from[0], 1)
        planned = schedule.plan_steps(state.step, used, pace, budget, tc.max_steps)
        # A warmup already run stays as it was; one still running follows the plan.
        kept = state.warmup_steps if 0 < state.warmup_steps <= state.step else None
        warmup, total = schedule.layout(tc, planned, warmup=kept)
        moved = abs(total - state.planned_steps) > 0.1 * max(state.planned_steps, 1)
        state.warmup_steps, state.planned_steps = warmup, total
        self.schedule.set_plan(warmup, total)
        if moved:
            limit = "the time budget" if planned < tc.max_steps else "--max_steps"
            self.say(f"schedule: warmup {warmup} steps, decay until step {total} "
                     f"({limit} at {pace:.2f} s/step)")

    def _stop_if_interrupted(self):
        # Ctrl-C reaches one worker: they vote (no op with one), so all stop at this step
        # instead of leaving the others waiting in the next step's collective.
        if not worker_sync.any_worker(self.dist, self._ctrl_c.requested):
            return
        if self._saved_step != self.state.step:
            self.save()
        raise Interrupted(self.model_dir, self.state.step if self.chief else None)

    def _write_scalars(self, loss):
        now = time.perf_counter()
        rate = self._window[0] / max(now - self._window[1], 1e-9)
        self._window = [0.0, now]
        self.writer.scalars(self.state.step, {
            "losses/train": loss,
            "charts/learning_rate": float(self.inner_optimizer.learning_rate),
            "charts/planned_steps": self.state.planned_steps,
            "charts/tokens_per_second": rate,
            "charts/loss_scale": self.loss_scale,
            "charts/skipped_steps": self.state.skipped_steps,
        } | ({"losses/guided_alignment": self.guided_loss} if self.train_links else {}))
        self._shown = {"loss": loss, "tok/s": round(rate)}

    # Evaluating and saving.

    def say(self, message):
        """`log(message)`, through the progress bar when it is drawn on a terminal."""
        if self.progress is not None and self.log is print and _on_terminal():
            self.progress.write(message)
        else:
            self.log(message)

    def greedy_translator(self):
        """One greedy `Translator` for every evaluation, so that its decoder is traced once
        (TensorFlow warns when the decoders of all translators retrace often). It keeps every
        head, for the attention summaries."""
        if self._greedy is None:
            self._greedy = Translator(self.model, *self.tokenizers)
        return self._greedy

    def _gold(self, split, count=None):
        """The gold links of the first `count` pairs of a split, or None."""
        if self.alignments is None:
            return None
        return getattr(self.alignments, split)[:count]

    def evaluate_dev(self):
        """Greedy dev BLEU (TensorBoard: the score, the AER with gold alignments, the
        cross-attention of the first `FIXED_DEV_SENTENCES` dev sentences and samples); the
        chief only."""
        state, writer = self.state, self.writer
        greedy = self.greedy_translator()
        count = self.config.dev_eval_sentences
        dev_pairs = self.corpus.dev[:count]
        gold = self._gold("dev", count)
        bleu, chrf, hyps, _, *aer = evaluate(greedy, dev_pairs, gold=gold)
        writer.scalars(state.step, {"eval/bleu": bleu, "eval/chrf": chrf}
                       | ({"eval/aer": aer[0]} if aer else {}))
        fixed = self.corpus.dev[:FIXED_DEV_SENTENCES]
        for i, [out] in enumerate(greedy.translate([s for s, _ in fixed])):
            # Every layer and head of the Transformer (the greedy translator keeps them):
            # the dashboard's Attention tab shows each head, their mean and the tokens.
            writer.attention(f"attention/dev_{i}", state.step, **translation_view(out))
        writer.text("samples/dev", state.step, "\n\n".join(
            f"**src** {s}  \n**ref** {t}  \n**hyp** {h}"
            for (s, t), h in zip(dev_pairs[:5], hyps[:5], strict=False)))
        return bleu

    def evaluate_and_save(self):
        """Dev BLEU (the chief's, on every worker), a checkpoint, and `best/` if it improved.

        The regular checkpoint is written first: after a kill between the two, `start`
        rebuilds `best/` from it.
        """
        state = self.state
        bleu = 0.0
        if self.chief:  # the others wait for its score
            eval_start = time.perf_counter()
            bleu = self.evaluate_dev()
            self.say(f"step {state.step}: dev BLEU {bleu:.2f} "
                     f"(eval {time.perf_counter() - eval_start:.0f}s)")
        [bleu] = worker_sync.chief_values(self.dist, self.chief, [bleu])
        improved = bleu > state.best_bleu
        if improved:
            state.best_bleu, state.best_step, state.evals_since_best = bleu, state.step, 0
        else:
            state.evals_since_best += 1
        self.save()
        if improved:
            self.best.save(state.step, {"model": self.model}, dataclasses.asdict(state))
        self._last_eval = state.step
        self._window = [0.0, time.perf_counter()]

    def save(self):
        """Saves a regular checkpoint of the current step (the chief only writes)."""
        self.ckpts.save(self.state.step, self._checkpoint_groups(),
                        dataclasses.asdict(self.state))
        self._saved_step = self.state.step

    def finish(self):
        """Decodes the test set with the best checkpoint and writes `metrics.json` (the
        chief); returns the metrics (the other workers: the training part only)."""
        state, tc = self.state, self.config
        training = {
            "best_dev_bleu": state.best_bleu,
            "train_steps": state.step,
            "train_minutes": state.train_seconds / 60.0,
            "tokens_per_second": state.target_tokens / max(state.train_seconds, 1e-9),
            "replicas": self.replicas,
            "stop_reason": self.stop_reason,
            "precision": self.policy,
            "skipped_steps": state.skipped_steps,
        }
        if not self.chief:  # the chief decodes the test set and writes the metrics
            self.writer.close()
            self.log(json.dumps(training, indent=2))
            return training
        if self.best.restored_step() is not None:
            self.best.restore({"model": self.model})
        else:
            self.log(f"warning: {self.best.directory} holds no intact checkpoint; testing the "
                     "last weights")
        src_tok, tgt_tok = self.tokenizers
        test = self.corpus.test
        gold = self._gold("test")
        with progress.phase("test decoding", len(test), unit="sentence",
                            delay=progress.SHORT_PHASE_SECONDS) as phase:
            test_bleu, test_chrf, test_hyps, decode_seconds, *aer = evaluate(
                Translator(self.model, src_tok, tgt_tok, beam_width=tc.beam_width,
                           length_penalty=tc.length_penalty,
                           coverage_penalty=tc.coverage_penalty, all_heads=False),
                test, progress=phase.update, gold=gold)
        greedy_bleu, greedy_aer = test_bleu, aer
        if tc.beam_width > 1:
            greedy = evaluate(self.greedy_translator(), test, gold=gold)
            greedy_bleu, greedy_aer = greedy[0], greedy[4:]
        metrics = training | {
            "bleu": test_bleu,
            "chrf": test_chrf,
            "bleu_greedy": greedy_bleu,
            "test_sentences": len(test),
            "decode": "greedy" if tc.beam_width == 1 else "beam",
            "beam_width": tc.beam_width,
            "decode_sentences_per_second": len(test) / max(decode_seconds, 1e-9),
        } | ({"aer": aer[0], "aer_greedy": greedy_aer[0], "attention_heads": "mean",
              "guided_alignment": bool(self.train_links)} if aer else {})
        self.writer.scalars(state.step, {"eval/test_bleu": test_bleu,
                                         "eval/test_chrf": test_chrf})
        self.writer.close()
        metrics_file.write_metrics(self.model_dir, metrics)
        checkpoint.atomic_write_text(self.model_dir / "test_translations.txt",
                                     "\n".join(test_hyps) + "\n")
        self.log(json.dumps(metrics, indent=2))
        return metrics


def train_and_evaluate(corpus, tokenizers, model_config, train_config, common, model_dir,
                       log=print, dist=None, data_record=None, alignments=None):
    """Trains (or resumes) a model in `model_dir` and evaluates it on the test set.

    The directory is created and locked (`attn_core.model_dir.ModelDir`) only once every
    input has been checked; a run that fails before its first checkpoint removes the
    directory it created.

    Args:
        corpus, tokenizers, model_config, train_config, common, model_dir, log, dist,
            alignments: as for `Trainer`.
        data_record: what `corpus.json` records (see `Trainer.start`).

    Returns:
        The metrics dict the chief also writes to `model_dir/metrics.json`; the other
        workers return the training part of it (no test scores).

    Raises:
        DataError: if no training pair is short enough, a batch cannot be split over the
            replicas, or the workers do not hold the same run.
        UserError: if another process holds the directory, or its checkpoints or config are
            those of another model.
        attn_core.errors.Interrupted: after Ctrl-C, once a checkpoint is saved.
    """
    trainer = Trainer(corpus, tokenizers, model_config, train_config, common, model_dir,
                      log=log, dist=dist, alignments=alignments)
    with core_dir.ModelDir.open(trainer.model_dir, chief=trainer.chief):
        trainer.start(data_record)
        trainer()
        return trainer.finish()
