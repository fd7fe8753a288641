r"""Evaluate a trained agent, record an episode and draw where it looks.

    python -m attn_agents.evaluate --model_dir=D --episodes=100 \
        [--video=out.mp4|out.gif] [--attention_plot=out.png] [--output_json=eval.json] \
        [--html=attention.html] [--policy_weights=best]

Prints the return statistics of greedy episodes (and writes them to --output_json).
`--video` records one episode; `--attention_plot` draws the attention of the middle step of
that episode: bars over the features of vector observations, a heatmap over the frame
(images) or the grid (MiniGrid), and the weights over the memory steps with --memory (and
prints how many steps back the memory weight peaks, on average over the episode).
`--html` writes the attention of every step of that episode (the tokens, and the memory with
--memory) as one self-contained interactive page, the view of TensorBoard's Attention tab
(data and script inline, no network); its folder must exist.

The policy is the newest intact checkpoint of the model directory (a damaged newer one is
skipped with one line), or with `--policy_weights=best` the best periodic evaluation's
(`best/`, kept by a run with `--eval_every`); nothing in the directory is written. The
output paths are checked, and their folders created, before any work.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pathlib  # noqa: E402

from absl import flags  # noqa: E402

from attn_agents.env_error import EnvError  # noqa: E402
from attn_core import cli  # noqa: E402
from attn_core import model_dir as core_model_dir  # noqa: E402

FLAGS = flags.FLAGS
VIDEO_SUFFIXES = (".mp4", ".gif")


def define_flags(flag_values: flags.FlagValues = FLAGS) -> None:
    """Defines the flags of `attn_agents.evaluate`."""
    def define(kind, name, default, help_text, **kwargs):
        if name not in flag_values:
            kind(name, default, help_text, flag_values=flag_values, **kwargs)

    if "model_dir" not in flag_values:
        flags.DEFINE_string("model_dir", None, "Model directory written by attn_agents.train.",
                            flag_values=flag_values)
        flags.mark_flag_as_required("model_dir", flag_values=flag_values)
    define(flags.DEFINE_integer, "episodes", 100, "Evaluation episodes.", lower_bound=0)
    define(flags.DEFINE_integer, "seed", 12345, "Seed of the evaluation environments.",
           lower_bound=0)
    define(flags.DEFINE_bool, "greedy", True, "Take the most likely action (else sample).")
    define(flags.DEFINE_string, "video", None, "Record one episode to this .mp4 or .gif file.")
    define(flags.DEFINE_string, "attention_plot", None,
           "Draw one step's attention to this .png file.")
    define(flags.DEFINE_string, "html", None,
           "Write every step's attention in the recorded episode as one self-contained "
           "interactive HTML page here (its folder must exist).")
    define(flags.DEFINE_integer, "max_video_steps", 1000,
           "Stop the recorded episode (--video, --attention_plot, --html) after this many "
           "steps.", lower_bound=1)
    define(flags.DEFINE_string, "output_json", None,
           "Also write the return statistics to this JSON file.")
    if "policy_weights" not in flag_values:
        flags.DEFINE_enum("policy_weights", "final", ["final", "best"],
                          "Which policy: final (the newest checkpoint) or best (the best "
                          "periodic evaluation's, kept by a run with --eval_every).",
                          flag_values=flag_values)


def _outputs(flag_values):
    """The checked output paths `(video, attention_plot, output_json, html)` (None when
    unset); the folders are created, but for --html's, which must exist."""
    video = flag_values.video
    if video and pathlib.Path(video).suffix.lower() not in VIDEO_SUFFIXES:
        raise EnvError(f"Expected --video to end in {' or '.join(VIDEO_SUFFIXES)}. "
                       f"Received: video={video!r}")
    if flag_values.output_json and not flag_values.episodes:
        raise EnvError("Expected --episodes > 0 with --output_json (it holds their returns). "
                       "Received: episodes=0")
    html = (core_model_dir.prepare_output_file(flag_values.html, "--html", create_folder=False)
            if flag_values.html else None)
    return (*(core_model_dir.prepare_output_file(value, f"--{name}") if value else None
              for name, value in (("video", video),
                                  ("attention_plot", flag_values.attention_plot),
                                  ("output_json", flag_values.output_json))), html)


def _write_video(path, frames, total):
    import imageio.v2 as imageio

    if path.suffix.lower() == ".gif":
        imageio.mimsave(path, frames, duration=1000 / 30, loop=0)
    else:
        imageio.mimsave(path, frames, fps=30, macro_block_size=1)
    print(f"video: {path} ({len(frames)} frames, return {total:.2f})")


