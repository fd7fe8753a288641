"""`EnvError`: a user's mistake about the environment, shown by the entry points as one line."""

from attn_core.errors import UserError


class EnvError(UserError):
    """An unknown environment id, a missing optional package, or an observation or action
    space the agent cannot handle.

    A `attn_core.errors.UserError`: the entry points print `error: <message>` on one line and
    exit with status 2.
    """
