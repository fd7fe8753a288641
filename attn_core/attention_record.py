"""Attention records: one attention tensor with its labels, as the dashboard stores and draws it.

A record is the JSON-serialisable dict that `attn_core.summaries.attention` writes into a
TensorBoard tensor summary, that the `attention` TensorBoard plugin serves to the browser, and
that `write_html` inlines into a self-contained HTML page. Its keys:

- `"format"`: `RECORD_FORMAT` (1), bumped if the encoding ever changes.
- `"name"`: the record's name (the summary tag).
- `"view"`: one of `VIEWS` (see `make_record`).
- `"shape"`: `[L, H, T, S]`: layers, heads, queries, keys.
- `"weights"`: the `[L, H, T, S]` weights as little-endian float32 in C order, base64-encoded
  (exact round trip, a third the size of a JSON number list); `weights_array` decodes it.
- `"query_labels"`: T strings; `"key_labels"`: S strings.
- `"key_grid"`: `[h, w]` for the "grid" and "image" views, else None.
- `"layer_names"`: L strings (`"layer 0"`, ... unless given).
- `"image"`: for the "image" view, the image as a base64 PNG, else None.
"""

import base64
import io
import json
import os
import pathlib
import tempfile
from collections.abc import Sequence

import numpy as np

RECORD_FORMAT = 1
VIEWS = ("matrix", "bars", "grid", "image")
# A record is held in memory by TensorBoard and parsed by the browser: 2**22 float32 weights
# (16 MiB, 22 MiB of base64) is far past any matrix a person reads, so bigger is a mistake.
MAX_WEIGHTS = 2**22
_STATIC = pathlib.Path(__file__).resolve().parent / "dashboard" / "static"


