"""vflow serve and serve-pass as real processes, asked by plain HTTP clients."""

from __future__ import annotations

import http.client
import json
import signal
import socket
import struct
import subprocess
import threading
import time

import cv2
import numpy as np
import pytest

from tests.helpers import ENV, pack, unpack, vflow
from tests.web.util import (
    VFLOW,
    MjpegReader,
    Served,
    metric,
    parse_metrics,
    raw_request,
    rss,
    wait_for,
)

CARD = ["testcard", "--size", "320x240", "--animated"]


def test_the_page_the_frame_the_metadata_and_the_metrics():
    with Served([*CARD, "--fps", "20"], ["count", "--kind", "frame"], ["serve", "-p", "0"]) as s:
        status, headers, body = s.get("/")
        assert status == 200 and headers["Content-Type"].startswith("text/html")
        assert b'<img id="live" src="stream.mjpg"' in body  # the picture needs no script
        assert "script-src 'self'" in headers["Content-Security-Policy"]

        status, headers, body = s.get("/frame.jpg")
        assert status == 200 and headers["Content-Type"] == "image/jpeg"
        picture = cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR)
        assert picture.shape == (240, 320, 3)
        assert int(headers["X-Frame-Seq"]) >= 0

        wait_for(lambda: s.get("/meta")[0] == 200, what="a packet")
        packet = json.loads(s.get("/meta")[2])
        assert packet["kind"] == "frame" and packet["count"] == packet["seq"] + 1
        assert packet["image"] == {"format": "raw", "dtype": "uint8", "shape": [240, 320, 3]}
        announced = json.loads(s.get("/meta?kind=stream")[2])
        assert announced["source"] == "testcard" and announced["width"] == 320
        assert s.get("/meta?kind=nothing")[0] == 404

        values = s.metrics()
        assert metric(values, "vflow_serve_frames_total", stream="testcard") > 0
        assert metric(values, "vflow_serve_viewers", stream="testcard") == 0
        assert metric(values, "process_resident_memory_bytes") > 10e6


def test_no_viewer_no_encoding_and_a_viewer_gets_the_newest_frames():
    with Served([*CARD, "--fps", "20"], ["serve", "-p", "0"]) as s:
        wait_for(lambda: metric(s.metrics(), "vflow_serve_frames_total") >= 10, what="frames")
        assert metric(s.metrics(), "vflow_serve_frames_encoded_total") == 0
        before = metric(s.metrics(), "vflow_serve_frames_total")
        viewer = MjpegReader(s.port)
        seen = [int(viewer.part()[0]["x-frame-seq"]) for _ in range(5)]
        viewer.close()
        assert seen == sorted(seen) and len(set(seen)) == 5
        assert seen[0] >= before - 1  # it starts at the newest frame (seq = number - 1)
        assert metric(s.metrics(), "vflow_serve_frames_encoded_total") >= 5


def test_twenty_viewers_cost_one_encode_per_frame():
    parts: dict[int, list[tuple[int, bytes]]] = {}
    errors: list[BaseException] = []

    def watch(index: int, port: int) -> None:
        try:
            viewer = MjpegReader(port)
            got = []
            for _ in range(20):
                headers, data = viewer.part()
                got.append((int(headers["x-frame-seq"]), data))
            viewer.close()
            parts[index] = got
        except BaseException as exc:
            errors.append(exc)

    with Served([*CARD, "--fps", "15"], ["serve", "-p", "0"]) as s:
        threads = [threading.Thread(target=watch, args=(i, s.port)) for i in range(20)]
        for thread in threads:
            thread.start()
        wait_for(lambda: metric(s.metrics(), "vflow_serve_viewers") == 20, what="20 viewers")
        for thread in threads:
            thread.join(60)
        assert not errors, errors[0]
        values = s.metrics()
    assert len(parts) == 20
    by_seq: dict[int, set[bytes]] = {}
    for got in parts.values():
        seqs = [seq for seq, _ in got]
        assert seqs == sorted(seqs) and len(set(seqs)) == 20  # in order, none twice
        for seq, data in got:
            by_seq.setdefault(seq, set()).add(data)
    assert all(len(versions) == 1 for versions in by_seq.values())  # one JPEG per frame
    shared = sum(1 for seq in by_seq if sum(seq in [q for q, _ in g] for g in parts.values()) > 1)
    assert shared >= 10  # the viewers watched the same frames
    encoded = metric(values, "vflow_serve_frames_encoded_total")
    sent = metric(values, "vflow_serve_frames_sent_total")
    assert sent >= 400
    assert encoded <= metric(values, "vflow_serve_frames_total")
    assert encoded * 10 <= sent  # 20 viewers: about 20 sends per encode


