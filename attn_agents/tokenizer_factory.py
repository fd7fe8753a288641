"""`make_tokenizer`: the tokenizer that fits an observation space, and how to label its tokens."""

import dataclasses

import gymnasium as gym
import numpy as np

from attn_agents.discrete_tokenizer import DiscreteTokenizer
from attn_agents.entity_tokenizer import EntityTokenizer
from attn_agents.env_error import EnvError
from attn_agents.image_tokenizer import ImageTokenizer
from attn_agents.minigrid_tokenizer import MiniGridTokenizer
from attn_agents.tuple_tokenizer import TupleTokenizer
from attn_agents.vector_tokenizer import VectorTokenizer


@dataclasses.dataclass(frozen=True)
class TokenLayout:
    """How the T tokens map back onto the observation, for attention plots.

    Attributes:
        kind: `"vector"` (bars over `labels`: features, or the integers and components of
            Discrete, MultiDiscrete and Tuple observations), `"grid"` (the first h*w tokens form the
            `grid_shape` heatmap; extra tokens are listed in `labels`) or `"set"`.
        labels: One label per token.
        grid_shape: (h, w) for `"grid"`.
        cell_size: Pixels per grid cell along (rows, cols), to lay the map over a frame.
    """

    kind: str
    labels: tuple
    grid_shape: tuple = ()
    cell_size: tuple = (1, 1)


def _is_minigrid(space):
    return (isinstance(space, gym.spaces.Dict) and set(space.spaces) == {"image", "direction"}
            and len(space["image"].shape) == 3 and space["image"].shape[-1] == 3)


def _discrete_parts(space):
    """`(nvec, start)` of a Discrete or rank-1 MultiDiscrete space, as lists."""
    if isinstance(space, gym.spaces.Discrete):
        return [int(space.n)], [int(space.start)]
    return ([int(n) for n in space.nvec],
            [int(s) for s in np.broadcast_to(getattr(space, "start", 0), space.nvec.shape)])


def _tuple_components(space):
    """The `TupleTokenizer` components of a Tuple space and one label per token."""
    components, labels = [], []
    for i, sub in enumerate(space.spaces):
        if isinstance(sub, gym.spaces.Discrete | gym.spaces.MultiDiscrete):
            nvec, start = _discrete_parts(sub)
            components.append({"kind": "discrete", "nvec": nvec, "start": start})
            labels += ([f"obs[{i}]"] if isinstance(sub, gym.spaces.Discrete)
                       else [f"obs[{i}][{j}]" for j in range(len(nvec))])
        elif isinstance(sub, gym.spaces.Box) and len(sub.shape) == 1:
            components.append({"kind": "vector", "size": int(sub.shape[0])})
            labels.append(f"obs[{i}]")
        else:
            raise EnvError("Expected Tuple observation components to be Discrete, "
                           f"MultiDiscrete or Box of rank 1. Received: obs[{i}]={sub}")
    return components, labels


def _entity_fields(space):
    spaces = dict(space.spaces) if isinstance(space, gym.spaces.Dict) else {"obs": space}
    fields, masks = [], {}
    for name, sub in spaces.items():
        if name == "mask" or name.endswith("_mask"):
            masks[name] = sub
    for name, sub in spaces.items():
        if name in masks:
            continue
        if isinstance(sub, gym.spaces.Discrete):
            fields.append({"name": name, "kind": "discrete", "size": int(sub.n)})
        elif isinstance(sub, gym.spaces.Box) and len(sub.shape) == 1:
            fields.append({"name": name, "kind": "vector", "size": int(sub.shape[0])})
        elif isinstance(sub, gym.spaces.Box) and len(sub.shape) == 2:
            mask = f"{name}_mask" if f"{name}_mask" in masks else None
            mask = mask or ("mask" if "mask" in masks else None)
            fields.append({"name": name, "kind": "entities", "size": int(sub.shape[1]),
                           "mask": mask, "count": int(sub.shape[0])})
        else:
            raise EnvError("Expected Dict fields to be Discrete or Box of rank 1 or 2 (entities). "
                           f"Received: {name}={sub}")
    return fields


def make_tokenizer(space: gym.Space, d_model: int, patch_size: int):
    """Chooses and builds the tokenizer for `space`.

    Args:
        space: The single-environment observation space.
        d_model: Token width D.
        patch_size: Patch side for images.

    Returns:
        `(tokenizer, layout)`: a layer mapping a batch of observations to
        `(tokens [B, T, D], mask bool [B, T])`, and its `TokenLayout`.

    Raises:
        EnvError: If the space is not supported, naming it.
    """
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 1:
        n = int(space.shape[0])
        return VectorTokenizer(n, d_model, name="tokenizer"), TokenLayout(
            "vector", tuple(f"x{i}" for i in range(n)))
    if isinstance(space, gym.spaces.Box) and len(space.shape) == 3:
        scale = 1.0 / 255.0 if space.dtype == np.uint8 else 1.0
        tok = ImageTokenizer(space.shape, patch_size, d_model, scale=scale, name="tokenizer")
        h, w = tok.grid_shape
        return tok, TokenLayout("grid", tuple(f"p{r},{c}" for r in range(h) for c in range(w)),
                                (h, w), (patch_size, patch_size))
    if isinstance(space, gym.spaces.Discrete | gym.spaces.MultiDiscrete):
        nvec, start = _discrete_parts(space)
        labels = (("obs",) if isinstance(space, gym.spaces.Discrete)
                  else tuple(f"obs[{i}]" for i in range(len(nvec))))
        return (DiscreteTokenizer(nvec, d_model, start, name="tokenizer"),
                TokenLayout("vector", labels))
    if isinstance(space, gym.spaces.Tuple):
        components, labels = _tuple_components(space)
        return (TupleTokenizer(components, d_model, name="tokenizer"),
                TokenLayout("vector", tuple(labels)))
    if _is_minigrid(space):
        h, w = space["image"].shape[:2]
        labels = tuple(f"c{r},{c}" for r in range(h) for c in range(w)) + ("direction",)
        return MiniGridTokenizer((h, w), d_model, name="tokenizer"), TokenLayout(
            "grid", labels, (h, w), (1, 1))
    if isinstance(space, gym.spaces.Dict) or (
            isinstance(space, gym.spaces.Box) and len(space.shape) == 2):
        fields = _entity_fields(space)
        labels = []
        for f in fields:
            labels += ([f"{f['name']}[{i}]" for i in range(f["count"])]
                       if f["kind"] == "entities" else [f["name"]])
        tok = EntityTokenizer([{k: v for k, v in f.items() if k != "count"} for f in fields],
                              d_model, name="tokenizer")
        return tok, TokenLayout("set", tuple(labels))
    raise EnvError(f"Expected a Box (rank 1-3), Discrete, MultiDiscrete, Tuple or Dict "
                   f"observation space. Received: observation_space={space}")
