"""`AttentionPlugin`: TensorBoard's Attention tab, serving the attention records of a log directory.

TensorBoard finds it through the `tensorboard_plugins` entry point (setup.cfg) and loads it as
a dynamic plugin: the tab is an iframe that imports `index.js`, which draws with `view.js`.

Routes, under `/data/plugin/attention/`:
- `tags`: `{run: {tag: {"display_name", "description", "max_step", "max_wall_time"}}}` for
  the runs that hold attention records.
- `steps?run=R&tag=T`: `[{"step", "wall_time"}, ...]` in step order.
- `record?run=R&tag=T&step=N`: the record at that step (`attn_core.attention_record`).
- `index.js`, `view.js`, `view.css`: the view.

A missing or malformed argument answers 400, an unknown run, tag or step 404, both as
`{"error": "..."}`. Data is read only through TensorBoard's data provider, so a request
can name runs and tags but never a path.
"""

import json
import pathlib

from tensorboard import context as tb_context
from tensorboard import plugin_util
from tensorboard.backend import http_util
from tensorboard.data import provider
from tensorboard.plugins import base_plugin
from werkzeug import wrappers

from attn_core.attention_record import decode_record
from attn_core.dashboard.metadata import PLUGIN_NAME

_STATIC = pathlib.Path(__file__).resolve().parent / "static"
# The only files served: a fixed name -> (file, type) table, never a path from a request.
_STATIC_FILES = {
    "/index.js": ("index.js", "text/javascript"),
    "/view.js": ("view.js", "text/javascript"),
    "/view.css": ("view.css", "text/css"),
}
# More than any reservoir keeps (TensorBoard samples 10 steps per tag unless
# --samples_per_plugin=attention=N says otherwise): read every step it holds.
_DOWNSAMPLE = 100_000


class _RouteError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


class AttentionPlugin(base_plugin.TBPlugin):
    """TensorBoard plugin for attention records (`attn_core.summaries.attention`).

    Args:
        context: TensorBoard's `base_plugin.TBContext`; only its data provider is used.
    """

    plugin_name = PLUGIN_NAME

    def __init__(self, context):
        self._data_provider = context.data_provider

    def get_plugin_apps(self):
        """The WSGI apps of the routes listed in the module docstring."""
        apps = {route: self._static_app(*entry) for route, entry in _STATIC_FILES.items()}
        apps.update({"/tags": self._serve_tags, "/steps": self._serve_steps,
                     "/record": self._serve_record})
        return apps

    def is_active(self):
        """Whether the default experiment holds attention records.

        TensorBoard asks this only when its data provider lists none for the plugin, which
        it usually already knows; the answer here comes from the same provider.
        """
        if self._data_provider is None:
            return False
        return bool(self._data_provider.list_tensors(
            tb_context.RequestContext(), experiment_id="", plugin_name=PLUGIN_NAME))

    def frontend_metadata(self):
        """An ES-module plugin: the iframe imports `index.js`, which exports `render()`."""
        return base_plugin.FrontendMetadata(es_module_path="/index.js", tab_name="Attention")

    def _static_app(self, name, content_type):
        @wrappers.Request.application
        def serve(request):
            body = (_STATIC / name).read_bytes()
            return http_util.Respond(request, body, content_type)

        return serve

    @wrappers.Request.application
    def _serve_tags(self, request):
        experiment, ctx = _experiment_and_context(request)
        listing = self._data_provider.list_tensors(
            ctx, experiment_id=experiment, plugin_name=PLUGIN_NAME)
        result = {
            run: {tag: {"display_name": series.display_name or tag,
                        "description": series.description,
                        "max_step": series.max_step,
                        "max_wall_time": series.max_wall_time}
                  for tag, series in sorted(tags.items())}
            for run, tags in sorted(listing.items()) if tags
        }
        return _json(request, result)

    @wrappers.Request.application
    def _serve_steps(self, request):
        try:
            data = self._read(request)
        except _RouteError as error:
            return _json(request, {"error": error.message}, error.code)
        steps = {datum.step: datum.wall_time for datum in data}  # the last write of a step wins
        return _json(request, [{"step": step, "wall_time": steps[step]} for step in sorted(steps)])

    @wrappers.Request.application
    def _serve_record(self, request):
        try:
            step = _int_argument(request, "step")
            data = self._read(request)
            matches = [datum for datum in data if datum.step == step]
            if not matches:
                raise _RouteError(404, f"No attention record at step {step} (steps held: "
                                       f"{sorted({datum.step for datum in data})})")
            try:
                record = decode_record(matches[-1].numpy.item())
            except ValueError as error:
                raise _RouteError(500, f"Unreadable attention record: {error}") from None
        except _RouteError as error:
            return _json(request, {"error": error.message}, error.code)
        return _json(request, record)

    def _read(self, request):
        """The data of the request's run and tag, checked to exist (else a `_RouteError`)."""
        run = _argument(request, "run", allow_empty=True)
        tag = _argument(request, "tag")
        experiment, ctx = _experiment_and_context(request)
        listing = self._data_provider.list_tensors(
            ctx, experiment_id=experiment, plugin_name=PLUGIN_NAME,
            run_tag_filter=provider.RunTagFilter(runs=[run]))
        if run not in listing:
            raise _RouteError(404, f"Unknown run {run!r}: it holds no attention records")
        if tag not in listing[run]:
            raise _RouteError(404, f"Unknown tag {tag!r} in run {run!r}")
        data = self._data_provider.read_tensors(
            ctx, experiment_id=experiment, plugin_name=PLUGIN_NAME, downsample=_DOWNSAMPLE,
            run_tag_filter=provider.RunTagFilter(runs=[run], tags=[tag]))
        return data.get(run, {}).get(tag, [])


def _experiment_and_context(request):
    return (plugin_util.experiment_id(request.environ), plugin_util.context(request.environ))


def _argument(request, name, allow_empty=False):
    value = request.args.get(name)
    if value is None or (not value and not allow_empty):
        raise _RouteError(400, f"Missing query argument {name!r}")
    return value


def _int_argument(request, name):
    value = _argument(request, name)
    try:
        return int(value)
    except ValueError:
        raise _RouteError(400, f"Expected an integer {name!r}. Received: {value!r}") from None


def _json(request, value, code=200):
    return http_util.Respond(request, json.dumps(value, separators=(",", ":")),
                             "application/json", code=code)
