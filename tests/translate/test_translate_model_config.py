"""The model config's defaults (a 2-layer Transformer), the option of an output projection
tied to the target embedding, and model directories saved before a field existed keep the
model they were trained with."""

import json

import pytest

from translate import model_dir
from translate.model_config import ModelConfig


def test_the_layer_count_follows_the_architecture_unless_given():
    assert ModelConfig().architecture == "transformer"
    assert ModelConfig().num_layers == 2
    assert ModelConfig(architecture="rnn").num_layers == 1
    assert ModelConfig(architecture="rnn", num_layers=3).num_layers == 3
    with pytest.raises(ValueError, match="num_layers"):
        ModelConfig(num_layers=-1)


@pytest.mark.parametrize("tie", [True, False])
def test_a_tied_transformer_has_no_output_kernel_and_the_same_logits_shape(tie):
    import tensorflow as tf

    from translate.transformer_seq2seq import TransformerSeq2Seq

    config = ModelConfig(units=16, heads=2, ff_dim=16, num_layers=1, tie_embeddings=tie,
                         src_vocab_size=11, tgt_vocab_size=13)
    model = TransformerSeq2Seq(config)
    logits = model({"source": tf.ones((2, 5), tf.int32),
                    "decoder_in": tf.ones((2, 4), tf.int32)})
    assert logits.shape == (2, 4, 13)
    names = [v.path.split("/", 1)[1] for v in model.trainable_variables]
    assert ("logits/kernel" in names) is not tie
    assert len(names) == len(set(names))  # the shared embedding is one variable
    if tie:  # the logits move with the target embedding
        embedding = model.tgt_embedding.embeddings
        embedding.assign(embedding * 2.0)
        doubled = model({"source": tf.ones((2, 5), tf.int32),
                         "decoder_in": tf.ones((2, 4), tf.int32)})
        assert not tf.reduce_all(tf.abs(doubled - logits) < 1e-6)


def test_a_model_directory_saved_before_tied_embeddings_keeps_its_untied_model(tmp_path):
    saved = {k: v for k, v in ModelConfig(src_vocab_size=5, tgt_vocab_size=6).__dict__.items()
             if k != "tie_embeddings"}
    (tmp_path / model_dir.MODEL_CONFIG).write_text(json.dumps(saved))
    assert model_dir.load_model_config(tmp_path).tie_embeddings is False
    assert model_dir.saved_configs(tmp_path)[0]["tie_embeddings"] is False
