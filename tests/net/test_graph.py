"""The example graph with send, worker and recv nodes runs, and gives every packet once."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.graph.util import EXAMPLES
from tests.net.util import local_env, sh


def test_the_network_example_graph(tmp_path):
    env = local_env(tmp_path, VFLOW_NATS_IDLE="5")
    result = subprocess.run(
        [sys.executable, "-m", "vflow_cli", "graph", str(EXAMPLES / "net.toml")],
        capture_output=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [p["seq"] for p in lines] == list(range(200))
    assert all(isinstance(p["burn"], int) for p in lines)
    sh("vflow nats stop --force", env=env)
