"""Periodic greedy evaluations (`--eval_every`), the best policy in `best/` and its metrics."""

import hashlib
import json
import shutil

import pytest
from agent_tools import run_tool
from built_once import trained_once

from attn_agents import model_dir as agent_dir
from attn_agents.ppo_config import PPOConfig
from attn_core.errors import UserError

BATCH = 32  # 2 envs x 16 steps
# 3 updates, a periodic evaluation after each; checkpoints only at the end and at each new
# best: the best policy's observation statistics are its own update's.
BEST_TRAIN = ("--env_id=CartPole-v1", "--policy=mlp", "--d_model=16", "--num_heads=2",
              "--ff_dim=16", "--num_envs=2", "--num_steps=16", "--update_epochs=1",
              f"--total_timesteps={3 * BATCH}", "--checkpoint_every=100", "--eval_every=1",
              "--eval_every_episodes=2", "--eval_episodes=2", "--normalize_obs",
              "--nojit_compile", "--noprogress")


@pytest.fixture(scope="session")
def best_dir(tmp_path_factory):
    """The model directory of a `BEST_TRAIN` run (do not modify it: copy it)."""
    return trained_once(tmp_path_factory, "agents_best_policy", run_tool, "attn_agents.train",
                        *BEST_TRAIN)


def _scalars(model_dir, tag):
    """`{step: value}` of a TensorBoard scalar tag in a model directory's event files."""
    import tensorflow as tf

    logged = {}
    for path in model_dir.glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    assert event.step not in logged, (tag, event.step)  # logged once
                    logged[event.step] = float(tf.make_ndarray(value.tensor))
    return logged


def _state(folder, step):
    return json.loads((folder / f"ckpt-{step:08d}.json").read_text())["extra_state"]


