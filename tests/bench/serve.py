"""vflow serve: what viewers cost the pipeline, what a JPEG costs, and memory when a viewer
stalls. Every row beside a peer measured in this run."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.bench.common import ENV, Row, wall

VFLOW = [sys.executable, "-m", "vflow_cli"]
FRAMES = 600  # 1280x720 test-card frames through the pipeline (1.66 GB)
CARD = ["testcard", "--size", "large", "--animated"]
STALL_SECONDS = 60


def rows() -> list[Row]:
    # interleaved, best of three: other load on the machine only ever slows a run down
    null: list[float] = []
    served: dict[int, list[tuple[float, float, float | None]]] = {0: [], 1: [], 20: []}
    capped: list[tuple[float, float, float | None]] = []
    for _ in range(3):
        null.append(_pipeline_fps(["null"]))
        for viewers, runs in served.items():
            runs.append(_serve_fps(viewers))
        capped.append(_serve_fps(20, "--max-fps", "30"))
    table = []
    for viewers, runs in served.items():
        fps, got, _ = max(runs)
        seen = f"; each viewer got {got:.0f} frames" if viewers else ""
        table.append(
            Row(
                f"720p testcard -n {FRAMES} | serve, {viewers} viewers{seen}",
                fps,
                "frames/s",
                "testcard | null",
                max(null),
                "reported (2 cores shared with the viewers and the encoder)",
            )
        )
    fps, got, _ = max(capped)
    table.append(
        Row(
            f"  the same, 20 viewers, --max-fps 30; each viewer got {got:.0f} frames",
            fps,
            "frames/s",
            "testcard | null",
            max(null),
            "reported",
        )
    )
    in_situ = [ms for _, _, ms in served[1] if ms is not None]
    ours, ffmpeg = _encode_cost()
    table.append(
        Row(
            "JPEG encode of one 720p frame (OpenCV, quality 80)",
            ours,
            "ms",
            "ffmpeg -c:v mjpeg -q:v 4 (bgr24 in)",
            ffmpeg,
            "reported",
        )
    )
    if in_situ:
        table.append(
            Row(
                "the same, inside serve with 1 viewer (from /metrics)",
                min(in_situ),
                "ms",
                "",
                None,
                "reported",
            )
        )
    table.append(_small_packets())
    table.extend(_stalled_memory())
    return table


def _small_packets(count: int = 1_000_000) -> Row:
    """Per-packet cost with nobody watching: metadata kept for /meta, nothing else."""
    with tempfile.TemporaryDirectory(prefix="vflow-bench-serve-") as tmp:
        stream = Path(tmp) / "ints.vflow"
        subprocess.run(["bash", "-c", f"vflow int 1 {count} > {stream}"], env=ENV, check=True)
        serve = wall(f"vflow serve -p 0 -q < {stream}")
        null = wall(f"vflow null < {stream}")
    return Row(
        f"{count:,} small packets: serve, no client",
        count / serve,
        "packets/s",
        "null",
        count / null,
        ">= 0.7x null",
        serve <= null / 0.7,
    )


def _pipeline_fps(consumer: list[str]) -> float:
    start = time.perf_counter()
    producer = subprocess.Popen([*VFLOW, *CARD, "-n", str(FRAMES)], stdout=subprocess.PIPE, env=ENV)
    sink = subprocess.Popen([*VFLOW, *consumer], stdin=producer.stdout, env=ENV)
    assert producer.stdout is not None
    producer.stdout.close()
    if sink.wait() or producer.wait():
        raise RuntimeError(f"{consumer} failed")
    return FRAMES / (time.perf_counter() - start)


def _start_serve(*args: str) -> tuple[subprocess.Popen, int, Path]:
    log = Path(tempfile.mkstemp(prefix="vflow-bench-serve-", suffix=".log")[1])
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            [*VFLOW, "serve", "-p", "0", *args], stdin=subprocess.PIPE, stderr=err, env=ENV
        )
    end = time.monotonic() + 30
    while time.monotonic() < end:
        match = re.search(r"serving on http://127\.0\.0\.1:(\d+)/", log.read_text())
        if match:
            return proc, int(match.group(1)), log
        time.sleep(0.05)
    raise RuntimeError(f"serve did not start: {log.read_text()}")


def _viewer(port: int, counts: list[int], stall: bool = False) -> socket.socket:
    """A viewer on its own thread: reads the MJPEG stream until it ends, counting parts
    (or, stalled, never reads at all)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    if stall:
        return sock
    index = len(counts)
    counts.append(0)

    def read() -> None:
        tail = b""
        while True:
            try:
                chunk = sock.recv(1 << 20)
            except OSError:
                break
            if not chunk:
                break
            counts[index] += (tail + chunk).count(b"Content-Type: image/jpeg")
            tail = chunk[-32:]
        sock.close()

    threading.Thread(target=read, daemon=True).start()
    return sock


