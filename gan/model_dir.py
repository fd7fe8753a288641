"""What a GAN model directory holds besides checkpoints: the configs and the data info."""

import json
import pathlib

from gan.model_config import ModelConfig

DATA_INFO = "data_info.json"


def save_data_info(model_dir, dataset: str, class_names) -> pathlib.Path:
    """Writes `data_info.json`: the `--dataset` and its class names."""
    path = pathlib.Path(model_dir) / DATA_INFO
    path.write_text(json.dumps({"dataset": dataset, "class_names": list(class_names)},
                               indent=2) + "\n")
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
