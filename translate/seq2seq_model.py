"""The base of the translation models: a Keras model built from a `ModelConfig`."""

import dataclasses

import keras


class Seq2SeqModel(keras.Model):
    """Keeps the `ModelConfig` and serializes through it.

    Subclasses provide `encode(source)`, `call(inputs)`,
    `call_with_attention(inputs)` (the logits and the attention [B, T, S]
    that guided alignment supervises), `decoding_step(memory, mask, cache=True)` (see
    `translate.decoding`; `cache` matters to a model that keeps key/value caches, the
    Transformer), `attention_dims` (E of the step alignments [R, *E, S]) and
    `head_mean(alignments [..., *E, S]) -> [..., S]` (the one [T, S] view: the default of
    plots, the SavedModel's `attention`, hard alignments and the coverage penalty). A
    subclass that makes its own step state (the Transformer) also provides
    `initial_decoding_state(batch_size, max_length, cache=True)`.
    """

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config

    def get_config(self):
        return {"config": dataclasses.asdict(self.config), "name": self.name}

    @classmethod
    def from_config(cls, config):
        from translate.model_config import ModelConfig

        return cls(ModelConfig(**config["config"]), name=config.get("name"))
