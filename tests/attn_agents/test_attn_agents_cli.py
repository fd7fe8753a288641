"""The command lines: one-line errors with exit status 2, --help, and evaluate's outputs."""

import shutil
import sys

import gymnasium as gym
import pytest
from agent_tools import TINY_TRAIN, run_tool

from attn_agents import model_dir as agent_dir
from attn_agents.env_config import EnvConfig
from attn_agents.policy_config import PolicyConfig
from attn_agents.ppo_config import PPOConfig

NESTED_ID = "AttnAgentsTest/NestedTuple-v0"


class _NestedTupleEnv(gym.Env):
    """An environment whose observations nest a Tuple in a Tuple (never stepped here)."""

    observation_space = gym.spaces.Tuple(
        (gym.spaces.Discrete(2), gym.spaces.Tuple((gym.spaces.Discrete(3),))))
    action_space = gym.spaces.Discrete(2)


if NESTED_ID not in gym.registry:
    gym.register(NESTED_ID, entry_point=_NestedTupleEnv)


@pytest.mark.parametrize("args, fragments", [
    (["--env_id=CartPole-v9"], ["did you mean CartPole-v1"]),
    ([f"--env_id={NESTED_ID}"], ["at most one level of Tuple or Dict",
                                 "Received: observation_space[1]=Tuple(Discrete(3))"]),
    (["--env_id=Pendulum-v1", "--mask_velocity"],
     ["for --mask_velocity. Received: env_id='Pendulum-v1'"]),
    (["--previous_action"], ["POPGym id (popgym-...) for --previous_action",
                             "env_id='CartPole-v1'"]),
    (["--env_id=MiniGrid-Empty-5x5-v0", "--normalize_obs"],
     ["Expected a Box observation space for --normalize_obs"]),
    (["--memory=8", "--chunk_length=5"],
     ["--chunk_length to divide --num_steps", "chunk_length=5, num_steps=32"]),
    (["--num_minibatches=1000"], ["the 256 chunks", "num_minibatches=1000"]),
    (["--env_id=HalfCheetah-v5"], ['pip install "gymnasium[mujoco]"']),
    (["--env_id=phys2d/CartPole-v1"], ["flax", 'pip install "gymnasium[jax]"']),
    (["--d_model=30", "--num_heads=4"], ["divisible by `num_heads`"]),
    (["--num_envs=0"], ["--num_envs=0", "not a positive integer"]),
    (["--eval_every=-1"], ["--eval_every=-1", "not a non-negative integer"]),
    (["--eval_every=abc"], ["--eval_every=abc", "invalid literal for int()"]),
    (["--eval_every_episodes=0"], ["--eval_every_episodes=0", "not a positive integer"]),
    (["--policy=cnn"], ["--policy"]),
    (["--policy=mlp", "--memory=4"], ["Expected --memory=0 with --policy=mlp", "memory=4"]),
    (["--memory_gate=gru"], ["`memory` > 0 with `memory_gate`='gru'", "memory=0"]),
    (["--memory=4", "--memory_gate=lstm"], ["--memory_gate"]),
    (["--memory_read=sigmoid"], ["`memory` > 0 with `memory_read`='sigmoid'", "memory=0"]),
    (["--memory=4", "--memory_read=sum"], ["--memory_read"]),
    (["--strategy=multi_worker", "--model_dir="], ["Expected --model_dir with --strategy"]),
    (["stray"], ["unexpected arguments: stray"]),
], ids=["unknown_id", "nested_space", "mask_velocity", "previous_action", "normalize_dict",
        "chunk_length", "num_minibatches", "mujoco_missing", "flax_missing", "heads", "bad_value",
        "negative_eval_every", "eval_every_not_a_number", "no_eval_every_episodes", "bad_enum",
        "memory_with_mlp", "gate_without_memory", "bad_gate", "read_without_memory", "bad_read",
        "multi_worker_without_dir", "stray_argument"])
def test_train_errors_are_one_line_and_leave_no_directory(tmp_path, args, fragments):
    model_dir = tmp_path / "new"
    result = run_tool("attn_agents.train", f"--model_dir={model_dir}", *args)
    line = result.one_line_error(*fragments)
    # No suggestion of an id that cannot be built here (phys2d/CartPole-v1 needs flax).
    assert "phys2d" not in line.partition("did you mean")[2]
    assert not model_dir.exists()


def test_model_dir_through_a_file_is_one_line(tmp_path):
    (tmp_path / "file").write_text("")
    run_tool("attn_agents.train", f"--model_dir={tmp_path / 'file' / 'run'}").one_line_error(
        "is a file (through")


