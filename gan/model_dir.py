"""What a GAN model directory holds besides checkpoints: the configs and the data info.

In multi-worker training every worker opens the same (shared) model directory and only
the chief writes in it.
"""

import json
import pathlib

from gan.model_config import ModelConfig

DATA_INFO = "data_info.json"


def resolve_model_dir(model_dir, create: bool = True) -> pathlib.Path:
    """The absolute model directory, created when `create` (the chief).

    A worker that does not write (`create=False`) only resolves the path: it may start
    before the chief has created the directory.

    Raises:
        ValueError: when the path is empty or names an existing file.
    """
    from attn_core import run_dir

    if create:
        return run_dir.resolve_workdir(model_dir)
    if model_dir is None or not str(model_dir):
        raise ValueError(f"Expected a non-empty model directory. Received: {model_dir!r}")
    path = pathlib.Path(model_dir).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise ValueError(f"Expected `model_dir` to be a directory. Received: model_dir="
                         f"{str(model_dir)!r} (a file)")
    return path


def load_or_create_config(model_dir, config: ModelConfig,
                          save: bool = True) -> tuple[ModelConfig, bool]:
    """The saved `model_config.json` of a model being resumed, else `config`, which is saved
    when `save` (the chief; the other workers build the same config from the same flags).

    Returns:
        (the config, whether it was loaded).
    """
    try:
        return ModelConfig.load(model_dir), True
    except FileNotFoundError:
        if save:
            config.save(model_dir)
        return config, False


def save_data_info(model_dir, dataset: str, class_names) -> pathlib.Path:
    """Writes `data_info.json` (the `--dataset` and its class names), atomically."""
    from attn_core.checkpoint import atomic_write

    path = pathlib.Path(model_dir) / DATA_INFO
    text = json.dumps({"dataset": dataset, "class_names": list(class_names)}, indent=2) + "\n"
    atomic_write(path, lambda f: f.write(text.encode()))
    return path


def load_data_info(model_dir) -> dict:
    """Reads `data_info.json` ({} when absent)."""
    path = pathlib.Path(model_dir) / DATA_INFO
    return json.loads(path.read_text()) if path.is_file() else {}


def load_ema_generator(model_dir):
    """Builds the generator of `model_dir` and restores the EMA weights of its latest
    checkpoint.

    Returns:
        (generator, model_config, step).

    Raises:
        FileNotFoundError: when the directory has no config or no checkpoint.
    """
    from attn_core import checkpoint
    from gan.generator import Generator

    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        raise FileNotFoundError(f"Expected an existing model directory. Received: "
                                f"model_dir={model_dir}")
    config = ModelConfig.load(model_dir)
    manager = checkpoint.CheckpointManager(model_dir / "checkpoints")
    step = manager.latest()
    if step is None:
        raise FileNotFoundError(f"Expected a checkpoint in {model_dir / 'checkpoints'}. "
                                "Received: none (train with gan.train first)")
    generator = Generator(config, name="generator_ema").build_for()
    manager.restore([generator], step=step, prefix=True)
    return generator, config, step
