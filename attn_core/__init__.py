"""attn_core: Keras 3 attention layers and the shared training helpers.

Importing the package registers every layer with Keras' serialization, so a
`.keras` file holding them loads after `import attn_core`.
"""

from attn_core.attention_rnn import AttentionRNN
from attn_core.attention_rnn_cell import AttentionRNNCell
from attn_core.bahdanau_attention import BahdanauAttention
from attn_core.base_attention import BaseAttention
from attn_core.local_attention import LocalAttention
from attn_core.luong_attention import LuongAttention
from attn_core.multi_head_attention import MultiHeadAttention
from attn_core.self_attention_2d import SelfAttention2D

__all__ = [
    "AttentionRNN",
    "AttentionRNNCell",
    "BahdanauAttention",
    "BaseAttention",
    "LocalAttention",
    "LuongAttention",
    "MultiHeadAttention",
    "SelfAttention2D",
]
