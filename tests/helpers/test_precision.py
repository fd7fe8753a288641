"""Tests for attn_core.precision."""

import keras
import pytest

from attn_core import precision


@pytest.fixture(autouse=True)
def _restore_global_policy():
    previous = keras.config.dtype_policy()
    yield
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize(
    "name, compute_dtype",
    [("float32", "float32"), ("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")],
)
def test_set_precision_policy_sets_global_policy(name, compute_dtype):
    policy = precision.set_precision_policy(name)
    assert isinstance(policy, keras.DTypePolicy)
    assert policy.name == name
    assert keras.config.dtype_policy().name == name
    layer = keras.layers.Dense(2)
    layer.build((None, 3))
    assert layer.compute_dtype == compute_dtype
    assert layer.kernel.dtype == "float32"


def test_precision_policy_restores_previous_policy():
    keras.config.set_dtype_policy("float32")
    with precision.precision_policy("mixed_bfloat16") as policy:
        assert policy.name == "mixed_bfloat16"
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == "float32"


def test_precision_policy_restores_on_exception():
    keras.config.set_dtype_policy("float32")
    with pytest.raises(RuntimeError, match="boom"):
        with precision.precision_policy("mixed_float16"):
            raise RuntimeError("boom")
    assert keras.config.dtype_policy().name == "float32"


def test_invalid_precision_raises_and_keeps_policy():
    keras.config.set_dtype_policy("float32")
    with pytest.raises(ValueError, match=r"Expected `precision`.*Received: precision='float64'"):
        precision.set_precision_policy("float64")
    with pytest.raises(ValueError, match="precision='fp8'"):
        with precision.precision_policy("fp8"):
            pass
    assert keras.config.dtype_policy().name == "float32"


def test_needs_loss_scaling():
    assert precision.needs_loss_scaling("mixed_float16") is True
    assert precision.needs_loss_scaling("mixed_bfloat16") is False
    assert precision.needs_loss_scaling("float32") is False
    with pytest.raises(ValueError, match="precision='half'"):
        precision.needs_loss_scaling("half")