def test_help_lists_every_flag_the_readme_uses(monkeypatch):
    """What `python -m <tool> --help` lists: the tool's own flags and its key flags."""
    from absl import flags

    readme = {
        "attn_agents.train": (
            "model_dir precision mixed_precision seed jit_compile strategy cpu_devices env_id "
            "num_envs async_envs normalize_obs normalize_reward mask_velocity policy d_model "
            "num_heads attention_layers ff_dim memory patch_size total_timesteps num_steps "
            "num_minibatches update_epochs learning_rate gamma gae_lambda clip_coef "
            "anneal_clip ent_coef target_kl eval_episodes eval_every eval_every_episodes "
            "chunk_length checkpoint_every"),
        "attn_agents.evaluate": ("model_dir episodes video attention_plot output_json seed "
                                 "policy_weights"),
    }
    for module, names in readme.items():
        monkeypatch.setattr(sys, "argv", [module])  # absl's --help lists the main module's
        tool = __import__(module, fromlist=["define_flags"])
        flag_values = flags.FlagValues()
        tool.define_flags(flag_values)
        text = flag_values.module_help(module)
        for name in names.split():
            assert f"--{name}:" in text or f"--[no]{name}:" in text, (module, name)
        assert "TrainConfig." not in text and "PPOConfig." not in text


def _fake_model_dir(path):
    """A model directory with a config but no checkpoint: enough for the path checks."""
    path.mkdir()
    agent_dir.save_configs(path, EnvConfig(), PolicyConfig(d_model=16, num_heads=2, ff_dim=16),
                           PPOConfig())
    return path


def test_evaluate_errors_are_one_line_before_any_work(tmp_path):
    run_tool("attn_agents.evaluate", f"--model_dir={tmp_path}").one_line_error(
        "agent_config.json")
    run_tool("attn_agents.evaluate", f"--model_dir={tmp_path / 'none'}").one_line_error(
        "does not exist")
    model_dir = _fake_model_dir(tmp_path / "model")
    (tmp_path / "file").write_text("")
    for flag in ("attention_plot", "video", "output_json"):
        suffix = ".gif" if flag == "video" else ".out"
        run_tool("attn_agents.evaluate", f"--model_dir={model_dir}",
                 f"--{flag}={tmp_path / 'file' / ('x' + suffix)}").one_line_error(
            f"--{flag}", "is a file")
    run_tool("attn_agents.evaluate", f"--model_dir={model_dir}",
             f"--video={tmp_path / 'x.avi'}").one_line_error(".mp4 or .gif")
    # Past the path checks, the missing checkpoint is one line too.
    run_tool("attn_agents.evaluate", f"--model_dir={model_dir}").one_line_error(
        "Expected a checkpoint")


def test_evaluate_prints_stats_and_writes_plot_video_and_json(trained_dir, tmp_path, capfd):
    """On a copy whose newest checkpoint is truncated: the older one is used, in one line."""
    import json

    model_dir = tmp_path / "model"
    shutil.copytree(trained_dir, model_dir)
    newest = model_dir / "checkpoints" / "ckpt-00000002.npz"
    newest.write_bytes(newest.read_bytes()[:100])
    out = tmp_path / "out"
    plot, video, scores = out / "attention.png", out / "episode.gif", out / "scores.json"
    result = run_tool("attn_agents.evaluate", f"--model_dir={model_dir}", "--episodes=3",
                      f"--attention_plot={plot}", f"--video={video}", f"--output_json={scores}")
    assert result.returncode == 0, result.stderr
    assert "over 3 episodes" in result.stdout and "step 32)" in result.stdout
    notices = result.stderr.strip().splitlines()  # the checkpoint manager's, on stderr
    assert len(notices) == 1, notices
    assert notices[0].startswith("warning: skipping the damaged checkpoint of step 2")
    assert notices[0].endswith("restored step 1")
    # No third-party line that looks like an error: the renderer's "error: XDG_RUNTIME_DIR
    # is invalid" notice, written by its C library on file descriptor 2.
    fd_err = capfd.readouterr().err
    assert not [line for line in fd_err.splitlines() if line.startswith("error:")], fd_err
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000
    assert video.read_bytes()[:3] == b"GIF"
    assert json.loads(scores.read_text())["episodes"] == 3
    assert sorted(p.name for p in model_dir.iterdir()) == sorted(
        p.name for p in trained_dir.iterdir())  # evaluation writes nothing there


def test_train_tiny_run_from_the_command_line(trained_dir):
    import json

    metrics = json.loads((trained_dir / "metrics.json").read_text())
    assert metrics["updates"] == 2 and metrics["precision"] == "float32"
    saved = json.loads((trained_dir / agent_dir.CONFIG_NAME).read_text())
    assert saved["run"] == {"seed": 0, "precision": "float32"}
    assert saved["policy"]["memory"] == 3
    assert not list(trained_dir.rglob(".*"))  # no lock or temporary file left
    assert TINY_TRAIN  # the flags of that run
