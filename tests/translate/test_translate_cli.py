"""The translate command-line tools, mostly run in this process (`conftest.run_tool`): one-line
errors with exit 2 before any work, model directories that a conflicting or failed run leaves
as they were, resuming (schedule changes, another precision, damaged checkpoints), Ctrl-C,
the lock, --help, and translate.translate in a pipe."""

import contextlib
import hashlib
import io
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver
from translate_tools import TINY_FLAGS, run_tool

from attn_core import model_dir as core_dir
from attn_core.checkpoint import CheckpointManager

ROOT = pathlib.Path(__file__).resolve().parents[2]
FLAGS = flags.FLAGS
DATA_FLAGS = TINY_FLAGS[:3]  # the corpus of the tiny run: a resume gives them again


def _tree_hash(path):
    """{relative path: sha256} of every file under `path`."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def _copy(trained_dir, tmp_path):
    return pathlib.Path(shutil.copytree(trained_dir, tmp_path / "model"))


def _stdin(text):
    return io.BytesIO(text.encode("utf-8"))


@pytest.mark.parametrize(
    "files, args, message",
    [
        ({}, "--train_file={d}/missing.tsv", "missing.tsv: cannot read"),
        ({"short.tsv": "hello\tbonjour\nlonely line\n"}, "--train_file={d}/short.tsv",
         "short.tsv:2:"),
        ({"bytes.tsv": b"ok\tbien\n\xff\xfe\tx\n"}, "--train_file={d}/bytes.tsv", "bytes.tsv:2:"),
        ({"a.src": "one\ntwo\n", "a.tgt": "un\n"},
         "--train_src={d}/a.src --train_tgt={d}/a.tgt", "a.src"),
        ({"empty.tsv": "hello\tbonjour\n\tvide\n"}, "--train_file={d}/empty.tsv",
         "empty.tsv:2:"),
        ({}, "--max_length=1 " + " ".join(DATA_FLAGS), "longer than --max_length=1"),
        ({}, "--tokens_per_batch=0", "--tokens_per_batch"),
        ({}, "--architecture=transformer --units=30 --heads=4 " + " ".join(DATA_FLAGS),
         "divisible"),
        ({}, "--attention=bahdanau --cell=lstm " + " ".join(DATA_FLAGS),
         "--cell, --attention only apply to --architecture=rnn"),
        ({}, "--architecture=rnn --heads=2 " + " ".join(DATA_FLAGS),
         "--heads only applies to --architecture=transformer"),
        ({"file": "x"}, "--model_dir={d}/file/model", "is a file"),
        ({}, "stray", "unexpected arguments: stray"),
        ({}, "--strategy=multi_worker", "TF_CONFIG"),
    ],
    ids=["missing", "columns", "utf8", "line_counts", "empty_source", "max_length",
         "tokens_per_batch", "heads", "rnn_flags_for_transformer",
         "transformer_flags_for_rnn", "model_dir_file", "stray_argument", "no_tf_config"],
)
def test_bad_training_input_is_one_line_and_leaves_no_directory(tmp_path, monkeypatch, files,
                                                                args, message):
    for name, content in files.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # a fresh run directory would go to ./runs
    monkeypatch.delenv("TF_CONFIG", raising=False)
    args = args.format(d=tmp_path).split()
    model_flag = [] if any(a.startswith("--model_dir") for a in args) else [
        f"--model_dir={tmp_path / 'model'}"]
    run_tool("translate.train", *model_flag, *args).one_line_error(message)
    assert not (tmp_path / "model").exists()
    assert not (tmp_path / "runs").exists()
    run_tool("translate.train", *args).one_line_error(message)  # no --model_dir
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "module, args, message",
    [
        ("translate.translate", ["--model_dir={d}/typo"], "--model_dir={d}/typo does not exist"),
        ("translate.translate", ["--model_dir={d}"], "has no model_config.json"),
        ("translate.translate", ["--model_dir={m}", "--n_best=6"], "--beam_width >= 6"),
        ("translate.translate", ["--model_dir={m}", "--output_file={d}/file/out.txt"],
         "is a file"),
        ("translate.translate", ["--model_dir={m}", "--plot_dir={d}/file/plots"], "is a file"),
        ("translate.translate", ["--model_dir={m}", "--attention_heads=max"],
         "--attention_heads=max: Expected 'mean', 'all' or 'L:H'"),
        ("translate.translate", ["--model_dir={m}", "--attention_heads=0:1"],
         "--attention_heads=0:1: Expected L:H with L < 1 and H < 1"),
        ("translate.translate", ["--model_dir={m}", "--attention_json={d}/missing/a.jsonl"],
         "Expected the folder of --attention_json={d}/missing/a.jsonl to exist"),
        ("translate.translate", ["--model_dir={m}", "--attention_json={d}/file/a.jsonl"],
         "is a file"),
        ("translate.evaluate", ["--model_dir={d}/typo", "--src_file={d}/file",
                                "--ref_file={d}/file"], "does not exist"),
        ("translate.evaluate", ["--model_dir={m}", "--src_file={d}/file"], "--ref_file"),
        ("translate.evaluate", ["--model_dir={m}", "--src_file={d}/file", "--ref_file={d}/file",
                                "--output_json={d}/file/scores.json"], "is a file"),
        ("translate.evaluate", ["--model_dir={m}", "--src_file={d}/file",
                                "--ref_file={d}/missing"], "missing: cannot read"),
        ("translate.evaluate", ["--model_dir={m}", "--src_file={d}/file", "--ref_file={d}/file",
                                "--ref_alignments={d}/file"], "file:1: expected links"),
        ("translate.evaluate", ["--model_dir={m}", "--src_file={d}/file", "--ref_file={d}/file",
                                "--ref_alignments={d}/missing"], "missing: cannot read"),
        ("translate.evaluate", ["--model_dir={m}", "--src_file={d}/file", "--ref_file={d}/file",
                                "--attention_heads=1"], "--attention_heads=1: Expected"),
        ("translate.export", ["--model_dir={m}", "--export_dir={d}/file"], "is a file"),
        ("translate.export", ["--model_dir={m}"], "--export_dir"),
        ("translate.export", ["--model_dir={d}/typo", "--export_dir={d}/e"], "does not exist"),
        ("translate.translate", ["--model_dir={m},{d}/typo"],
         "--model_dir={d}/typo does not exist"),
        ("translate.evaluate", ["--model_dir={m},{d}/typo", "--src_file={d}/file",
                                "--ref_file={d}/file"], "--model_dir={d}/typo does not exist"),
        ("translate.export", ["--model_dir={m},{d}/typo", "--export_dir={d}/e"],
         "--model_dir={d}/typo does not exist"),
        ("translate.translate", ["--model_dir={m},,{m}"], "separated by single commas"),
        ("translate.translate", ["--model_dir={m}", "--sampling_topk=5", "--beam_width=2"],
         "random sampling (--sampling_topk=5) needs --beam_width=1"),
        ("translate.evaluate", ["--model_dir={m}", "--src_file={d}/file", "--ref_file={d}/file",
                                "--sampling", "--beam_width=3"],
         "random sampling (--sampling) needs --beam_width=1"),
        ("translate.translate", ["--model_dir={m}", "--sampling_topp=0"],
         "--sampling_topp in (0, 1]"),
        ("translate.translate", ["--model_dir={m}", "--average_last=3"],
         "--average_last=3 but"),
    ],
    ids=["translate_typo", "translate_untrained", "n_best", "output_file", "plot_dir",
         "attention_heads", "heads_out_of_range", "attention_json_folder",
         "attention_json_file", "evaluate_typo", "no_ref_file", "output_json", "missing_ref",
         "ref_alignments_malformed", "ref_alignments_missing", "evaluate_heads",
         "export_dir_file", "no_export_dir", "export_typo", "ensemble_typo",
         "evaluate_ensemble_typo", "export_ensemble_typo", "empty_ensemble_member",
         "sampling_beam", "evaluate_sampling_beam", "sampling_topp", "average_last"],
)
def test_bad_tool_input_is_one_line_before_any_work(tmp_path, trained_dir, module, args,
                                                    message):
    """Each case fails before stdin is read (the tool would fail the test) and before any
    decoding; `file` is a file where a folder is expected."""
    (tmp_path / "file").write_text("one line\n", encoding="utf-8")
    args = [a.format(d=tmp_path, m=trained_dir) for a in args]
    run_tool(module, *args).one_line_error(message.format(d=tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing created


def test_tools_create_output_folders_and_translate_line_by_line(tmp_path, trained_dir):
    before = _tree_hash(trained_dir)
    result = run_tool("translate.translate", f"--model_dir={trained_dir}",
                      f"--output_file={tmp_path}/new/out.txt",
                      f"--plot_dir={tmp_path}/plots/new",
                      stdin=_stdin("May 3, 1950\ntwelve\n"))
    assert result.returncode == 0, result.stderr
    lines = (tmp_path / "new" / "out.txt").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    assert sorted(p.name for p in (tmp_path / "plots" / "new").iterdir()) == [
        "sentence_0000.png", "sentence_0001.png"]
    (tmp_path / "src.txt").write_text("May 3, 1950\ntwelve\n", encoding="utf-8")
    (tmp_path / "ref.txt").write_text("3 mai 1950\ndouze\n", encoding="utf-8")
    result = run_tool("translate.evaluate", f"--model_dir={trained_dir}",
                      f"--src_file={tmp_path}/src.txt", f"--ref_file={tmp_path}/ref.txt",
                      f"--output_json={tmp_path}/a/b/scores.json")
    assert result.returncode == 0, result.stderr
    assert "BLEU" in result.stdout and (tmp_path / "a" / "b" / "scores.json").is_file()
    assert _tree_hash(trained_dir) == before  # the tools write nothing into the model


def test_models_that_do_not_share_a_vocabulary_are_one_line_before_any_work(tmp_path_factory,
                                                                          trained_dir):
    """An ensemble of models with different target vocabularies, and --replace_unknown with
    a subword model: one line, before stdin is read or any output is written."""
    from translate.tokenizer import Tokenizer

    models = tmp_path_factory.mktemp("models")
    other = pathlib.Path(shutil.copytree(trained_dir, models / "other"))
    target = Tokenizer.load(other, "target")
    vocab = [target.id_to_piece(i) for i in range(target.vocab_size)]
    Tokenizer("word", target.lang, vocab=[*vocab[:-1], "not-a-word"]).save(other, "target")
    subword = pathlib.Path(shutil.copytree(trained_dir, models / "subword"))
    Tokenizer.fit(["un deux trois", "deux trois quatre"] * 20, "fr", kind="sentencepiece",
                  vocab_size=40).save(subword, "target")
    mismatch = f"{trained_dir} and {other} have different target vocabularies"
    cases = [
        ("translate.translate", [f"--model_dir={trained_dir},{other}"], mismatch),
        ("translate.evaluate", [f"--model_dir={trained_dir},{other}", "--src_file={d}/file",
                                "--ref_file={d}/file"], mismatch),
        ("translate.export", [f"--model_dir={trained_dir},{other}", "--export_dir={d}/e"],
         mismatch),
        ("translate.translate", [f"--model_dir={subword}", "--replace_unknown"],
         "--replace_unknown needs a word-level model"),
    ]
    for module, args, message in cases:
        work = tmp_path_factory.mktemp("work")
        (work / "file").write_text("one line\n", encoding="utf-8")
        run_tool(module, *[a.format(d=work) for a in args]).one_line_error(message)
        assert sorted(p.name for p in work.iterdir()) == ["file"]  # nothing created


def test_ensembles_and_sampling_from_the_command_line(tmp_path, trained_dir):
    """An ensemble of a model with itself translates as the model does; samples (the default
    beam gives way to them) depend on --seed, not on --batch_size."""
    (tmp_path / "src.txt").write_text("May 3, 1950\ntwelve\nSunday, March 21, 1999\nsix\n",
                                      encoding="utf-8")
    source = f"--input_file={tmp_path}/src.txt"

    def translate(*args):
        result = run_tool("translate.translate", source, *args)
        assert result.returncode == 0, result.stderr
        assert len(result.stdout.splitlines()) == 4
        return result.stdout

    # (Beam search and the step log-probs are checked in test_translate_ensemble.py.)
    greedy = translate(f"--model_dir={trained_dir}", "--beam_width=1")
    assert translate(f"--model_dir={trained_dir},{trained_dir}", "--beam_width=1") == greedy
    sampled = translate(f"--model_dir={trained_dir}", "--sampling", "--seed=1")
    assert sampled == translate(f"--model_dir={trained_dir}", "--sampling", "--seed=1",
                                "--batch_size=1")
    assert sampled != translate(f"--model_dir={trained_dir}", "--sampling", "--seed=2")
    assert sampled != greedy
    result = run_tool("translate.evaluate", f"--model_dir={trained_dir},{trained_dir}",
                      f"--src_file={tmp_path}/src.txt", f"--ref_file={tmp_path}/src.txt",
                      f"--output_json={tmp_path}/scores.json", "--sampling_topk=3")
    assert result.returncode == 0, result.stderr
    assert "ensemble of steps" in result.stdout
    scores = core_dir.read_json(tmp_path / "scores.json")
    assert scores["model_dirs"] == [str(trained_dir)] * 2 and scores["sampling_topk"] == 3


def test_a_conflicting_model_flag_or_corpus_leaves_the_directory_byte_for_byte(tmp_path,
                                                                              trained_dir):
    from translate.model_dir import load_trained

    model_dir = _copy(trained_dir, tmp_path)
    before = _tree_hash(model_dir)
    run_tool("translate.train", f"--model_dir={model_dir}", *DATA_FLAGS, "--units=64",
             "--cell=lstm").one_line_error("--units (saved 32, given 64)",
                                           "--cell (saved 'gru', given 'lstm')")
    run_tool("translate.train", f"--model_dir={model_dir}", *DATA_FLAGS,
             "--tokens_per_batch=512").one_line_error("--tokens_per_batch (saved 256")
    run_tool("translate.train", f"--model_dir={model_dir}", "--train_size=200", "--dev_size=8",
             "--test_size=8", "--builtin_pair=en-es").one_line_error("another corpus")
    assert _tree_hash(model_dir) == before
    assert load_trained(model_dir)[0].count_params() > 0


def test_resume_keeps_the_saved_config_and_may_change_the_schedule_and_precision(
        tmp_path, trained_dir):
    """No model flag is given: the saved tiny model resumes (not the default size), under
    mixed_float16 (a float32 checkpoint has no loss scale), then again with its own."""
    model_dir = _copy(trained_dir, tmp_path)
    result = run_tool("translate.train", f"--model_dir={model_dir}", *DATA_FLAGS,
                      "--max_steps=3", "--precision=mixed_float16")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "resuming with --max_steps=3 (was 2)" in out and "resumed from step 2" in out
    assert "precision: mixed_float16" in out and "starts afresh" in out
    metrics = core_dir.read_json(model_dir / "metrics.json")
    assert metrics["train_steps"] == 3 and metrics["precision"] == "mixed_float16"
    assert np.isfinite(metrics["chrf"])
    train_config = core_dir.read_json(model_dir / "train_config.json")
    assert train_config["max_steps"] == 3 and train_config["precision"] == "mixed_float16"
    assert core_dir.read_json(model_dir / "model_config.json")["units"] == 32

    result = run_tool("translate.train", f"--model_dir={model_dir}", *DATA_FLAGS,
                      "--max_steps=4", "--precision=mixed_float16")
    assert result.returncode == 0, result.stderr
    assert "resumed from step 3" in result.stdout and "starts afresh" not in result.stdout
    assert core_dir.read_json(model_dir / "metrics.json")["train_steps"] == 4


def test_damaged_checkpoints_are_skipped_at_start(tmp_path, trained_dir):
    """The newest regular checkpoint and every best/ checkpoint truncated: the tools fall back
    to checkpoints/, and a resumed run says so before it trains and writes a new best/."""
    model_dir = _copy(trained_dir, tmp_path)
    for path in [model_dir / "checkpoints" / "ckpt-00000002.npz",
                 *(model_dir / "best").glob("ckpt-*.npz")]:
        path.write_bytes(path.read_bytes()[:100])
    result = run_tool("translate.translate", f"--model_dir={model_dir}",
                      stdin=_stdin("twelve\n"))
    assert result.returncode == 0, result.stderr
    assert "no intact checkpoint in" in result.stderr and "skipping" in result.stderr
    assert len(result.stdout.splitlines()) == 1

    result = run_tool("translate.train", f"--model_dir={model_dir}", *DATA_FLAGS,
                      "--max_steps=3")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "skipping the damaged checkpoint of step 2" in out
    # The damaged best/ was of step 1 (a 2-step model's dev BLEU does not improve at step 2),
    # whose weights the regular checkpoint of step 1 holds too.
    assert "resumed from step 1" in out and "best checkpoint of step 1 again" in out
    assert out.index("best checkpoint of step 1 again") < out.index("dev BLEU")
    assert CheckpointManager(model_dir / "best", read_only=True).restored_step() == 1
    assert core_dir.read_json(model_dir / "metrics.json")["train_steps"] == 3


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path, monkeypatch):
    from translate import trainer

    step = trainer.Trainer.train_step

    def step_then_ctrl_c(self):
        loss = step(self)
        if self.state.step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return loss

    monkeypatch.setattr(trainer.Trainer, "train_step", step_then_ctrl_c)
    model_dir = tmp_path / "model"
    result = run_tool("translate.train", f"--model_dir={model_dir}", *TINY_FLAGS,
                      "--max_steps=5", "--eval_every=5")
    assert result.returncode == 130, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"interrupted: saved step 1; resume with --model_dir={model_dir}")
    assert CheckpointManager(model_dir / "checkpoints", read_only=True).steps == [1]
    assert not (model_dir / ".lock").exists()


def test_a_second_trainer_on_a_directory_in_use_fails_at_once(tmp_path, trained_dir):
    model_dir = _copy(trained_dir, tmp_path)
    before = _tree_hash(model_dir)
    with core_dir.ModelDir.open(model_dir):
        run_tool("translate.train", f"--model_dir={model_dir}",
                 *DATA_FLAGS).one_line_error(f"is in use by PID {os.getpid()}")
    assert _tree_hash(model_dir) == before


def test_default_run_directory_is_named_after_the_data():
    import translate.train as train

    train.define_flags()
    cases = [([], "en-fr"), (["--builtin_pair=en-de"], "en-de"),
             (["--train_file=data/spa.txt", "--reverse"], "spa-reversed"),
             (["--train_src=c/train.de", "--train_tgt=c/train.en"], "train.de-en"),
             (["--train_src=a.src", "--train_tgt=b.tgt"], "a.src-b.tgt")]
    for args, name in cases:
        with flagsaver.flagsaver():
            FLAGS.unparse_flags()
            FLAGS(["translate.train", *args])
            assert train.data_name() == name
            path = train.resolve_model_dir(_default_strategy(), seed=3)
            assert path.name.startswith(f"translate__{name}__3__") and not path.exists()


def test_defaults_follow_the_size_of_the_training_file(tmp_path, trained_transformer_dir):
    """A training file of few pairs gets 4,000 SentencePiece pieces a side, no dropout and
    tied embeddings unless the flags say otherwise (a word vocabulary stays uncapped, an RNN
    untied); a large one and the built-in corpus keep the general defaults; a resumed run
    keeps what it was trained with."""
    import translate.train as train

    train.define_flags()
    small, large = train.SMALL_CORPUS_PAIRS - 1, train.SMALL_CORPUS_PAIRS
    # (architecture, subword, vocab_size, tokens_per_batch, dropout, tie_embeddings)
    general = ("transformer", "word", None, 2048, 0.1, False)
    for_small = ("transformer", "sentencepiece", 4000, 2048, 0.0, True)
    cases = [([], small, general),
             (["--train_file=a.tsv"], small, for_small),
             (["--train_src=a.de", "--train_tgt=a.en"], small, for_small),
             (["--train_file=a.tsv"], large, general),
             (["--train_file=a.tsv", "--tokens_per_batch=4096", "--vocab_size=6000",
               "--dropout=0.2", "--notie_embeddings"], small,
              ("transformer", "sentencepiece", 6000, 4096, 0.2, False)),
             (["--train_file=a.tsv", "--subword=word", "--architecture=rnn"], small,
              ("rnn", "word", None, 2048, 0.0, False))]
    for args, pairs, expected in cases:
        with flagsaver.flagsaver():
            FLAGS.unparse_flags()
            FLAGS(["translate.train", *args])
            model, train_config, tokenizers, _ = train.reconcile(tmp_path / "new", pairs)
            assert (model["architecture"], tokenizers["subword"], tokenizers["vocab_size"],
                    train_config.tokens_per_batch, model["dropout"],
                    model["tie_embeddings"]) == expected, args
    with flagsaver.flagsaver():  # the tiny Transformer: built-in corpus, word level, 256 tokens
        FLAGS.unparse_flags()
        FLAGS(["translate.train", "--train_file=a.tsv"])
        model, train_config, tokenizers, _ = train.reconcile(trained_transformer_dir, small)
    assert (model["architecture"], tokenizers["subword"], tokenizers["vocab_size"],
            train_config.tokens_per_batch, model["dropout"], model["tie_embeddings"]) == (
        "transformer", "word", None, 256, 0.1, False)


def _default_strategy():
    import tensorflow as tf

    return tf.distribute.get_strategy()


README_FLAGS = {
    "translate.train": ["model_dir", "builtin_pair", "train_file", "reverse", "train_src",
                        "train_tgt", "dev_file", "dev_src", "dev_tgt", "test_file", "test_src",
                        "test_tgt", "subword", "architecture", "cell", "units", "attention",
                        "heads", "ff_dim", "num_layers", "tokens_per_batch", "learning_rate",
                        "time_budget_minutes", "max_steps", "eval_every", "patience",
                        "decay_steps", "precision", "mixed_precision", "seed", "jit_compile",
                        "strategy", "cpu_devices", "keep_checkpoints", "guided_alignment_weight"],
    "translate.translate": ["model_dir", "beam_width", "length_penalty", "coverage_penalty",
                            "n_best", "input_file", "output_file", "plot_dir", "batch_size",
                            "average_last", "sampling", "sampling_topk", "sampling_topp",
                            "sampling_temperature", "seed", "replace_unknown",
                            "alignment_format", "attention_json", "attention_heads"],
    "translate.evaluate": ["model_dir", "src_file", "ref_file", "beam_width", "length_penalty",
                           "coverage_penalty", "batch_size", "output_json", "average_last",
                           "sampling", "sampling_topk", "sampling_topp",
                           "sampling_temperature", "seed", "replace_unknown", "ref_alignments",
                           "attention_heads"],
    "translate.export": ["model_dir", "export_dir", "beam_width", "length_penalty",
                         "coverage_penalty", "check_file", "average_last"],
    "translate.average": ["model_dir", "last", "output_dir"],
}


@pytest.mark.parametrize("module", sorted(README_FLAGS))
def test_help_lists_every_flag_the_readme_uses(module, monkeypatch):
    """absl's --help shows the key flags of sys.argv[0]: every flag of the README for a tool
    must be one, with a real help text."""
    import importlib

    monkeypatch.setattr(sys, "argv", [f"/fake/{module}.py"])
    importlib.import_module(module).define_flags()
    key_flags = {f.name: f for f in FLAGS.get_key_flags_for_module(sys.argv[0])}
    missing = [name for name in README_FLAGS[module] if name not in key_flags]
    assert not missing, missing
    for name in README_FLAGS[module]:
        assert key_flags[name].help and not key_flags[name].help.startswith(("TrainConfig.",
                                                                             "ModelConfig."))


def test_translate_in_a_pipe_answers_each_line_as_it_arrives(trained_dir):
    """A fresh process (as a user runs it): the first translation comes back before the second
    line is sent, and nothing but the translations is printed."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "translate.translate", f"--model_dir={trained_dir}"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=ROOT, env={k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"})
    timer = threading.Timer(300, proc.kill)
    timer.start()
    try:
        proc.stdin.write("May 3, 1950\n")
        proc.stdin.flush()
        first = proc.stdout.readline()  # blocks until it is translated
        assert first.endswith("\n") and proc.poll() is None
        rest, err = proc.communicate("twelve\n")
    finally:
        timer.cancel()
    assert proc.returncode == 0, err
    assert len(rest.splitlines()) == 1
    assert err == ""


