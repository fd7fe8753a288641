r"""Evaluate a trained agent, record an episode and draw where it looks.

    python -m attn_agents.evaluate --model_dir=D --episodes=100 \
        [--video=out.mp4|out.gif] [--attention_plot=out.png]

Prints the return statistics of greedy episodes. `--video` records one episode;
`--attention_plot` draws the attention of the middle step of that episode: bars over the
features of vector observations, a heatmap over the frame (images) or the grid (MiniGrid),
and the weights over the memory steps with --memory.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pathlib  # noqa: E402
import sys  # noqa: E402

from absl import app, flags  # noqa: E402

from attn_agents.env_error import EnvError  # noqa: E402

FLAGS = flags.FLAGS
VIDEO_SUFFIXES = (".mp4", ".gif")


def define_flags():
    flags.DEFINE_string("model_dir", None, "Model directory written by attn_agents.train.",
                        required=True)
    flags.DEFINE_integer("episodes", 100, "Evaluation episodes.", lower_bound=0)
    flags.DEFINE_integer("seed", 12345, "Seed of the evaluation environments.", lower_bound=0)
    flags.DEFINE_bool("greedy", True, "Take the most likely action (else sample).")
    flags.DEFINE_string("video", None, "Record one episode to this .mp4 or .gif file.")
    flags.DEFINE_string("attention_plot", None, "Draw one step's attention to this .png.")
    flags.DEFINE_integer("max_video_steps", 1000, "Stop the recorded episode after this many "
                         "steps.", lower_bound=1)


def record_episode(model, env_config, obs_rms, seed, render, max_steps, greedy=True):
    """Plays one episode; returns (frames, observations, token weights, memory weights, return).
    """
    import numpy as np

    from attn_agents.agent import Agent
    from attn_agents.env_factory import make_env
    from attn_agents.evaluation import normalize_obs

    env = make_env(env_config, render_mode="rgb_array" if render else None)
    agent = Agent(model, num_envs=1)
    obs, _ = env.reset(seed=seed)
    frames, observations, token_w, memory_w, total = [], [], [], [], 0.0
    for _ in range(max_steps):
        if render:
            frames.append(env.render())
        batch = normalize_obs(
            {k: np.asarray(v)[None] for k, v in obs.items()} if isinstance(obs, dict)
            else np.asarray(obs)[None], obs_rms)
        out = agent.act(batch, greedy=greedy)
        observations.append(obs)
        token_w.append(out.token_weights[0])
        memory_w.append(out.memory_weights[0])
        obs, reward, terminated, truncated, _ = env.step(out.env_action[0])
        total += float(reward)
        if terminated or truncated:
            break
    env.close()
    return frames, observations, token_w, memory_w, total


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        if FLAGS.video and pathlib.Path(FLAGS.video).suffix.lower() not in VIDEO_SUFFIXES:
            raise EnvError(f"Expected --video to end in {' or '.join(VIDEO_SUFFIXES)}. "
                           f"Received: video={FLAGS.video!r}")
        from attn_agents.model_dir import load_configs

        load_configs(FLAGS.model_dir)  # a missing or broken directory fails before TensorFlow
        from attn_core.quiet_import import import_tensorflow_quietly

        import_tensorflow_quietly()
        from attn_agents.model_dir import load_agent

        model, env_config, policy_config, state = load_agent(FLAGS.model_dir)
    except (EnvError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    import numpy as np

    from attn_agents.evaluation import evaluate_policy

    obs_rms = (state or {}).get("obs_rms") or None
    if FLAGS.episodes:
        returns, lengths = evaluate_policy(model, env_config, FLAGS.episodes, obs_rms=obs_rms,
                                           seed=FLAGS.seed, greedy=FLAGS.greedy)
        print(f"{env_config.env_id} ({policy_config.policy}, step "
              f"{(state or {}).get('global_step', '?')}): return {returns.mean():.2f} ± "
              f"{returns.std():.2f} over {len(returns)} episodes (min {returns.min():.2f}, "
              f"max {returns.max():.2f}, mean length {lengths.mean():.1f})")
    if FLAGS.video or FLAGS.attention_plot:
        frames, observations, token_w, memory_w, total = record_episode(
            model, env_config, obs_rms, FLAGS.seed, bool(FLAGS.video), FLAGS.max_video_steps,
            FLAGS.greedy)
        if FLAGS.video:
            import imageio.v2 as imageio

            path = pathlib.Path(FLAGS.video)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix.lower() == ".gif":
                imageio.mimsave(path, frames, duration=1000 / 30, loop=0)
            else:
                imageio.mimsave(path, frames, fps=30, macro_block_size=1)
            print(f"video: {path} ({len(frames)} frames, return {total:.2f})")
        if FLAGS.attention_plot:
            from attn_agents.attention_plot import save_agent_attention

            step = len(observations) // 2
            obs = observations[step]
            picture = obs.get("image") if isinstance(obs, dict) else obs
            path = save_agent_attention(
                FLAGS.attention_plot, model.layout, token_w[step],
                memory_w[step] if policy_config.memory else None,
                observation=np.asarray(picture),
                title=f"{env_config.env_id}, step {step} of {len(observations)}")
            print(f"attention plot: {path}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
