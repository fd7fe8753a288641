"""`TrainConfig`: the frozen training settings of `gan.trainer.Trainer`."""

import dataclasses

from attn_core.config_checks import require_positive_ints
from attn_core.errors import UserError

# The settings a resumed run may change (each change is logged); the others are part of the
# training recipe, and a resume that gives another value explicitly is refused.
SCHEDULE_FIELDS = ("steps", "time_budget_minutes", "sample_every", "checkpoint_every",
                   "log_every", "eval_samples", "g_lr", "d_lr")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train and evaluate the GAN.

    Attributes:
        steps: Generator steps to train for (each follows `d_steps` discriminator steps);
            the run stops at this step or when the time budget runs out.
        batch_size: Global batch: real images per discriminator step and fakes per
            generator step, split over the replicas.
        g_lr: Generator Adam learning rate (TTUR: 1e-4).
        d_lr: Discriminator Adam learning rate (TTUR: 4e-4).
        beta_1: Adam beta_1 of both optimizers (0 in SAGAN).
        beta_2: Adam beta_2 of both optimizers (0.9 in SAGAN).
        d_steps: Discriminator steps per generator step.
        ema_decay: Decay of the moving average of the generator's weights used for
            sampling and evaluation; the effective decay is min(ema_decay, (1 + step) /
            (10 + step)), so short runs do not keep their initial weights.
        sample_every: Generator steps between sample grids (samples/*.png and TensorBoard).
        checkpoint_every: Generator steps between checkpoints.
        log_every: Generator steps between TensorBoard scalars and progress metrics.
        eval_samples: Generated images for the final FID, KID and precision/recall (0:
            no evaluation).
        time_budget_minutes: Stop after this many minutes of training time, evaluation
            excluded (0: no budget).
    """

    steps: int = 20000
    batch_size: int = 64
    g_lr: float = 1e-4
    d_lr: float = 4e-4
    beta_1: float = 0.0
    beta_2: float = 0.9
    d_steps: int = 1
    ema_decay: float = 0.999
    sample_every: int = 1000
    checkpoint_every: int = 500
    log_every: int = 50
    eval_samples: int = 10000
    time_budget_minutes: float = 0.0

    def __post_init__(self):
        try:
            require_positive_ints(self, "steps", "batch_size", "d_steps", "sample_every",
                                  "checkpoint_every", "log_every")
        except ValueError as error:
            raise UserError(str(error)) from None
        if self.eval_samples < 0:
            raise UserError(f"Expected `eval_samples` >= 0. Received: eval_samples="
                            f"{self.eval_samples}")
        for name in ("g_lr", "d_lr"):
            if not getattr(self, name) > 0:
                raise UserError(f"Expected `{name}` > 0. Received: {name}={getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise UserError(f"Expected `ema_decay` in [0, 1). Received: ema_decay="
                            f"{self.ema_decay}")
        if self.time_budget_minutes < 0:
            raise UserError(f"Expected `time_budget_minutes` >= 0. Received: "
                            f"time_budget_minutes={self.time_budget_minutes}")

    def check_replicas(self, replicas: int) -> None:
        """Checks that the global batch splits evenly over `replicas` replicas.

        Raises:
            UserError: when `batch_size` is not a multiple of `replicas`.
        """
        if self.batch_size % replicas:
            raise UserError(f"Expected `batch_size` (the global batch) to be a multiple of "
                            f"the {replicas} replicas. Received: batch_size={self.batch_size}")
