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
BITS, BLOCK, ROWS = 32, 10, 16


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


def stamp(image) -> int:
    """The milliseconds (Unix time mod 2**32) the server drew into this picture."""
    row = image[ROWS // 2, BLOCK // 2 :: BLOCK]
    row = row if row.ndim == 1 else row[:, 0]
    return sum(1 << (BITS - 1 - i) for i, v in enumerate(row[:BITS]) if v > 128)


def age_ms(image, now: float | None = None) -> int:
    """How many milliseconds ago the server made this picture."""
    ms = int((time.time() if now is None else now) * 1000)
    return (ms - stamp(image)) % (1 << BITS)
