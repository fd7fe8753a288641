r"""Score a trained model on a test set: BLEU and chrF with sacrebleu, AER of its attention.

    python -m translate.evaluate --model_dir=D --src_file=test.src --ref_file=test.ref \
        [--beam_width=5] [--output_json=scores.json] \
        [--ref_alignments=test.align [--attention_heads=mean|all|L:H]]
    python -m translate.evaluate --model_dir=A,B --src_file=test.src --ref_file=test.ref

Prints the scores and writes them as JSON (default: D/evaluation.json; for an ensemble
A,B: A/ensemble_evaluation.json). Every input and output path, and every decoding setting,
is checked before the decoding starts, so a mistake costs no decoding time. The decoding
flags (ensembles, --average_last, sampling, --replace_unknown) are those of
translate.translate.

With `--ref_alignments` (gold word alignments of the source and reference sentences in
Pharaoh format: `i-j` sure links, `i?j` possible ones, 0-based source and target word
indices, one line a sentence; words as in translate.translate --alignment_format), it also
reports the alignment error rate (Och & Ney) of the hard alignments of the attention of
the translations (each target word to its most attended source word, EOS left out) for
--attention_heads; `all` reports the head mean ("aer") and every layer:head
("aer_by_head"), and names the best ("aer_best_head").
AER compares the links of the model's own translation with the reference's, so a sentence
translated with other words counts against it ("aer_same_words" counts those that match).
The file is checked against the sentences (line count, indices in range) before decoding.
The model directory of a run on the built-in corpus holds such files: data/test.align.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from attn_core import cli  # noqa: E402

cli.quiet_tensorflow()

import json  # noqa: E402
import pathlib  # noqa: E402

from absl import flags  # noqa: E402

from attn_core import checkpoint, progress  # noqa: E402
from attn_core import flags as common_flags  # noqa: E402
from attn_core import model_dir as core_dir  # noqa: E402
from attn_core.errors import UserError  # noqa: E402
from translate import decode_config  # noqa: E402
from translate.data_error import DataError  # noqa: E402
from translate.translate import (  # noqa: E402
    check_attention_heads,
    check_decoding,
    check_model_dir,
    define_attention_heads_flag,
    define_model_dir_flag,
    make_translator,
    read_lines,
)

FLAGS = flags.FLAGS


def define_flags():
    """Defines the flags of translate.evaluate (a no-op for those that exist already)."""
    define_model_dir_flag()
    decode_config.define_decode_flags()
    common_flags.define_once("string", "src_file", None,
        "Source sentences, one a line.")
    common_flags.define_once("string", "ref_file", None,
        "Reference translations, one a line.")
    common_flags.define_once("string", "output_json", None,
        "Where to write the scores (default: <model_dir>/evaluation.json, or "
        "<first model_dir>/ensemble_evaluation.json; its folder is created).")
    common_flags.define_once("string", "ref_alignments", None,
        "Gold word alignments of --src_file and --ref_file, Pharaoh format (i-j: source word "
        "i, target word j, 0-based; i?j: possible): also report the attention's AER.")
    define_attention_heads_flag()


def read_gold(model_dir, sources, references):
    """--ref_alignments, checked against the sentences' words: (gold, reference words)."""
    from translate import alignment
    from translate.model_dir import load_tokenizers

    src_tok, tgt_tok = load_tokenizers(model_dir)
    source_words = [alignment.sentence_words(src_tok, s) for s in sources]
    reference_words = [alignment.sentence_words(tgt_tok, r) for r in references]
    gold = alignment.read_pharaoh(FLAGS.ref_alignments, [len(w) for w in source_words],
                                  [len(w) for w in reference_words])
    return gold, reference_words


