"""The one place that maps `--attention` names to `attn_core` layers."""

import attn_core

ATTENTIONS = (
    "bahdanau",
    "normed_bahdanau",
    "luong",
    "scaled_luong",
    "luong_general",
    "luong_concat",
    "cosine",
    "local_m",
    "local_p",
)


def make_attention(name, units, window=5):
    """Returns a fresh attention layer for `name`.

    - `bahdanau`, `normed_bahdanau`: additive, optionally weight-normalised.
    - `luong`: dot; `scaled_luong`: dot with a learned scale (tensorflow/nmt);
      `luong_general`: qᵀWk; `luong_concat`: vᵀtanh(W[q; k]); `cosine`.
    - `local_m`, `local_p`: Luong's local attention (general score) with a
      window of ±`window` source positions.

    Args:
        name: one of `ATTENTIONS`.
        units: the hidden size of additive scores.
        window: the half-width D of local attention.

    Raises:
        ValueError: for an unknown name.
    """
    factories = {
        "bahdanau": lambda: attn_core.BahdanauAttention(units, name="attention"),
        "normed_bahdanau": lambda: attn_core.BahdanauAttention(
            units, normalize=True, name="attention"
        ),
        "luong": lambda: attn_core.LuongAttention("dot", name="attention"),
        "scaled_luong": lambda: attn_core.LuongAttention("dot", scale=True, name="attention"),
        "luong_general": lambda: attn_core.LuongAttention("general", name="attention"),
        "luong_concat": lambda: attn_core.LuongAttention("concat", units=units, name="attention"),
        "cosine": lambda: attn_core.LuongAttention("cosine", name="attention"),
        "local_m": lambda: attn_core.LocalAttention(window, mode="monotonic", name="attention"),
        "local_p": lambda: attn_core.LocalAttention(window, mode="predictive", name="attention"),
    }
    if name not in factories:
        raise ValueError(
            f"Expected `attention` to be one of {ATTENTIONS}. Received: attention={name!r}"
        )
    return factories[name]()
