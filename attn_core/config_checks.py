"""Checks shared by the frozen config dataclasses of the applications."""

from attn_core.errors import UserError


def require_positive_ints(config, *names: str) -> None:
    """Raises unless each attribute `names` of `config` is an int >= 1 (bools are refused).

    Raises:
        UserError: "Expected `name` to be a positive integer. Received: name=value", for
            the first attribute that is not.
    """
    _require_ints(config, names, 1, "to be a positive integer")


def require_non_negative_ints(config, *names: str, zero_means: str | None = None) -> None:
    """Raises unless each attribute `names` of `config` is an int >= 0 (bools are refused).

    Args:
        zero_means: What 0 stands for, named in the message (e.g. "automatic").

    Raises:
        UserError: "Expected `name` >= 0 (0: zero_means). Received: name=value", for the
            first attribute that is not.
    """
    _require_ints(config, names, 0, ">= 0" + (f" (0: {zero_means})" if zero_means else ""))


def _require_ints(config, names, minimum, expected):
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise UserError(f"Expected `{name}` {expected}. Received: {name}={value!r}")
