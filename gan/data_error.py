"""`DataError`: a mistake in the user's data or data flags, reported as one line.

It is an `attn_core.errors.UserError`, so every entry point (through `attn_core.cli.run`)
prints `error: <message>` and exits with status 2, without a traceback.
"""

from attn_core.errors import UserError


class DataError(UserError):
    """A user data mistake: a missing folder, a folder without images, an unknown dataset.

    Example:

    >>> str(DataError("no image files found", path="photos/"))
    'photos/: no image files found'

    Args:
        reason: what is wrong; line breaks become spaces so the message stays one line.
        path: the file or folder at fault, or None.
    """

    def __init__(self, reason, *, path=None):
        super().__init__(reason, file=path)
        self.reason = self.message
        self.path = self.file
