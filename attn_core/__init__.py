"""attn_core: Keras 3 attention layers and the shared training helpers.

Importing the package registers every layer with Keras' serialization, so a
`.keras` file holding them loads after `import attn_core`.
"""

import os
import sys

if sys.argv[:1] == ["-m"]:
    # `python -m attn_core.<tool>` is starting one of our command-line tools (Python sets
    # argv[0] to "-m" while it imports the tool's package): silence TensorFlow's C++ start-up
    # lines before TensorFlow is imported, unless the user chose a level.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core.quiet_import import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()

from attn_core import attention_record  # noqa: E402
from attn_core.attention_rnn import AttentionRNN  # noqa: E402
from attn_core.attention_rnn_cell import AttentionRNNCell  # noqa: E402
from attn_core.bahdanau_attention import BahdanauAttention  # noqa: E402
from attn_core.base_attention import BaseAttention  # noqa: E402
from attn_core.local_attention import LocalAttention  # noqa: E402
from attn_core.luong_attention import LuongAttention  # noqa: E402
from attn_core.multi_head_attention import MultiHeadAttention  # noqa: E402
from attn_core.self_attention_2d import SelfAttention2D  # noqa: E402

__all__ = [
    "AttentionRNN",
    "AttentionRNNCell",
    "attention_record",
    "BahdanauAttention",
    "BaseAttention",
    "LocalAttention",
    "LuongAttention",
    "MultiHeadAttention",
    "SelfAttention2D",
]
