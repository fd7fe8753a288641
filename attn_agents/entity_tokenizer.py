"""`EntityTokenizer`: Dict or entity-list observations as a padded, masked set of tokens."""

import keras
from keras import ops

KINDS = ("entities", "vector", "discrete")


class EntityTokenizer(keras.layers.Layer):
    """Embeds the fields of a Dict observation as tokens, one type embedding per field.

    - `entities` fields, float [B, E, F]: up to E entities (padded to that maximum), one
      token each: a per-field linear projection plus the field's type embedding. A mask field
      (bool/0-1 [B, E], True = a real entity) marks padding; without one all are real.
    - `vector` fields, float [B, F]: one token (projection + type embedding).
    - `discrete` fields, int [B]: one token (a learned embedding per value + type embedding).

    Tokens are concatenated in the order of `fields`; T = sum of their token counts.

    Example:
    >>> fields = [{"name": "units", "kind": "entities", "size": 3, "mask": "units_mask"}]
    >>> tokens, mask = EntityTokenizer(fields, d_model=8)(
    ...     {"units": ops.zeros((2, 5, 3)), "units_mask": ops.ones((2, 5))})
    >>> tuple(tokens.shape), tuple(mask.shape)
    ((2, 5, 8), (2, 5))

    Args:
        fields: List of dicts `{"name", "kind", "size", "mask"}`: `kind` in `KINDS`; `size`
            is F (features) for entities/vector or the number of values for discrete;
            `mask` (entities only, optional) names the mask field.
        d_model: D.

    Call arguments:
        inputs: dict of the fields (and their mask fields).

    Returns:
        `(tokens, mask)`: [B, T, D] and bool [B, T].

    Raises:
        ValueError: If a field's kind is unknown or there are no fields.
    """

    def __init__(self, fields, d_model, **kwargs):
        super().__init__(**kwargs)
        if not fields:
            raise ValueError(f"Expected at least one field. Received: fields={fields!r}")
        for field in fields:
            if field.get("kind") not in KINDS:
                raise ValueError(f"Expected each field's kind to be one of {KINDS}. "
                                 f"Received: field={field!r}")
        self.fields = [dict(f) for f in fields]
        self.d_model = int(d_model)
        self.type_embedding = self.add_weight(
            shape=(len(fields), d_model), initializer=keras.initializers.RandomNormal(0, 0.02),
            name="type_embedding")
        self.embedders = []
        for i, field in enumerate(self.fields):
            if field["kind"] == "discrete":
                layer = keras.layers.Embedding(field["size"], d_model, name=f"embed_{i}",
                                               dtype=self.dtype_policy)
                layer.build((None,))
            else:
                layer = keras.layers.Dense(d_model, name=f"project_{i}", dtype=self.dtype_policy)
                layer.build((None, field["size"]))
            self.embedders.append(layer)

    def call(self, inputs):
        tokens, masks = [], []
        for i, (field, embed) in enumerate(zip(self.fields, self.embedders, strict=True)):
            x = inputs[field["name"]]
            if field["kind"] == "entities":
                t = embed(ops.cast(x, self.compute_dtype))  # [B, E, D]
                if field.get("mask"):
                    m = ops.cast(inputs[field["mask"]], "float32") > 0.5  # [B, E]
                else:
                    m = ops.ones(ops.shape(t)[:2], dtype="bool")
            elif field["kind"] == "vector":
                t = embed(ops.cast(x, self.compute_dtype))[:, None, :]  # [B, 1, D]
                m = ops.ones(ops.shape(t)[:2], dtype="bool")
            else:
                t = embed(ops.reshape(ops.cast(x, "int32"), (-1,)))[:, None, :]  # [B, 1, D]
                m = ops.ones(ops.shape(t)[:2], dtype="bool")
            tokens.append(t + ops.cast(self.type_embedding[i], self.compute_dtype))
            masks.append(m)
        return ops.concatenate(tokens, axis=1), ops.concatenate(masks, axis=1)

    def get_config(self):
        return super().get_config() | {"fields": self.fields, "d_model": self.d_model}