def _metric(port: int, name: str) -> float | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(f"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            data = b""
            while b"\n" + name.encode() not in data or not data.endswith(b"\n"):
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                data += chunk
                if len(data) > 1 << 20:
                    break
    except OSError:
        return None
    match = re.search(rf"^{name}(?:{{[^}}]*}})? (\S+)$", data.decode(), re.M)
    return float(match.group(1)) if match else None


def _serve_fps(viewers: int, *options: str) -> tuple[float, float, float | None]:
    """(pipeline frames/s, frames each viewer got on average, encode ms a frame)."""
    serve, port, log = _start_serve(*options)
    counts: list[int] = []
    for _ in range(viewers):
        _viewer(port, counts)
    deadline = time.monotonic() + 10
    while viewers and _metric(port, "vflow_serve_viewers") != viewers:
        if time.monotonic() > deadline:
            raise RuntimeError("the viewers did not connect")
        time.sleep(0.05)
    encode: list[float] = []

    def poll() -> None:  # the encode time, read while the server is up
        while serve.poll() is None:
            seconds = _metric(port, "vflow_serve_encode_seconds_total")
            frames = _metric(port, "vflow_serve_frames_encoded_total")
            if seconds and frames:
                encode[:] = [seconds * 1000 / frames]
            time.sleep(0.5)

    threading.Thread(target=poll, daemon=True).start()
    start = time.perf_counter()
    producer = subprocess.Popen([*VFLOW, *CARD, "-n", str(FRAMES)], stdout=serve.stdin, env=ENV)
    assert serve.stdin is not None
    serve.stdin.close()
    if producer.wait() or serve.wait():
        raise RuntimeError(f"serve failed: {log.read_text()}")
    fps = FRAMES / (time.perf_counter() - start)
    log.unlink()
    time.sleep(0.2)  # the viewers' threads see the end
    got = sum(counts) / len(counts) if counts else 0.0
    return fps, got, encode[0] if encode else None


def _encode_cost(frames: int = 200) -> tuple[float, float]:
    """ms a frame: OpenCV's encoder as serve calls it, and ffmpeg's mjpeg on the same frames."""
    import cv2
    import numpy as np

    from vflow_cli.framing import PacketReader

    stream = subprocess.run(
        [*VFLOW, *CARD, "-n", str(frames)], capture_output=True, check=True, env=ENV
    ).stdout
    import io

    pictures = [p["image"] for p in PacketReader(io.BytesIO(stream)) if p.get("kind") == "frame"]
    start = time.perf_counter()
    for picture in pictures:
        cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, 80])
    ours = (time.perf_counter() - start) * 1000 / len(pictures)
    raw = np.stack(pictures).tobytes()
    start = time.perf_counter()
    subprocess.run(
        [
            *("ffmpeg", "-v", "error", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", "1280x720"),
            *("-i", "-", "-threads", "1", "-c:v", "mjpeg", "-q:v", "4", "-f", "null", "-"),
        ],
        input=raw,
        check=True,
    )
    ffmpeg = (time.perf_counter() - start) * 1000 / len(pictures)
    return ours, ffmpeg


def _stalled_memory() -> list[Row]:
    """Two servers side by side for STALL_SECONDS, each fed 720p at 30 frames/s: one with a
    viewer that never reads (kept: --timeout is longer than the run), one with a viewer
    that reads. Resident memory growth after the first 5 s, and the frames/s that passed."""

    def start() -> tuple[subprocess.Popen, subprocess.Popen, int]:
        serve, port, _ = _start_serve("--timeout", str(STALL_SECONDS * 2))
        card = subprocess.Popen([*VFLOW, *CARD, "--fps", "30"], stdout=serve.stdin, env=ENV)
        assert serve.stdin is not None
        serve.stdin.close()
        return serve, card, port

    stalled_serve, stalled_card, stalled_port = start()
    normal_serve, normal_card, normal_port = start()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stalled.connect(("127.0.0.1", stalled_port))
    stalled.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{stalled_port}\r\n\r\n".encode())
    counts: list[int] = []
    _viewer(normal_port, counts)
    time.sleep(5)
    base = {stalled_port: _rss(stalled_serve.pid), normal_port: _rss(normal_serve.pid)}
    frames0 = {p: _metric(p, "vflow_serve_frames_total") or 0 for p in base}
    peak = dict(base)
    end = time.monotonic() + STALL_SECONDS - 5
    while time.monotonic() < end:
        for proc, port in ((stalled_serve, stalled_port), (normal_serve, normal_port)):
            peak[port] = max(peak[port], _rss(proc.pid))
        time.sleep(0.5)
    fps = {
        p: ((_metric(p, "vflow_serve_frames_total") or 0) - frames0[p]) / (STALL_SECONDS - 5)
        for p in base
    }
    still_there = _metric(stalled_port, "vflow_serve_viewers")
    for proc in (stalled_card, normal_card):
        proc.terminate()
        proc.wait()
    for proc in (stalled_serve, normal_serve):
        proc.wait(30)
    stalled.close()
    growth = {p: (peak[p] - base[p]) / 1e6 for p in base}
    return [
        Row(
            f"serve, 1 stalled viewer for {STALL_SECONDS} s: peak RSS growth after 5 s "
            f"({fps[stalled_port]:.1f} frames/s passed; viewer still connected: "
            f"{still_there == 1})",
            growth[stalled_port],
            "MB",
            f"1 reading viewer ({fps[normal_port]:.1f} frames/s)",
            growth[normal_port],
            "flat: < 20 MB",
            growth[stalled_port] < 20,
        ),
        Row(
            "  the same: RSS after 5 s",
            base[stalled_port] / 1e6,
            "MB",
            "1 reading viewer",
            base[normal_port] / 1e6,
            "reported",
        ),
    ]


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
