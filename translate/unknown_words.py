"""Replacing the unknown words of a word-level model's output by the source words they
attend to (Luong et al. 2015, "Addressing the Rare Word Problem in NMT"; OpenNMT's
`replace_unknown_target`).

A word-level vocabulary leaves out rare words: names, numbers, rare forms. They come out
as `<unk>`, and the source word most attended at that step is often the word itself (a name
or a number is copied as it is). Subword vocabularies have no such gap, so the replacement
is for word-level models only.
"""

import numpy as np

from translate.tokenizer import SPECIAL_TOKENS, UNK

UNKNOWN = SPECIAL_TOKENS[UNK]


def replace_unknown_pieces(target_pieces, source_pieces, alignments, unknown=UNKNOWN):
    """Each unknown target token replaced by the source token with the highest attention.

    The last source token is the source's EOS and is never copied; ties go to the first
    position. An unknown token of an empty source (EOS alone) stays as it is.

    Args:
        target_pieces: T token strings (the output, EOS included or not).
        source_pieces: S token strings, the last one the source's EOS.
        alignments: float [T, S'] with S' >= S: the attention of each output step over the
            source positions; columns from S on (padding) are ignored.
        unknown: the token to replace.

    Returns:
        A new list of T token strings.

    Raises:
        ValueError: when `alignments` has fewer than T rows or S columns.
    """
    alignments = np.asarray(alignments)
    source_length = len(source_pieces)
    if (alignments.ndim != 2 or alignments.shape[0] < len(target_pieces)
            or alignments.shape[1] < source_length):
        raise ValueError(
            f"Expected alignments of shape [>= {len(target_pieces)}, >= {source_length}]. "
            f"Received: alignments.shape={alignments.shape}")
    words = source_length - 1  # without the EOS
    out = list(target_pieces)
    for t, piece in enumerate(out):
        if piece == unknown and words > 0:
            out[t] = source_pieces[int(np.argmax(alignments[t, :words]))]
    return out
