"""Running the attn_agents command-line tools in this process.

`run_tool` parses the tool's flags into a fresh `FlagValues` (the global FLAGS, shared with
the other applications' tests, is left alone) and runs its `main` behind `attn_core.cli`, as
on the command line, without the seconds a fresh interpreter spends importing TensorFlow.
"""

import contextlib
import dataclasses
import functools
import importlib
import io

from absl import flags

from attn_core import cli

# A tiny run of attn_agents.train with memory: 2 updates of 2 envs x 16 steps, a checkpoint
# after each.
TINY_TRAIN = ("--env_id=CartPole-v1", "--mask_velocity", "--memory=3", "--d_model=16",
              "--num_heads=2", "--ff_dim=16", "--num_envs=2", "--num_steps=16",
              "--chunk_length=8", "--update_epochs=1", "--total_timesteps=64",
              "--checkpoint_every=1", "--eval_episodes=0", "--nojit_compile", "--noprogress")


@dataclasses.dataclass
class Result:
    """What a tool did: its exit status, stdout and stderr."""

    returncode: int
    stdout: str
    stderr: str

    def one_line_error(self, *fragments, code=2, prefix="error: "):
        """Asserts the exit status and one line `error: ...` on stderr holding every fragment."""
        assert self.returncode == code, (self.returncode, self.stderr[-3000:])
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(prefix), self.stderr[-3000:]
        for fragment in fragments:
            assert fragment in lines[0], lines[0]
        return lines[0]


def run_tool(module, *args):
    """Runs `python -m <module> <args>` in this process (see the module docstring).

    Args:
        module: "attn_agents.train" or "attn_agents.evaluate".
        args: Its command-line arguments.

    Returns:
        A `Result`.
    """
    tool = importlib.import_module(module)
    flag_values = flags.FlagValues()
    tool.define_flags(flag_values)
    out, err = io.StringIO(), io.StringIO()
    returncode = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            try:
                argv = flag_values([module, *args])
            except flags.Error as error:
                cli.fail(str(error).replace("\n", " "))
            cli.guarded(functools.partial(tool.main, flag_values=flag_values))(argv)
        except SystemExit as exit_:
            returncode = exit_.code if isinstance(exit_.code, int) else 1
    return Result(returncode, out.getvalue(), err.getvalue())
