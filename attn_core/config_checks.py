"""Checks shared by the frozen config dataclasses of the applications."""

from attn_core.errors import UserError


def require_positive_ints(config, *names: str) -> None:
    """Raises unless each attribute `names` of `config` is an int >= 1 (bools are refused).

    Raises:
        UserError: "Expected `name` to be a positive integer. Received: name=value", for
            the first attribute that is not.
    """
    for name in names:
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise UserError(f"Expected `{name}` to be a positive integer. "
                             f"Received: {name}={value!r}")
