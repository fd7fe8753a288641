"""Running an entry point: one line and exit 2 for a user's mistake, 130 for Ctrl-C.

Every command-line tool of the suite ends with `cli.run(main)` instead of `app.run(main)`:

* A `UserError` (or an application's subclass), an `OSError` about a user's path, or a bad
  flag prints one line `error: ...` and exits with status 2, without a traceback.
* `Interrupted` (a trainer saved its checkpoint after Ctrl-C) prints where to resume and
  exits 130; a Ctrl-C anywhere else exits 130 with one line too.

TensorFlow's C++ start-up lines are silenced before TensorFlow is imported: import this
module before anything that imports TensorFlow (a user's `TF_CPP_MIN_LOG_LEVEL` wins).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import logging  # noqa: E402
import sys  # noqa: E402
from collections.abc import Callable  # noqa: E402

from absl import app, flags  # noqa: E402
from absl import logging as absl_logging  # noqa: E402

from attn_core.errors import Interrupted, UserError  # noqa: E402
from attn_core.quiet_import import import_tensorflow_quietly  # noqa: E402

EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def fail(message: str) -> None:
    """Prints `error: message` on stderr and exits 2."""
    print(f"error: {message}", file=sys.stderr, flush=True)
    sys.exit(EXIT_USER_ERROR)


def parse_flags(argv: list[str], flag_values: flags.FlagValues = flags.FLAGS) -> list[str]:
    """Parses `argv` into `flag_values`; a bad or unknown flag is one line and exit 2.

    Returns:
        The arguments left after the flags (`argv[0]` first).
    """
    try:
        return flag_values(argv)
    except flags.Error as error:
        fail(str(error).replace("\n", " "))


def quiet_tensorflow() -> None:
    """Imports TensorFlow without its C++ chatter, and keeps its Python INFO lines off."""
    import_tensorflow_quietly()
    if os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") >= "3":
        logging.getLogger("tensorflow").setLevel(logging.WARNING)


def one_line(error: BaseException) -> str:
    """The one-line message of a user's error."""
    if isinstance(error, OSError) and error.filename is not None:
        return f"{error.filename}: {error.strerror or error}"
    return " ".join(str(error).split("\n"))


def guarded(main: Callable[[list[str]], object]) -> Callable[[list[str]], object]:
    """`main` with the errors of a user's input turned into one line and an exit status."""

    def wrapped(argv):
        if len(argv) > 1:
            fail(f"unexpected arguments: {' '.join(argv[1:])} (flags are --name=value)")
        if not flags.FLAGS["verbosity"].present:
            absl_logging.set_verbosity(absl_logging.WARNING)
        try:
            return main(argv)
        except Interrupted as interrupted:
            print(interrupted, file=sys.stderr, flush=True)
            sys.exit(EXIT_INTERRUPTED)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr, flush=True)
            sys.exit(EXIT_INTERRUPTED)
        except (UserError, OSError) as error:
            fail(one_line(error))

    return wrapped


def run(main: Callable[[list[str]], object]) -> None:
    """`absl.app.run(main)` with the suite's error handling (see the module docstring)."""
    app.run(guarded(main), flags_parser=parse_flags)


def run_in_process(main: Callable[[list[str]], object], argv: list[str],
                   flag_values: flags.FlagValues = flags.FLAGS) -> int:
    """Parses `argv` into `flag_values` and runs `main` as `run` would, in this process.

    For tests and for callers embedding a tool: nothing of absl's program start-up runs, and
    the exit status is returned instead of ending the process.

    Returns:
        0 when `main` returns, else the status it (or the error handling) exits with.
    """
    try:
        guarded(main)(parse_flags(argv, flag_values))
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0
