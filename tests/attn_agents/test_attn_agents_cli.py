"""The command lines: one-line errors with exit status 2, and evaluate's outputs."""

import os
import subprocess
import sys

import pytest

from attn_agents.env_config import EnvConfig
from attn_agents.policy_config import PolicyConfig
from attn_agents.ppo_config import PPOConfig
from attn_core.flags import CommonConfig

ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          env=ENV, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--env_id=CartPole-v9"], "did you mean CartPole-v1"),
    (["--env_id=Blackjack-v1"], "Received: observation_space=Tuple(Discrete(32)"),
    (["--env_id=Pendulum-v1", "--mask_velocity"], "for --mask_velocity. Received: "
                                                  "env_id='Pendulum-v1'"),
    (["--env_id=CartPole-v1", "--normalize_obs", "--env_id=MiniGrid-Empty-5x5-v0"],
     "Expected a Box observation space for --normalize_obs"),
], ids=["unknown_id", "unsupported_space", "mask_velocity", "normalize_dict"])
def test_train_errors_are_one_line_with_status_2(tmp_path, args, message):
    result = _run("attn_agents.train", f"--model_dir={tmp_path}", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], lines
    assert "Traceback" not in result.stderr


def test_evaluate_without_a_trained_model_is_one_line(tmp_path):
    result = _run("attn_agents.evaluate", f"--model_dir={tmp_path}")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "agent_config.json" in result.stderr


def test_evaluate_prints_stats_and_writes_plot_and_video(tmp_path):
    from attn_agents.ppo_trainer import train_and_evaluate

    train_and_evaluate(EnvConfig(mask_velocity=True, num_envs=2),
                       PolicyConfig(d_model=16, num_heads=2, ff_dim=16, memory=3),
                       PPOConfig(total_timesteps=32, num_steps=16, chunk_length=8,
                                 update_epochs=1, eval_episodes=0),
                       CommonConfig(seed=0), tmp_path, log=lambda *_: None, verbose=0)
    plot, video = tmp_path / "attention.png", tmp_path / "episode.gif"
    result = _run("attn_agents.evaluate", f"--model_dir={tmp_path}", "--episodes=3",
                  f"--attention_plot={plot}", f"--video={video}")
    assert result.returncode == 0, result.stderr
    assert "over 3 episodes" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 5000
    assert video.read_bytes()[:3] == b"GIF"
