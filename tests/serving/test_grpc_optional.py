"""gRPC is an optional extra: without grpcio, asking for it says how to enable it."""

from __future__ import annotations

import importlib.util

import pytest

from pilothouse.serving import ServerSettings, SettingsError


def test_grpc_port_without_grpcio_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "grpc" else real(name, *a)
    )
    with pytest.raises(SettingsError, match=r"pip install 'pilothouse\[grpc\]'"):
        ServerSettings.load({"admin_token": "x" * 16, "grpc_port": 0})
    assert ServerSettings.load({"admin_token": "x" * 16}).grpc_port is None
