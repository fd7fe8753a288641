"""Tests for attn_core.interrupt: the first Ctrl-C asks, the second interrupts."""

import signal

import pytest

from attn_core.interrupt import StopOnCtrlC


def test_first_ctrl_c_requests_a_stop_and_the_second_interrupts():
    before = signal.getsignal(signal.SIGINT)
    lines = []
    with pytest.raises(KeyboardInterrupt):
        with StopOnCtrlC(lines.append, unit="update") as stop:
            signal.raise_signal(signal.SIGINT)
            assert stop.requested
            assert lines == ["interrupt: stopping after this update, to save a checkpoint "
                             "(Ctrl-C again to stop at once)"]
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_nothing_is_requested_without_ctrl_c_and_the_handler_comes_back():
    before = signal.getsignal(signal.SIGINT)
    with StopOnCtrlC() as stop:
        assert signal.getsignal(signal.SIGINT) is not before
    assert not stop.requested and signal.getsignal(signal.SIGINT) is before


def test_an_ignored_sigint_stays_ignored():
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with StopOnCtrlC() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            signal.raise_signal(signal.SIGINT)
        assert not stop.requested
    finally:
        signal.signal(signal.SIGINT, before)
