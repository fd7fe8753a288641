"""What a GAN model directory holds besides checkpoints: the configs and the data info.

* `model_config.json`: the `ModelConfig` (the architecture; it never changes on resume).
* `data_info.json`: the `--dataset` and its class names (`gan.generate` labels rows with them).
* `train_config.json`: the `TrainConfig`, the seed, the requested and resolved precision and
  the strategy of the latest run, so that a resume can tell which flags changed.

`saved_settings` flattens them into the flag names of `gan.train` for
`attn_core.model_dir.reconcile_config`. In multi-worker training every worker reads the same
(shared) directory and only the chief writes in it.
"""

import dataclasses
import pathlib

from attn_core import model_dir as model_dir_lib
from attn_core.errors import UserError
from gan.model_config import CONFIG_FILE, ModelConfig

DATA_INFO = "data_info.json"
TRAIN_CONFIG = "train_config.json"
CHECKPOINTS = "checkpoints"
# The flags that define the model: on resume an explicit different value is an error.
MODEL_FLAGS = ("dataset", "resolution", "conditional", "attention", "g_attention_res",
               "d_attention_res", "g_channels", "d_channels", "z_dim")


def model_flags(config: ModelConfig, dataset: str) -> dict:
    """The `MODEL_FLAGS` values that make `config` from `dataset`."""
    values = dataclasses.asdict(config)
    flat = {name: values[name] for name in MODEL_FLAGS if name in values}
    return flat | {"dataset": dataset, "conditional": config.conditional}


def saved_settings(model_dir) -> dict | None:
    """The settings saved in `model_dir` under `gan.train`'s flag names, or None when it
    holds no model (read only: a resume is reconciled before anything is written).

    Raises:
        UserError: when a saved file is damaged.
    """
    model_dir = pathlib.Path(model_dir)
    if not (model_dir / CONFIG_FILE).is_file():
        return None
    config = ModelConfig.load(model_dir)
    info = load_data_info(model_dir)
    train = model_dir_lib.read_json(model_dir / TRAIN_CONFIG, "gan train config") or {}
    if not isinstance(train, dict):
        raise UserError(f"Expected a JSON object in {model_dir / TRAIN_CONFIG}. Received: "
                        f"{type(train).__name__}")
    flat = model_flags(config, info.get("dataset"))
    if info.get("dataset") is None:  # written by an older gan.train: the dataset is unknown
        del flat["dataset"]
    return dict(train.get("train_config", {})) | {
        k: train[k] for k in ("seed",) if k in train} | flat


def save_run_config(model_dir, model_config: ModelConfig, data, run_info: dict) -> None:
    """Writes `model_config.json`, `data_info.json` and `train_config.json` (atomically).

    Args:
        model_dir: the open model directory.
        model_config: the `ModelConfig`.
        data: the `gan.image_data.ImageData` trained on.
        run_info: `{"train_config": {...}, "seed": ..., "precision": ..., ...}`.
    """
    model_dir = pathlib.Path(model_dir)
    model_config.save(model_dir)
    model_dir_lib.write_json(model_dir / DATA_INFO, {"dataset": data.name,
                                                     "class_names": list(data.class_names)})
    model_dir_lib.write_json(model_dir / TRAIN_CONFIG, run_info)


def load_data_info(model_dir) -> dict:
    """Reads `data_info.json` ({} when absent)."""
    info = model_dir_lib.read_json(pathlib.Path(model_dir) / DATA_INFO, "gan data info")
    return info if isinstance(info, dict) else {}


def require_model_dir(model_dir) -> pathlib.Path:
    """The model directory of an evaluation tool, checked before any work.

    Raises:
        UserError: when it is missing or holds no gan model.
    """
    return model_dir_lib.require_existing(model_dir, "--model_dir", marker=CONFIG_FILE,
                                          hint=" (train one with gan.train)")


def load_ema_generator(model_dir, log=print):
    """Builds the generator of `model_dir` and restores the EMA weights of its newest intact
    checkpoint (a damaged newer one is skipped with one line through `log`).

    Returns:
        (generator, model_config, step).

    Raises:
        UserError: when the directory holds no gan model, no checkpoint, or none intact.
    """
    from attn_core import checkpoint
    from gan.generator import Generator

    model_dir = require_model_dir(model_dir)
    config = ModelConfig.load(model_dir)
    manager = checkpoint.CheckpointManager(model_dir / CHECKPOINTS, read_only=True, log=log)
    generator = Generator(config, name="generator_ema").build_for()
    if manager.restore({"ema": generator}) is None:
        raise UserError(f"Expected a checkpoint in {model_dir / CHECKPOINTS}. Received: none "
                        "(train with gan.train first)")
    return generator, config, manager.restored
