"""The learning-rate schedule, laid out over the steps training will actually run.

A cosine schedule decays over a fixed number of steps; when a time budget stops training
first, the learning rate never comes down and the last (and best) checkpoints are taken at
the peak. `WarmupCosine` keeps its warmup and its end in variables, and `plan_steps` says
where the end is: `max_steps`, or the step at which the time budget will run out at the
measured pace, whichever comes first. The trainer re-plans as the pace becomes known, so
the warmup and the decay follow the budget, whatever the machine and the batch size.
"""

import math

import keras
import numpy as np
import tensorflow as tf

# The learning rate at the end of the decay, as a fraction of the peak.
FINAL_FRACTION = 0.1
# An automatic warmup is this fraction of the planned steps, within these bounds, and at
# most half of them.
WARMUP_FRACTION = 0.08
WARMUP_BOUNDS = (20, 500)


class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup to `peak`, then cosine decay to `FINAL_FRACTION` of it at `total_steps`.

    Both lengths are non-trainable variables, so that the trainer can lay them out again
    (`set_plan`) while a traced train step keeps using the schedule.

    Args:
        peak: The largest learning rate.
        warmup_steps: Steps of the linear warmup (0: none).
        total_steps: The step at which the decay ends (warmup included).
    """

    def __init__(self, peak, warmup_steps, total_steps):
        self.peak = float(peak)
        self.warmup_steps = tf.Variable(float(warmup_steps), trainable=False,
                                        name="warmup_steps")
        self.total_steps = tf.Variable(float(total_steps), trainable=False, name="total_steps")

    def set_plan(self, warmup_steps, total_steps):
        self.warmup_steps.assign(float(warmup_steps))
        self.total_steps.assign(float(total_steps))

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warmup = tf.convert_to_tensor(self.warmup_steps)
        warm = self.peak * (step + 1.0) / tf.maximum(warmup, 1.0)
        decay = tf.maximum(self.total_steps - warmup, 1.0)
        progress = tf.clip_by_value((step - warmup) / decay, 0.0, 1.0)
        cosine = 0.5 * (1.0 + tf.cos(np.pi * progress))
        decayed = self.peak * (FINAL_FRACTION + (1.0 - FINAL_FRACTION) * cosine)
        return tf.where(step < warmup, warm, decayed)

    def get_config(self):
        return {"peak": self.peak, "warmup_steps": float(self.warmup_steps.numpy()),
                "total_steps": float(self.total_steps.numpy())}


def plan_steps(step, used_seconds, seconds_per_step, budget_seconds, max_steps):
    """The step at which training will stop: `max_steps`, or earlier if the budget binds.

    Args:
        step: Steps done.
        used_seconds: Training seconds used of the budget.
        seconds_per_step: The measured pace (None or <= 0: not known yet).
        budget_seconds: The time budget (inf: none).
        max_steps: The step limit.

    Returns:
        int, in [step, max_steps].
    """
    if not math.isfinite(budget_seconds) or not seconds_per_step or seconds_per_step <= 0:
        return int(max_steps)
    left = max(budget_seconds - used_seconds, 0.0) / seconds_per_step
    return int(min(max_steps, max(step, step + math.floor(left))))


def auto_warmup(total_steps):
    """The warmup of a run of `total_steps`: `WARMUP_FRACTION` of it, within `WARMUP_BOUNDS`,
    and at most half of it."""
    low, high = WARMUP_BOUNDS
    return int(min(high, max(low, round(WARMUP_FRACTION * total_steps)), total_steps // 2))


def layout(train_config, planned_steps, warmup=None):
    """(warmup steps, total steps) of the schedule for a run planned to stop at
    `planned_steps`: the config's explicit `warmup_steps` and `decay_steps` win, 0 lays
    them out over the plan. `warmup`, if given, is kept (a warmup already run)."""
    tc = train_config
    warmup = warmup or tc.warmup_steps or auto_warmup(planned_steps)
    total = warmup + tc.decay_steps if tc.decay_steps else max(planned_steps, warmup + 1)
    return warmup, total