def test_export_runs_without_the_project_and_through_saved_model_cli(tmp_path, trained_dir):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    export = tmp_path / "new" / "export"
    result = subprocess.run(
        [sys.executable, "-m", "translate.export", f"--model_dir={trained_dir}",
         f"--export_dir={export}"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stderr == ""  # no INFO lines
    assert result.stdout.startswith("exported step ") and f"to {export} (signature" in result.stdout
    script = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("attn_core", "translate"):
            raise ImportError("the project must not be needed: " + name)
sys.meta_path.insert(0, Block())
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
sentences = tf.constant(["May 3, 1950", "twelve"])
out = loaded.signatures["translate"](sentences=sentences)
heads = loaded.signatures["translate_all_heads"](sentences=sentences)["attention"]
assert heads.shape == (2, 1, 1) + tuple(out["attention"].shape[1:]), heads.shape
tf.debugging.assert_near(heads[:, 0, 0], out["attention"])
print(out["translation"].shape, out["attention"].shape[0], out["attention"].dtype.name)
"""
    result = subprocess.run([sys.executable, "-c", script, str(export)], capture_output=True,
                            text=True, cwd=tmp_path, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-3:] == ["(2,)", "2", "float32"]
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    result = subprocess.run(
        [cli, "run", "--dir", str(export), "--tag_set", "serve", "--signature_def", "translate",
         "--input_exprs", 'sentences=["May 3, 1950"]'],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "translation" in result.stdout


def test_long_phases_report_progress_and_short_ones_stay_silent():
    from attn_core import progress
    from translate.builtin_corpus import builtin_corpus
    from translate.tokenizer import Tokenizer

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        with progress.phase("corpus", 30, unit="pair", delay=0.0) as phase:
            data = builtin_corpus("en-fr", 10, 10, 10, seed=0, progress=phase.update)
        with progress.phase("tokenizers", 10, unit="sentence", delay=60.0) as quiet:
            Tokenizer.fit([s for s, _ in data.train], "en", progress=quiet.update)
    assert err.getvalue().splitlines()[-1].startswith("corpus: pair 30/30 (100%)")
    assert "tokenizers" not in err.getvalue()


def _no_decoding(monkeypatch):
    from translate.translator import Translator

    def fail(*args, **kwargs):
        raise AssertionError("decoded")

    monkeypatch.setattr(Translator, "translate", fail)


def test_ref_alignments_that_do_not_fit_the_sentences_fail_before_decoding(tmp_path,
                                                                           trained_dir,
                                                                           monkeypatch):
    """The model directory of a built-in run holds data/test.{src,ref,align}; a gold file with
    a line too few, or a link outside its sentence, is an error naming file and line."""
    _no_decoding(monkeypatch)
    data = trained_dir / "data"
    lines = (data / "test.align").read_text(encoding="utf-8").splitlines()
    sources = (data / "test.src").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(sources) == 8
    args = [f"--model_dir={trained_dir}", f"--src_file={data}/test.src",
            f"--ref_file={data}/test.ref", f"--output_json={tmp_path}/scores.json"]
    short = tmp_path / "short.align"
    short.write_text("\n".join(lines[:7]) + "\n", encoding="utf-8")
    run_tool("translate.evaluate", *args, f"--ref_alignments={short}").one_line_error(
        f"{short}:8: has 7 lines for 8 sentences")
    wide = tmp_path / "wide.align"
    wide.write_text("\n".join(lines[:2] + ["0-0 99-0"] + lines[3:]) + "\n", encoding="utf-8")
    run_tool("translate.evaluate", *args, f"--ref_alignments={wide}").one_line_error(
        f"{wide}:3: link 99-0 is out of range")
    assert not (tmp_path / "scores.json").exists()


def test_translate_prints_pharaoh_alignments_and_writes_every_head(tmp_path,
                                                                   trained_transformer_dir):
    """Beam search with two hypotheses a sentence: each is followed by its hard alignment,
    the JSON lines hold the best one's attention of every layer and head, whose last-layer
    head mean gives that alignment; `--attention_heads=L:H` uses that head; `all` plots
    grids."""
    from translate import alignment

    model_dir = trained_transformer_dir
    src = model_dir / "data" / "test.src"
    sources = src.read_text(encoding="utf-8").splitlines()
    common = [f"--model_dir={model_dir}", f"--input_file={src}", "--beam_width=3",
              "--alignment_format=pharaoh"]
    result = run_tool("translate.translate", *common, "--n_best=2",
                      f"--attention_json={tmp_path}/attention.jsonl", "--attention_heads=all",
                      f"--plot_dir={tmp_path}/plots")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    records = [json.loads(line) for line in
               (tmp_path / "attention.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(records) == len(sources) == 8
    for source, line, record in zip(sources, lines, records, strict=True):
        fields = line.split("\t")
        assert len(fields) == 4 and fields[0] == record["translation"]
        assert record["source"] == source and record["source_tokens"][-1] == "</s>"
        attention = np.array(record["attention"])
        t, s = len(record["target_tokens"]), len(record["source_tokens"])
        assert attention.shape == (2, 2, t, s)
        np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-3)
        source_ids, _ = alignment.word_ids(record["source_tokens"])
        target_ids, target_words = alignment.word_ids(record["target_tokens"])
        links = alignment.parse_pharaoh(fields[1]).sure
        assert sorted(j for _, j in links) == list(range(len(target_words)))
        assert links == set(alignment.hard_alignment(attention[1].mean(0), target_ids,
                                                     source_ids))
        alignment.parse_pharaoh(fields[3])  # the second hypothesis' alignment
    assert len(list((tmp_path / "plots").glob("sentence_*.png"))) == 8
    result = run_tool("translate.translate", *common, "--attention_heads=0:1")
    assert result.returncode == 0, result.stderr
    for line, record in zip(result.stdout.splitlines(), records, strict=True):
        attention = np.array(record["attention"])
        source_ids, _ = alignment.word_ids(record["source_tokens"])
        target_ids, _ = alignment.word_ids(record["target_tokens"])
        assert alignment.parse_pharaoh(line.split("\t")[1]).sure == set(
            alignment.hard_alignment(attention[0, 1], target_ids, source_ids))


def test_evaluate_reports_the_aer_of_the_pharaoh_alignments(tmp_path, trained_transformer_dir):
    """evaluate's AER is that of translate's Pharaoh output against the gold file, for the
    head mean and for each layer:head."""
    from translate import alignment

    model_dir = trained_transformer_dir
    data = model_dir / "data"
    gold = alignment.read_pharaoh(data / "test.align")
    result = run_tool("translate.evaluate", f"--model_dir={model_dir}",
                      f"--src_file={data}/test.src", f"--ref_file={data}/test.ref",
                      f"--ref_alignments={data}/test.align", "--attention_heads=all",
                      f"--output_json={tmp_path}/scores.json")
    assert result.returncode == 0, result.stderr
    assert "AER " in result.stdout and "best layer:head" in result.stdout
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert set(scores["aer_by_head"]) == {"0:0", "0:1", "1:0", "1:1"}
    assert scores["aer_best_head"] in scores["aer_by_head"]
    assert 0 <= scores["aer_same_words"] <= 8
    for heads, aer in [("mean", scores["aer"]), ("1:0", scores["aer_by_head"]["1:0"])]:
        result = run_tool("translate.translate", f"--model_dir={model_dir}",
                          f"--input_file={data}/test.src", "--alignment_format=pharaoh",
                          f"--attention_heads={heads}")
        assert result.returncode == 0, result.stderr
        links = [alignment.parse_pharaoh(line.split("\t")[1]).sure
                 for line in result.stdout.splitlines()]
        assert alignment.alignment_error_rate(links, gold) == pytest.approx(aer)


def test_a_builtin_run_trains_with_guided_alignment_and_reports_aer(trained_transformer_dir):
    """The built-in corpus brings gold alignments: the run trains with guided alignment, logs
    the dev AER and the heads' attention, reports the test AER and writes the gold files."""
    import tensorflow as tf

    from translate import alignment, builtin_corpus

    model_dir = trained_transformer_dir
    metrics = core_dir.read_json(model_dir / "metrics.json")
    assert metrics["guided_alignment"] is True and metrics["attention_heads"] == "mean"
    assert 0.0 <= metrics["aer"] <= 1.0 and 0.0 <= metrics["aer_greedy"] <= 1.0
    data = model_dir / "data"
    for split in ("dev", "test"):
        pairs = list(zip((data / f"{split}.src").read_text(encoding="utf-8").splitlines(),
                         (data / f"{split}.ref").read_text(encoding="utf-8").splitlines(),
                         strict=True))
        assert len(pairs) == 8
        written = [g.sure for g in alignment.read_pharaoh(data / f"{split}.align")]
        assert written == [set(links) for links in builtin_corpus.gold_alignments(pairs)]
    tags = set()
    for path in model_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            tags |= {value.tag for value in event.summary.value}
    assert {"eval/aer", "losses/guided_alignment", "attention/dev_0"} <= tags
