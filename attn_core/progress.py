"""Progress of a training run or of a long phase, for a terminal or a log file.

On a terminal, a `tqdm` bar; anywhere else (a redirected log, CI), a plain line every
`interval` seconds with no colour codes or carriage returns. A training run stops at
`max_steps` or when its time budget runs out, whichever comes first, so its total and ETA
follow the sooner of the two, re-estimated from the measured step rate.
"""

import math
import sys
import time
from collections.abc import Mapping
from typing import TextIO

from tqdm import tqdm

# A phase shorter than this needs no report (pass it as `delay`).
SHORT_PHASE_SECONDS = 2.0


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def _format_metrics(metrics: Mapping[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in metrics.items())


class Progress:
    """Reports `update(step, ...)` calls against a total of steps.

    Args:
        max_steps: The step the run stops at unless its budget ends it first.
        budget_seconds: The training-time budget (None or 0: none).
        initial: The step the run starts (resumes) at.
        unit: What a step is called ("step", "update", "batch").
        description: Printed before the numbers ("train", "classifier", "FID").
        stream: Where to write (default: stderr, as tqdm).
        interval: Seconds between plain lines on a non-terminal.
        enabled: False reports nothing (the non-chief workers).
        delay: Seconds before anything is shown, so that a phase that ends sooner (a test's
            tiny corpus) prints nothing, and a one-line error after it stays the only line.
    """

    def __init__(self, max_steps: int, budget_seconds: float | None = None, initial: int = 0,
                 unit: str = "step", description: str = "train", stream: TextIO | None = None,
                 interval: float = 30.0, enabled: bool = True, delay: float = 0.0):
        self.max_steps = int(max_steps)
        self.budget = budget_seconds or None
        self.initial = int(initial)
        self.unit, self.description = unit, description
        self.stream = stream or sys.stderr
        self.interval = interval
        self.enabled = enabled
        self.delay = delay
        self.step = self.initial
        self.total = self.max_steps
        self._start = time.perf_counter()
        self._last_line = -math.inf
        self._bar = None
        if enabled and _is_tty(self.stream):
            self._bar = tqdm(total=self.max_steps, initial=self.initial, unit=unit,
                             desc=description, file=self.stream, dynamic_ncols=True,
                             smoothing=0.1, delay=delay)

    def estimated_total(self, step: int, train_seconds: float | None) -> int:
        """The step the run will stop at: `max_steps`, or sooner when the budget binds."""
        if not self.budget or train_seconds is None or step <= self.initial:
            return self.max_steps
        done = step - self.initial
        elapsed = time.perf_counter() - self._start
        rate = done / max(elapsed, 1e-9)  # steps per wall second, evaluations included
        remaining_budget = max(self.budget - train_seconds, 0.0)
        share = train_seconds / max(elapsed, 1e-9)  # training's share of the wall time
        budget_steps = step + remaining_budget * rate / max(min(share, 1.0), 1e-9)
        return int(min(self.max_steps, max(step, round(budget_steps))))

    def update(self, step: int, train_seconds: float | None = None,
               metrics: Mapping[str, float] | None = None) -> None:
        """Reports that `step` steps are done.

        Args:
            step: Steps done so far (counting from 0, including those before a resume).
            train_seconds: Training time used so far, against the budget.
            metrics: Values to show (loss, throughput...).
        """
        if not self.enabled:
            return
        self.step = step
        self.total = self.estimated_total(step, train_seconds)
        metrics = dict(metrics or {})
        if self._bar is not None:
            if self._bar.total != self.total:
                self._bar.total = self.total
            self._bar.n = step
            if metrics:
                self._bar.set_postfix_str(_format_metrics(metrics), refresh=False)
            self._bar.refresh()
            return
        now = time.perf_counter()
        if now - self._start < self.delay:
            return
        if now - self._last_line >= self.interval or step >= self.total:
            self._last_line = now
            self._write_line(step, metrics)

    def _write_line(self, step: int, metrics: Mapping[str, float]) -> None:
        elapsed = time.perf_counter() - self._start
        done = step - self.initial
        eta = ""
        if done > 0 and self.total > step:
            eta = f" eta {_format_seconds((self.total - step) * elapsed / done)}"
        percent = 100.0 * step / max(self.total, 1)
        text = _format_metrics(metrics)
        print(f"{self.description}: {self.unit} {step}/{self.total} ({percent:.0f}%) "
              f"elapsed {_format_seconds(elapsed)}{eta}{' ' + text if text else ''}",
              file=self.stream, flush=True)

    def write(self, message: str) -> None:
        """Prints a line without breaking the bar."""
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        """Ends the bar, or writes the last plain line; a second call does nothing."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif (self.enabled and self.initial < self.step < self.total
              and time.perf_counter() - self._start >= self.delay):
            self._write_line(self.step, {})
        self.enabled = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def phase(description: str, total: int, unit: str = "item", enabled: bool = True,
          stream: TextIO | None = None, interval: float = 30.0, delay: float = 0.0) -> Progress:
    """A `Progress` for a long phase of known size (classifier training, FID, decoding).

    Call its `update(done)` with the items done so far; `delay` keeps a short phase silent.
    """
    return Progress(total, unit=unit, description=description, stream=stream,
                    interval=interval, enabled=enabled and total > 0, delay=delay)
