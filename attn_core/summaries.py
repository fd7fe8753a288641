"""TensorBoard logging on top of `tf.summary`: namespaced scalars, attention records and images,
hparams."""

import pathlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

import tensorflow as tf

from attn_core import attention_record
from attn_core.dashboard import metadata as attention_metadata
from attn_core.heatmap import figure_to_png_bytes, plot_attention, plot_attention_grid

_TAG = re.compile(r"[\w.\-]+(/[\w.\-]+)+")


def _check_tag(tag: str) -> None:
    if not isinstance(tag, str) or not _TAG.fullmatch(tag):
        raise ValueError(
            "Expected a namespaced tag such as 'losses/total', 'charts/learning_rate' or "
            f"'eval/bleu' (letters, digits, _ . -). Received: tag={tag!r}"
        )


def attention(
    name: str,
    weights,
    query_labels: Sequence[str],
    key_labels: Sequence[str],
    step: int | None = None,
    *,
    view: str = "matrix",
    image=None,
    key_grid: tuple[int, int] | None = None,
    layer_names: Sequence[str] | None = None,
) -> bool:
    """Writes an attention record for the dashboard's Attention tab with the default writer.

    Like `tf.summary.image`, it writes to the writer set with `writer.as_default()`; the
    record (`attention_record.make_record`) is one string tensor summary whose metadata names
    the `attention` plugin.

    Args:
        name: The summary tag, e.g. `"attention/dev_0"`; also the record's name.
        weights: `[T, S]`, `[H, T, S]` or `[L, H, T, S]` attention weights.
        query_labels: T query labels.
        key_labels: S key labels.
        step: The step; None uses `tf.summary.experimental.get_step()`.
        view, image, key_grid, layer_names: As for `attention_record.make_record`.

    Returns:
        True if a default writer wrote it, False if there is none (as `tf.summary.write`).

    Raises:
        ValueError: If the record does not fit (`make_record`), before anything is written.
    """
    record = attention_record.make_record(
        name, weights, query_labels, key_labels, view=view, image=image, key_grid=key_grid,
        layer_names=layer_names)
    return _write_record(record, step)


def _write_record(record, step):
    return bool(tf.summary.write(
        tag=record["name"], tensor=tf.constant(attention_record.encode_record(record)),
        step=None if step is None else int(step),
        metadata=attention_metadata.summary_metadata()))


def hparams_markdown(hparams: Mapping[str, Any]) -> str:
    """Formats hyperparameters as a CleanRL-style two-column Markdown table.

    Args:
        hparams: Name -> value, rendered in insertion order with `str()`. `|` is escaped
            and newlines become spaces so each entry stays one table row.

    Returns:
        `"|param|value|\\n|-|-|\\n|name|value|..."` (no trailing newline).
    """

    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    rows = [f"|{cell(k)}|{cell(v)}|" for k, v in hparams.items()]
    return "\n".join(["|param|value|", "|-|-|", *rows])


