"""The learning-rate schedule follows the steps that max_steps or the time budget allow."""

import math

import numpy as np

from translate import schedule
from translate.train_config import TrainConfig


def test_the_plan_ends_where_the_budget_runs_out_or_at_max_steps():
    # 100 s used of 600 at 0.5 s/step: 1,000 more steps.
    assert schedule.plan_steps(200, 100.0, 0.5, 600.0, 100_000) == 1200
    assert schedule.plan_steps(200, 100.0, 0.5, 600.0, 900) == 900  # max_steps first
    assert schedule.plan_steps(200, 100.0, None, 600.0, 900) == 900  # pace unknown
    assert schedule.plan_steps(200, 100.0, 0.5, math.inf, 900) == 900  # no budget
    assert schedule.plan_steps(200, 700.0, 0.5, 600.0, 900) == 200  # budget spent


def test_the_layout_keeps_explicit_lengths_and_otherwise_follows_the_plan():
    auto = TrainConfig(warmup_steps=0, decay_steps=0)
    assert schedule.layout(auto, 2000) == (160, 2000)  # 8% warmup
    assert schedule.layout(auto, 100) == (20, 100)  # warmup at least 20
    assert schedule.layout(auto, 30) == (15, 30)  # but at most half the run
    assert schedule.layout(auto, 100_000) == (500, 100_000)  # and at most 500
    assert schedule.layout(auto, 2000, warmup=37) == (37, 2000)  # a warmup already run
    explicit = TrainConfig(warmup_steps=50, decay_steps=300)
    assert schedule.layout(explicit, 2000) == (50, 350)


def test_the_learning_rate_warms_up_then_decays_to_a_tenth_at_the_planned_end():
    lr = schedule.WarmupCosine(1.0, warmup_steps=10, total_steps=110)
    values = np.array([float(lr(step)) for step in (0, 9, 10, 60, 110, 500)])
    np.testing.assert_allclose(values, [0.1, 1.0, 1.0, 0.55, 0.1, 0.1], atol=1e-6)
    lr.set_plan(10, 210)  # the budget allows more steps: the decay stretches
    np.testing.assert_allclose(float(lr(110)), 0.55, atol=1e-6)


def test_a_run_that_max_steps_stops_decays_over_max_steps(tmp_path):
    from translate_tools import TINY_FLAGS, run_tool

    flags = [f for f in TINY_FLAGS if not f.startswith(("--max_steps", "--warmup_steps",
                                                        "--decay_steps", "--time_budget"))]
    result = run_tool("translate.train", f"--model_dir={tmp_path / 'm'}", *flags,
                      "--max_steps=12", "--eval_every=12", "--warmup_steps=0",
                      "--decay_steps=0", "--time_budget_minutes=60")
    assert result.returncode == 0, result.stderr[-2000:]
    # The budget would allow far more steps: the schedule ends at --max_steps.
    assert "warmup 6 steps, decay until step 12 (--max_steps" in result.stdout + result.stderr
