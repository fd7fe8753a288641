"""`SpectralSelfAttention2D`: `attn_core.SelfAttention2D` with spectrally normalized 1×1 convs."""

import keras

from attn_core import SelfAttention2D
from gan.spectral_norm import SpectralNorm

_CONVS = ("query_conv", "key_conv", "value_conv", "output_conv")


@keras.saving.register_keras_serializable(package="gan")
class SpectralSelfAttention2D(SelfAttention2D):
    """SAGAN's attention block: `attn_core.SelfAttention2D` whose four 1×1 convolutions are
    wrapped in `SpectralNorm`, as in Zhang et al.'s G and D.

    Only `build` differs: the parent builds and validates the convolutions, and they are
    then wrapped. The scores, the float32 softmax and the x + γ·o residual (γ = 0 at
    initialisation, so the block starts as the identity) are the parent's.

    Letters: B batch, H height, W width, C channels, P = H·W, P' = P/4.

    Args:
        **kwargs: as for `attn_core.SelfAttention2D` (`kernel_initializer` defaults to
            orthogonal).

    Call arguments:
        inputs: [B, H, W, C].
        return_attention_scores: also return the attention map [B, P, P'].
        training: update the spectral-norm power-iteration vectors.

    Returns:
        [B, H, W, C] and, when asked, the attention map [B, P, P'].
    """

    def __init__(self, **kwargs):
        kwargs.setdefault("kernel_initializer", "orthogonal")
        super().__init__(**kwargs)

    def build(self, input_shape):
        super().build(input_shape)
        for name in _CONVS:
            wrapped = SpectralNorm(getattr(self, name), name=f"sn_{name}")
            wrapped.build(None)
            setattr(self, name, wrapped)

    def call(self, inputs, return_attention_scores=False, training=False):
        # `training` reaches the wrapped convolutions through Keras' call context.
        return super().call(inputs, return_attention_scores=return_attention_scores)
