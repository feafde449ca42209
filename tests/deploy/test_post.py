"""vflow post against a local HTTP server (in this test) that fails the first tries."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.helpers import pack, vflow
from tests.video_support import closed_port


class Hook:
    """http://127.0.0.1:PORT/hook: answers `failures` requests with `status`, then 200;
    .bodies: what it accepted, .headers: the headers of the last request."""

    def __init__(self, failures: int = 0, status: int = 503) -> None:
        self.failures, self.status = failures, status
        self.requests = 0
        self.bodies: list[dict] = []
        self.headers: dict[str, str] = {}
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                owner.requests += 1
                owner.headers = dict(self.headers)
                code = owner.status if owner.requests <= owner.failures else 200
                if code == 200:
                    owner.bodies.append(json.loads(body))
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def hook():
    server = Hook(failures=3)
    yield server
    server.stop()


def events(n: int) -> list[dict]:
    out: list[dict] = [{"kind": "stream", "source": "door"}]
    for i in range(n):
        out += [{"kind": "frame", "seq": i}, {"kind": "event", "event": "cross", "id": i}]
    return out


def test_every_event_arrives_once_in_order_after_failures(hook):
    url = hook.url.replace("http://", "http://home:s3cret@")
    result = vflow("post", url, "--header", "X-Camera: door", "-v", input=pack(events(5)))
    assert result.returncode == 0, result.stderr
    assert [b["id"] for b in hook.bodies] == [0, 1, 2, 3, 4]
    assert all(b["kind"] == "event" and b["event"] == "cross" for b in hook.bodies)
    assert hook.requests == 8  # three refused, five taken
    assert hook.headers["X-Camera"] == "door"
    assert hook.headers["Authorization"] == "Basic aG9tZTpzM2NyZXQ="  # home:s3cret
    lines = result.stderr.decode().splitlines()
    assert [line.split(";")[1].strip() for line in lines[:3]] == [
        "try 2 in 0.5 s",
        "try 3 in 1.0 s",
        "try 4 in 2.0 s",
    ]
    assert "s3cret" not in result.stderr.decode()


def test_an_event_never_taken_is_dropped_and_said():
    server = Hook(failures=100)
    try:
        result = vflow("post", server.url, "--retries", "1", input=pack(events(2)))
    finally:
        server.stop()
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 3, lines
    assert (
        lines[0]
        == f"vflow post: {server.url} did not take event 0 after 2 tries (HTTP 503); dropped"
    )
    assert lines[2] == f"vflow post: 2 events were not delivered to {server.url}"
    assert server.requests == 4


def test_a_refusal_is_not_retried():
    server = Hook(failures=100, status=404)
    try:
        result = vflow("post", server.url, input=pack(events(3)))
    finally:
        server.stop()
    assert result.returncode == 1 and server.requests == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and "refused an event (HTTP 404)" in lines[0]


def test_nothing_listening_is_retried_then_dropped():
    url = f"http://127.0.0.1:{closed_port()}/hook"
    result = vflow("post", url, "--retries", "0", input=pack(events(1)))
    assert result.returncode == 1
    assert "Connection refused" in result.stderr.decode().splitlines()[0]


def test_bad_arguments():
    assert vflow("post", "ftp://x/y", input=pack([])).returncode == 2
    result = vflow("post", "http://x/", "--header", "nocolon", input=pack([]))
    assert result.returncode == 2 and b"NAME: VALUE" in result.stderr
