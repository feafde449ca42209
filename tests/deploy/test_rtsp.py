"""camera against a real RTSP server (GStreamer's rtsp-server, started here) over TCP and UDP:
frames arrive, and a server killed mid-stream and started again is reconnected, with the
gap marked so that `write` and `track` can tell."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from tests.deploy.rtsp import RTSPServer, age_ms, stamp
from tests.helpers import ENV, sh, unpack, vflow
from tests.net.util import vflow_argv, wait_for

FRAME_BYTES = 320 * 240 * 3


@pytest.fixture
def server(tmp_path):
    rtsp = RTSPServer(tmp_path)
    yield rtsp
    rtsp.stop()


@pytest.mark.parametrize(
    ("transport", "codec"), [("tcp", "h264"), ("udp", "h264"), ("tcp", "mjpeg")]
)
def test_frames_arrive_over_rtsp(tmp_path, transport, codec):
    server = RTSPServer(tmp_path, codec=codec, only=transport)  # the other one is refused
    started = time.time()
    try:
        result = vflow(
            "camera",
            server.url,
            "--transport",
            transport,
            "--frames",
            "10",
            "--name",
            "door",
            timeout=180,  # a loaded machine: the stage's own limits end it sooner
        )
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    out = unpack(result.stdout)
    assert out[0]["kind"] == "stream" and out[0]["source"] == "door"
    assert (out[0]["width"], out[0]["height"]) == (320, 240)
    frames = [p for p in out if p["kind"] == "frame"]
    assert [p["seq"] for p in frames] == list(range(10))
    # the pictures are the server's: each carries the time it was made, after we started
    # (a stamp damaged by a datagram lost over UDP reads as None)
    readable = [p for p in frames if stamp(p["image"]) is not None]
    assert len(readable) >= (10 if transport == "tcp" else 8)
    stamps = [stamp(p["image"]) for p in readable]
    assert stamps == sorted(stamps)
    assert all(0 <= age_ms(p["image"], p["wall"]) < (p["wall"] - started) * 1000 for p in readable)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_a_restarted_server_is_reconnected_and_the_gap_marked(server, tmp_path, transport):
    out, err = tmp_path / "cam.vflow", tmp_path / "cam.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        camera = subprocess.Popen(
            vflow_argv("camera", server.url, "--transport", transport, "--timeout", "3"),
            stdout=stdout,
            stderr=stderr,
            env=ENV,
        )
    try:
        assert wait_for(lambda: out.stat().st_size > 20 * FRAME_BYTES, timeout=60)
        server.stop()
        killed = time.time()
        assert wait_for(lambda: b"lost" in err.read_bytes(), timeout=30), err.read_text()
        server.start()
        assert wait_for(lambda: b"back after" in err.read_bytes(), timeout=60), err.read_text()
        resumed = out.stat().st_size
        assert wait_for(lambda: out.stat().st_size > resumed + 20 * FRAME_BYTES, timeout=60)
    finally:
        camera.send_signal(signal.SIGINT)
        camera.wait(30)
    assert camera.returncode == 130, err.read_text()
    lines = err.read_text().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"vflow camera: {server.url} lost (")
    assert lines[0].endswith("; reconnecting")
    assert lines[1].startswith(f"vflow camera: {server.url} back after ")

    packets = unpack(out.read_bytes())
    kinds = [p["kind"] for p in packets]
    assert kinds.count("gap") == 1 and kinds.count("stream") == 1
    at = kinds.index("gap")
    gap = packets[at]
    before = [p for p in packets[:at] if p["kind"] == "frame"]
    after = [p for p in packets[at:] if p["kind"] == "frame"]
    assert len(before) >= 20 and len(after) >= 20
    assert gap["source"] == server.url and gap["tries"] >= 1 and gap["reason"]
    assert gap["since"] == before[-1]["t"] and gap["t"] <= after[0]["t"]
    assert gap["seconds"] == pytest.approx(gap["t"] - gap["since"], abs=0.002)
    assert [p["seq"] for p in before + after] == list(range(len(before) + len(after)))
    # what follows the gap was made by the server started again, after it was killed
    first = next(s for s in (stamp(p["image"]) for p in after) if s is not None)
    assert first >= int(killed * 1000) % (1 << 32)

    # write can tell: the gap is in its metadata, between the frames it has around it
    meta = tmp_path / "cam.jsonl"
    result = vflow("write", str(tmp_path / "cam.mkv"), "--meta", str(meta), input=out.read_bytes())
    assert result.returncode == 0, result.stderr
    written = [json.loads(line) for line in meta.read_text().splitlines()]
    assert [p["kind"] for p in written] == kinds
    got = sh(f"vflow read {tmp_path / 'cam.mkv'} | vflow print --kind frame -f seq | wc -l")
    assert int(got.stdout) == len(before) + len(after)


def test_a_server_that_stays_away_is_given_up(server, tmp_path):
    out, err = tmp_path / "cam.vflow", tmp_path / "cam.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        camera = subprocess.Popen(
            vflow_argv("camera", server.url, "--retries", "2", "--timeout", "2"),
            stdout=stdout,
            stderr=stderr,
            env=ENV,
        )
    try:
        assert wait_for(lambda: out.stat().st_size > 5 * FRAME_BYTES, timeout=60)
        server.stop()
        camera.wait(60)
    finally:
        if camera.poll() is None:
            os.kill(camera.pid, signal.SIGKILL)
    assert camera.returncode == 0, err.read_text()
    lines = err.read_text().splitlines()
    assert len(lines) == 2, lines
    assert "lost" in lines[0] and "did not come back (2 tries in" in lines[1]
    packets = unpack(out.read_bytes())
    assert "gap" not in [p["kind"] for p in packets]


@pytest.mark.parametrize(("transport", "only"), [("tcp", "udp"), ("udp", "tcp")])
def test_the_transport_asked_for_is_the_one_used(tmp_path, transport, only):
    server = RTSPServer(tmp_path, only=only)
    try:
        result = vflow(
            "camera", server.url, "--transport", transport, "--frames", "3", "--timeout", "3"
        )
    finally:
        server.stop()
    assert result.returncode == 1, result.stderr
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vflow camera: cannot open {server.url}")


def test_a_camera_back_at_another_size_announces_it(server, tmp_path):
    out, err = tmp_path / "cam.vflow", tmp_path / "cam.err"
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        camera = subprocess.Popen(
            vflow_argv("camera", server.url, "--timeout", "3"),
            stdout=stdout,
            stderr=stderr,
            env=ENV,
        )
    try:
        assert wait_for(lambda: out.stat().st_size > 5 * FRAME_BYTES, timeout=60)
        server.stop()
        server.width = 352
        server.start()
        assert wait_for(lambda: b"now sends 352x240" in err.read_bytes(), timeout=60)
    finally:
        camera.send_signal(signal.SIGINT)
        camera.wait(30)
    packets = unpack(out.read_bytes())
    kinds = [p["kind"] for p in packets]
    at = kinds.index("gap")
    assert kinds[at + 1] == "stream" and kinds.count("stream") == 2
    assert (packets[at + 1]["width"], packets[at + 1]["height"]) == (352, 240)
    assert packets[at + 1]["source"] == packets[0]["source"] == server.url
    shapes = {p["image"].shape for p in packets[at:] if p["kind"] == "frame"}
    assert shapes == {(240, 352, 3)}
