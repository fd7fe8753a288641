"""translate: neural machine translation with attention.

Command-line tools: `translate.train` (train and test a model in a model directory),
`translate.translate` (translate text with it), `translate.evaluate` (BLEU and chrF on a test
set) and `translate.export` (a SavedModel that needs only TensorFlow). The library: corpora
(`corpus`, `builtin_corpus`), `tokenizer`, `input_pipeline`, the models (`rnn_seq2seq`,
`transformer_seq2seq`), `decoding` (greedy and beam search), `translator` and `trainer`.
"""
