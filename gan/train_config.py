"""`TrainConfig`: the frozen training settings of `gan.trainer.train_and_evaluate`."""

import dataclasses

from attn_core.config_checks import require_positive_ints


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train and evaluate the GAN.

    Attributes:
        steps: generator steps (each preceded by `d_steps` discriminator steps).
        batch_size: global batch (real images per D step, fakes per G step).
        g_lr: generator Adam learning rate (TTUR: 1e-4).
        d_lr: discriminator Adam learning rate (TTUR: 4e-4).
        beta_1: Adam β1 (0 in SAGAN).
        beta_2: Adam β2 (0.9 in SAGAN).
        d_steps: discriminator steps per generator step.
        ema_decay: decay of the EMA of G's weights; the effective decay is
            min(ema_decay, (1 + step) / (10 + step)), so short runs are not stuck at init.
        sample_every: G steps between sample grids (PNG and TensorBoard).
        checkpoint_every: G steps between checkpoints.
        log_every: G steps between scalar summaries.
        eval_samples: generated images for FID/KID/precision/recall at the end (0: skip).
        time_budget_minutes: stop training after this much training time (0: none).
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
        require_positive_ints(self, "steps", "batch_size", "d_steps", "sample_every",
                              "checkpoint_every", "log_every")
        if self.eval_samples < 0:
            raise ValueError(f"Expected `eval_samples` >= 0. Received: eval_samples="
                             f"{self.eval_samples}")
        for name in ("g_lr", "d_lr"):
            if not getattr(self, name) > 0:
                raise ValueError(f"Expected `{name}` > 0. Received: {name}={getattr(self, name)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ValueError(f"Expected `ema_decay` in [0, 1). Received: ema_decay="
                             f"{self.ema_decay}")

    def check_replicas(self, replicas: int) -> None:
        """Checks that the global batch splits evenly over `replicas` replicas.

        Raises:
            ValueError: when `batch_size` is not a multiple of `replicas`.
        """
        if self.batch_size % replicas:
            raise ValueError(f"Expected `batch_size` (the global batch) to be a multiple of "
                             f"the {replicas} replicas. Received: batch_size={self.batch_size}")
