"""Where logs go and how they look: ``auto`` is JSON lines on stdout in a container.

The process's own logging pipeline is configured and a record written, to the real
``sys.stdout``/``sys.stderr`` (captured by pytest), so the test sees what a container runtime
would collect.
"""

from __future__ import annotations

import logging

import orjson
import pytest

from pilothouse.foundation import logs
from pilothouse.foundation.settings import LogSettings


def emit(settings: LogSettings, capsys: pytest.CaptureFixture[str]) -> tuple[str, str]:
    handle = logs.configure(settings)
    try:
        logging.getLogger("pilothouse.test").warning("hello %s", "there")
    finally:
        handle.close()
    captured = capsys.readouterr()
    return captured.out, captured.err


def test_in_a_container_auto_writes_json_lines_on_stdout(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("container", "docker")
    out, err = emit(LogSettings(), capsys)
    assert err == ""
    record = orjson.loads(out.strip().splitlines()[-1])
    assert (record["level"], record["message"]) == ("warning", "hello there")


def test_elsewhere_auto_writes_text_on_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("container", raising=False)
    out, err = emit(LogSettings(), capsys)
    assert out == ""
    assert "WARNING pilothouse.test: hello there" in err


def test_an_explicit_setting_wins_over_the_detection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("container", "docker")
    out, err = emit(LogSettings(format="text", stream="stderr"), capsys)
    assert out == "" and "hello there" in err and not err.startswith("{")
    monkeypatch.delenv("container")
    out, err = emit(LogSettings(format="json"), capsys)
    assert out == "" and orjson.loads(err.strip())["message"] == "hello there"
