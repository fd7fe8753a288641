"""`UserError`: a mistake in what the user gave (a flag, a file, a line of a file).

Every command-line tool of the suite catches it (see `attn_core.cli`), prints one line
`error: ...` and exits with status 2; a traceback would bury the one thing the user must fix.
Library code raises it wherever the cause is the user's input rather than a bug.
"""


class UserError(ValueError):
    """A user's mistake, reported in one line.

    It is a `ValueError`, so library callers that already catch `ValueError` keep working.

    Args:
        message: What was expected and what was received, in one line.
        file: The file at fault, if any; the message is prefixed with it.
        line: Its 1-based line number, if known.
    """

    def __init__(self, message: str, file=None, line: int | None = None):
        self.message = " ".join(str(message).split("\n"))
        self.file = None if file is None else str(file)
        self.line = line
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file is not None:
            where = f"{self.file}:{self.line}: " if self.line is not None else f"{self.file}: "
        return f"{where}{self.message}"


class Interrupted(Exception):  # noqa: N818 -- it is not an error: the user asked for it.
    """Raised by a trainer after Ctrl-C, once its checkpoint is saved.

    Args:
        model_dir: The directory to resume from.
        step: The step of the checkpoint just saved (None when nothing was saved).
    """

    def __init__(self, model_dir, step: int | None):
        self.model_dir, self.step = str(model_dir), step
        saved = f"saved step {step}; " if step is not None else ""
        super().__init__(f"interrupted: {saved}resume with --model_dir={self.model_dir}")