def _hashes(path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_only_a_strictly_greater_return_replaces_the_best():
    from attn_agents.ppo_trainer import is_improvement

    assert is_improvement(9.0, None)  # the first evaluation
    assert is_improvement(-9.0, None)
    assert is_improvement(20.5, 20.0) and is_improvement(-90.0, -100.0)
    assert not is_improvement(20.0, 20.0)  # a tie keeps the earlier policy
    assert not is_improvement(19.0, 20.0) and not is_improvement(-100.0, -90.0)


@pytest.mark.parametrize("field, value, expected", [
    ("eval_every", -1, "Received: eval_every=-1"),
    ("eval_every_episodes", 0, "Received: eval_every_episodes=0"),
])
def test_ppo_config_refuses_bad_periodic_evaluations(field, value, expected):
    with pytest.raises(UserError, match=expected):
        PPOConfig(**{field: value})


def test_periodic_evaluations_keep_the_best_policy(best_dir):
    from attn_agents.ppo_trainer import _State

    periodic = _scalars(best_dir, "eval/periodic_mean_return")
    assert sorted(periodic) == [BATCH, 2 * BATCH, 3 * BATCH]  # after every update
    # The best is the first evaluation of the highest return (a tie does not replace it).
    top = max(periodic.values())
    first_top = min(step for step, value in periodic.items() if value == top)
    metrics = json.loads((best_dir / "metrics.json").read_text())
    assert metrics["best_step"] == first_top and metrics["best_step"] % BATCH == 0
    assert metrics["best_selection_return"] == top
    assert metrics["eval_episodes"] == 2 and "eval_mean_return" in metrics
    assert _scalars(best_dir, "eval/best_mean_return") == {
        3 * BATCH: pytest.approx(metrics["best_eval_mean_return"])}
    assert metrics["best_eval_std_return"] >= 0
    best_update = first_top // BATCH
    if best_update == 3:  # the final policy: the same episodes, the same returns
        assert metrics["best_eval_mean_return"] == metrics["eval_mean_return"]
    # The checkpoint records the best; one from before these fields restores without it.
    state = _state(best_dir / agent_dir.CHECKPOINTS, 3)
    assert (state["best_return"], state["best_step"], state["best_update"]) == (
        top, first_top, best_update)
    # A new best is checkpointed at once (a run killed after it resumes knowing it), beside
    # the scheduled checkpoint of update 3; the manager keeps the newest 2.
    values = [periodic[u * BATCH] for u in (1, 2, 3)]
    improved = {u for u in (1, 2, 3) if all(values[u - 1] > v for v in values[:u - 1])}
    kept = sorted(int(p.stem.split("-")[1])
                  for p in (best_dir / agent_dir.CHECKPOINTS).glob("ckpt-*.json"))
    assert kept == sorted(improved | {3})[-2:], (kept, values)
    assert _state(best_dir / agent_dir.CHECKPOINTS, best_update)["best_return"] == top
    old = {k: v for k, v in state.items() if not k.startswith("best_")}
    assert _State(**old).best_return is None
    # best/ holds that policy with the observation statistics of its own update: the reset's
    # observations and 16 steps per update of 2 envs (on top of RunningMeanStd's 1e-4).
    best = _state(best_dir / agent_dir.BEST, best_update)
    assert (best["update"], best["global_step"], best["selection_return"]) == (
        best_update, first_top, top)
    assert best["obs_rms"]["count"] == pytest.approx(2 * (1 + 16 * best_update) + 1e-4)


def test_a_resumed_run_keeps_the_best(best_dir, tmp_path):
    """A best return restored from the checkpoint (here one no evaluation reaches) is what
    the resumed run's evaluations must beat; `--eval_every` may change on resume."""
    model_dir = tmp_path / "model"
    shutil.copytree(best_dir, model_dir)
    path = model_dir / agent_dir.CHECKPOINTS / "ckpt-00000003.json"
    saved = json.loads(path.read_text())
    best_step = saved["extra_state"]["best_step"]
    saved["extra_state"]["best_return"] = 1e9
    path.write_text(json.dumps(saved))
    best_files = _hashes(model_dir / agent_dir.BEST)
    result = run_tool("attn_agents.train", f"--model_dir={model_dir}",
                      f"--total_timesteps={5 * BATCH}", "--eval_every=2", "--noprogress",
                      "--nojit_compile")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert "resuming with --eval_every=2 (was 1)" in lines
    periodic = [line for line in lines if line.startswith("periodic evaluation")]
    assert len(periodic) == 1 and periodic[0].startswith(
        f"periodic evaluation at update 4 (step {4 * BATCH})"), periodic
    assert periodic[0].endswith(f"the best is 1000000000.00 (step {best_step})"), periodic
    assert _hashes(model_dir / agent_dir.BEST) == best_files  # not replaced
    state = _state(model_dir / agent_dir.CHECKPOINTS, 5)
    assert (state["best_return"], state["best_step"]) == (1e9, best_step)
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["updates"] == 5 and metrics["best_step"] == best_step


def test_evaluate_the_best_policy(best_dir, tmp_path):
    best_step = json.loads((best_dir / "metrics.json").read_text())["best_step"]
    scores = tmp_path / "scores.json"
    result = run_tool("attn_agents.evaluate", f"--model_dir={best_dir}", "--episodes=2",
                      "--policy_weights=best", f"--output_json={scores}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"(mlp, best, step {best_step}): return" in result.stdout, result.stdout
    assert json.loads(scores.read_text())["policy_weights"] == "best"
    assert agent_dir.load_agent(best_dir)[3]["global_step"] == 3 * BATCH  # final by default
    # Without best/ (a run without --eval_every): one line naming it, before any work.
    model_dir = tmp_path / "model"
    shutil.copytree(best_dir, model_dir, ignore=shutil.ignore_patterns(agent_dir.BEST))
    run_tool("attn_agents.evaluate", f"--model_dir={model_dir}", "--policy_weights=best",
             f"--output_json={tmp_path / 'out' / 'scores.json'}").one_line_error(
        f"Expected a best policy in {model_dir / agent_dir.BEST}", "--eval_every")
    assert not (tmp_path / "out").exists()
    run_tool("attn_agents.evaluate", f"--model_dir={model_dir}",
             "--policy_weights=last").one_line_error("--policy_weights=last")
