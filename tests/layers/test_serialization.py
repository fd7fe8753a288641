"""Every layer inside a model: `.keras` round trip in a fresh process, and
SavedModel export."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from layer_cases import SCORE_LAYERS, np_, rand

import attn_core
from attn_core.reverse_task import ReverseConfig, build_model

pytestmark = pytest.mark.backend_neutral


def _score_model(name):
    q, v = keras.Input((3, 6)), keras.Input((5, 6))
    return keras.Model([q, v], SCORE_LAYERS[name]()(q, v)), [rand(2, 3, 6), rand(2, 5, 6, seed=1)]


def _models():
    models = {name: _score_model(name) for name in SCORE_LAYERS}
    x = keras.Input((5, 8))
    models["mha"] = (
        keras.Model(x, attn_core.MultiHeadAttention(2, 4)(x, x, use_causal_mask=True)),
        [rand(2, 5, 8)],
    )
    image = keras.Input((4, 4, 16))
    sagan = attn_core.SelfAttention2D()
    models["self_attention_2d"] = (keras.Model(image, sagan(image)), [rand(2, 4, 4, 16)])
    sagan.gamma.assign(0.5)  # so the block is not the identity
    reverser, _ = build_model(ReverseConfig(units=8))
    tokens = np.array([[2, 3, 4, 0], [5, 6, 7, 8]], "int32")
    models["attention_rnn"] = (reverser, [tokens, tokens])
    return models


def test_keras_file_loads_in_a_fresh_process(tmp_path):
    expected = {}
    for name, (model, inputs) in _models().items():
        model.save(tmp_path / f"{name}.keras")
        np.savez(tmp_path / f"{name}_inputs.npz", *inputs)
        expected[name] = np_(model(inputs if len(inputs) > 1 else inputs[0]))
    script = f"""
import json, pathlib, numpy as np, keras
import attn_core  # registers the layers
out = {{}}
for path in sorted(pathlib.Path({str(tmp_path)!r}).glob("*.keras")):
    model = keras.saving.load_model(path)
    data = np.load(str(path).replace(".keras", "_inputs.npz"))
    inputs = [data[k] for k in sorted(data.files, key=lambda k: int(k.split("_")[1]))]
    out[path.stem] = np.asarray(model(inputs if len(inputs) > 1 else inputs[0])).tolist()
print(json.dumps(out))
"""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(loaded) == sorted(expected)
    for name, value in expected.items():
        np.testing.assert_allclose(np.asarray(loaded[name]), value, atol=1e-5, err_msg=name)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="SavedModel is TF's format")
def test_saved_model_export(tmp_path):
    import tensorflow as tf

    for name, (model, inputs) in _models().items():
        model.export(str(tmp_path / name), verbose=False)
        args = [tf.constant(x) for x in inputs]
        args = args if len(args) > 1 else args[0]
        loaded = tf.saved_model.load(str(tmp_path / name))  # keep it alive while serving
        served = loaded.serve(args)
        np.testing.assert_allclose(np_(served), np_(model(args)), atol=1e-5, err_msg=name)
