"""The training hyperparameters, a frozen config the library takes.

`translate.train` makes one flag per field (`attn_core.flags.define_config_flags`), with the
field's line of the `Attributes:` section below as its help text.
"""

import dataclasses

from attn_core.config_checks import require_non_negative_ints, require_positive_ints

# The fields a resumed run may change (each change is logged): when and how long to train,
# evaluate and decode. The others define the optimization problem the checkpoint was trained
# on, so a resume keeps the saved values.
SCHEDULE_FIELDS = ("learning_rate", "warmup_steps", "decay_steps", "max_steps",
                   "time_budget_minutes", "eval_every", "patience", "dev_eval_sentences",
                   "beam_width", "length_penalty", "coverage_penalty", "keep_checkpoints")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train and evaluate.

    Attributes:
        tokens_per_batch: Target tokens per global batch (batches are made by token count
            and split over the replicas).
        max_length: Training pairs with a side longer than this many tokens (EOS included)
            are left out.
        learning_rate: Peak learning rate of Adam.
        warmup_steps: Steps of linear learning-rate warmup (0: 8% of the steps training
            will run, see decay_steps, within 20..500 and at most half of them).
        decay_steps: Steps of cosine decay after the warmup, down to 10% of the peak (0:
            until training ends: at --max_steps, or where the time budget will run out at
            the measured pace, re-estimated as training goes).
        clip_norm: Largest global norm of the gradient (clipped above it).
        label_smoothing: Label smoothing of the cross-entropy (0: none).
        max_steps: Stop after this many optimizer steps.
        time_budget_minutes: Stop after this many minutes of training, evaluations not
            counted (0: no limit).
        eval_every: Steps between dev-BLEU evaluations; each saves a checkpoint and keeps
            the best one by dev BLEU.
        patience: Stop after this many evaluations without a better dev BLEU (0: never).
        dev_eval_sentences: Dev sentences decoded (greedily) at each evaluation.
        beam_width: Beam width of the final test evaluation (1: greedy; greedy BLEU is
            reported beside the beam's).
        length_penalty: GNMT length penalty alpha of the final beam search (0: none).
        coverage_penalty: GNMT coverage penalty beta of the final beam search (0: none).
        keep_checkpoints: Regular checkpoints kept (the newest; at least 2), for
            translate.average to average.
        guided_alignment_weight: Weight of the guided-alignment loss, the cross-entropy of
            the attention (the rnn's; the head mean of the transformer's last decoder layer)
            against gold word alignments, where the corpus has them (the built-in one);
            0: none.
    """

    tokens_per_batch: int = 2048
    max_length: int = 50
    learning_rate: float = 2e-3
    warmup_steps: int = 0
    decay_steps: int = 0
    clip_norm: float = 1.0
    label_smoothing: float = 0.1
    max_steps: int = 100_000
    time_budget_minutes: float = 10.0
    eval_every: int = 250
    patience: int = 0
    dev_eval_sentences: int = 500
    beam_width: int = 5
    length_penalty: float = 1.0
    coverage_penalty: float = 0.0
    keep_checkpoints: int = 5
    guided_alignment_weight: float = 1.0

    def __post_init__(self):
        require_positive_ints(self, "tokens_per_batch", "max_length", "max_steps", "eval_every",
                              "beam_width", "keep_checkpoints")
        # 0: laid out over the steps the run will take.
        require_non_negative_ints(self, "warmup_steps", "decay_steps", zero_means="automatic")
        if not self.guided_alignment_weight >= 0.0:
            raise ValueError("Expected `guided_alignment_weight` >= 0. Received: "
                             f"guided_alignment_weight={self.guided_alignment_weight}")
