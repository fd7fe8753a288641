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


@pytest.mark.parametrize("caps, expected", [
    ([], "float32"), ([(8, 0)], "mixed_bfloat16"), ([(9, 0), (8, 6)], "mixed_bfloat16"),
    ([(7, 5)], "mixed_float16"), ([(8, 0), (7, 0)], "mixed_float16")])
def test_auto_resolves_from_the_gpus(caps, expected):
    assert precision.resolve_precision("auto", caps) == expected
    assert precision.resolve_precision("mixed_float16", caps) == "mixed_float16"


def test_auto_is_float32_on_this_cpu_machine():
    assert precision.resolve_precision("auto") == "float32"
    assert precision.set_precision_policy("auto").name == "float32"


def test_wrap_optimizer_scales_only_float16():
    sgd = keras.optimizers.SGD(0.1)
    assert precision.wrap_optimizer(sgd, "float32") is sgd
    assert precision.wrap_optimizer(sgd, "mixed_bfloat16") is sgd
    wrapped = precision.wrap_optimizer(sgd, "mixed_float16")
    assert isinstance(wrapped, keras.optimizers.LossScaleOptimizer)
    assert precision.wrap_optimizer(wrapped, "mixed_float16") is wrapped
    assert float(precision.loss_scale(sgd)) == 1.0


def test_skipped_steps_are_counted_from_a_snapshot_before_the_update():
    import numpy as np

    variable = keras.Variable(np.ones(2, "float32"))
    optimizer = precision.wrap_optimizer(keras.optimizers.SGD(0.1), "mixed_float16")
    optimizer.build([variable])
    initial = float(precision.loss_scale(optimizer))
    skipped = []
    for grad in ([np.inf, 1.0], [1.0, 1.0], [np.nan, 0.0]):
        before = precision.loss_scale(optimizer)
        scaled = np.array(grad, "float32") * float(before)  # as scale_loss(loss) would give
        optimizer.apply([scaled], [variable])
        skipped.append(int(precision.skipped_step(optimizer, before)))
    assert skipped == [1, 0, 1]
    assert float(precision.loss_scale(optimizer)) == initial / 4
    np.testing.assert_allclose(keras.ops.convert_to_numpy(variable), [0.9, 0.9], rtol=1e-6)


def test_skipped_step_inside_tf_function_reads_the_scale_before_the_update():
    import numpy as np
    import tensorflow as tf

    variable = keras.Variable(np.ones(2, "float32"))
    optimizer = precision.wrap_optimizer(keras.optimizers.SGD(0.1), "mixed_float16")
    optimizer.build([variable])

    @tf.function
    def step(grad):
        before = precision.loss_scale(optimizer)
        optimizer.apply([grad * before], [variable])
        return precision.skipped_step(optimizer, before)

    skipped = [int(step(tf.constant(g, tf.float32)))
               for g in ([np.inf, 1.0], [1.0, 1.0], [np.inf, 0.0], [np.inf, 0.0])]
    assert skipped == [1, 0, 1, 1]


def test_loss_scale_of_an_unbuilt_optimizer_is_its_initial_scale():
    optimizer = precision.wrap_optimizer(keras.optimizers.SGD(0.1), "mixed_float16")
    assert float(precision.loss_scale(optimizer)) == optimizer.initial_scale


def test_loss_scale_state_round_trips_and_the_inner_optimizer_is_kept():
    import numpy as np

    variable = keras.Variable(np.ones(2, "float32"))
    sgd = keras.optimizers.SGD(0.1)
    assert precision.inner_optimizer(sgd) is sgd and precision.loss_scale_state(sgd) == {}
    optimizer = precision.wrap_optimizer(sgd, "mixed_float16")
    assert precision.inner_optimizer(optimizer) is sgd
    optimizer.build([variable])
    optimizer.apply([np.array([np.inf, 1.0], "float32")], [variable])  # halves the scale
    state = precision.loss_scale_state(optimizer)
    assert state == {"scale": optimizer.initial_scale / 2, "good_steps": 0}
    fresh = precision.wrap_optimizer(keras.optimizers.SGD(0.1), "mixed_float16")
    fresh.build([variable])
    precision.restore_loss_scale(fresh, state)
    assert precision.loss_scale_state(fresh) == state
    precision.restore_loss_scale(fresh, None)  # a checkpoint of another policy: kept as is
    precision.restore_loss_scale(sgd, state)  # no loss scaling: nothing to restore
    assert precision.loss_scale_state(fresh) == state
