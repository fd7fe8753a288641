"""Tests for attn_core.flags."""

import dataclasses

import pytest
from absl import flags

from attn_core import flags as common_flags

NAMES = {"workdir", "seed", "precision", "strategy", "cpu_devices", "jit_compile"}


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
        workdir=None,
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
        ["prog", "--workdir=/tmp/w", "--strategy=mirrored", "--cpu_devices=2", "--jit_compile"]
    )
    config = common_flags.common_config_from_flags(flag_values)
    assert (config.workdir, config.strategy, config.cpu_devices, config.jit_compile) == (
        "/tmp/w",
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
