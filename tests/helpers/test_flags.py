"""Tests for attn_core.flags."""

import dataclasses

import pytest
from absl import flags

from attn_core import flags as common_flags

NAMES = {"mixed_precision", "seed", "precision", "strategy", "cpu_devices", "jit_compile"}


def _flag_values():
    flag_values = flags.FlagValues()
    common_flags.define_common_flags(flag_values)
    return flag_values


def test_defines_on_given_flag_values_only():
    global_names = set(flags.FLAGS)
    flag_values = _flag_values()
    assert NAMES <= set(flag_values)
    assert set(flags.FLAGS) == global_names
    common_flags.define_common_flags(flag_values)  # Idempotent.


def test_parse_and_build_config():
    flag_values = _flag_values()
    flag_values(["prog", "--precision=mixed_bfloat16", "--seed=3"])
    config = common_flags.common_config_from_flags(flag_values)
    assert config == common_flags.CommonConfig(
        seed=3,
        precision="mixed_bfloat16",
        strategy="default",
        cpu_devices=0,
        jit_compile=False,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.seed = 4


def test_all_flags_parse():
    flag_values = _flag_values()
    flag_values(
        ["prog", "--mixed_precision=float32", "--strategy=mirrored", "--cpu_devices=2",
         "--jit_compile"]
    )
    config = common_flags.common_config_from_flags(flag_values)
    assert (config.precision, config.strategy, config.cpu_devices, config.jit_compile) == (
        "float32",
        "mirrored",
        2,
        True,
    )


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["prog", "--precision=float64"], "--precision"),
        (["prog", "--strategy=tpu"], "--strategy"),
        (["prog", "--seed=-1"], "--seed"),
        (["prog", "--cpu_devices=-2"], "--cpu_devices"),
    ],
)
def test_bad_values_raise_illegal_flag_value_error(argv, flag):
    flag_values = _flag_values()
    with pytest.raises(flags.IllegalFlagValueError) as info:
        flag_values(argv)
    message = str(info.value)
    assert flag in message and "\n" not in message


def test_validate_positive():
    flag_values = _flag_values()
    flags.DEFINE_integer("batch_size", 8, "Batch size.", flag_values=flag_values)
    common_flags.validate_positive(flag_values, "batch_size")
    with pytest.raises(flags.IllegalFlagValueError, match=r"--batch_size.*positive"):
        flag_values(["prog", "--batch_size=0"])
    flag_values = _flag_values()
    flags.DEFINE_integer("batch_size", 8, "Batch size.", flag_values=flag_values)
    common_flags.validate_positive(flag_values, "batch_size")
    flag_values(["prog", "--batch_size=4"])
    assert flag_values.batch_size == 4


def test_config_requires_parsed_flags():
    with pytest.raises(ValueError, match="parsed"):
        common_flags.common_config_from_flags(_flag_values())


@dataclasses.dataclass(frozen=True)
class _Config:
    """A config.

    Attributes:
        steps: Steps to run,
            over all workers.
        rate: The learning rate.
        on: Whether to.
        name (str): A name.
    """

    steps: int = 5
    rate: float = 0.5
    on: bool = False
    name: str = "x"


def test_field_docs_join_continuation_lines():
    assert common_flags.field_docs(_Config) == {
        "steps": "Steps to run, over all workers.", "rate": "The learning rate.",
        "on": "Whether to.", "name": "A name."}


def test_config_flags_take_the_field_docs_and_build_the_config():
    flag_values = flags.FlagValues()
    common_flags.define_config_flags(_Config, flag_values, enums={"name": ["x", "y"]})
    assert flag_values["steps"].help == "Steps to run, over all workers."
    flag_values(["prog", "--steps=7", "--on", "--name=y"])
    assert common_flags.config_from_flags(_Config, flag_values) == _Config(7, 0.5, True, "y")
    assert common_flags.explicit_flags(flag_values) == {"steps", "on", "name"}
    with pytest.raises(flags.IllegalFlagValueError, match="--steps"):
        flag_values(["prog", "--steps=-1"])


def test_an_undocumented_field_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Undocumented:
        """No attributes section."""

        steps: int = 1

    with pytest.raises(ValueError, match="`steps:`"):
        common_flags.define_config_flags(Undocumented, flags.FlagValues())


def test_common_flags_are_in_the_entry_points_help():
    import subprocess
    import sys

    code = ("import sys; from absl import flags; from attn_core import flags as f; "
            "f.define_common_flags(); flags.FLAGS(['p']); "
            "print(flags.FLAGS.main_module_help())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"TF_CPP_MIN_LOG_LEVEL": "3", "KERAS_BACKEND": "numpy",
                              "PATH": "/usr/bin"}, check=True).stdout
    for name in ("--seed", "--precision", "--strategy", "--cpu_devices", "jit_compile",
                 "--mixed_precision"):
        assert name in out
    assert "Keras dtype policy" in out
