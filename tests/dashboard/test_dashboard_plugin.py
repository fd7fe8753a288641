"""Tests of the `attention` TensorBoard plugin's routes, with TensorBoard's Python data provider
(the browser tests run the real TensorBoard, whose Rust data server is the other provider)."""

import configparser
import json
import pathlib

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import data_provider as tb_data_provider
from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from werkzeug.test import Client

from attn_core import attention_record, summaries
from attn_core.dashboard.plugin import AttentionPlugin

ROOT = pathlib.Path(__file__).resolve().parents[2]
WEIGHTS = np.random.default_rng(0).dirichlet(np.ones(4), size=(2, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def logdir(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("attention_logs")
    for run, steps in (("nmt", (1, 5)), ("agent", (2,))):
        writer = tf.summary.create_file_writer(str(logdir / run))
        with writer.as_default():
            for step in steps:
                summaries.attention(f"{run}/dev_0", WEIGHTS * step, ["a", "b", "c"],
                                    ["w", "x", "y", "z"], step=step)
            tf.summary.scalar("losses/total", 1.0, step=1)  # another plugin's data
        writer.close()
    writer = tf.summary.create_file_writer(str(logdir / "scalars_only"))
    with writer.as_default():
        tf.summary.scalar("losses/total", 1.0, step=1)
    writer.close()
    return logdir


def _plugin(logdir):
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = tb_data_provider.MultiplexerDataProvider(multiplexer, str(logdir))
    return AttentionPlugin(base_plugin.TBContext(data_provider=provider, logdir=str(logdir)))


@pytest.fixture(scope="module")
def plugin(logdir):
    return _plugin(logdir)


def _get(plugin, route, **params):
    app = plugin.get_plugin_apps()[route]
    response = Client(app).get(route, query_string=params)
    body = response.get_data(as_text=True)
    return response.status_code, response.mimetype, json.loads(body) \
        if response.mimetype == "application/json" else body


def test_tags_lists_the_runs_with_attention_and_their_tags(plugin):
    status, mimetype, tags = _get(plugin, "/tags")
    assert (status, mimetype) == (200, "application/json")
    assert sorted(tags) == ["agent", "nmt"]  # not the run with scalars only
    assert list(tags["nmt"]) == ["nmt/dev_0"] and list(tags["agent"]) == ["agent/dev_0"]
    assert tags["nmt"]["nmt/dev_0"]["max_step"] == 5


def test_steps_and_record_serve_what_was_logged(plugin):
    status, _, steps = _get(plugin, "/steps", run="nmt", tag="nmt/dev_0")
    assert status == 200 and [s["step"] for s in steps] == [1, 5]
    status, _, record = _get(plugin, "/record", run="nmt", tag="nmt/dev_0", step="5")
    assert status == 200
    assert record == attention_record.make_record(
        "nmt/dev_0", WEIGHTS * 5, ["a", "b", "c"], ["w", "x", "y", "z"])
    np.testing.assert_array_equal(attention_record.weights_array(record)[0], WEIGHTS * 5)


@pytest.mark.parametrize("route, params, code, fragment", [
    ("/steps", {"tag": "nmt/dev_0"}, 400, "Missing query argument 'run'"),
    ("/steps", {"run": "nmt"}, 400, "Missing query argument 'tag'"),
    ("/steps", {"run": "nope", "tag": "nmt/dev_0"}, 404, "Unknown run 'nope'"),
    ("/steps", {"run": "scalars_only", "tag": "losses/total"}, 404, "Unknown run"),
    ("/steps", {"run": "nmt", "tag": "losses/total"}, 404, "Unknown tag 'losses/total'"),
    ("/steps", {"run": "../nmt", "tag": "nmt/dev_0"}, 404, "Unknown run '../nmt'"),
    ("/record", {"run": "nmt", "tag": "nmt/dev_0"}, 400, "Missing query argument 'step'"),
    ("/record", {"run": "nmt", "tag": "nmt/dev_0", "step": "1.5"}, 400, "integer 'step'"),
    ("/record", {"run": "nmt", "tag": "nmt/dev_0", "step": "3"}, 404, "steps held: [1, 5]"),
    ("/record", {"run": "nmt", "tag": "/etc/passwd", "step": "1"}, 404, "Unknown tag"),
])
def test_bad_arguments_answer_400_or_404_as_json(plugin, route, params, code, fragment):
    status, mimetype, body = _get(plugin, route, **params)
    assert (status, mimetype) == (code, "application/json")
    assert list(body) == ["error"] and fragment in body["error"]


def test_static_files_and_frontend_metadata(plugin):
    assert plugin.plugin_name == "attention"
    assert plugin.frontend_metadata().es_module_path == "/index.js"
    for route, mimetype, marker in (("/index.js", "text/javascript", "export async function "
                                     "render()"),
                                    ("/view.js", "text/javascript", "export async function "
                                     "renderApp("),
                                    ("/view.css", "text/css", ".attn-matrix")):
        status, served_type, body = _get(plugin, route)
        assert (status, served_type) == (200, mimetype) and marker in body
    assert plugin.is_active()


def test_is_active_only_with_attention_records(tmp_path):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        tf.summary.scalar("losses/total", 1.0, step=1)
    writer.close()
    plugin = _plugin(tmp_path)
    assert not plugin.is_active()
    assert _get(plugin, "/tags")[2] == {}


def test_setup_cfg_registers_the_plugin_with_tensorboard():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    entry_points = config["options.entry_points"]["tensorboard_plugins"].split("\n")
    [entry] = [line for line in entry_points if line.strip()]
    name, target = (part.strip() for part in entry.split("="))
    module, attribute = target.split(":")
    assert name == "attention"
    assert getattr(__import__(module, fromlist=[attribute]), attribute) is AttentionPlugin
    assert config["options.package_data"]["attn_core"].strip() == "dashboard/static/*"


@pytest.mark.parametrize("args, fragment", [
    (["--tag=a/b", "--out=x.png"], "exactly one of --logdir and --html"),
    (["--tag=a/b", "--out=x.png", "--logdir=L", "--html=H"], "exactly one of --logdir"),
    (["--tag=a/b", "--out=x.png", "--html=missing.html"], "No such page: missing.html"),
    (["--tag=a/b", "--out=x.png", "--html=page.html", "--head=first"], "--head 'mean' or"),
])
def test_screenshot_tool_rejects_bad_flags_in_one_line(tmp_path, monkeypatch, capsys, args,
                                                       fragment):
    from absl import flags

    from attn_core import cli
    from attn_core.dashboard import screenshot

    monkeypatch.chdir(tmp_path)
    (tmp_path / "page.html").write_text("<html></html>")
    flag_values = flags.FlagValues()
    screenshot.define_flags(flag_values)
    code = cli.run_in_process(lambda argv: screenshot.main(argv, flag_values),
                              ["screenshot", *args], flag_values)
    [line] = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and line.startswith("error: ") and fragment in line
    assert not (tmp_path / "x.png").exists()


def test_browser_missing_names_what_to_install(monkeypatch, tmp_path):
    from attn_core.dashboard import browser

    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.delenv("CHROMEDRIVER", raising=False)
    monkeypatch.setattr(browser, "CHROMIUM_PATHS", (str(tmp_path / "no-chromium"),))
    assert browser.browser_missing() == ("no Chromium at /usr/bin/chromium: apt-get install "
                                         "chromium chromium-driver")
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CHROMIUM", str(fake))
    monkeypatch.setattr(browser, "CHROMEDRIVER_PATHS", (str(tmp_path / "no-driver"),))
    assert "apt-get install chromium-driver" in browser.browser_missing()
