"""attn_core: Keras 3 attention layers and the shared training helpers.

Importing the package registers every layer with Keras' serialization, so a
`.keras` file holding them loads after `import attn_core`.
"""

from attn_core.bahdanau_attention import BahdanauAttention
from attn_core.base_attention import BaseAttention
from attn_core.local_attention import LocalAttention
from attn_core.luong_attention import LuongAttention
from attn_core.multi_head_attention import MultiHeadAttention

__all__ = [
    "BahdanauAttention",
    "BaseAttention",
    "LocalAttention",
    "LuongAttention",
    "MultiHeadAttention",
]
