r"""How fast attention learns POPGym Autoencode's lookup with each encoding of the time.

    python -m benchmarks.time_encoding_probe
    python -m benchmarks.time_encoding_probe --episodes=4000 --seed=2

Autoencode (`popgym-AutoencodeEasy-v0`) shows 52 cards, then asks for them in reverse: the
card asked at step `t` was shown at step `102 - t`. Here a one-layer causal attention model
learns that lookup by plain supervision (cross-entropy on the asked card), no RL, so the
only question is whether the encoding of the time lets one query/key pair find the mirror
step for every `t`. Each step's input is `LN(card + mode + time)`, with the time either

- `table`: a learned embedding per step index (what `--episode_step` gave until it became
  sines), or
- `sines`: `attn_agents.episode_step.step_features` (what `--episode_step` gives now),
  through a learned linear projection.

It prints, per encoding, the episodes seen when the recital's accuracy (over a batch's 52
answers per episode) first reached 0.9, and the final accuracy; chance is 0.25. See
docs/agents/memory.md for what it showed and why the agent adds the time to its summary.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # before TensorFlow loads

import attn_core  # noqa: E402, I001  (first: it imports TensorFlow without its start-up lines)
import time  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from attn_agents.episode_step import step_features  # noqa: E402
from attn_core import cli  # noqa: E402

STEPS, CARDS, WIDTH = 103, 52, 32
ENCODINGS = ("table", "sines")

flags.DEFINE_integer("episodes", 12_000, "Training episodes per encoding (8 per step).",
                     lower_bound=8)
flags.DEFINE_integer("seed", 1, "Seed of the weights and of the dealt cards.")
FLAGS = flags.FLAGS


def episodes(rng, count):
    """`(cards, modes, targets)`, int [count, STEPS] each; targets -1 while watching."""
    dealt = rng.integers(0, 4, (count, CARDS))
    cards = np.zeros((count, STEPS), np.int32)
    cards[:, :CARDS] = dealt  # step t shows card t; step 51 the last, in play mode
    modes = np.zeros((count, STEPS), np.int32)
    modes[:, :CARDS - 1] = 1  # watch
    targets = -np.ones((count, STEPS), np.int32)
    targets[:, CARDS - 1:] = dealt[:, ::-1]  # step 51 + k asks for card 51 - k
    return cards, modes, targets


def build(encoding):
    """The one-layer model: [B, STEPS] cards and modes -> [B, STEPS, 4] logits."""
    cards = keras.Input((STEPS,), dtype="int32")
    modes = keras.Input((STEPS,), dtype="int32")
    if encoding == "table":
        time_in = keras.layers.Embedding(STEPS, WIDTH)(np.arange(STEPS)[None])
    else:
        time_in = keras.layers.Dense(WIDTH)(step_features(np.arange(STEPS), STEPS)[None])
    x = keras.layers.Embedding(4, WIDTH)(cards) + keras.layers.Embedding(2, WIDTH)(modes)
    x = keras.layers.LayerNormalization()(x + time_in)  # [B, STEPS, D]
    causal = np.tril(np.ones((STEPS, STEPS), bool))[None]  # True = attend
    h = x + attn_core.MultiHeadAttention(4, WIDTH // 4)(x, x, attention_mask=causal)
    h = h + keras.layers.Dense(WIDTH, activation="gelu")(keras.layers.LayerNormalization()(h))
    return keras.Model([cards, modes], keras.layers.Dense(4)(h))


def probe(encoding, total, seed, batch=8):
    """`(episodes to 0.9 accuracy or None, final accuracy, seconds)`."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model, optimizer = build(encoding), keras.optimizers.Adam(1e-3)

    @tf.function
    def train_step(cards, modes, targets):
        asked = targets >= 0
        with tf.GradientTape() as tape:
            logits = model([cards, modes])
            loss = tf.reduce_mean(tf.boolean_mask(
                keras.losses.sparse_categorical_crossentropy(tf.maximum(targets, 0), logits,
                                                             from_logits=True), asked))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        right = tf.equal(tf.argmax(logits, -1, output_type=tf.int32), targets)
        return tf.reduce_mean(tf.cast(tf.boolean_mask(right, asked), tf.float32))

    begin, reached, accuracy = time.perf_counter(), None, []
    for step in range(1, total // batch + 1):
        accuracy.append(float(train_step(*episodes(rng, batch))))
        if reached is None and np.mean(accuracy[-25:]) >= 0.9:
            reached = step * batch
    return reached, float(np.mean(accuracy[-25:])), time.perf_counter() - begin


def main(argv):
    del argv  # cli.run refuses stray arguments
    print(f"Autoencode's reversed recital by supervision, {FLAGS.episodes} episodes, "
          f"seed {FLAGS.seed} (chance 0.25)")
    for encoding in ENCODINGS:
        reached, final, seconds = probe(encoding, FLAGS.episodes, FLAGS.seed)
        when = f"{reached} episodes" if reached else f"not within {FLAGS.episodes} episodes"
        print(f"{encoding:6s} accuracy 0.9 after {when}; final {final:.3f} ({seconds:.0f} s)")


if __name__ == "__main__":
    cli.run(main)
