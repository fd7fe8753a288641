"""Golden values computed by hand from 2x2 inputs.

query q = [[1, 0], [0, 1]], key k = [[1, 0], [0, 2]], value v = [[1, 2], [3, 4]].
"""

import numpy as np
import pytest
from layer_cases import np_

import attn_core

pytestmark = pytest.mark.backend_neutral

Q = np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32")
K = np.array([[[1.0, 0.0], [0.0, 2.0]]], "float32")
V = np.array([[[1.0, 2.0], [3.0, 4.0]]], "float32")
EYE = np.eye(2, dtype="float32")


def _weights(layer, weights=None, query=Q, key=K, value=V):
    """Builds the layer, assigns `weights` ({path after the layer name: value})
    and returns (context [2, D], weights [2, S]) of the first example."""
    layer(query, value, key=key)
    paths = {w.path.split("/", 1)[1]: w for w in layer.weights}
    assert set(paths) == set(weights or {}), sorted(paths)
    for path, value_ in (weights or {}).items():
        paths[path].assign(np.asarray(value_, "float32"))
    context, attention = layer(query, value, key=key, return_attention_scores=True)
    return np_(context)[0], np_(attention)[0]


def test_luong_dot():
    # scores q.k = [[1, 0], [0, 2]]; softmax rows; context = weights @ v.
    context, weights = _weights(attn_core.LuongAttention("dot"))
    np.testing.assert_allclose(weights, [[0.731059, 0.268941], [0.119203, 0.880797]], atol=1e-5)
    np.testing.assert_allclose(context, [[1.537883, 2.537883], [2.761594, 3.761594]], atol=1e-5)


def test_luong_scaled_dot():
    # The learned scale g = 2 doubles the scores: [[2, 0], [0, 4]].
    _, weights = _weights(attn_core.LuongAttention("dot", scale=True), {"scale": 2.0})
    np.testing.assert_allclose(weights, [[0.880797, 0.119203], [0.017986, 0.982014]], atol=1e-5)


def test_luong_general():
    # W k = [[2, 0], [0, 2]] with W = diag(2, 1); scores [[2, 0], [0, 2]].
    layer = attn_core.LuongAttention("general")
    _, weights = _weights(layer, {"key_dense/kernel": [[2.0, 0.0], [0.0, 1.0]]})
    np.testing.assert_allclose(weights, [[0.880797, 0.119203], [0.119203, 0.880797]], atol=1e-5)


def test_bahdanau_and_luong_concat():
    # W_q = W_k = I, v = [1, 1]: score(i, j) = sum tanh(q_i + k_j)
    # = [[tanh 2 + tanh 0, tanh 1 + tanh 2], [tanh 1 + tanh 1, tanh 0 + tanh 3]]
    # = [[0.964028, 1.725622], [1.523188, 0.995055]].
    expected = [[0.318300, 0.681700], [0.629048, 0.370952]]
    for layer in (attn_core.BahdanauAttention(2), attn_core.LuongAttention("concat")):
        _, weights = _weights(
            layer, {"query_dense/kernel": EYE, "key_dense/kernel": EYE, "v": [1.0, 1.0]}
        )
        np.testing.assert_allclose(weights, expected, atol=1e-5)


def test_bahdanau_normalized():
    # v = [3, 4], g = 1 -> g v / |v| = [0.6, 0.8]; b = [0.5, -0.5] inside the tanh.
    # scores [[0.222275, 1.267208], [0.912783, 1.066562]].
    layer = attn_core.BahdanauAttention(2, normalize=True)
    _, weights = _weights(layer, {
        "query_dense/kernel": EYE, "key_dense/kernel": EYE, "v": [3.0, 4.0], "g": 1.0,
        "b": [0.5, -0.5],
    })
    np.testing.assert_allclose(weights, [[0.260199, 0.739801], [0.461631, 0.538369]], atol=1e-5)


def test_luong_cosine():
    # cos(q, k) = [[1, 0], [0, 1]] times the initial temperature 10.
    _, weights = _weights(attn_core.LuongAttention("cosine"), {"temperature": 10.0})
    np.testing.assert_allclose(
        weights, [[0.9999546, 0.0000454], [0.0000454, 0.9999546]], atol=1e-6
    )


def test_local_predictive_gaussian():
    # A zero position predictor gives p = (S - 1) sigmoid(0) = 1 for S = 3; with
    # D = 2, sigma = 1 and zero scores, weights = softmax(-(s - 1)^2 / 2)
    # = softmax([-0.5, 0, -0.5]).
    layer = attn_core.LocalAttention(2, mode="predictive", score="dot")
    query = np.zeros((1, 1, 2), "float32")
    value = np.arange(6, dtype="float32").reshape(1, 3, 2)
    _, weights = _weights(
        layer, {"position_dense/kernel": np.zeros((2, 2)), "position_v/kernel": np.zeros((2, 1))},
        query, value, value,
    )
    np.testing.assert_allclose(weights, [[0.274069, 0.451863, 0.274069]], atol=1e-5)
