"""Golden tests of the mask helpers."""

import numpy as np
import pytest
from layer_cases import np_

from attn_core import masking

pytestmark = pytest.mark.backend_neutral


def test_large_negative_depends_on_dtype():
    assert masking.large_negative("float16") == -65504.0
    assert masking.large_negative("float32") == -1e9
    assert masking.large_negative("bfloat16") == -1e9
    assert np.isfinite(np.float16(masking.large_negative("float16")))


def test_causal_mask():
    expected = [[[True, False, False], [True, True, False]]]
    np.testing.assert_array_equal(np_(masking.causal_mask(2, 3)), expected)


def test_merge_masks():
    a = np.array([[True, False]])
    b = np.array([[1, 1]])
    np.testing.assert_array_equal(np_(masking.merge_masks(None, a, b)), [[True, False]])
    assert masking.merge_masks(None, None) is None


def test_masked_softmax_golden_and_empty_rows():
    scores = np.array([[0.0, np.log(3.0), 5.0], [1.0, 2.0, 3.0]], "float32")
    mask = np.array([[True, True, False], [False, False, False]])
    weights = np_(masking.masked_softmax(scores, mask))
    np.testing.assert_allclose(weights, [[0.25, 0.75, 0.0], [0.0, 0.0, 0.0]], atol=1e-6)
    assert weights.dtype == np.float32


def test_masked_softmax_of_float16_scores_is_float32():
    scores = np.array([[60000.0, -60000.0]], "float16")
    weights = np_(masking.masked_softmax(scores, np.array([[True, False]])))
    assert weights.dtype == np.float32
    np.testing.assert_array_equal(weights, [[1.0, 0.0]])
