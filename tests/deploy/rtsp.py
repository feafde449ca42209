"""A real RTSP server for the tests and the bench (rtsp_server.py, run by the system python3
that has GStreamer's bindings), and the wall-time stamp it draws into its pictures."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tests.net.util import free_port, wait_for

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # GStreamer's bindings are Debian's, not the venv's
BITS, BLOCK = 32, 16


def available() -> str:
    """Why the RTSP server cannot run here, or '' when it can."""
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import gi; gi.require_version('GstRtspServer', '1.0')"],
        capture_output=True,
        text=True,
    )
    if probe.returncode:
        return "GStreamer's rtsp-server bindings are missing (make system-deps installs them)"
    return ""


class RTSPServer:
    """rtsp://127.0.0.1:PORT/cam; stop() kills it (SIGKILL: a camera losing power),
    start() brings it back on the same port."""

    def __init__(
        self, folder: Path, codec: str = "h264", fps: int = 25, only: str | None = None
    ) -> None:
        why = available()
        if why:
            pytest.skip(why)
        self.folder, self.codec, self.fps, self.only = folder, codec, fps, only
        self.width = 320  # set before start() to change the picture's size
        self.port = free_port()
        self.url = f"rtsp://127.0.0.1:{self.port}/cam"
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.start()

    def start(self) -> None:
        self.starts += 1
        out = self.folder / f"rtsp-{self.starts}.out"
        with open(out, "wb") as log:
            only = ["--only", self.only] if self.only else []
            only += ["--width", str(self.width)]
            self.proc = subprocess.Popen(
                [
                    SYSTEM_PYTHON,
                    str(SERVER),
                    str(self.port),
                    "--codec",
                    self.codec,
                    "--fps",
                    str(self.fps),
                    *only,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        if not wait_for(lambda: b"ready" in out.read_bytes() or self.proc.poll() is not None):
            raise RuntimeError("the RTSP server did not start")
        if self.proc.poll() is not None:
            raise RuntimeError(out.read_text())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def stamp(image) -> int | None:
    """The milliseconds (Unix time mod 2**32) the server drew into this picture; None if
    the picture damaged it (its inverted copy disagrees)."""
    grey = image if image.ndim == 2 else image[:, :, 1]

    def band(k: int) -> int:
        y = k * BLOCK + BLOCK // 2
        centres = grey[y - 4 : y + 4, : 16 * BLOCK].reshape(8, 16, BLOCK)[:, :, 4:12]
        bits = centres.mean(axis=(0, 2)) > 128
        return sum(1 << (15 - i) for i, bit in enumerate(bits) if bit)

    high, low = band(0), band(1)
    if band(2) != high ^ 0xFFFF or band(3) != low ^ 0xFFFF:
        return None
    return high << 16 | low


def age_ms(image, now: float | None = None) -> int | None:
    """How many milliseconds ago the server made this picture (None: stamp unreadable)."""
    made = stamp(image)
    if made is None:
        return None
    ms = int((time.time() if now is None else now) * 1000)
    return (ms - made) % (1 << BITS)
