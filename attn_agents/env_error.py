"""`EnvError`: a user's mistake about the environment, shown by the entry points as one line."""


class EnvError(ValueError):
    """An unknown environment id, or an observation or action space the agent cannot handle.

    The entry points print `error: <message>` on one line and exit with status 2.
    """
