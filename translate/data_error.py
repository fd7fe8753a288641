"""`DataError`: a mistake in the user's data (a corpus file, a tokenizer file), not in the code.

Its message is one line that starts with `path:line: ` when the file and line are known, like a
compiler's, e.g. `data/train.tsv:17: expected at least 2 tab-separated columns, got 1`. It is an
`attn_core.errors.UserError`, so every entry point (`attn_core.cli.run`) prints it as one line
`error: ...` and exits with status 2.
"""

import os

from attn_core.errors import UserError


class DataError(UserError):
    """A user data mistake, located by file and line where known.

    Example:

    >>> str(DataError("empty target", path="data/train.tsv", line=17))
    'data/train.tsv:17: empty target'
    >>> str(DataError("cannot read: No such file or directory", path="nope.tsv"))
    'nope.tsv: cannot read: No such file or directory'

    Args:
        reason: What is wrong, in lower case, without the location. Line breaks are replaced
            by spaces so that the message stays on one line.
        path: The file at fault, or None.
        line: The 1-based line number at fault, or None (only used with `path`).

    Attributes:
        reason: As given (on one line).
        path: As given, as a string, or None.
        line: As given, or None.
    """

    def __init__(
        self, reason: str, *, path: str | os.PathLike | None = None, line: int | None = None
    ):
        self.reason = " ".join(str(reason).splitlines())
        self.path = None if path is None else os.fspath(path)
        super().__init__(self.reason, file=self.path,
                         line=None if line is None or path is None else int(line))
        self.line = None if line is None else int(line)

    def __reduce__(self):
        return _rebuild, (self.reason, self.path, self.line)


def _rebuild(reason, path, line):
    return DataError(reason, path=path, line=line)