def make_record(
    name: str,
    weights,
    query_labels: Sequence[str],
    key_labels: Sequence[str],
    *,
    view: str = "matrix",
    image=None,
    key_grid: tuple[int, int] | None = None,
    layer_names: Sequence[str] | None = None,
) -> dict:
    """Checks one attention tensor with its labels and encodes it as a record.

    Args:
        name: The record's name (the summary tag), a non-empty string.
        weights: Array-like float of shape `[T, S]`, `[H, T, S]` or `[L, H, T, S]` (T queries,
            S keys, H heads, L layers); stored as `[L, H, T, S]` float32. Rows are meant to be
            distributions over the keys but are not renormalised; non-finite values are kept
            (the view leaves them blank).
        query_labels: T labels of the queries (target tokens, steps, pixel positions). Each is
            a string; bytes are decoded as UTF-8 and numbers formatted with `str`.
        key_labels: S labels of the keys (source tokens, features, cells, steps back).
        view: How the view draws it: `"matrix"` (sequences: query x key matrix, hovering a
            query highlights its keys; a bipartite "lines" view too), `"bars"` (each query's
            weights as bars over the named keys, e.g. an agent's features), `"grid"` (the
            first `h * w` keys form the `key_grid` heatmap, e.g. MiniGrid cells or image
            patches; any further keys are drawn as bars) or `"image"` (queries and keys are
            the positions of a `key_grid` map over `image`; clicking a pixel picks the query).
        image: For `view="image"` (required there, refused elsewhere): the image the
            attention map is drawn over, uint8 or float in [0, 1], shape `[H_img, W_img]`,
            `[H_img, W_img, 1]` or `[H_img, W_img, 3]`.
        key_grid: `(h, w)`, required by the "grid" view (`h * w <= S`) and the "image" view
            (`h * w == S == T`), refused by the others.
        layer_names: Optional L layer names; defaults to `"layer 0"`, `"layer 1"`, ...

    Returns:
        The record, a JSON-serialisable dict (keys in the module docstring).

    Raises:
        ValueError: If any argument does not fit, with one line naming it.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"Expected `name` to be a non-empty string. Received: name={name!r}")
    if view not in VIEWS:
        raise ValueError(f"Expected `view` to be one of {list(VIEWS)}. Received: view={view!r}")
    try:
        weights = np.asarray(weights, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Expected `weights` to be a float array. Received: {error}") from None
    if weights.ndim not in (2, 3, 4):
        raise ValueError(
            "Expected `weights` of shape [T, S], [H, T, S] or [L, H, T, S]. "
            f"Received: weights.shape={weights.shape}"
        )
    weights = weights.reshape((1,) * (4 - weights.ndim) + weights.shape)
    n_layers, n_heads, n_queries, n_keys = weights.shape
    if 0 in weights.shape:
        raise ValueError(f"Expected `weights` with no empty axis. Received: "
                         f"weights.shape={weights.shape} (as [L, H, T, S])")
    if weights.size > MAX_WEIGHTS:
        raise ValueError(f"Expected at most {MAX_WEIGHTS} attention weights per record. "
                         f"Received: weights.shape={weights.shape} ({weights.size} weights)")
    query_labels = _labels(query_labels, "query_labels", n_queries, "T (queries)")
    key_labels = _labels(key_labels, "key_labels", n_keys, "S (keys)")
    if layer_names is None:
        layer_names = [f"layer {i}" for i in range(n_layers)]
    else:
        layer_names = _labels(layer_names, "layer_names", n_layers, "L (layers)")
    key_grid = _key_grid(key_grid, view, n_queries, n_keys)
    if view == "image":
        if image is None:
            raise ValueError("Expected an `image` for view='image'. Received: image=None")
        image = _png_base64(image)
    elif image is not None:
        raise ValueError(f"Expected no `image` for view={view!r} (only view='image' draws one). "
                         f"Received: an image of shape {np.shape(image)}")
    return {
        "format": RECORD_FORMAT,
        "name": name,
        "view": view,
        "shape": [n_layers, n_heads, n_queries, n_keys],
        "weights": base64.b64encode(weights.astype("<f4").tobytes()).decode("ascii"),
        "query_labels": query_labels,
        "key_labels": key_labels,
        "key_grid": key_grid,
        "layer_names": layer_names,
        "image": image,
    }


def weights_array(record: dict) -> np.ndarray:
    """Decodes a record's weights.

    Args:
        record: A record from `make_record` or `decode_record`.

    Returns:
        float32 array of shape `record["shape"]`, `[L, H, T, S]`.
    """
    flat = np.frombuffer(base64.b64decode(record["weights"]), dtype="<f4")
    return flat.reshape(record["shape"]).astype(np.float32)


def encode_record(record: dict) -> bytes:
    """The record as compact UTF-8 JSON (what the tensor summary holds)."""
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_record(data: bytes | str) -> dict:
    """Parses `encode_record`'s JSON and checks that it is a record this code can read.

    Args:
        data: The JSON, bytes (UTF-8) or str.

    Returns:
        The record.

    Raises:
        ValueError: If it is not JSON, not a record, or of another format.
    """
    try:
        record = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"Expected an attention record as JSON. Received: {error}") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"Expected an attention record of format {RECORD_FORMAT}. "
                         f"Received: format={found!r}")
    return record


def write_html(path, records: Sequence[dict], title: str) -> pathlib.Path:
    """Writes the dashboard's view of `records` as one self-contained HTML file.

    The page inlines the same script and style the TensorBoard plugin serves, plus the records
    as JSON, and loads nothing from the network, so it can be shared or attached as it is.

    Args:
        path: The file to write (its directory is created); replaced atomically.
        records: One or more records from `make_record`; the page lists them by name.
        title: The page title.

    Returns:
        The path written, as a `pathlib.Path`.

    Raises:
        ValueError: If `records` is empty or holds something that is not a record.
    """
    records = list(records)
    if not records:
        raise ValueError("Expected at least one attention record to write. Received: none")
    for index, record in enumerate(records):
        if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
            raise ValueError(f"Expected records from make_record. Received: records[{index}] "
                             f"of type {type(record).__name__}")
    page = html_page(records, title)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(page)
        os.replace(tmp, path)
    except BaseException:
        pathlib.Path(tmp).unlink(missing_ok=True)
        raise
    return path


def html_page(records: Sequence[dict], title: str) -> str:
    """The HTML text `write_html` writes (the view's module, its style and the records inline)."""
    script = (_STATIC / "view.js").read_text(encoding="utf-8")
    style = (_STATIC / "view.css").read_text(encoding="utf-8")
    # `<` escaped so that no label can close the <script> element that holds the data.
    data = json.dumps(list(records), separators=(",", ":")).replace("<", "\\u003c")
    escaped_title = (str(title).replace("&", "&amp;").replace("<", "&lt;")
                     .replace(">", "&gt;"))
    boot = (
        "\nrenderStatic(document.getElementById('attention-root'), "
        "JSON.parse(document.getElementById('attention-records').textContent));\n"
    )
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        f"<title>{escaped_title}</title>\n<style>\n{style}\n</style></head>\n"
        f"<body><h1 class=\"attn-title\">{escaped_title}</h1>"
        "<div id=\"attention-root\"></div>\n"
        f"<script type=\"application/json\" id=\"attention-records\">{data}</script>\n"
        f"<script type=\"module\">\n{script}\n{boot}</script>\n</body></html>\n"
    )


