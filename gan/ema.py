"""The exponential moving average of the generator's weights."""

import keras


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """Assigns every variable of `source` to the same-position variable of `target`."""
    for src, dst in zip(source.variables, target.variables, strict=True):
        dst.assign(src)


def update_ema(model: keras.Model, ema_model: keras.Model, decay) -> None:
    """ema ← decay·ema + (1 − decay)·w for trainable variables; a copy for the others.

    The non-trainable variables (spectral-norm u, batch-norm moving statistics) are copied,
    as in BigGAN and StudioGAN, so the EMA generator normalizes like the live one.

    Under a `tf.distribute` strategy, call it in the cross-replica context (after
    `strategy.run`): every worker then updates its own copies of the mirrored variables
    from its own copies of G's, which the replicas keep equal, without communicating.

    Args:
        model: the trained generator.
        ema_model: a generator of the same config, built.
        decay: the EMA decay (e.g. 0.999); a float or a scalar tensor.
    """
    for src, dst in zip(model.trainable_variables, ema_model.trainable_variables, strict=True):
        dst.assign(decay * dst + (1.0 - decay) * src)
    for src, dst in zip(model.non_trainable_variables, ema_model.non_trainable_variables,
                        strict=True):
        dst.assign(src)
