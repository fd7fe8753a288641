"""Running the translate command-line tools in this process: `main` behind `attn_core.cli`,
without the seconds a fresh interpreter spends importing TensorFlow."""

import contextlib
import importlib
import io
import sys

from absl import flags
from absl.testing import flagsaver
from tool_runs import Result

from attn_core import cli

FLAGS = flags.FLAGS

# A tiny run of translate.train: the built-in corpus, a small model, two steps, each saved.
TINY_FLAGS = ("--train_size=200", "--dev_size=8", "--test_size=8", "--units=32",
              "--embedding_dim=16", "--tokens_per_batch=256", "--max_steps=2", "--eval_every=1",
              "--warmup_steps=1", "--decay_steps=10", "--dev_eval_sentences=8",
              "--time_budget_minutes=0", "--architecture=rnn")
# The same run of the Transformer: without the RNN-only --embedding_dim, which it refuses.
TRANSFORMER_TINY_FLAGS = (*(f for f in TINY_FLAGS if not f.startswith(
    ("--embedding_dim", "--architecture"))), "--architecture=transformer")


def run_tool(module, *args, stdin=None):
    """Runs `python -m <module> <args>` in this process: flags parsed afresh, errors handled
    by `attn_core.cli` as on the command line (one line, exit 2 or 130).

    Args:
        module: "translate.train", "translate.translate", ...
        args: its command-line arguments.
        stdin: a binary file object for its stdin (default: one that fails the test when
            read).
    """
    tool = importlib.import_module(module)
    tool.define_flags()
    out, err = io.StringIO(), io.StringIO()
    stdin = stdin if stdin is not None else _NoStdin()
    with flagsaver.flagsaver(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        old_stdin, sys.stdin = sys.stdin, io.TextIOWrapper(stdin)
        FLAGS.unparse_flags()
        try:
            returncode = cli.run_in_process(tool.main, [module, *args])
        finally:
            sys.stdin = old_stdin
    return Result(returncode, out.getvalue(), err.getvalue())


class _NoStdin(io.RawIOBase):
    def readable(self):
        return True

    def readinto(self, buffer):
        raise AssertionError("the tool read stdin")
