"""Helpers of the gan tests: the tiny model, `run_main` (an entry point's `main` in this
process, as `python -m` would run it) and checks of one-line errors."""

import hashlib
import pathlib

from absl import flags
from tool_runs import Result

from attn_core import cli

# A model small enough to train a step in well under a second on one core.
TINY_MODEL = dict(resolution=8, z_dim=8, g_channels=8, d_channels=8, g_attention_res=8,
                  d_attention_res=4)
TINY_FLAGS = [f"--{name}={value}" for name, value in TINY_MODEL.items()] + [
    "--batch_size=8", "--eval_samples=0", "--fid_extractor=none", "--log_every=1",
    "--sample_every=1", "--checkpoint_every=1"]


def run_main(module, args):
    """Runs `module.main` as `python -m module *args` does: flags parsed on a fresh
    `FlagValues` (the global ones stay untouched), errors through `attn_core.cli`.

    Returns:
        The exit status: 0 when `main` returns, else the code of its `SystemExit`.
    """
    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    saved = module.FLAGS
    module.FLAGS = flag_values
    try:
        return cli.run_in_process(module.main, ["prog", *args], flag_values)
    finally:
        module.FLAGS = saved


def assert_one_error_line(code, err, *needles):
    """Exit status 2 and one line `error: ...` holding each of `needles`."""
    Result(code, "", err).one_line_error(*needles)


def tree_digest(directory):
    """{relative path: sha256} of every file under `directory`."""
    directory = pathlib.Path(directory)
    return {str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}