def _labels(labels, argument, expected, axis):
    if labels is None or isinstance(labels, str | bytes):
        raise ValueError(f"Expected `{argument}` to be a sequence of {expected} labels, one per "
                         f"{axis}. Received: {argument}={labels!r}")
    labels = [label.decode("utf-8") if isinstance(label, bytes) else str(label)
              for label in labels]
    if len(labels) != expected:
        raise ValueError(f"Expected `{argument}` to have {expected} labels, one per {axis} of "
                         f"`weights`. Received: len({argument})={len(labels)}")
    return labels


def _key_grid(key_grid, view, n_queries, n_keys):
    if view in ("matrix", "bars"):
        if key_grid is not None:
            raise ValueError(f"Expected no `key_grid` for view={view!r} (only the 'grid' and "
                             f"'image' views use one). Received: key_grid={key_grid!r}")
        return None
    if (key_grid is None or len(key_grid) != 2
            or not all(isinstance(n, int | np.integer) and n > 0 for n in key_grid)):
        raise ValueError(f"Expected `key_grid` = (h, w), two positive ints, for view={view!r}. "
                         f"Received: key_grid={key_grid!r}")
    height, width = int(key_grid[0]), int(key_grid[1])
    if view == "grid" and height * width > n_keys:
        raise ValueError(f"Expected `key_grid` h * w <= S = {n_keys} keys for view='grid'. "
                         f"Received: key_grid={key_grid!r}")
    if view == "image" and not height * width == n_keys == n_queries:
        raise ValueError(f"Expected `key_grid` h * w == S == T for view='image' (queries and "
                         f"keys are the map's positions). Received: key_grid={key_grid!r}, "
                         f"T={n_queries}, S={n_keys}")
    return [height, width]


def _png_base64(image) -> str:
    from PIL import Image

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 3)) or 0 in image.shape:
        raise ValueError("Expected `image` of shape [H, W], [H, W, 1] or [H, W, 3]. "
                         f"Received: image.shape={np.shape(image)}")
    if image.dtype != np.uint8:
        if not np.issubdtype(image.dtype, np.floating):
            raise ValueError("Expected `image` as uint8 or float in [0, 1]. "
                             f"Received: dtype={image.dtype}")
        if not (np.all(np.isfinite(image)) and image.min() >= 0.0 and image.max() <= 1.0):
            raise ValueError("Expected a float `image` in [0, 1]. Received: values in "
                             f"[{np.nanmin(image)}, {np.nanmax(image)}]")
        image = np.round(image * 255.0).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")
