"""Model directories: the saved config wins, the lock, a damaged checkpoint, Ctrl-C."""

import hashlib
import json
import shutil
import signal

from agent_tools import TINY_TRAIN, run_tool

from attn_agents import model_dir as agent_dir


def _hashes(path):
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_resume_with_other_model_flags_is_one_line_and_touches_nothing(trained_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained_dir, model_dir)
    before = _hashes(model_dir)
    line = run_tool("attn_agents.train", f"--model_dir={model_dir}", "--d_model=32",
                    "--noprogress", "--nomask_velocity", "--total_timesteps=96",
                    "--seed=3").one_line_error()
    for fragment in ("--d_model (saved 16, given 32)", "--mask_velocity (saved True, given "
                     "False)", "--seed (saved 0, given 3)"):
        assert fragment in line, line
    assert "total_timesteps" not in line  # the schedule may change
    # The same settings given explicitly are no conflict; the lock is checked before writing.
    from attn_core.model_dir import ModelDir

    with ModelDir.open(model_dir):
        run_tool("attn_agents.train", f"--model_dir={model_dir}",
                 *TINY_TRAIN).one_line_error("is in use by PID")
    assert _hashes(model_dir) == before
    model, env_config, policy_config, state = agent_dir.load_agent(model_dir)
    assert policy_config.d_model == 16 and state["update"] == 2


def test_a_directory_from_before_memory_gate_resumes_ungated(trained_dir, tmp_path):
    """An agent_config.json without `memory_gate` is an ungated memory: it loads, and an
    explicit --memory_gate=gru is a conflict rather than a model its checkpoint lacks."""
    model_dir = tmp_path / "model"
    shutil.copytree(trained_dir, model_dir)
    path = model_dir / agent_dir.CONFIG_NAME
    raw = json.loads(path.read_text())
    del raw["policy"]["memory_gate"]
    path.write_text(json.dumps(raw))
    run_tool("attn_agents.train", f"--model_dir={model_dir}", "--memory=3",
             "--memory_gate=gru").one_line_error("--memory_gate (saved 'none', given 'gru')")
    model, _, policy_config, _ = agent_dir.load_agent(model_dir)
    assert policy_config.memory_gate == "none" and not model.memory.gates


def test_resume_skips_a_truncated_checkpoint_and_takes_the_saved_config(trained_dir, tmp_path):
    model_dir = tmp_path / "model"
    shutil.copytree(trained_dir, model_dir)
    newest = model_dir / "checkpoints" / "ckpt-00000002.npz"
    newest.write_bytes(newest.read_bytes()[:200])
    (model_dir / "checkpoints" / ".ckpt-00000003.npz.abc.tmp").write_bytes(b"partial")
    # Only the schedule is given: the model flags come from agent_config.json.
    result = run_tool("attn_agents.train", f"--model_dir={model_dir}", "--total_timesteps=96",
                      "--noprogress", "--nojit_compile")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert any(line.startswith("warning: skipping the damaged checkpoint of step 2")
               for line in lines), result.stdout
    assert "resumed from update 1 (step 32)" in lines
    assert "resuming with --total_timesteps=96 (was 64)" in lines
    assert '"updates": 3' in result.stdout
    assert not list(model_dir.rglob(".*"))  # the lock and the leftover temporary file
    assert agent_dir.read_saved(model_dir)["total_timesteps"] == 96


def test_ctrl_c_saves_a_checkpoint_and_exits_130(tmp_path, monkeypatch):
    """The first Ctrl-C (here during the first rollout) stops after that update."""
    from attn_agents import ppo_trainer

    collect = ppo_trainer._Rollout.collect

    def interrupted_collect(self, state, rng):
        if state.update == 1:
            signal.raise_signal(signal.SIGINT)
        return collect(self, state, rng)

    monkeypatch.setattr(ppo_trainer._Rollout, "collect", interrupted_collect)
    model_dir = tmp_path / "model"
    result = run_tool("attn_agents.train", f"--model_dir={model_dir}", *TINY_TRAIN,
                      "--policy=mlp", "--memory=0", "--nomask_velocity")  # the cheapest
    result.one_line_error(f"interrupted: saved step 1; resume with --model_dir={model_dir}",
                          code=130, prefix="interrupted: ")
    assert "interrupt: stopping after this update" in result.stdout
    assert (model_dir / "checkpoints" / "ckpt-00000001.npz").exists()
    assert not (model_dir / "metrics.json").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
