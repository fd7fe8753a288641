"""Ctrl-C during training: finish the step, save a checkpoint, then stop.

A trainer runs its loop inside `StopOnCtrlC`. The first Ctrl-C only sets `requested`: the
loop finishes the step (or update) in progress, saves a checkpoint and raises
`attn_core.errors.Interrupted`, which `attn_core.cli` reports in one line with exit 130. The
handler gives SIGINT back as soon as it has fired, so a second Ctrl-C interrupts at once, as
usual. Under several workers, Ctrl-C reaches one of them: the trainers vote on `requested`
(`attn_core.worker_sync.any_worker`) so that all stop at the same step.
"""

import signal
import threading
from collections.abc import Callable
from typing import Any


class StopOnCtrlC:
    """While active, the first Ctrl-C asks the loop to stop after its current unit of work.

    A no-op outside the main thread (where Python delivers no signal) and when SIGINT is
    ignored (a job started in the background by a shell): then Ctrl-C behaves as before.

    Args:
        log: Where the one-line notice of the request goes (None: nowhere).
        unit: What the loop finishes before it stops ("step", "update"), for the notice.
    """

    def __init__(self, log: Callable[[str], Any] | None = None, unit: str = "step"):
        self.log, self.unit = log, unit
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        del signum, frame
        self.requested = True
        signal.signal(signal.SIGINT, self._previous)
        if self.log is not None:
            self.log(f"interrupt: stopping after this {self.unit}, to save a checkpoint "
                     "(Ctrl-C again to stop at once)")

    def __enter__(self) -> "StopOnCtrlC":
        if threading.current_thread() is threading.main_thread():
            previous = signal.getsignal(signal.SIGINT)
            if previous is not signal.SIG_IGN:
                # None: a handler not installed from Python; Python's own default replaces it.
                self._previous = signal.default_int_handler if previous is None else previous
                signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
