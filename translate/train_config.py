"""The training hyperparameters, a frozen config the library takes."""

import dataclasses

from attn_core.config_checks import require_positive_ints


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train and evaluate.

    Attributes:
        tokens_per_batch: target tokens per global batch (token-based batching).
        max_length: pairs with a side longer than this (in tokens, EOS
            included) are dropped from training.
        learning_rate: peak Adam learning rate.
        warmup_steps: linear warmup steps.
        decay_steps: after warmup, cosine decay to 10% over this many steps.
        clip_norm: global gradient-norm clipping.
        label_smoothing: of the masked cross-entropy.
        max_steps: stop after this many optimizer steps.
        time_budget_minutes: stop after this much training time (0: none).
        eval_every: steps between dev BLEU evaluations and checkpoints.
        patience: evaluations without a better dev BLEU before stopping
            early (0: never).
        dev_eval_sentences: dev sentences decoded at each evaluation.
        beam_width: beam of the final test evaluation (1: greedy).
        length_penalty: GNMT α of beam search.
        coverage_penalty: GNMT β of beam search.
    """

    tokens_per_batch: int = 4096
    max_length: int = 50
    learning_rate: float = 2e-3
    warmup_steps: int = 200
    decay_steps: int = 6000
    clip_norm: float = 1.0
    label_smoothing: float = 0.1
    max_steps: int = 6000
    time_budget_minutes: float = 10.0
    eval_every: int = 250
    patience: int = 0
    dev_eval_sentences: int = 500
    beam_width: int = 1
    length_penalty: float = 0.0
    coverage_penalty: float = 0.0

    def __post_init__(self):
        require_positive_ints(self, "tokens_per_batch", "max_length", "max_steps", "eval_every")
