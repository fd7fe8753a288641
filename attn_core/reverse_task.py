"""A tiny attention seq2seq task: reverse a sequence of digits.

The demo and the `AttentionRNNCell` learning test share it. Tokens: 0 is
padding, 1 is start-of-sequence, digits d are 2 + d.
"""

import dataclasses

import keras
import numpy as np
from keras import ops

from attn_core.attention_rnn import AttentionRNN
from attn_core.attention_rnn_cell import AttentionRNNCell
from attn_core.bahdanau_attention import BahdanauAttention
from attn_core.local_attention import LocalAttention
from attn_core.luong_attention import LuongAttention

PAD, START, VOCAB = 0, 1, 12


@dataclasses.dataclass(frozen=True)
class ReverseConfig:
    """Hyperparameters of the reversal model and its training.

    Attributes:
        min_length: shortest source sequence.
        max_length: longest source sequence (S).
        units: GRU size of encoder (per direction) and decoder.
        attention: "luong" (general), "bahdanau" or "local" (local-p).
        train_size: training sequences.
        batch_size: sequences per step.
        epochs: passes over the training set.
        learning_rate: Adam's step size.
        seed: seeds data and weights.
    """

    min_length: int = 4
    max_length: int = 8
    units: int = 64
    attention: str = "luong"
    train_size: int = 6000
    batch_size: int = 64
    epochs: int = 6
    learning_rate: float = 3e-3
    seed: int = 0


def make_data(n, config, seed):
    """Returns (source [n, S], decoder input [n, S], target [n, S]) int32, 0-padded."""
    rng = np.random.default_rng(seed)
    s = config.max_length
    lengths = rng.integers(config.min_length, s + 1, size=n)
    source = np.zeros((n, s), np.int32)
    target = np.zeros((n, s), np.int32)
    for i, length in enumerate(lengths):
        digits = rng.integers(0, 10, size=length) + 2
        source[i, :length] = digits
        target[i, :length] = digits[::-1]
    decoder_in = np.concatenate([np.full((n, 1), START, np.int32), target[:, :-1]], axis=1)
    return source, decoder_in, target


def _attention(config):
    if config.attention == "luong":
        return LuongAttention("general")
    if config.attention == "bahdanau":
        return BahdanauAttention(config.units)
    if config.attention == "local":
        return LocalAttention(window=3, mode="predictive", score="general")
    raise ValueError(
        "Expected `attention` to be one of ('luong', 'bahdanau', 'local'). "
        f"Received: attention={config.attention!r}"
    )


def build_model(config):
    """Encoder: embedding + bidirectional GRU; decoder: AttentionRNN over a
    GRU cell with input feeding. Returns (training model, alignment model)."""
    source = keras.Input((None,), dtype="int32", name="source")
    decoder_in = keras.Input((None,), dtype="int32", name="decoder_in")
    embed = keras.layers.Embedding(VOCAB, 32, mask_zero=True, name="source_embedding")
    memory = keras.layers.Bidirectional(
        keras.layers.GRU(config.units, return_sequences=True), name="encoder"
    )(embed(source))  # [B, S, 2U]
    cell = AttentionRNNCell(
        keras.layers.GRUCell(config.units), _attention(config),
        attention_layer_size=config.units, alignment_history=True,
    )
    target_embed = keras.layers.Embedding(VOCAB, 32, name="target_embedding")(decoder_in)
    outputs, alignments = AttentionRNN(cell, name="decoder")(target_embed, constants=memory)
    logits = keras.layers.Dense(VOCAB, name="logits", dtype="float32")(outputs)
    model = keras.Model([source, decoder_in], logits, name="reverser")
    return model, keras.Model([source, decoder_in], [logits, alignments])


def masked_accuracy(target, logits):
    """Token accuracy over the non-padding target positions."""
    target = ops.convert_to_tensor(target)
    valid = ops.cast(ops.not_equal(target, PAD), "float32")
    hit = ops.cast(ops.equal(ops.argmax(logits, -1), ops.cast(target, "int64")), "float32")
    return ops.sum(hit * valid) / ops.maximum(ops.sum(valid), 1.0)


@dataclasses.dataclass
class ReverseResult:
    """What `train` returns.

    Attributes:
        model: the training model, (source, decoder input) -> logits.
        align_model: the same weights, -> (logits, alignments [B, T, S]).
        accuracy: teacher-forced token accuracy on 500 held-out sequences.
        losses: the training loss of every epoch.
    """

    model: keras.Model
    align_model: keras.Model
    accuracy: float
    losses: list


def train(config, verbose=0):
    """Trains with teacher forcing and returns a `ReverseResult`."""
    keras.utils.set_random_seed(config.seed)
    model, align_model = build_model(config)
    model.compile(
        optimizer=keras.optimizers.Adam(config.learning_rate, clipnorm=1.0),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD),
    )
    x_src, x_dec, y = make_data(config.train_size, config, config.seed)
    history = model.fit([x_src, x_dec], y, batch_size=config.batch_size, epochs=config.epochs,
                        verbose=verbose, shuffle=True)
    d_src, d_dec, d_y = make_data(500, config, config.seed + 1)
    accuracy = float(masked_accuracy(d_y, model.predict([d_src, d_dec], verbose=0)))
    return ReverseResult(model, align_model, accuracy, [float(x) for x in history.history["loss"]])
