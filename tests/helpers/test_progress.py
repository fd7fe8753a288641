"""Tests for attn_core.progress: totals that follow the budget, plain lines off a terminal."""

import io

from attn_core import progress


def test_plain_lines_without_terminal_codes():
    stream = io.StringIO()
    bar = progress.Progress(100, stream=stream, interval=0.0, description="train")
    for step in (10, 50, 100):
        bar.update(step, metrics={"loss": 1.5})
    bar.close()
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert lines[0].startswith("train: step 10/100 (10%)") and "loss=1.5" in lines[0]
    assert lines[-1].startswith("train: step 100/100 (100%)")


def test_the_total_follows_the_budget_when_it_binds(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(progress.time, "perf_counter", lambda: clock[0])
    bar = progress.Progress(6000, budget_seconds=600.0, stream=io.StringIO(), interval=1e9)
    clock[0] = 100.0
    bar.update(300, train_seconds=100.0)  # 3 steps a second: the budget ends near 1,800
    assert bar.total == 1800
    clock[0] = 200.0
    bar.update(1000, train_seconds=200.0)  # faster now: the estimate follows
    assert bar.total == 3000
    unbounded = progress.Progress(50, budget_seconds=600.0, stream=io.StringIO())
    clock[0] = 300.0
    unbounded.update(10, train_seconds=100.0)
    assert unbounded.total == 50  # max_steps ends it first


def test_disabled_reports_nothing():
    stream = io.StringIO()
    bar = progress.Progress(10, stream=stream, interval=0.0, enabled=False)
    bar.update(5)
    bar.close()
    assert stream.getvalue() == ""


def test_phase_counts_items():
    stream = io.StringIO()
    with progress.phase("FID", 1000, unit="image", stream=stream, interval=0.0) as bar:
        bar.update(500)
    assert stream.getvalue().startswith("FID: image 500/1000 (50%)")
