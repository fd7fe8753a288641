"""Shapes and masks of every tokenizer, and the factory's choice for each space."""

import gymnasium as gym
import numpy as np
import pytest
from keras import ops

from attn_agents.discrete_tokenizer import DiscreteTokenizer
from attn_agents.entity_tokenizer import EntityTokenizer
from attn_agents.env_error import EnvError
from attn_agents.image_tokenizer import ImageTokenizer
from attn_agents.minigrid_tokenizer import MiniGridTokenizer
from attn_agents.tokenizer_factory import make_tokenizer
from attn_agents.tuple_tokenizer import TupleTokenizer
from attn_agents.vector_tokenizer import VectorTokenizer


def test_vector_tokenizer_one_token_per_feature():
    tok = VectorTokenizer(num_features=4, d_model=8)
    tokens, mask = tok(np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]], np.float32))
    assert tuple(tokens.shape) == (2, 4, 8) and np.asarray(mask).all()
    # value * embedding + feature embedding: a zero feature gives its feature embedding only.
    np.testing.assert_allclose(np.asarray(tokens)[1], np.asarray(tok.feature_embedding),
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(tokens)[0, 2],
                               2 * np.asarray(tok.value_embedding)[2]
                               + np.asarray(tok.feature_embedding)[2], atol=1e-6)


def test_image_tokenizer_pads_to_whole_patches_and_keeps_patch_order():
    tok = ImageTokenizer((10, 12, 1), patch_size=4, d_model=6)
    assert tok.grid_shape == (3, 3)
    image = np.zeros((1, 10, 12, 1), np.float32)
    image[0, 4:8, 8:12] = 1.0  # exactly patch (row 1, col 2) = token 5
    tokens, mask = tok(image)
    assert tuple(tokens.shape) == (1, 9, 6) and tuple(mask.shape) == (1, 9)
    empty, _ = tok(np.zeros_like(image))
    changed = np.abs(np.asarray(tokens) - np.asarray(empty)).sum(-1)[0]
    assert np.flatnonzero(changed > 1e-6).tolist() == [5]


def test_minigrid_tokenizer_masks_unseen_cells():
    image = np.ones((2, 3, 3, 3), np.uint8) * 2  # walls everywhere
    image[0, 0, 0, 0] = 0  # unseen cell
    tokens, mask = MiniGridTokenizer((3, 3), d_model=8)(
        {"image": image, "direction": np.array([0, 3])})
    assert tuple(tokens.shape) == (2, 10, 8)
    mask = np.asarray(mask)
    assert mask[1].all() and not mask[0, 0] and mask[0, 1:].all()


def test_entity_tokenizer_pads_with_a_mask_and_adds_field_tokens():
    fields = [{"name": "units", "kind": "entities", "size": 3, "mask": "units_mask"},
              {"name": "self", "kind": "vector", "size": 2},
              {"name": "mode", "kind": "discrete", "size": 4}]
    tok = EntityTokenizer(fields, d_model=8)
    tokens, mask = tok({"units": np.zeros((2, 5, 3), np.float32),
                        "units_mask": np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]),
                        "self": np.zeros((2, 2), np.float32), "mode": np.array([1, 3])})
    assert tuple(tokens.shape) == (2, 7, 8)
    np.testing.assert_array_equal(np.asarray(mask), [[1, 1, 0, 0, 0, 1, 1], [1] * 7])


def test_discrete_tokenizer_one_embedding_table_per_component():
    tok = DiscreteTokenizer([2, 3], d_model=4, start=[0, 1])
    tokens, mask = tok(np.array([[1, 3], [0, 1]]))  # component 1 holds 1..3
    assert tuple(tokens.shape) == (2, 2, 4) and np.asarray(mask).all()
    table = np.asarray(tok.value_embedding)  # rows 0-1: component 0, rows 2-4: component 1
    component = np.asarray(tok.component_embedding)
    np.testing.assert_allclose(np.asarray(tokens)[0, 0], table[1] + component[0], atol=1e-6)
    np.testing.assert_allclose(np.asarray(tokens)[0, 1], table[2 + 2] + component[1],
                               atol=1e-6)
    np.testing.assert_allclose(np.asarray(tokens)[1, 1], table[2 + 0] + component[1],
                               atol=1e-6)
    # A Discrete observation: [B] integers, one token each.
    single, _ = DiscreteTokenizer([4], d_model=4)(np.array([3, 0, 2]))
    assert tuple(single.shape) == (3, 1, 4)