def aer_scores(translator, best, gold, reference_words, heads):
    """The AER entries of the scores for the best translations `best`."""
    from translate import alignment

    tgt = translator.tgt_tokenizer
    same = sum(alignment.word_ids(t.target_pieces, tgt.kind, tgt.lang)[1] == words
               for t, words in zip(best, reference_words, strict=True))
    scores = {"attention_heads": str(heads), "aer_same_words": same}
    if heads.kind != "all":
        scores["aer"] = translator.alignment_error_rate(best, gold, heads)
        return scores
    by_head = {}
    layers, count = translator.model.attention_dims or (1, 1)
    for layer in range(layers):
        for head in range(count):
            choice = alignment.Heads("one", layer, head)
            by_head[str(choice)] = translator.alignment_error_rate(best, gold, choice)
    return scores | {"aer": translator.alignment_error_rate(best, gold), "aer_by_head": by_head,
                     "aer_best_head": min(by_head, key=by_head.get)}


def main(argv):
    del argv  # cli.run refuses stray arguments
    for name in ("src_file", "ref_file"):
        if not FLAGS[name].value:
            raise UserError(f"Expected --{name} (a file, one sentence a line). Received: none")
    model_dirs = check_model_dir()
    config = check_decoding(model_dirs)
    heads = check_attention_heads(model_dirs[0])
    default_name = "evaluation.json" if len(model_dirs) == 1 else "ensemble_evaluation.json"
    out = core_dir.prepare_output_file(FLAGS.output_json or model_dirs[0] / default_name,
                                       "--output_json")
    sources, references = read_lines(FLAGS.src_file), read_lines(FLAGS.ref_file)
    if len(sources) != len(references):
        raise DataError(f"{FLAGS.src_file} has {len(sources)} lines but {FLAGS.ref_file} has "
                        f"{len(references)}")
    if not sources:
        raise DataError("no sentences to evaluate", path=FLAGS.src_file)
    gold = reference_words = None
    if FLAGS.ref_alignments:
        gold, reference_words = read_gold(model_dirs[0], sources, references)
    translator, steps = make_translator(model_dirs, config,
                                        all_heads=gold is not None and heads.kind != "mean")
    from translate.trainer import corpus_bleu

    with progress.phase("decoding", len(sources), unit="sentence",
                        delay=progress.SHORT_PHASE_SECONDS) as phase:
        best = [hyps[0] for hyps in translator.translate(sources, FLAGS.batch_size,
                                                          progress=phase.update)]
    bleu, chrf = corpus_bleu([b.text for b in best], references)
    scores = {"bleu": bleu, "chrf": chrf, "sentences": len(sources), "step": steps[0],
              "beam_width": config.beam_width, "length_penalty": config.length_penalty,
              "coverage_penalty": config.coverage_penalty}
    if len(model_dirs) > 1:
        scores |= {"model_dirs": [str(d) for d in model_dirs], "steps": steps}
    if FLAGS.average_last:
        scores["average_last"] = FLAGS.average_last
    if config.samples:
        scores |= {name: getattr(config, name) for name in decode_config.SAMPLING_FIELDS}
    if config.replace_unknown:
        scores["replace_unknown"] = True
    if gold is not None:
        scores |= aer_scores(translator, best, gold, reference_words, heads)
    checkpoint.atomic_write_text(pathlib.Path(out), json.dumps(scores, indent=2, sort_keys=True)
                                 + "\n")
    where = f"step {steps[0]}" if len(steps) == 1 else (
        f"ensemble of steps {', '.join(map(str, steps))}")
    print(f"BLEU {bleu:.2f}  chrF {chrf:.2f}  ({len(sources)} sentences, {where})")
    if gold is not None:
        best_head = (f"; best layer:head {scores['aer_best_head']}: "
                     f"{scores['aer_by_head'][scores['aer_best_head']]:.4f}"
                     if "aer_best_head" in scores else "")
        print(f"AER {scores['aer']:.4f} (attention heads {scores['attention_heads']}"
              f"{' (their mean)' if 'aer_best_head' in scores else ''}{best_head}; "
              f"{scores['aer_same_words']}/{len(sources)} translations have the reference's "
              "words)")


if __name__ == "__main__":
    define_flags()
    cli.run(main)
