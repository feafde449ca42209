"""The graph page over plain HTTP: a real server in this process, fed a scripted status."""

from __future__ import annotations

import html
import json
import logging
import re
import socket
import subprocess
import sys
import time

import pytest

from tests.helpers import ENV
from tests.web.script import ScriptedGraph
from tests.web.util import get, metric, parse_metrics, wait_for
from vflow_cli.runner import StageError
from vflow_cli.web.graph_page import Rates, render_svg, serve_graph, view_of
from vflow_cli.web.server import BindError


@pytest.fixture
def graph():
    script = ScriptedGraph(rate=50)
    page = serve_graph(script.status, script.dot, port=0, interval=0.2, window=1.0)
    yield script, page
    page.close()


def status_of(page) -> dict:
    status, _, body = get(page.port, "/status.json")
    assert status == 200
    return json.loads(body)


def test_the_page_draws_the_graph(graph):
    script, page = graph
    status, headers, body = get(page.port, "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    page_text = body.decode()
    titles = {html.unescape(t) for t in re.findall(r"<title>(.*?)</title>", page_text)}
    for name in script.spec.nodes:
        assert name in titles  # Graphviz's node groups, by name (fast&#45;out: fast-out)
    assert page_text.count('class="node"') == len(script.spec.nodes)
    assert '<script src="graph.js">' in page_text
    status, headers, svg = get(page.port, "/graph.svg")
    assert status == 200 and headers["Content-Type"] == "image/svg+xml"
    assert svg.startswith(b"<svg")
    assert get(page.port, "/graph.js")[0] == 200 and get(page.port, "/nothing")[0] == 404


def test_rates_come_from_successive_snapshots(graph):
    _, page = graph
    view = wait_for(
        lambda: (v := status_of(page))["nodes"][0]["rate_out"] is not None and v,
        what="a rate",
    )
    time.sleep(1.2)
    view = status_of(page)
    nodes = {n["name"]: n for n in view["nodes"]}
    assert nodes["src"]["rate_out"] == pytest.approx(50, rel=0.35)
    assert nodes["src"]["rate_in"] is None  # a producer reads nothing
    assert nodes["fast-out"]["rate_in"] is None  # behind a plain pipe: not observable
    assert nodes["fast"]["rate_in"] == pytest.approx(50, rel=0.35)
    slow = next(e for e in view["edges"] if e["to"] == "slow")
    assert slow["leaky"] == "old" and slow["size"] == 4
    assert slow["rate_dropped"] == pytest.approx(5, rel=0.6)
    assert view["uptime"] > 0 and view["graph"]["spec"] == "leaky.toml"


def test_a_failed_node_and_the_metrics(graph):
    script, page = graph
    script.fail("slow", "exit status 1", ["vflow rate: something broke", "and a second line"])
    wait_for(lambda: any(n["state"] == "failed" for n in status_of(page)["nodes"]), what="failed")
    view = status_of(page)
    slow = next(n for n in view["nodes"] if n["name"] == "slow")
    assert slow["status"] == "exit status 1" and slow["stderr"][0].startswith("vflow rate:")
    assert slow["rate_in"] == 0.0  # a node that ended moves nothing
    status, headers, body = get(page.port, "/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    values = parse_metrics(body.decode())
    assert metric(values, "vflow_node_state", node="slow", state="failed") == 1
    assert metric(values, "vflow_node_state", node="slow", state="running") == 0
    assert metric(values, "vflow_node_state", node="src", state="running") == 1
    assert metric(values, "vflow_node_packets_out_total", node="src") > 0
    assert metric(values, "vflow_edge_dropped_total", **{"from": "src", "to": "slow"}) >= 0
    assert metric(values, "vflow_graph_state", state="running") == 1
    assert not any(k.startswith('vflow_node_packets_in_total{node="src"') for k in values)


def test_the_event_stream_sends_each_sample(graph):
    _, page = graph
    sock = socket.create_connection(("127.0.0.1", page.port), timeout=10)
    sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{page.port}\r\n\r\n".encode())
    data = b""
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        data += sock.recv(65536)
    sock.close()
    events = [b for b in data.split(b"\n\n") if b.startswith(b"event: status")]
    assert len(events) >= 4  # sampled every 0.2 s
    last = json.loads(events[-1].split(b"\ndata: ", 1)[1])
    assert {n["name"] for n in last["nodes"]} == {"src", "fast", "fast-out", "slow", "slow-out"}


def test_a_status_that_fails_is_logged_once_and_the_last_view_stays(caplog):
    script = ScriptedGraph()
    broken = {"on": False}

    def status():
        if broken["on"]:
            raise RuntimeError("the runner is gone")
        return script.status()

    log = logging.getLogger("vflow.test-graph-page")
    with serve_graph(status, script.dot, port=0, interval=0.1, log=log) as page:
        first = status_of(page)
        broken["on"] = True
        with caplog.at_level(logging.WARNING, logger=log.name):
            time.sleep(0.6)
        assert status_of(page)["time"] >= first["time"]
        lines = [r for r in caplog.records if "could not be read" in r.getMessage()]
        assert len(lines) == 1 and "the runner is gone" in lines[0].getMessage()


def test_a_token_is_needed_when_given():
    script = ScriptedGraph()
    with serve_graph(script.status, script.dot, port=0, token="graph-token") as page:
        assert get(page.port, "/")[0] == 401
        assert get(page.port, "/metrics")[0] == 401
        assert get(page.port, "/metrics", {"Authorization": "Bearer graph-token"})[0] == 200


def test_a_busy_port_is_a_bind_error():
    script = ScriptedGraph()
    with (
        serve_graph(script.status, script.dot, port=0) as page,
        pytest.raises(BindError, match="choose another --port"),
    ):
        serve_graph(script.status, script.dot, port=page.port)


def test_without_graphviz_the_page_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    note = render_svg("digraph { a -> b }")
    assert note.startswith('<p class="note">') and "Graphviz" in note


def test_rates_over_a_window_and_a_restarted_counter():
    rates = Rates(window=2.0)
    assert rates.rate("a", 0.0, 0) is None  # one sample: no rate yet
    assert rates.rate("a", 1.0, 10) == 10.0
    assert rates.rate("a", 2.0, 30) == 15.0
    assert rates.rate("a", 4.0, 70) == pytest.approx(20.0)  # 30 -> 70 in the last 2 s
    assert rates.rate("a", 5.0, 5) is None  # went down: restarted, history gone
    assert rates.rate("a", 6.0, 15) == 10.0
    assert rates.rate("a", 7.0, None) is None


def test_view_of_keeps_the_snapshot_and_adds_numbers():
    snapshot = {
        "graph": {"spec": "x.toml", "started": 100.0, "state": "done", "exit": 0},
        "nodes": [{"name": "a", "state": "done", "packets_in": None, "packets_out": 5}],
        "edges": [],
    }
    rates = Rates(3.0)
    view_of(snapshot, rates, 0.0, 101.0)
    view = view_of(snapshot, rates, 1.0, 102.0)
    assert view["uptime"] == 2.0 and view["nodes"][0]["rate_out"] == 0.0
    assert "rate_out" not in snapshot["nodes"][0]  # the runner's dict is left alone


SECRET_SPEC = """
[nodes.src]
run = ["int", "0", "9"]
[nodes.view]
run = ["serve-pass", "--token", "serve-s3cret", "--port", "0"]
from = ["src"]
[nodes.copy]
python = ["-c", "import sys; sys.stdout.buffer.write(sys.stdin.buffer.read())",
          "--password=hunter2", "nats://alice:pw0rd@example.invalid/cam", "--key", "/keys/cam.key",
          "NATS_TOKEN=envtok", "http://example.invalid/x?token=qtok&size=2"]
from = ["view"]
[nodes.out]
run = ["null"]
from = ["copy"]
"""
SECRETS = (b"serve-s3cret", b"hunter2", b"pw0rd", b"alice", b"envtok", b"qtok")


def test_the_graph_page_shows_no_secret_of_a_command_line(tmp_path):
    """A real `vflow graph --serve`: its page, drawing, status and events mask option values
    named token/password/key/secret and URL userinfo; a --key FILE stays a path."""
    spec = tmp_path / "secrets.toml"
    spec.write_text(SECRET_SPEC)
    driver = subprocess.Popen(
        [sys.executable, "-m", "vflow_cli", "graph", "--serve", "0", "--linger", "60", str(spec)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    try:
        assert driver.stderr is not None
        port = int(driver.stderr.readline().decode().strip().rsplit(":", 1)[1].strip("/"))
        status = wait_for(
            lambda: (
                (s := json.loads(get(port, "/status.json")[2]))["graph"]["state"] == "done" and s
            ),
            what="the graph's end",
        )
        labels = {n["name"]: n["label"] for n in status["nodes"]}
        assert labels["view"] == "serve-pass --token *** --port 0"
        assert "--password=*** nats://***@example.invalid/cam --key /keys/cam.key" in labels["copy"]
        assert "NATS_TOKEN=*** http://example.invalid/x?token=***&size=2" in labels["copy"]
        drawing = html.unescape(get(port, "/graph.svg")[2].decode()).encode()
        assert b"serve-pass --token *** --port 0" in drawing  # the drawing's label too
        page = get(port, "/")[2] + drawing + get(port, "/status.json")[2]
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            events = b""
            while b"\n\n" not in events.partition(b"event: status")[2]:
                chunk = sock.recv(65536)
                assert chunk, events
                events += chunk
        assert b"--password=***" in events
        for secret in SECRETS:
            assert secret not in page and secret not in events, secret
    finally:
        driver.terminate()
        try:
            driver.wait(20)
        except subprocess.TimeoutExpired:
            driver.kill()
            driver.wait()
        if driver.stderr is not None:
            driver.stderr.close()


def test_a_graph_page_beyond_loopback_needs_a_token_or_no_token():
    script = ScriptedGraph()
    with pytest.raises(StageError, match="no token is set"):
        serve_graph(script.status, script.dot, bind="0.0.0.0", port=0)
    with serve_graph(script.status, script.dot, bind="0.0.0.0", port=0, no_token=True) as page:
        assert page.url == f"http://0.0.0.0:{page.port}/"
        assert get(page.port, "/status.json")[0] == 200
        assert get(page.port, "/status.json", {"Host": "attacker.example"})[0] == 403
