"""The gan entry points as a user meets them: a mistake is one line `error: ...` and exit
status 2, written before anything else (no model directory left behind); resume, lock,
damaged checkpoints and Ctrl-C; and `--help` lists every flag the README uses.

Most cases run the entry point's `main` in this process (`gan_cases.run_main`, as
`python -m` would); the one that must split the CPU before TensorFlow starts runs the CLI.
"""

import json
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys

import pytest
from gan_cases import TINY_FLAGS, assert_one_error_line, run_main, tree_digest

from attn_core.model_dir import ModelDir
from gan import attention_map, generate, train, train_classifier

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def model_copy(trained_dir, tmp_path):
    """A copy of the 2-step model directory that a test may change."""
    copy = tmp_path / "model"
    shutil.copytree(trained_dir, copy)
    return copy


def _train(capsys, *args):
    code = run_main(train, list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name, args, message", [
    ("missing_folder", ["--dataset=folder:{root}/nope"], "nope: no such folder"),
    ("no_images", ["--dataset=folder:{root}/empty"], "empty: no image files"),
    ("resolution", ["--resolution=48"], "Received: resolution=48"),
    ("unknown_dataset", ["--dataset=imagenet"], "Received: dataset='imagenet'"),
    ("bad_extractor", ["--fid_extractor=inception:{root}/missing.h5",
                       "--dataset=folder:{root}/empty"], "no image files"),
    ("missing_weights", ["--fid_extractor=inception:{root}/missing.h5",
                         "--dataset=folder:{images}"], "missing.h5: no such InceptionV3"),
    ("extractor_spec", ["--fid_extractor=fid"], "Received: fid_extractor='fid'"),
    ("classifier_dir_through_a_file", ["--dataset=folder:{images}", "--eval_samples=10",
                                       "--classifier_dir={root}/file/classifier"],
     "--classifier_dir={root}/file/classifier to be a directory"),
    ("too_few_test_images", ["--dataset=folder:{images}", "--eval_samples=10"],
     "Received: 2 test images"),
    ("model_dir_through_a_file", ["--model_dir={root}/file/model"],
     "--model_dir={root}/file/model to be a directory"),
    ("zero_steps", ["--steps=0"], "Received: steps=0"),
    ("negative_lr", ["--g_lr=-1"], "--g_lr"),
    ("workdir_removed", ["--workdir={root}/w"], "workdir"),
    ("jit_compile_mirrored", ["--jit_compile", "--strategy=mirrored"],
     "--jit_compile only with --strategy=default"),
    ("multi_worker_without_model_dir", ["--strategy=multi_worker", "--model_dir="],
     "Expected --model_dir with --strategy=multi_worker"),
    ("stray_argument", ["extra"], "unexpected arguments: extra"),
])
def test_bad_input_is_one_line_and_exit_2_and_leaves_no_directory(
        capsys, tmp_path, image_folder, name, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("not a directory\n")
    fill = {"root": tmp_path, "images": image_folder}
    model_dir = tmp_path / "run"
    if name == "stray_argument":  # cli.run's check, before main
        from attn_core import cli

        with pytest.raises(SystemExit) as info:
            cli.guarded(train.main)(["prog", "extra"])
        code, err = info.value.code, capsys.readouterr().err
    else:
        extra = [] if any(a.startswith("--model_dir") for a in args) else [
            f"--model_dir={model_dir}"]
        code, _, err = _train(capsys, *extra, *[a.format(**fill) for a in args],
                              "--steps=1" if "--steps=0" not in args else "--log_every=1")
    assert_one_error_line(code, err, message.format(**fill))
    assert not model_dir.exists()


def test_batch_not_split_over_the_replicas_is_one_line(tmp_path):
    """The real CLI: --cpu_devices splits the CPU before TensorFlow starts."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(
        [sys.executable, "-m", "gan.train", f"--model_dir={tmp_path / 'run'}", "--steps=1",
         "--strategy=mirrored", "--cpu_devices=2", "--batch_size=7",
         f"--dataset=folder:{tmp_path / 'nope'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert_one_error_line(result.returncode, result.stderr,
                          "multiple of the 2 replicas. Received: batch_size=7")
    assert not (tmp_path / "run").exists()


def test_resume_with_other_model_flags_is_refused_and_changes_nothing(capsys, trained_dir,
                                                                      image_folder, tmp_path):
    before = tree_digest(trained_dir)
    code, out, err = _train(capsys, f"--model_dir={trained_dir}", "--g_channels=16",
                            "--attention=none", "--batch_size=4", "--steps=3",
                            f"--dataset=folder:{image_folder}")
    assert_one_error_line(code, err, "--g_channels (saved 8, given 16)",
                          "--attention (saved 'sagan', given 'none')",
                          "--batch_size (saved 8, given 4)")
    assert out == "" and tree_digest(trained_dir) == before
    assert run_main(generate, [f"--model_dir={trained_dir}", f"--out={tmp_path / 'g.png'}",
                               "--num=2"]) == 0  # the model still loads


def test_resume_keeps_the_saved_settings_and_logs_schedule_changes(capsys, model_copy):
    (model_copy / "checkpoints" / "ckpt-00000002.npz").write_bytes(b"PK\x03\x04 truncated")
    code, out, err = _train(capsys, f"--model_dir={model_copy}", "--steps=3")
    assert code == 0, err
    assert "resuming with --steps=3 (was 2)" in out
    # The damaged newest checkpoint is skipped, and the run resumes from the one before.
    assert "warning: skipping the damaged checkpoint of step 2" in out
    assert "resumed from step 1" in out
    metrics = json.loads((model_copy / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["stop_reason"] == "steps"
    saved = json.loads((model_copy / "train_config.json").read_text())
    assert saved["train_config"]["steps"] == 3 and saved["train_config"]["batch_size"] == 8
    assert saved["precision_policy"] == "float32" and saved["precision"] == "auto"
    assert "precision: float32 (auto)" in out
    assert not list(model_copy.rglob("*.tmp")) and not (model_copy / ".lock").exists()


def test_a_second_trainer_on_a_directory_in_use_is_refused(capsys, trained_dir):
    before = tree_digest(trained_dir)
    with ModelDir.open(trained_dir):
        code, _, err = _train(capsys, f"--model_dir={trained_dir}", "--steps=3")
    assert_one_error_line(code, err, f"is in use by PID {os.getpid()} on host "
                                     f"{socket.gethostname()}")
    assert tree_digest(trained_dir) == before


def test_ctrl_c_saves_a_checkpoint_and_exits_130(capsys, tmp_path, image_folder, monkeypatch):
    from gan.trainer import Trainer

    step = Trainer.train_step

    def interrupted_at_step_2(self):
        out = step(self)
        if self.state.step == 2:
            signal.raise_signal(signal.SIGINT)  # as Ctrl-C: the step in progress completes
        return out

    monkeypatch.setattr(Trainer, "train_step", interrupted_at_step_2)
    handler = signal.getsignal(signal.SIGINT)
    model_dir = tmp_path / "run"
    code, _, err = _train(capsys, f"--model_dir={model_dir}", f"--dataset=folder:{image_folder}",
                          "--steps=50", *TINY_FLAGS, "--checkpoint_every=40")
    assert code == 130, err
    assert err.strip().splitlines()[-1] == (
        f"interrupted: saved step 2; resume with --model_dir={model_dir}")
    assert json.loads((model_dir / "checkpoints" / "checkpoint.json").read_text())["latest"] == 2
    assert signal.getsignal(signal.SIGINT) is handler
    assert not (model_dir / ".lock").exists()


def test_jit_compile_trains(capsys, tmp_path, image_folder):
    model_dir = tmp_path / "run"
    code, out, err = _train(capsys, f"--model_dir={model_dir}", f"--dataset=folder:{image_folder}",
                            "--steps=1", *TINY_FLAGS, "--attention=none", "--jit_compile")
    assert code == 0, err
    assert ", XLA" in out
    assert json.loads((model_dir / "metrics.json").read_text())["jit_compile"] is True


@pytest.mark.parametrize("module, args, message", [
    (generate, ["--model_dir={root}/none"], "--model_dir={root}/none does not exist"),
    (generate, ["--model_dir={root}"], "has no model_config.json"),
    (generate, ["--model_dir={model}", "--label=1"], "--label only for a conditional model"),
    (generate, ["--model_dir={model}", "--out={root}/file/grid.png"], "is a file"),
    (generate, ["--num=0", "--model_dir={model}"], "--num"),
    (attention_map, ["--model_dir={model}", "--queries=1,2,3"], "row,col pairs in [0, 8)"),
    (attention_map, ["--model_dir={model}", "--queries=a,b"], "Expected integer --queries"),
    (attention_map, ["--model_dir={model}", "--out={root}/file/a.png"], "is a file"),
    (attention_map, ["--model_dir={sngan}"], "--attention=none"),
    (attention_map, [], "--model_dir"),
    (train_classifier, ["--classifier_dir={root}/file/c"], "to be a directory"),
    (train_classifier, ["--dataset=imagenet", "--classifier_dir={root}/c"],
     "Received: dataset='imagenet'"),
])
def test_tool_mistakes_are_one_line(capsys, tmp_path, trained_dir, module, args, message):
    (tmp_path / "file").write_text("not a directory\n")
    sngan = tmp_path / "sngan"
    sngan.mkdir()
    config = json.loads((trained_dir / "model_config.json").read_text())
    (sngan / "model_config.json").write_text(json.dumps(config | {"attention": "none"}))
    fill = {"root": tmp_path, "model": trained_dir, "sngan": sngan}
    code = run_main(module, [a.format(**fill) for a in args])
    assert_one_error_line(code, capsys.readouterr().err, message.format(**fill))
    assert not (tmp_path / "c").exists()


def test_tools_use_the_newest_intact_checkpoint(capsys, model_copy, tmp_path):
    (model_copy / "checkpoints" / "ckpt-00000002.npz").write_bytes(b"")
    out_file = tmp_path / "new" / "folder" / "grid.png"
    assert run_main(generate, [f"--model_dir={model_copy}", "--num=4", f"--out={out_file}",
                               "--columns=2"]) == 0
    out = capsys.readouterr().out
    assert "skipping the damaged checkpoint of step 2" in out
    assert "4 samples of step 1 written to" in out and out_file.stat().st_size > 0


def _readme_flags(module):
    """The flags the README, docs/gan and the module's own usage use with gan.<module>."""
    texts = [(ROOT / "README.md").read_text()] + [
        p.read_text() for p in sorted((ROOT / "docs" / "gan").glob("*.md"))] + [
        (ROOT / "gan" / f"{module}.py").read_text().split('"""')[1]]
    found = set()
    for text in texts:
        for line in text.splitlines():
            for match in re.finditer(rf"gan\.{module}\b([^`]*)", line):
                found |= set(re.findall(r"--([a-z][a-z0-9_]*)", match.group(1)))
    if module == "train":
        readme = texts[0]
        for heading in ("**Key flags** of `gan.train`", "**Common flags**"):
            section = readme[readme.index(heading):]
            section = section[:section.index("\n\n", section.index("\n- "))]
            found |= set(re.findall(r"--([a-z][a-z0-9_]*)", section))
    return found


@pytest.mark.parametrize("module", [train, generate, attention_map, train_classifier])
def test_help_lists_every_flag_the_readme_uses(module):
    from absl import flags

    flag_values = flags.FlagValues()
    module.define_flags(flag_values)
    # `python -m` runs the module as __main__: absl's --help shows the flags it defines and
    # the key flags registered for sys.argv[0] (the generated and common ones).
    shown = flag_values.module_help(module.__name__) + flag_values.main_module_help()
    listed = set(re.findall(r"^\s+--(?:\[no\])?([a-z][a-z0-9_]*)", shown, re.MULTILINE))
    name = module.__name__.split(".")[1]
    wanted = _readme_flags(name)
    assert wanted, name
    assert wanted <= listed, sorted(wanted - listed)
    for flag in listed:  # real help, not a placeholder
        text = flag_values[flag].help
        assert text and not re.fullmatch(r"\w+Config\.\w+\.", text), flag
