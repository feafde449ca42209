"""vflow camera over RTSP: how old a frame is when `camera` writes it, from the moment the
RTSP server (GStreamer's rtsp-server, started here) made it; beside OpenCV reading the same
stream in one process with nothing after it. The server stamps its wall time into each
picture (tests/deploy/rtsp.py), and the reader here notes when each packet arrives."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import ENV, Row
from tests.deploy.rtsp import RTSPServer, age_ms, available
from vflow_cli.framing import PacketReader

FRAMES = 250  # 10 s at 25 fps
SKIP = 50  # the first frames wait for the stream to be probed: a start-up cost, not latency
GOAL_MS = 300


def rows() -> list[Row]:
    why = available()
    if why:
        print(f"bench: rtsp skipped: {why}", file=sys.stderr)
        return []
    table = []
    with tempfile.TemporaryDirectory(prefix="vflow-bench-rtsp-") as folder:
        server = RTSPServer(Path(folder))
        try:
            peer = _opencv_alone(server.url)
            for transport in ("tcp", "udp"):
                ages = _camera(server.url, transport)
                median, p95 = statistics.median(ages), _p95(ages)
                table.append(
                    Row(
                        f"RTSP 320x240 H.264 25 fps, {transport}: frame age at camera's "
                        f"output, median of {len(ages)} readable (p95 {p95:.0f} ms, peer's p95 "
                        f"{_p95(peer):.0f} ms)",
                        median,
                        "ms",
                        "cv2.VideoCapture alone, tcp",
                        statistics.median(peer),
                        f"p95 < {GOAL_MS} ms",
                        p95 < GOAL_MS,
                    )
                )
        finally:
            server.stop()
    return table


def _readable(ages: list[int | None]) -> list[int]:
    """Ages of the stamps that survived decoding (one damaged by a lost datagram over UDP
    is found out by its inverted copy, and left out)."""
    return [age for age in ages if age is not None]


def _p95(values: list[int]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def _camera(url: str, transport: str) -> list[float]:
    argv = [
        sys.executable,
        "-m",
        "vflow_cli",
        "camera",
        url,
        "--transport",
        transport,
        "--frames",
        str(FRAMES),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, env=ENV)
    assert proc.stdout is not None
    ages: list[int | None] = []
    for packet in PacketReader(proc.stdout):
        if packet.get("kind") == "frame":
            ages.append(age_ms(packet["image"], time.time()))
    proc.wait()
    return _readable(ages[SKIP:])


def _opencv_alone(url: str) -> list[float]:
    import cv2

    capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG)
    ages: list[int | None] = []
    try:
        for _ in range(FRAMES):
            ok, image = capture.read()
            if not ok:
                break
            ages.append(age_ms(image))
    finally:
        capture.release()
    return _readable(ages[SKIP:])