def _write_html(path, model, env_config, policy_config, state, token_w, memory_w, total):
    from attn_agents.attention_view import episode_views
    from attn_core import attention_record

    records = [attention_record.make_record(name, **view)
               for name, view in episode_views(model.layout, token_w, memory_w).items()]
    step = (state or {}).get("global_step", "?")
    attention_record.write_html(
        path, records, title=f"{env_config.env_id} ({policy_config.policy}, step {step}): "
                             f"{len(token_w)} steps, return {total:.2f}")
    print(f"attention page: {path}")


def main(argv, flag_values: flags.FlagValues = FLAGS):
    del argv  # `cli.run` refuses stray arguments
    from attn_agents.model_dir import CONFIG_NAME, load_agent, load_configs, require_best

    model_dir = core_model_dir.require_existing(
        flag_values.model_dir, "--model_dir", marker=CONFIG_NAME,
        hint=" (train one with attn_agents.train)")
    # A broken config fails before any output is prepared.
    _, saved_policy, _ = load_configs(model_dir)
    if flag_values.policy_weights == "best":
        require_best(model_dir)
    if flag_values.html and saved_policy.policy != "attention" and not saved_policy.memory:
        raise EnvError("Expected a model with attention (--policy=attention or --memory) for "
                       f"--html. Received: policy={saved_policy.policy}, memory=0")
    video, plot, output_json, html = _outputs(flag_values)
    cli.quiet_tensorflow()
    model, env_config, policy_config, state = load_agent(
        model_dir, policy_weights=flag_values.policy_weights)
    import numpy as np

    from attn_agents.evaluation import evaluate_policy

    obs_rms = (state or {}).get("obs_rms") or None
    if flag_values.episodes:
        returns, lengths = evaluate_policy(model, env_config, flag_values.episodes,
                                           obs_rms=obs_rms, seed=flag_values.seed,
                                           greedy=flag_values.greedy)
        step = (state or {}).get("global_step", "?")
        which = ", best" if flag_values.policy_weights == "best" else ""
        print(f"{env_config.env_id} ({policy_config.policy}{which}, step {step}): return "
              f"{returns.mean():.2f} ± {returns.std():.2f} over {len(returns)} episodes (min "
              f"{returns.min():.2f}, max {returns.max():.2f}, mean length "
              f"{lengths.mean():.1f})")
        if output_json:
            core_model_dir.write_json(output_json, {
                "env_id": env_config.env_id, "policy": policy_config.policy, "env_step": step,
                "episodes": int(len(returns)), "greedy": bool(flag_values.greedy),
                "policy_weights": flag_values.policy_weights,
                "seed": int(flag_values.seed), "mean_return": float(returns.mean()),
                "std_return": float(returns.std()), "min_return": float(returns.min()),
                "max_return": float(returns.max()), "mean_length": float(lengths.mean())})
            print(f"scores: {output_json}")
    if video or plot or html:
        from attn_agents.episode_recording import record_episode

        frames, observations, token_w, memory_w, total = record_episode(
            model, env_config, obs_rms, flag_values.seed, bool(video),
            flag_values.max_video_steps, flag_values.greedy)
        if video:
            _write_video(video, frames, total)
        if plot:
            from attn_agents.attention_plot import save_agent_attention

            step = len(observations) // 2
            obs = observations[step]
            picture = obs.get("image") if isinstance(obs, dict) else obs
            path = save_agent_attention(
                plot, model.layout, token_w[step],
                memory_w[step] if policy_config.memory else None,
                observation=picture,  # made an array only where an image is drawn
                title=f"{env_config.env_id}, step {step} of {len(observations)}")
            print(f"attention plot: {path}")
            if policy_config.memory and len(memory_w) >= policy_config.memory:
                from attn_agents.memory_lag import memory_lag_profile

                lag, profile = memory_lag_profile(np.stack(memory_w))
                print(f"memory: the weight peaks {lag} steps back (episode mean: "
                      + ", ".join(f"t-{i} {w:.2f}" if i else f"t {w:.2f}"
                                  for i, w in enumerate(profile)) + ")")
        if html:
            _write_html(html, model, env_config, policy_config, state, token_w, memory_w, total)


if __name__ == "__main__":
    define_flags()
    cli.run(main)
