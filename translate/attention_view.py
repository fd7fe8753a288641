"""A translation's cross-attention as the attention dashboard shows it: the matrix of target
tokens over source tokens, every decoder layer and head of a Transformer."""

import numpy as np


def translation_view(translation) -> dict:
    """The keyword arguments of `attn_core.attention_record.make_record` (after its name) and
    of `SummaryWriter.attention` (after its tag and step) for one translation.

    Args:
        translation: A `translate.translator.Translation` decoded with every head kept
            (`Translator(all_heads=True)`, the default): its `attention` is float [T, S]
            for the RNN, [L, N, T, S] for the Transformer (L decoder layers of N heads).

    Returns:
        `{"weights", "query_labels", "key_labels", "view", "layer_names"}`: the attention
        as float32, the T target pieces as query labels and the S source pieces as key
        labels (EOS included where the model read or wrote it), the "matrix" view, and the
        decoder layers' names (0-based, as `--attention_heads=L:H` counts them; None for the
        RNN's one attention).

    Raises:
        ValueError: If the attention's last two dims do not match the tokens.
    """
    weights = np.asarray(translation.attention, np.float32)
    targets, sources = list(translation.target_pieces), list(translation.source_pieces)
    if weights.ndim not in (2, 4) or weights.shape[-2:] != (len(targets), len(sources)):
        raise ValueError(
            f"Expected attention [T, S] or [L, N, T, S] with T={len(targets)} target and "
            f"S={len(sources)} source tokens. Received: shape {weights.shape}")
    layer_names = ([f"decoder layer {i}" for i in range(weights.shape[0])]
                   if weights.ndim == 4 else None)
    return {"weights": weights, "query_labels": targets, "key_labels": sources,
            "view": "matrix", "layer_names": layer_names}
