"""Running the attn_agents command-line tools in this process.

`run_tool` parses the tool's flags into a fresh `FlagValues` (the global FLAGS, shared with
the other applications' tests, is left alone) and runs its `main` behind `attn_core.cli`, as
on the command line, without the seconds a fresh interpreter spends importing TensorFlow.
"""

import contextlib
import functools
import importlib
import io

from absl import flags
from tool_runs import Result

from attn_core import cli

# A tiny run of attn_agents.train with memory: 2 updates of 2 envs x 16 steps, a checkpoint
# after each.
TINY_TRAIN = ("--env_id=CartPole-v1", "--mask_velocity", "--memory=3", "--d_model=16",
              "--num_heads=2", "--ff_dim=16", "--num_envs=2", "--num_steps=16",
              "--chunk_length=8", "--update_epochs=1", "--total_timesteps=64",
              "--checkpoint_every=1", "--eval_episodes=0", "--nojit_compile", "--noprogress")


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
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        returncode = cli.run_in_process(functools.partial(tool.main, flag_values=flag_values),
                                        [module, *args], flag_values)
    return Result(returncode, out.getvalue(), err.getvalue())