def test_a_viewer_that_leaves_in_the_middle_of_a_frame_harms_no_one():
    with Served([*CARD, "--fps", "20"], ["serve", "-p", "0", "-v"]) as s:
        steady = MjpegReader(s.port)
        steady.part()
        for _ in range(3):
            rude = MjpegReader(s.port)
            headers = rude._headers()
            rude.file.read(int(headers["content-length"]) // 2)  # half a picture
            # a reset, not a polite close: the server's next send fails at once
            rude.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            rude.close()
        seqs = [int(steady.part()[0]["x-frame-seq"]) for _ in range(10)]
        assert seqs == sorted(seqs)
        wait_for(lambda: metric(s.metrics(), "vflow_serve_viewers") == 1, what="one viewer")
        steady.close()
        assert s.server.poll() is None
        assert "Traceback" not in s.stderr() and "internal error" not in s.stderr()


def test_a_stalled_viewer_is_dropped_with_flat_memory_and_no_slower_stream():
    """A viewer that never reads: 720p frames keep coming at their pace, the server's memory
    stays flat, and the viewer is dropped after --timeout."""
    fps = 20.0
    with Served(
        ["testcard", "--size", "1280x720", "--animated", "--fps", str(fps)],
        ["serve", "-p", "0", "--timeout", "2", "-v"],
    ) as s:

        def rate(seconds: float) -> float:
            before, t0 = metric(s.metrics(), "vflow_serve_frames_total"), time.monotonic()
            time.sleep(seconds)
            return (metric(s.metrics(), "vflow_serve_frames_total") - before) / (
                time.monotonic() - t0
            )

        wait_for(lambda: metric(s.metrics(), "vflow_serve_frames_total") > 5, what="frames")
        alone = rate(3)
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", s.port))
        stalled.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: {s.host}\r\n\r\n".encode())
        wait_for(lambda: metric(s.metrics(), "vflow_serve_viewers") == 1, what="the viewer")
        time.sleep(1)  # encoding starts: OpenCV loads, the frame arrays are made once
        samples = []
        start = time.monotonic()
        while time.monotonic() - start < 6:
            samples.append(rss(s.server.pid))
            time.sleep(0.25)
        with_it = rate(3)
        wait_for(
            lambda: metric(s.metrics(), "vflow_serve_viewers_dropped_total") == 1,
            timeout=30,
            what="the stalled viewer to be dropped",
        )
        stalled.close()
        assert metric(s.metrics(), "vflow_serve_viewers") == 0
        assert "took no frame for 2 s" in s.stderr()
    assert alone > fps * 0.7, alone
    # generous: the stalled viewer makes the server encode, on two shared cores
    assert with_it > alone * 0.7, (alone, with_it)
    # a leak of one 720p frame (2.7 MB raw) per frame would be 300+ MB by then
    assert max(samples) - min(samples) < 30e6, [round(m / 1e6) for m in samples]


TOKEN = "s3cret-token"


def _ways(cookie_name: str) -> dict:
    """Each way a client can give the token: value -> (path suffix, headers)."""
    import base64

    return {
        "Bearer": lambda v: ("", {"Authorization": f"Bearer {v}"}),
        "?token=": lambda v: (f"?token={v}", {}),
        "Basic password": lambda v: (
            "",
            {"Authorization": "Basic " + base64.b64encode(f"me:{v}".encode()).decode()},
        ),
        "cookie": lambda v: ("", {"Cookie": f"other=1; {cookie_name}={v}"}),
    }


def test_a_wrong_token_in_every_way_gets_401_the_right_one_200(tmp_path):
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    secret.chmod(0o600)
    serve = ["serve", "-p", "0", "-vv", "--token-file", str(secret)]
    with Served([*CARD, "--fps", "20"], serve) as s:
        good = {"Authorization": f"Bearer {TOKEN}"}
        wait_for(lambda: s.get("/meta", good)[0] == 200, what="a packet")
        # a scanner's first try, with ESC in its path: logged once, escaped
        scan = f"GET /\x1b[31mx HTTP/1.1\r\nHost: {s.host}\r\nConnection: close\r\n\r\n"
        assert b" 401 " in raw_request(s.port, scan.encode())
        wait_for(lambda: "401 GET /\\x1b[31mx from 127.0.0.1:" in s.stderr(), what="the log")
        status, headers, _ = s.get("/meta")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        assert s.get("/nowhere")[0] == 401  # nothing, not even which paths exist

        # a link with the token: the page swaps it for a session cookie and a clean address
        status, headers, _ = s.get(f"/?token={TOKEN}")
        assert status == 303 and headers["Location"] == "./"
        name, _, session = headers["Set-Cookie"].split(";")[0].partition("=")
        assert name == f"vflow_session_{s.port}" and "HttpOnly" in headers["Set-Cookie"]
        assert TOKEN not in headers["Set-Cookie"] and len(session) >= 32

        ways = _ways(name)
        right = {way: session if way == "cookie" else TOKEN for way in ways}
        for way, give in ways.items():
            wrongs = ["wrong", right[way][:-1], right[way] + "x", right[way].upper()]
            if way == "cookie":
                wrongs.append(TOKEN)  # the cookie holds a session, never the token
            for wrong in wrongs:
                for path in ("/meta", "/frame.jpg", "/metrics"):
                    suffix, headers = give(wrong)
                    assert s.get(path + suffix, headers)[0] == 401, (way, wrong, path)
            suffix, headers = give(right[way])
            for path in ("/meta", "/frame.jpg", "/metrics"):
                assert s.get(path + suffix, headers)[0] == 200, (way, path)

        log = s.stderr()
        assert TOKEN not in log and session not in log, log  # even at -vv
        assert "?token=*** HTTP/1.1" in log  # -vv logs request lines, masked
        assert "\x1b" not in log
        # dozens refused from 127.0.0.1, each from a port of its own: one line a minute
        assert log.count("vflow serve: 401 ") == 1, log
        values = parse_metrics(s.get("/metrics", good)[2].decode())
        assert metric(values, "vflow_http_unauthorized_total") >= 50

        # another server with the same token takes neither this session nor its own name
        with Served(["int", "0", "3"], ["serve", "-p", "0", "--wait", "--token", TOKEN]) as t:
            for cookie in (f"{name}={session}", f"vflow_session_{t.port}={session}"):
                assert t.get("/meta", {"Cookie": cookie})[0] == 401
            bearer = {"Authorization": f"Bearer {TOKEN}"}  # 503 until its first packet
            wait_for(lambda: t.get("/meta", bearer)[0] == 200, what="the token let in")


def test_only_its_own_paths_and_bounded_requests():
    # --timeout 60: the idle connections below must outlast a slow, loaded machine
    serve = ["serve", "-p", "0", "--max-clients", "4", "--timeout", "60"]
    with Served([*CARD, "--fps", "20"], serve) as s:
        for path in ("/etc/passwd", "/../../etc/passwd", "/stream.mjpg/x", "/%2e%2e/meta", "/x"):
            assert s.get(path)[0] == 404, path
        host = f"Host: {s.host}\r\n"
        assert b" 405 " in raw_request(s.port, f"POST /meta HTTP/1.1\r\n{host}\r\n".encode())
        body = f"GET /meta HTTP/1.1\r\n{host}Content-Length: 5\r\n\r\nhello".encode()
        assert b" 413 " in raw_request(s.port, body)
        line = f"GET /{'a' * 10000} HTTP/1.1\r\n{host}\r\n".encode()
        assert b" 414 " in raw_request(s.port, line)
        many = "".join(f"X-Filler-{i}: {'b' * 1000}\r\n" for i in range(40))
        assert b" 431 " in raw_request(s.port, f"GET /meta HTTP/1.1\r\n{host}{many}\r\n".encode())
        absolute = f"GET http://example.com/meta HTTP/1.1\r\n{host}\r\n".encode()
        assert b" 400 " in raw_request(s.port, absolute)
        rebound = b"GET /meta HTTP/1.1\r\nHost: attacker.example:8080\r\n\r\n"
        assert b" 403 " in raw_request(s.port, rebound)
        # --max-clients 4: with four connections open, the fifth is turned away at once
        wait_for(lambda: s.get("/meta")[0] == 200, what="a packet")
        idle = [_kept(s.port) for _ in range(3)]
        try:
            wait_for(lambda: _clients(s) == 4, what="three clients and this one")
            idle.append(_kept(s.port))  # the fourth, once the server has room for it
            assert raw_request(s.port, b"").startswith(b"HTTP/1.1 503 ")
        finally:
            for sock in idle:
                sock.close()
        wait_for(lambda: s.get("/meta")[0] == 200, what="room again")
        assert "Traceback" not in s.stderr()


def _kept(port: int) -> http.client.HTTPConnection:
    """A kept-alive connection whose request the server let in (so that it holds a slot of
    its own). One made while the connection that counted the clients is still closing on
    the server's side is refused (503) at once; try again."""
    deadline = time.monotonic() + 30
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        conn.request("GET", "/meta")
        reply = conn.getresponse()
        reply.read()
        if reply.status != 503:
            assert reply.status == 200 and not reply.will_close, reply.status
            return conn
        conn.close()
        assert time.monotonic() < deadline, "the server never had room for a fourth client"
        time.sleep(0.05)


def _clients(s: Served) -> float:
    status, _, body = s.get("/metrics")
    if status != 200:
        return 0
    return float(
        next(
            line for line in body.decode().splitlines() if line.startswith("vflow_http_clients")
        ).split()[-1]
    )


def test_a_client_that_sends_nothing_is_dropped():
    with Served([*CARD, "--fps", "20"], ["serve", "-p", "0", "--timeout", "1"]) as s:
        with socket.create_connection(("127.0.0.1", s.port), timeout=10) as sock:
            start = time.monotonic()
            assert sock.recv(100) == b""  # closed by the server
            assert 0.5 < time.monotonic() - start < 8
        assert metric(s.metrics(), "vflow_http_timeouts_total") >= 1


def test_the_event_stream_carries_metadata_and_status():
    with Served([*CARD, "--fps", "20"], ["count", "--kind", "frame"], ["serve", "-p", "0"]) as s:
        sock = socket.create_connection(("127.0.0.1", s.port), timeout=10)
        sock.sendall(f"GET /events HTTP/1.1\r\nHost: {s.host}\r\n\r\n".encode())
        data = b""
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            data += sock.recv(65536)
        sock.close()
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Content-Type: text/event-stream" in head
    events = [block.split(b"\n") for block in body.split(b"\n\n") if block.startswith(b"event")]
    metas = [json.loads(lines[2][6:]) for lines in events if lines[0] == b"event: meta"]
    metas = [m for m in metas if m["kind"] == "frame"]
    statuses = [json.loads(lines[2][6:]) for lines in events if lines[0] == b"event: status"]
    assert len(metas) >= 5 and statuses
    counts = [m["count"] for m in metas]
    assert counts == sorted(counts) and counts[-1] > counts[0]
    assert len(metas) <= 2.5 * 10 + 2  # at most 10 a second
    assert statuses[-1]["name"] == "testcard" and "fps" in statuses[-1]


def test_max_fps_caps_the_encoding_not_the_stream():
    with Served([*CARD, "--fps", "20"], ["serve", "-p", "0", "--max-fps", "4"]) as s:
        viewer = MjpegReader(s.port)
        viewer.part()
        before = s.metrics()
        time.sleep(2)
        after = s.metrics()
        viewer.close()
    frames = metric(after, "vflow_serve_frames_total") - metric(before, "vflow_serve_frames_total")
    encoded = metric(after, "vflow_serve_frames_encoded_total") - metric(
        before, "vflow_serve_frames_encoded_total"
    )
    assert frames >= 25  # the stream went on at its pace
    assert 4 <= encoded <= 11  # about 4 a second were encoded


def test_head_answers_with_headers_only():
    with Served([*CARD, "--fps", "20"], ["serve", "-p", "0"]) as s:
        wait_for(lambda: s.get("/meta")[0] == 200, what="a packet")
        reply = raw_request(
            s.port, f"HEAD /meta HTTP/1.1\r\nHost: {s.host}\r\nConnection: close\r\n\r\n".encode()
        )
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 ") and b"Content-Length: " in head and body == b""


def test_frames_already_jpeg_are_sent_as_they_are():
    with Served([*CARD, "--fps", "20"], ["jpeg", "--quality", "70"], ["serve", "-p", "0"]) as s:
        viewer = MjpegReader(s.port)
        _, data = viewer.part()
        viewer.close()
        assert data[:2] == b"\xff\xd8"
        values = s.metrics()
        assert metric(values, "vflow_serve_frames_passed_total") >= 1
        assert metric(values, "vflow_serve_frames_encoded_total") == 0


def test_serve_pass_forwards_the_stream_unchanged(tmp_path):
    recorded = vflow("testcard", "--size", "64x48", "--frames", "40", "--animated").stdout
    result = vflow("serve-pass", "-p", "0", "-q", input=recorded)
    assert result.returncode == 0, result.stderr
    before, after = unpack(recorded), unpack(result.stdout)
    assert len(before) == len(after) == 41
    for a, b in zip(before, after, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            if key == "image":
                assert np.array_equal(a[key], b[key])
            else:
                assert a[key] == b[key]


def test_serve_pass_passes_every_frame_while_watched():
    with Served(
        ["testcard", "--size", "640x360", "--animated", "--fps", "30", "--frames", "90"],
        ["serve-pass", "-p", "0"],
        ["print", "--kind", "frame", "-f", "seq"],
        stdout=subprocess.PIPE,
        server=1,
    ) as s:
        viewer = MjpegReader(s.port)
        shown = [int(viewer.part()[0]["x-frame-seq"]) for _ in range(10)]
        out = s.procs[-1].stdout.read()
        assert s.wait() == [0, 0, 0]
        viewer.close()
    seqs = [json.loads(line)["seq"] for line in out.splitlines()]
    assert seqs == list(range(90))
    assert shown == sorted(shown)


def test_serve_with_pass_names_serve_pass():
    result = vflow("serve", "--pass", input=pack([]))
    assert result.returncode == 2
    assert b"vflow serve-pass" in result.stderr


def test_wait_keeps_the_last_frame_until_ctrl_c():
    with Served(
        ["testcard", "--size", "160x120", "--frames", "5"], ["serve", "-p", "0", "--wait"]
    ) as s:
        wait_for(lambda: "serving the last frame" in s.stderr(), what="the end of input")
        status, headers, _ = s.get("/frame.jpg")
        assert status == 200 and headers["X-Frame-Seq"] == "4"
        assert json.loads(s.get("/meta")[2])["seq"] == 4
        viewer = MjpegReader(s.port)
        assert viewer.part()[0]["x-frame-seq"] == "4"
        viewer.close()
        assert s.server.poll() is None
        s.server.send_signal(signal.SIGINT)
        assert s.server.wait(10) == 0


def test_the_end_of_input_ends_the_server():
    with Served(["testcard", "--size", "160x120", "--frames", "10"], ["serve", "-p", "0"]) as s:
        assert s.wait() == [0, 0]
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", s.port), timeout=5)


def test_a_port_in_use_is_one_line():
    with Served([*CARD, "--fps", "20"], ["serve", "-p", "0"]) as s:
        result = vflow("serve", "-p", str(s.port), input=pack([]))
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "cannot listen on 127.0.0.1:" in lines[0]
    assert "--port" in lines[0]


def test_a_missing_token_file_is_one_line(tmp_path):
    result = vflow("serve", "--token-file", str(tmp_path / "nope"), input=pack([]))
    assert result.returncode == 1
    assert b"cannot read the token file" in result.stderr and b"Traceback" not in result.stderr


def _status(port: int, host: str) -> bytes:
    head = f"GET /meta HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    reply = raw_request(port, head.encode())
    return reply.split(b" ", 2)[1]


def _outward_address() -> str | None:
    """An address of this machine beyond loopback, if it has one (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith(("0.", "127.")) else address


def test_a_network_bind_needs_a_token_and_answers_only_to_this_machines_names():
    refused = vflow("serve", "--bind", "0.0.0.0", "--port", "0", input=pack([]))
    assert refused.returncode == 1 and refused.stderr.count(b"\n") == 1, refused.stderr
    assert b"no token is set" in refused.stderr and b"--no-token" in refused.stderr
    both = vflow("serve", "--port", "0", "--no-token", "--token", "x", input=pack([]))
    assert both.returncode == 1 and b"--no-token, yet a token" in both.stderr, both.stderr

    serve = ["serve", "--bind", "0.0.0.0", "-p", "0", "--no-token", "--allow-host", "cam.example"]
    with Served([*CARD, "--fps", "20"], serve) as s:
        # the address printed is the one bound, not a loopback one it is not limited to
        assert f"serving on http://0.0.0.0:{s.port}/ (from elsewhere: http://" in s.stderr()
        wait_for(lambda: _status(s.port, s.host) == b"200", what="a packet")
        assert _status(s.port, f"localhost:{s.port}") == b"200"
        assert _status(s.port, "cam.example:8080") == b"200"  # --allow-host
        assert _status(s.port, socket.gethostname()) == b"200"
        assert _status(s.port, "attacker.example") == b"403"  # DNS rebinding
        assert _status(s.port, "203.0.113.7") == b"403"  # not an address of this machine
        assert _status(s.port, "") == b"403"
        outward = _outward_address()
        if outward is not None:
            assert _status(s.port, f"{outward}:{s.port}") == b"200"

    with Served([*CARD, "--fps", "20"], ["serve", "-p", "0", "--allow-host", "cam.example"]) as s:
        wait_for(lambda: _status(s.port, s.host) == b"200", what="a packet")
        assert _status(s.port, "cam.example") == b"200"
        assert _status(s.port, socket.gethostname()) == b"403"  # loopback only: localhost


class Drippers:
    """Slowloris: connections that send a request head a byte at a time and never end it,
    each byte well within the server's timeout."""

    def __init__(self, port: int, count: int, every: float = 0.2) -> None:
        self.socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(count)]
        self.closed: set[int] = set()  # by the server
        self._stop = threading.Event()
        for sock in self.socks:
            sock.setblocking(False)
            sock.send(b"GET /meta HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: ")
        self._thread = threading.Thread(target=self._drip, args=(every,), daemon=True)
        self._thread.start()

    def _drip(self, every: float) -> None:
        while not self._stop.wait(every):
            for i, sock in enumerate(self.socks):
                if i in self.closed:
                    continue
                try:
                    if sock.recv(1) == b"":
                        self.closed.add(i)
                        continue
                except BlockingIOError:
                    pass
                except OSError:
                    self.closed.add(i)
                    continue
                try:
                    sock.send(b"a")
                except OSError:
                    self.closed.add(i)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for sock in self.socks:
            sock.close()


def test_dripping_connections_lock_no_real_client_out():
    serve = ["serve", "-p", "0", "--max-clients", "8", "--timeout", "3", "--token", "tok"]
    with Served([*CARD, "--fps", "20"], serve) as s:
        auth = {"Authorization": "Bearer tok"}
        wait_for(lambda: s.get("/meta", auth)[0] == 200, what="a packet")
        drip = Drippers(s.port, 12)  # more than every slot
        try:
            # connections not let in yet hold half the slots at most: a real client is served
            assert s.get("/meta", auth)[0] == 200
            assert s.get("/frame.jpg", auth)[0] == 200
            # each dripped head meets its one deadline, however steadily the bytes come
            wait_for(lambda: len(drip.closed) == 12, timeout=60, what="every dripper cut")
        finally:
            drip.close()
        values = parse_metrics(s.get("/metrics", auth)[2].decode())
        assert metric(values, "vflow_http_evicted_total") >= 8  # 12 drippers, 4 pending
        assert metric(values, "vflow_http_timeouts_total") >= 1  # the rest: the deadline
        assert "Traceback" not in s.stderr()


def test_serve_wait_gives_the_last_frame_whole_and_counts_viewers_that_leave():
    card = ["testcard", "--size", "160x120", "--frames", "3"]
    with Served(card, ["serve", "-p", "0", "--wait"]) as s:
        wait_for(lambda: "serving the last frame until Ctrl-C" in s.stderr(), what="the end")
        viewer = MjpegReader(s.port)
        try:
            headers, data = viewer.part()
            assert headers["x-frame-seq"] == "2" and data.startswith(b"\xff\xd8")
            # a browser paints a part once the next one begins: its headers follow
            assert viewer._headers()["x-frame-seq"] == "2"
            wait_for(lambda: metric(s.metrics(), "vflow_serve_viewers") == 1, what="1 viewer")
        finally:
            viewer.close()
        # no frame will be sent to find out the viewer left: the server looks
        wait_for(lambda: metric(s.metrics(), "vflow_serve_viewers") == 0, what="0 viewers")


@pytest.mark.parametrize(
    ("source", "ready"),
    [(["--fps", "20"], "serving on http://"), (["--frames", "3"], "serving the last frame")],
    ids=["live", "ended"],
)
def test_ctrl_c_stops_a_graph_with_a_serve_wait_node_at_once(tmp_path, source, ready):
    """As in a shell pipe: one Ctrl-C, and `serve --wait` stops, while its input runs or
    after it has ended; the graph does not sit out its grace period (600 s here)."""
    spec = tmp_path / "wait.toml"
    card = ", ".join(f'"{word}"' for word in ["testcard", "--size", "160x120", *source])
    spec.write_text(
        f"[graph]\ngrace = 600\n[nodes.src]\nrun = [{card}]\n"
        '[nodes.view]\nrun = ["serve", "-p", "0", "--wait"]\nfrom = ["src"]\n'
    )
    err = tmp_path / "graph.log"
    with open(err, "wb") as log:
        graph = subprocess.Popen(
            [*VFLOW, "graph", str(spec)], stderr=log, stdout=subprocess.DEVNULL, env=ENV
        )
    try:
        wait_for(lambda: ready in err.read_text(), what=ready)
        graph.send_signal(signal.SIGINT)
        assert graph.wait(timeout=60) == 130, err.read_text()
    finally:
        if graph.poll() is None:
            graph.kill()
            graph.wait()
    assert "SIGTERM" not in err.read_text() and "Traceback" not in err.read_text()
