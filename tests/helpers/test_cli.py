"""Tests for attn_core.cli and attn_core.errors: one line and exit 2 for a user's mistake."""

import pytest
from absl import flags

from attn_core import cli
from attn_core.errors import Interrupted, UserError


@pytest.fixture(autouse=True)
def _parsed_flags():
    if not flags.FLAGS.is_parsed():
        flags.FLAGS(["prog"])


def _run(error):
    def main(argv):
        raise error
    return cli.guarded(main)


@pytest.mark.parametrize("error, line, code", [
    (UserError("Expected x. Received: y"), "error: Expected x. Received: y", 2),
    (UserError("bad pair", file="corpus.tsv", line=7), "error: corpus.tsv:7: bad pair", 2),
    (UserError("two\nlines", file="f"), "error: f: two lines", 2),
    (FileNotFoundError(2, "No such file or directory", "/no/such"),
     "error: /no/such: No such file or directory", 2),
    (Interrupted("runs/m", 40), "interrupted: saved step 40; resume with --model_dir=runs/m", 130),
    (KeyboardInterrupt(), "interrupted", 130),
])
def test_errors_give_one_line_and_an_exit_status(capsys, error, line, code):
    with pytest.raises(SystemExit) as info:
        _run(error)(["prog"])
    assert info.value.code == code
    err = capsys.readouterr().err
    assert err == line + "\n"


def test_stray_arguments_are_refused(capsys):
    with pytest.raises(SystemExit) as info:
        cli.guarded(lambda argv: None)(["prog", "extra"])
    assert info.value.code == 2
    assert capsys.readouterr().err.startswith("error: unexpected arguments: extra")


def test_bugs_are_not_hidden():
    with pytest.raises(ZeroDivisionError):
        _run(ZeroDivisionError("a bug"))(["prog"])


def test_a_bad_flag_is_one_line(capsys):
    flag_values = flags.FlagValues()
    flags.DEFINE_integer("steps", 1, "Steps.", flag_values=flag_values)
    with pytest.raises(SystemExit) as info:
        cli.parse_flags(["prog", "--step=3"], flag_values)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Did you mean: steps" in err


def test_run_in_process_returns_the_exit_status(capsys):
    flag_values = flags.FlagValues()
    flags.DEFINE_integer("steps", 1, "Steps.", flag_values=flag_values)
    seen = []
    assert cli.run_in_process(lambda argv: seen.append(flag_values.steps), ["prog", "--steps=4"],
                              flag_values) == 0
    assert seen == [4]
    assert cli.run_in_process(lambda argv: None, ["prog", "--steps=x"], flag_values) == 2

    def failing(argv):
        raise UserError("bad")

    assert cli.run_in_process(failing, ["prog"], flag_values) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: flag --steps=x") and err[1] == "error: bad"
