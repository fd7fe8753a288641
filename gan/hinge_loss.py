"""The hinge adversarial losses of SAGAN (Lim & Ye 2017; Zhang et al. 2019)."""

from keras import ops


def discriminator_hinge_loss(real_logits, fake_logits):
    """Per-example D loss: relu(1 − D(x)) + relu(1 + D(G(z))).

    Args:
        real_logits: [B] logits of real images.
        fake_logits: [B] logits of generated images.

    Returns:
        float32 [B]; average it over the global batch.
    """
    real_logits = ops.cast(real_logits, "float32")
    fake_logits = ops.cast(fake_logits, "float32")
    return ops.relu(1.0 - real_logits) + ops.relu(1.0 + fake_logits)


def generator_hinge_loss(fake_logits):
    """Per-example G loss: −D(G(z)).

    Args:
        fake_logits: [B] logits of generated images.

    Returns:
        float32 [B]; average it over the global batch.
    """
    return -ops.cast(fake_logits, "float32")
