"""`DataError`: a mistake in the user's data or data flags, reported as one line.

The entry points catch it (and `ValueError`), print `error: <message>` and exit with
status 2, without a traceback.
"""


class DataError(ValueError):
    """A user data mistake: a missing folder, a folder without images, an unknown dataset.

    Example:

    >>> str(DataError("no image files found", path="photos/"))
    'photos/: no image files found'

    Args:
        reason: what is wrong; line breaks become spaces so the message stays one line.
        path: the file or folder at fault, or None.
    """

    def __init__(self, reason, *, path=None):
        self.reason = " ".join(str(reason).splitlines())
        self.path = None if path is None else str(path)
        super().__init__(self.reason if self.path is None else f"{self.path}: {self.reason}")
