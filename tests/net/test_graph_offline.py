"""Checking or drawing a spec does no network I/O: `vflow graph --check` and `--dot` never
connect to a NATS host the spec names (nor send the environment's credentials there)."""

from __future__ import annotations

import pytest

from tests.net.fake import FakeServer, nats_info
from tests.net.util import local_env, sh


@pytest.mark.parametrize("how", ["--check", "--dot"])
def test_checking_a_spec_connects_nowhere(tmp_path, how):
    fake = FakeServer(nats_info(auth_required=False))
    hub = f"nats://127.0.0.1:{fake.port}"
    spec = tmp_path / "net.toml"
    spec.write_text(
        f"""
[nodes.list]
run = ["recv", "{hub}/"]
[nodes.src]
run = ["int", "0", "9"]
[nodes.send]
run = ["send", "{hub}/cam1"]
from = ["src"]
[nodes.work]
run = ["worker", "--from", "{hub}/cam1", "--to", "{hub}/cam1.out", "--", "identity"]
[nodes.recv]
run = ["recv", "{hub}/cam1.out"]
[nodes.local]
run = ["recv", "nats:///"]
[nodes.out]
run = ["print"]
from = ["recv", "local"]
"""
    )
    env = {**local_env(tmp_path), "VFLOW_NATS_TOKEN": "s3cret"}
    try:
        result = sh(f"vflow graph {how} {spec}", env=env)
        assert result.statuses == [0], result.stderr
        assert fake.connections == 0 and fake.seen() == b""
        assert not (tmp_path / "state").exists()  # nor was a local server started
    finally:
        fake.close()
