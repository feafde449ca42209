"""camera: no camera exists in CI, so the device errors are tested, and the URL path against a
real MJPEG stream served on 127.0.0.1 by the test itself (only loopback, ever)."""

import itertools
import os

import pytest
from vflow_stages.camera import camera, describe

from tests.helpers import sh, vflow
from tests.video_support import MJPEGServer, closed_port, silent_server
from vflow_cli.stage import StageError


def one_error_line(result, *needles):
    assert result.returncode == 1, result.stderr
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vflow camera: "), lines
    for needle in needles:
        assert needle in lines[0]


def test_a_missing_index_fails_at_once():
    result = vflow("camera", "63", timeout=30)
    one_error_line(result, "no camera at index 63")


@pytest.mark.parametrize(
    ("source", "needle"),
    [
        ("/dev/video63", "no such device"),
        ("webcam", "not a camera index"),
        ("pyproject.toml", "is a file"),
    ],
)
def test_bad_sources(source, needle):
    with pytest.raises(StageError, match=needle):
        describe(source)


def test_a_refused_url_is_one_line():
    result = vflow(
        "camera", f"http://127.0.0.1:{closed_port()}/x.mjpg", "--timeout", "3", timeout=30
    )
    one_error_line(result, "cannot open")


def test_a_silent_server_times_out():
    with silent_server() as url:
        result = vflow("camera", url, "--timeout", "1", timeout=30)
    one_error_line(result, "within 1 s")


def test_frames_arrive_from_a_local_stream():
    server = MJPEGServer()
    try:
        out = list(camera(server.url, None, None, 5, None, 3, 5.0, "door"))
    finally:
        server.stop()
    assert out[0]["kind"] == "stream" and out[0]["source"] == "door"
    assert (out[0]["width"], out[0]["height"]) == (160, 120)
    frames = out[1:]
    assert [p["seq"] for p in frames] == [0, 1, 2, 3, 4]
    assert frames[0]["image"].shape == (120, 160, 3)
    assert all(b["t"] >= a["t"] for a, b in itertools.pairwise(frames))


def test_duration_stops_the_stream():
    server = MJPEGServer(fps=20)
    try:
        out = list(camera(server.url, None, None, None, 0.5, 3, 5.0, None))
    finally:
        server.stop()
    assert len(out) > 1
    assert all(p["t"] < 0.5 for p in out[1:])


def test_a_server_that_dies_ends_the_stream_cleanly():
    server = MJPEGServer(limit=12)
    try:
        result = sh(
            f"vflow camera {server.url} --retries 2 --timeout 3 | vflow print --kind frame -f seq",
            timeout=60,
        )
    finally:
        server.stop()
    assert result.statuses == [0, 0], result.stderr
    seqs = result.stdout.decode().split()
    assert 0 < len(seqs) <= 12
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 2, lines
    assert "lost (the stream ended); reconnecting" in lines[0]
    assert "did not come back (2 tries in" in lines[1]
    assert b"Traceback" not in result.stderr


def test_a_url_in_a_message_hides_its_password_and_control_characters():
    from vflow_stages.camera import _printable

    assert _printable("rtsp://admin:s3cret@cam:554/live") == "rtsp://admin:***@cam:554/live"
    assert _printable("rtsp://cam/live\x1b[2J") == "rtsp://cam/live?[2J"
    assert _printable("rtsp://cam/live") == "rtsp://cam/live"


def test_rtsp_transport_is_asked_of_ffmpeg_unless_set(monkeypatch):
    from vflow_stages.camera import rtsp_transport

    monkeypatch.delenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", raising=False)
    rtsp_transport("rtsp://cam/live", "udp")
    assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "rtsp_transport;udp"
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp|stimeout;5")
    rtsp_transport("rtsp://cam/live", "udp")  # the user's own choice wins
    assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "rtsp_transport;tcp|stimeout;5"
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "stimeout;5")
    rtsp_transport("rtsp://cam/live", "udp")
    assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == "stimeout;5|rtsp_transport;udp"
