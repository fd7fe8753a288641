"""Checkpoint averaging: the mean weights of a model's last regular checkpoints.

tensorflow/nmt, OpenNMT, fairseq and Marian all have it: the weights a run passes through
near its end, averaged, usually decode better than the last of them (Vaswani et al. 2017
averaged the last 5 or 20 checkpoints).

The checkpoints are those of `<model_dir>/checkpoints` (the trainer keeps the newest
`--keep_checkpoints`), not `best/`. Floating-point weights are averaged in float32, whatever
the variables' dtype; integer variables (the dropout layers' seed-generator states) are
taken from the newest checkpoint. An averaged model directory (`write_averaged_dir`) is
decoded, evaluated and exported like a trained one; it holds the model's weights only (no
optimizer state), so it is not for resuming training.
"""

import pathlib

import numpy as np

from attn_core import checkpoint
from attn_core import model_dir as core_dir
from attn_core.errors import UserError
from translate import model_dir as nmt_dir

AVERAGE_RECORD = "average.json"
# The files an averaged directory copies from the trained one; the model config goes last,
# so that a directory whose writing was interrupted does not look like a model.
_COPIED = (nmt_dir.TRAIN_CONFIG, nmt_dir.CORPUS_RECORD, "source.tokenizer.json",
           "target.tokenizer.json", "source.model", "target.model")


def last_steps(model_dir, last, flag="--last"):
    """The steps of the `last` newest regular checkpoints of `model_dir`, oldest first.

    Args:
        model_dir: A trained model directory.
        last: How many checkpoints, a positive int.
        flag: The flag named in the error.

    Raises:
        UserError: When the directory keeps fewer than `last` regular checkpoints.
    """
    if isinstance(last, bool) or not isinstance(last, int) or last < 1:
        raise UserError(f"Expected {flag} to be a positive integer. Received: {flag}={last!r}")
    directory = pathlib.Path(model_dir) / "checkpoints"
    steps = checkpoint.CheckpointManager(directory, read_only=True).steps
    if last > len(steps):
        held = f"steps {', '.join(map(str, steps))}" if steps else "none"
        raise UserError(f"{flag}={last} but {directory} holds {len(steps)} checkpoint(s) "
                        f"({held}); translate.train keeps the newest --keep_checkpoints")
    return steps[-last:]


def average_checkpoints(model_dir, last, flag="--last", log=print):
    """The model of `model_dir` with the mean weights of its `last` newest regular checkpoints.

    Reads only: nothing is written into `model_dir`.

    Args:
        model_dir: A trained model directory.
        last: How many checkpoints to average, a positive int.
        flag: The flag named in the errors.
        log: Where one-line notices go.

    Returns:
        (model, steps): the built model holding the averaged weights, and the steps
        averaged, oldest first.

    Raises:
        UserError: When the directory is not a trained model, keeps fewer than `last`
            regular checkpoints, or one of them is damaged or holds another model.
    """
    import keras
    import tensorflow as tf

    from translate.trainer import build_model

    model_dir = core_dir.require_existing(model_dir, "--model_dir", nmt_dir.MODEL_CONFIG,
                                          nmt_dir.TRAIN_HINT)
    steps = last_steps(model_dir, last, flag)
    model = build_model(nmt_dir.load_model_config(model_dir))
    model({"source": tf.ones((1, 3), tf.int32), "decoder_in": tf.ones((1, 3), tf.int32)})
    manager = checkpoint.CheckpointManager(model_dir / "checkpoints", read_only=True, log=log)
    sums, newest = None, None
    for step in steps:
        manager.restore({"model": model}, step=step)
        newest = [np.asarray(keras.ops.convert_to_numpy(v)) for v in model.variables]
        values = [v.astype(np.float32) for v in newest]
        sums = values if sums is None else [a + b for a, b in zip(sums, values, strict=True)]
    for variable, total, latest in zip(model.variables, sums, newest, strict=True):
        variable.assign(total / np.float32(len(steps)) if _is_float(latest) else latest)
    return model, steps


def _is_float(array):
    return np.issubdtype(array.dtype, np.floating)


def check_output_dir(output_dir, model_dir, flag="--output_dir"):
    """Checks, before any work, that `output_dir` may receive an averaged model.

    Raises:
        UserError: When it is `model_dir` or inside it, holds a model already, or goes
            through a file.
    """
    if output_dir is None or not str(output_dir):
        raise UserError(f"Expected {flag} (where to write the averaged model). Received: none")
    out = core_dir.resolve(output_dir, flag=flag)
    source = pathlib.Path(model_dir).expanduser().resolve()
    if out == source or source in out.parents:
        raise UserError(f"Expected {flag} outside --model_dir={model_dir} (averaging leaves "
                        f"the trained model as it is). Received: {flag}={output_dir}")
    held = [name for name in (nmt_dir.MODEL_CONFIG, "checkpoints", "best")
            if (out / name).exists()]
    if held:
        raise UserError(f"Expected {flag} to be a new or empty directory. Received: "
                        f"{flag}={output_dir} holds a model ({', '.join(held)})")
    return out


def write_averaged_dir(model, model_dir, steps, output_dir):
    """Writes the averaged `model` of `model_dir` as a model directory in `output_dir`.

    It holds the trained directory's configs and tokenizers, a checkpoint of the newest
    averaged step in `checkpoints/` (the weights only), and `average.json`, which records
    the source directory and the steps averaged. The model config is written last.

    Args:
        model: The model holding the averaged weights (`average_checkpoints`).
        model_dir: The trained directory it was averaged from.
        steps: The steps averaged, oldest first.
        output_dir: The directory to write (checked with `check_output_dir`).

    Returns:
        The output directory's path.
    """
    model_dir = pathlib.Path(model_dir)
    out = core_dir.prepare_output_dir(output_dir, "--output_dir")
    for name in _COPIED:
        if (model_dir / name).is_file():
            data = (model_dir / name).read_bytes()
            checkpoint.atomic_write(out / name, lambda f, data=data: f.write(data))
    steps = [int(s) for s in steps]
    manager = checkpoint.CheckpointManager(out / "checkpoints", max_to_keep=1)
    manager.save(steps[-1], {"model": model},
                 extra_state={"step": steps[-1], "averaged_steps": steps})
    core_dir.write_json(out / AVERAGE_RECORD, {"model_dir": str(model_dir.resolve()),
                                               "steps": steps})
    data = (model_dir / nmt_dir.MODEL_CONFIG).read_bytes()
    checkpoint.atomic_write(out / nmt_dir.MODEL_CONFIG, lambda f: f.write(data))
    return out
