"""Progress of a long phase (building a corpus, fitting tokenizers, decoding a test set).

A phase reports through `attn_core.progress` once it has lasted `delay` seconds, so a short
one (a test's tiny corpus, a handful of sentences) prints nothing at all, and the one-line
error that may follow it stays the only line on stderr.
"""

import time

from attn_core import progress


class Phase:
    """Reports `update(done)` calls of a phase of `total` items.

    Args:
        description: What the phase does ("corpus", "tokenizers", "test decoding").
        total: Its number of items.
        unit: What an item is called.
        enabled: False reports nothing (the non-chief workers).
        delay: Seconds before the first report.
    """

    def __init__(self, description: str, total: int, unit: str = "item", enabled: bool = True,
                 delay: float = 2.0):
        self.description, self.total, self.unit = description, int(total), unit
        self.enabled = enabled and total > 0
        self.delay = delay
        self._start = time.perf_counter()
        self._progress = None

    def update(self, done: int) -> None:
        """Reports that `done` items are done."""
        if not self.enabled:
            return
        if self._progress is None:
            if time.perf_counter() - self._start < self.delay:
                return
            self._progress = progress.phase(self.description, self.total, unit=self.unit)
        self._progress.update(int(done))

    def close(self) -> None:
        if self._progress is not None:
            self._progress.close()
            self._progress = None

    def __enter__(self) -> "Phase":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