class SummaryWriter:
    """Thin wrapper around `tf.summary.create_file_writer` for the training loops.

    Usable as a context manager (`with SummaryWriter(logdir) as writer:`), which closes it.
    In multi-worker training only the chief writes: the other workers pass `enabled=False`.

    Args:
        logdir: Directory for the event files (created if missing); attention PNGs go to
            `<logdir>/attention/`.
        enabled: When False every method checks its arguments and writes nothing.
    """

    def __init__(self, logdir: str | pathlib.Path, enabled: bool = True):
        self.logdir = pathlib.Path(logdir)
        self.enabled = bool(enabled)
        if self.enabled:
            self.logdir.mkdir(parents=True, exist_ok=True)
            self._writer = tf.summary.create_file_writer(str(self.logdir))
        else:
            self._writer = tf.summary.create_noop_writer()
        self._scalar_functions = {}  # tag tuple -> traced writer of those scalars

    def scalars(self, step: int, values: Mapping[str, Any]) -> None:
        """Writes scalar summaries.

        Args:
            step: Global step (x axis).
            values: Namespaced tag (e.g. `"losses/total"`, `"charts/sps"`, `"eval/bleu"`)
                -> scalar (Python/NumPy number or 0-d tensor).

        Raises:
            ValueError: If a tag has no namespace, before anything is written.
        """
        for tag in values:
            _check_tag(tag)
        if not self.enabled or not values:
            return
        # One graph call per tag set: an eager `tf.summary.scalar` per tag would cost a
        # per-op dispatch each, which a PPO update logging a dozen tags would feel.
        tags = tuple(values)
        write = self._scalar_functions.get(tags)
        if write is None:
            write = self._scalar_functions[tags] = tf.function(
                lambda step, data: [tf.summary.scalar(tag, data[i], step=step)
                                    for i, tag in enumerate(tags)])
        with self._writer.as_default():
            write(tf.constant(int(step), tf.int64),
                  tf.constant([float(v) for v in values.values()], tf.float32))

    def attention(
        self,
        tag: str,
        step: int,
        weights,
        query_labels: Sequence[str],
        key_labels: Sequence[str],
        *,
        view: str = "matrix",
        image=None,
        key_grid: tuple[int, int] | None = None,
        layer_names: Sequence[str] | None = None,
    ) -> None:
        """Writes an attention record for the dashboard's Attention tab (see `attention`).

        Args:
            tag: Namespaced tag, e.g. `"attention/dev_0"`; also the record's name.
            step: Global step.
            weights: `[T, S]`, `[H, T, S]` or `[L, H, T, S]` attention weights.
            query_labels: T query labels.
            key_labels: S key labels.
            view, image, key_grid, layer_names: As for `attention_record.make_record`.

        Raises:
            ValueError: If the tag has no namespace or the record does not fit, before
                anything is written (also when the writer is disabled).
        """
        _check_tag(tag)
        record = attention_record.make_record(
            tag, weights, query_labels, key_labels, view=view, image=image, key_grid=key_grid,
            layer_names=layer_names)
        if not self.enabled:
            return
        with self._writer.as_default():
            _write_record(record, step)

    def attention_image(
        self,
        tag: str,
        step: int,
        weights,
        x_labels: Sequence[str] | None = None,
        y_labels: Sequence[str] | None = None,
        title: str | None = None,
    ) -> pathlib.Path:
        """Renders an attention matrix as an image summary and also saves it as a PNG.

        Args:
            tag: Namespaced tag, e.g. `"attention/sample_0"`.
            step: Global step.
            weights: Array-like of shape `[T_q, T_k]`.
            x_labels: Optional `T_k` key/source labels.
            y_labels: Optional `T_q` query/target labels.
            title: Optional figure title.

        Returns:
            The PNG path, `<logdir>/attention/<tag with "/" replaced by "_">_<step>.png`
            (not written when the writer is disabled).

        Raises:
            ValueError: If the tag has no namespace, `weights` is not 2-D or the labels do not
                match its shape.
        """
        _check_tag(tag)
        return self._attention_png(tag, step, plot_attention(weights, x_labels, y_labels, title))

    def attention_grid_image(
        self,
        tag: str,
        step: int,
        weights,
        x_labels: Sequence[str] | None = None,
        y_labels: Sequence[str] | None = None,
        title: str | None = None,
    ) -> pathlib.Path:
        """Renders a grid of attention matrices (`heatmap.plot_attention_grid`: layers as
        rows, heads as columns) as an image summary and also saves it as a PNG.

        Args:
            tag: Namespaced tag, e.g. `"attention/dev_0_heads"`.
            step: Global step.
            weights: Array-like of shape `[R, C, T_q, T_k]`.
            x_labels, y_labels, title: As for `attention_image`.

        Returns:
            The PNG path, named as by `attention_image`.

        Raises:
            ValueError: If the tag has no namespace, `weights` is not 4-D or the labels do not
                match its shape.
        """
        _check_tag(tag)
        return self._attention_png(tag, step,
                                   plot_attention_grid(weights, x_labels, y_labels, title))

    def _attention_png(self, tag, step, figure):
        png = figure_to_png_bytes(figure)
        path = self.logdir / "attention" / f"{tag.replace('/', '_')}_{int(step)}.png"
        if not self.enabled:
            return path
        image = tf.io.decode_png(png, channels=4)[tf.newaxis]  # [1, H, W, 4] uint8.
        with self._writer.as_default():
            tf.summary.image(tag, image, step=int(step))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        return path

    def image(self, tag: str, step: int, image) -> None:
        """Writes an image summary.

        Args:
            tag: Namespaced tag, e.g. `"samples/ema"`.
            step: Global step.
            image: PNG bytes, or a uint8 array [H, W, C] or [N, H, W, C].
        """
        _check_tag(tag)
        if not self.enabled:
            return
        if isinstance(image, bytes):
            image = tf.io.decode_png(image)
        image = tf.convert_to_tensor(image)
        if image.shape.rank == 3:
            image = image[tf.newaxis]
        with self._writer.as_default():
            tf.summary.image(tag, image, step=int(step))

    def hparams_table(self, hparams: Mapping[str, Any]) -> None:
        """Writes `hparams_markdown(hparams)` as the text summary `"hyperparameters"` at step 0."""
        self.text("hyperparameters", 0, hparams_markdown(hparams))

    def text(self, tag: str, step: int, markdown: str) -> None:
        """Writes a markdown text summary (e.g. sample translations) at `step`."""
        with self._writer.as_default():
            tf.summary.text(tag, markdown, step=int(step))

    def flush(self) -> None:
        """Flushes pending events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file."""
        self._writer.close()

    def __enter__(self) -> "SummaryWriter":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
