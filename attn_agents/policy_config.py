"""The policy network's settings, a frozen config the library takes."""

import dataclasses

from attn_core.config_checks import require_positive_ints

POLICIES = ("attention", "mlp")
MEMORY_GATES = ("none", "gru")
MEMORY_READS = ("softmax", "sigmoid")


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """What the actor-critic network looks like.

    Attributes:
        policy: The network: attention (observation tokens, self-attention blocks, attention
            pooling) or mlp (one tanh layer over the flattened observation).
        d_model: Width D of the tokens, of the pooled summary and of the heads' hidden layer.
        num_heads: Attention heads N (`d_model` must be divisible by it).
        attention_layers: Pre-LN self-attention blocks over the tokens (attention policy).
        ff_dim: Hidden size of the blocks' feed-forward layers.
        memory: K > 0 adds causal temporal attention over the summaries of the last K steps
            (the current one included); 0 turns it off.
        memory_gate: With memory: the memory block's residual connections: none (plain
            additions) or gru (GTrXL's GRU-type gates, Parisotto et al. 2020, which start
            near the identity and can make long trainings steadier).
        memory_read: With memory: how a step weighs its window: softmax (weights that sum
            to one, so the read is an average over the matching steps) or sigmoid (each
            weight on its own, so the read is a sum that grows with how many steps match,
            a count; sigmoid attention, Ramapuram et al. 2024, with a bias of -log K).
        patch_size: Side of the non-overlapping square patches of image observations.
        log_std_init: Initial state-independent log-std of continuous actions.
    """

    policy: str = "attention"
    d_model: int = 64
    num_heads: int = 4
    attention_layers: int = 1
    ff_dim: int = 128
    memory: int = 0
    memory_gate: str = "none"
    memory_read: str = "softmax"
    patch_size: int = 8
    log_std_init: float = 0.0

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise ValueError(f"Expected `policy` to be one of {POLICIES}. "
                             f"Received: policy={self.policy!r}")
        require_positive_ints(self, "d_model", "num_heads", "attention_layers", "ff_dim",
                              "patch_size")
        if isinstance(self.memory, bool) or not isinstance(self.memory, int) or self.memory < 0:
            raise ValueError(f"Expected `memory` to be a non-negative integer. "
                             f"Received: memory={self.memory!r}")
        # Options of the memory block: each one of its choices, and the first (the plain
        # block) unless there is a memory.
        for name, choices, role in (("memory_gate", MEMORY_GATES, "it gates the memory block"),
                                    ("memory_read", MEMORY_READS,
                                     "it is how the memory reads its window")):
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"Expected `{name}` to be one of {choices}. "
                                 f"Received: {name}={value!r}")
            if value != choices[0] and not self.memory:
                raise ValueError(f"Expected `memory` > 0 with `{name}`={value!r} ({role}). "
                                 "Received: memory=0")
        if self.d_model % self.num_heads:
            raise ValueError(f"Expected `d_model` to be divisible by `num_heads`. "
                             f"Received: d_model={self.d_model}, num_heads={self.num_heads}")
