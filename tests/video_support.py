"""What the video tests share: real media in a cache, a virtual X server, a local MJPEG server."""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

VTEST_MD5 = "d401fe2028f78dd585e2ade0a0d678c0"
VTEST_IN_DEB = "./usr/share/doc/opencv-doc/examples/data/vtest.avi"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "vflow"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def vtest_avi() -> Path:
    """The PETS 2009 pedestrian clip from Debian's opencv-doc, fetched once into the cache.

    A file lock keeps parallel test workers from fetching it twice. Skips only when the
    package registry cannot be reached; a file with the wrong checksum is a failure.
    """
    folder = cache_dir()
    target = folder / "vtest.avi"
    if target.exists():
        return target
    with open(folder / "vtest.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():
            return target
        if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
            pytest.skip("vtest.avi comes from Debian's opencv-doc package; apt-get is not here")
        with tempfile.TemporaryDirectory(dir=folder) as scratch:
            got = subprocess.run(
                ["apt-get", "download", "opencv-doc"],
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=200,  # under the per-test limit; the file is kept once fetched
            )
            debs = glob.glob(os.path.join(scratch, "opencv-doc_*.deb"))
            if got.returncode or not debs:
                why = (got.stderr.strip().splitlines() or ["no .deb downloaded"])[-1]
                pytest.skip(f"cannot fetch opencv-doc from the package registry: {why}")
            unpack = f"dpkg-deb --fsys-tarfile '{debs[0]}' | tar -x '{VTEST_IN_DEB}'"
            subprocess.run(["bash", "-o", "pipefail", "-c", unpack], cwd=scratch, check=True)
            extracted = Path(scratch) / VTEST_IN_DEB
            assert _md5(extracted) == VTEST_MD5, "vtest.avi from opencv-doc has another checksum"
            os.replace(extracted, target)
    return target


def h264_clip(
    folder: Path, frames: int = 30, size: str = "320x240", rate: int = 25, timeout: float = 120
) -> Path:
    """An H.264 file made by ffmpeg (OpenCV's wheel decodes H.264 but cannot encode it)."""
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed (make system-deps)")
    path = folder / f"clip-{size}-{frames}.mp4"
    source = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}", "-frames:v", str(frames)]
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            *source,
            "-c:v",
            "libx264",
            "-pix_fmt",
            "yuv420p",
            str(path),
        ],
        check=True,
        timeout=timeout,
    )
    return path


# -- a virtual X server -----------------------------------------------------------------------


@contextlib.contextmanager
def xvfb() -> Iterator[str]:
    """Start Xvfb on a display number it picks itself (-displayfd); yields ':N'."""
    if not shutil.which("Xvfb"):
        pytest.skip("Xvfb is not installed (make system-deps)")
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(write_end,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_end)
    try:
        with os.fdopen(read_end) as f:
            number = f.readline().strip()
        assert number.isdigit(), "Xvfb did not report its display number"
        display = f":{number}"
        deadline = time.monotonic() + 30
        while subprocess.run(  # accepting clients, not merely started
            ["xdotool", "getdisplaygeometry"],
            env={**os.environ, "DISPLAY": display},
            capture_output=True,
        ).returncode:
            assert server.poll() is None, f"Xvfb on {display} exited with {server.returncode}"
            assert time.monotonic() < deadline, f"Xvfb on {display} does not accept clients"
            time.sleep(0.1)
        yield display
    finally:
        server.terminate()
        server.wait(10)


def screenshot(display: str, window: str | None = None) -> np.ndarray:
    """The whole screen (or one window's contents) as a BGR array, from xwd."""
    which = ["-id", window] if window else ["-root"]
    data = subprocess.run(
        ["xwd", *which, "-silent", "-display", display],
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    fields = struct.unpack(">25I", data[:100])
    header_size, width, height = fields[0], fields[4], fields[5]
    byte_order, bits, per_line, colours = fields[7], fields[11], fields[12], fields[19]
    step = bits // 8
    start = header_size + colours * 12
    rows = np.frombuffer(data, np.uint8, count=per_line * height, offset=start)
    pixels = rows.reshape(height, per_line)[:, : width * step].reshape(height, width, step)
    if byte_order == 0:  # LSBFirst: B, G, R (, pad)
        return pixels[:, :, :3].copy()
    return pixels[:, :, [step - 1, step - 2, step - 3]].copy()


def wait_for_window(display: str, title: str, seconds: float = 30, visible: bool = False) -> str:
    """The id of the window with this title; with visible, only once it is mapped."""
    env = {**os.environ, "DISPLAY": display}
    deadline = time.monotonic() + seconds
    only = ["--onlyvisible"] if visible else []
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", *only, "--name", title], env=env, capture_output=True, text=True
        )
        ids = found.stdout.split()
        if ids:
            return ids[0]
        time.sleep(0.2)
    raise AssertionError(f"no window titled {title!r} appeared")


# -- a local MJPEG-over-HTTP stream -----------------------------------------------------------


class MJPEGServer:
    """multipart/x-mixed-replace JPEG frames on 127.0.0.1 (what IP cameras serve).

    After `limit` frames the server dies: the connection closes and the port stops
    listening. A 'silent' server accepts connections and never answers.
    """

    def __init__(self, limit: int | None = None, fps: float = 30.0) -> None:
        import cv2

        self.limit = limit
        self.fps = fps
        self.sent = 0
        self.frames = []
        for i in range(8):
            image = np.full((120, 160, 3), (40 * i % 256, 128, 255 - 30 * i), np.uint8)
            cv2.putText(image, str(i), (60, 80), cv2.FONT_HERSHEY_SIMPLEX, 2, (255,) * 3, 3)
            self.frames.append(cv2.imencode(".jpg", image)[1].tobytes())
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while owner.limit is None or owner.sent < owner.limit:
                        jpeg = owner.frames[owner.sent % len(owner.frames)]
                        self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
                        self.wfile.write(f"Content-Length: {len(jpeg)}\r\n\r\n".encode())
                        self.wfile.write(jpeg + b"\r\n")
                        self.wfile.flush()
                        owner.sent += 1
                        time.sleep(1 / owner.fps)
                except (BrokenPipeError, ConnectionResetError):
                    return
                threading.Thread(target=owner.stop, daemon=True).start()  # the server dies

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/stream.mjpg"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()
        self._stopped = False

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self.httpd.shutdown()
            self.httpd.server_close()


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A port on 127.0.0.1 that accepts connections and never says a word."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/stream.mjpg"


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