def test_tuple_tokenizer_tokens_in_component_order():
    tok = TupleTokenizer([{"kind": "discrete", "nvec": [2]},
                          {"kind": "discrete", "nvec": [3, 3]},
                          {"kind": "vector", "size": 2}], d_model=4)
    obs = (np.array([1, 0]), np.array([[2, 0], [1, 1]]), np.zeros((2, 2), np.float32))
    tokens, mask = tok(obs)
    assert tuple(tokens.shape) == (2, 4, 4) and np.asarray(mask).all()
    # Changing the MultiDiscrete's second integer changes token 2 only.
    changed, _ = tok((obs[0], np.array([[2, 1], [1, 1]]), obs[2]))
    moved = np.abs(np.asarray(changed) - np.asarray(tokens)).sum(-1)
    assert np.flatnonzero(moved[0] > 1e-7).tolist() == [2] and not moved[1].any()
    with pytest.raises(ValueError, match="Received: components="):
        TupleTokenizer([{"kind": "image", "size": 2}], d_model=4)


def test_entity_tokenizer_rejects_unknown_kinds():
    with pytest.raises(ValueError, match="Received: field="):
        EntityTokenizer([{"name": "x", "kind": "graph", "size": 2}], d_model=4)


@pytest.mark.parametrize("space, kind, tokens", [
    (gym.spaces.Box(-1, 1, (4,)), "vector", 4),
    (gym.spaces.Box(0, 255, (96, 96, 3), np.uint8), "grid", 144),
    (gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8),
                      "direction": gym.spaces.Discrete(4)}), "grid", 50),
    (gym.spaces.Dict({"units": gym.spaces.Box(-1, 1, (6, 3)),
                      "units_mask": gym.spaces.MultiBinary(6),
                      "goal": gym.spaces.Box(-1, 1, (2,))}), "set", 7),
    (gym.spaces.Box(-1, 1, (5, 3)), "set", 5),
    (gym.spaces.Discrete(4), "vector", ("obs",)),
    (gym.spaces.MultiDiscrete([2, 2]), "vector", ("obs[0]", "obs[1]")),
    (gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.MultiDiscrete([3, 4]),
                       gym.spaces.Box(-1, 1, (3,)))),
     "vector", ("obs[0]", "obs[1][0]", "obs[1][1]", "obs[2]")),
])
def test_factory_chooses_the_tokenizer_for_each_space(space, kind, tokens):
    tok, layout = make_tokenizer(space, d_model=8, patch_size=8)
    if isinstance(tokens, tuple):  # the labels themselves
        assert layout.labels == tokens
        tokens = len(tokens)
    assert layout.kind == kind and len(layout.labels) == tokens
    sample = space.sample()
    batch = ({k: np.asarray(v)[None] for k, v in sample.items()} if isinstance(sample, dict)
             else tuple(np.asarray(v)[None] for v in sample) if isinstance(sample, tuple)
             else np.asarray(sample)[None])
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 2:
        batch = {"obs": batch}
    out, mask = tok(batch)
    assert tuple(out.shape) == (1, tokens, 8) and tuple(ops.shape(mask)) == (1, tokens)


def test_factory_names_an_unsupported_space():
    with pytest.raises(EnvError, match="Received: observation_space=MultiBinary"):
        make_tokenizer(gym.spaces.MultiBinary(3), 8, 8)
    with pytest.raises(EnvError, match=r"Received: obs\[1\]=Box\(.*\(2, 2\)"):
        make_tokenizer(gym.spaces.Tuple((gym.spaces.Discrete(2), gym.spaces.Box(0, 1, (2, 2)))),
                       8, 8)


def test_a_policy_over_masked_tokens_builds_and_acts_without_keras_mask_warnings():
    """The token mask is passed to the blocks and the pooling as an argument: Keras warned
    at every MiniGrid run that they "destroy the mask information" until they declared that
    they take it."""
    import warnings

    from attn_agents.actor_critic import ActorCritic
    from attn_agents.policy_config import PolicyConfig

    space = gym.spaces.Dict({"image": gym.spaces.Box(0, 255, (3, 3, 3), np.uint8),
                             "direction": gym.spaces.Discrete(4)})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model = ActorCritic(PolicyConfig(d_model=8, num_heads=2, ff_dim=8), space,
                            gym.spaces.Discrete(3))
        summary, weights = model.summarize({"image": np.full((2, 3, 3, 3), 2, np.uint8),
                                            "direction": np.array([0, 1])})
    assert tuple(summary.shape) == (2, 8) and tuple(weights.shape) == (2, 10)
