"""video: what the video stages share: a quiet cv2, a background frame grabber, codecs.

    VideoCapture ──(decoder thread)──> bounded queue ──> producer generator ──> stdout

Decoding in a thread of its own lets the next frame decode (cv2 releases the GIL) while the
producer is writing the last one to the pipe, and gives every read a watchdog: a source that
stops answering is noticed after a bounded time instead of hanging the pipeline.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from vflow_cli.runner import StageError, log

# -- a quiet cv2 ------------------------------------------------------------------------------


def cv2_module() -> Any:
    """Import cv2 with OpenCV's and FFmpeg's own logging silenced (unless -vv).

    Their warnings are several lines each and name C++ source files; a stage reports a
    problem as one line of its own instead.
    """
    if not log.isEnabledFor(logging.DEBUG):
        os.environ.setdefault("OPENCV_LOG_LEVEL", "SILENT")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
        os.environ.setdefault("OPENCV_VIDEOIO_DEBUG", "0")
    import cv2

    if not log.isEnabledFor(logging.DEBUG):
        with contextlib.suppress(AttributeError, cv2.error):
            cv2.setLogLevel(0)  # type: ignore[attr-defined]  # 0: silent
    return cv2


@contextlib.contextmanager
def native_stderr_to_log() -> Iterator[None]:
    """Send what C libraries write to fd 2 meanwhile to the debug log instead of the terminal.

    FFmpeg and Qt print to the file descriptor directly, around any Python logging.
    """
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with tempfile.TemporaryFile() as sink:
        try:
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace").strip()
            for line in text.splitlines()[:20]:
                log.debug("native: %s", line)


# -- reading frames in a thread ---------------------------------------------------------------


class Timeout(Exception):
    """A source did not answer within its time limit."""


def call_with_timeout(fn: Callable[[], Any], seconds: float, what: str) -> Any:
    """fn() in a daemon thread; Timeout if it has not returned after `seconds`.

    A thread stuck inside a C call cannot be stopped: it is abandoned (the process is about
    to report the error and exit).
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=what, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise Timeout(what)
    if "error" in box:
        raise box["error"]
    return box.get("value")


_END = object()


class Grabber:
    """Read frames from a cv2.VideoCapture in a background thread, a few frames ahead.

    `get(timeout)` returns (ok, image, wall, media msec): ok False is a failed read (end of
    file, or a source that stopped); Timeout when no answer came in time. `close()` stops the
    thread and releases the capture once the thread no longer uses it.
    """

    def __init__(self, capture: Any, ahead: int = 4) -> None:
        self.capture = capture
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max(1, ahead))
        self._stop = threading.Event()
        self._wanted = threading.Semaphore(0)  # one permit per read the consumer asked for
        self._thread = threading.Thread(target=self._run, name="vflow-grabber", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        read = self.capture.read
        put = self._queue.put
        get = self.capture.get
        pos = cv2_module().CAP_PROP_POS_MSEC
        try:
            while not self._stop.is_set():
                ok, image = read()
                stamp = time.time()
                msec = get(pos)
                if not ok:
                    # after a failed read, read again only when asked (a retry), never in a loop
                    put((False, None, time.time(), 0.0))
                    while not self._wanted.acquire(timeout=0.1):
                        if self._stop.is_set():
                            return
                    continue
                while not self._stop.is_set():
                    try:
                        put((True, image, stamp, msec), timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except Exception as exc:  # cv2.error from a broken source: reported as a failed read
            log.debug("read failed: %s", exc)
            put((False, None, time.time(), 0.0))

    def get(self, timeout: float) -> tuple[bool, Any, float, float]:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise Timeout("read") from None

    def retry(self) -> None:
        """Ask the thread to read again after a failed read."""
        self._wanted.release()

    def close(self, wait: float = 2.0) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()  # unblock a put
        self._thread.join(wait)
        if not self._thread.is_alive():
            self.capture.release()


# -- writing ----------------------------------------------------------------------------------

# What the opencv-python wheel's FFmpeg can write, by file extension. H.264 ('avc1', 'H264',
# 'X264') has no encoder in that wheel; 'FFV1' is lossless.
CODEC_BY_EXTENSION = {
    ".mp4": "mp4v",
    ".m4v": "mp4v",
    ".mov": "mp4v",
    ".avi": "MJPG",
    ".mkv": "FFV1",
}
NO_ENCODER = {"avc1", "h264", "x264", "avc3", "hev1", "hvc1", "h265", "x265"}


def codec_for(path: str, codec: str | None) -> str:
    """The FOURCC to write `path` with: --codec, else by extension; StageError if unusable."""
    ext = os.path.splitext(path)[1].lower()
    if codec is None:
        if ext not in CODEC_BY_EXTENSION:
            known = ", ".join(sorted(CODEC_BY_EXTENSION))
            raise StageError(
                f"no default codec for {ext or 'a file without an extension'!r}; "
                f"use one of {known} or give --codec FOURCC"
            )
        return CODEC_BY_EXTENSION[ext]
    if len(codec) != 4:
        raise StageError(f"--codec {codec!r} is not a FOURCC (four characters, e.g. mp4v, MJPG)")
    if codec.lower() in NO_ENCODER:
        raise StageError(
            f"codec {codec!r} (H.264/H.265) cannot be written by OpenCV's bundled FFmpeg; "
            "write mp4v, MJPG or FFV1 and re-encode with ffmpeg if you need it"
        )
    return codec


def probe_codec(path: str, fourcc: str) -> None:
    """Open a tiny writer with this codec and container in a scratch directory: StageError
    now, before any frame is consumed, rather than after the first one."""
    cv2 = cv2_module()
    import numpy as np

    ext = os.path.splitext(path)[1] or ".avi"
    with tempfile.TemporaryDirectory(prefix="vflow-probe-") as scratch:
        target = os.path.join(scratch, "probe" + ext)
        with native_stderr_to_log():
            writer = cv2.VideoWriter(target, cv2.VideoWriter.fourcc(*fourcc), 10.0, (64, 48))
            try:
                ok = writer.isOpened()
                if ok:
                    writer.write(np.zeros((48, 64, 3), np.uint8))
            finally:
                writer.release()
    if not ok:
        raise StageError(
            f"cannot write codec {fourcc!r} into a {ext} file with this OpenCV; "
            "try mp4v (.mp4), MJPG (.avi) or FFV1 (.mkv)"
        )


_COUNTER = re.compile(r"%0?\d*d")


def segment_name(pattern: str, index: int, when: float) -> str:
    """The file name of segment `index`: '%03d' is the counter, other % codes are strftime of
    `when`; without a counter, '-NNN' goes before the extension."""
    if _COUNTER.search(pattern):
        name = _COUNTER.sub(lambda m: m.group(0) % index, pattern, count=1)
    else:
        root, ext = os.path.splitext(pattern)
        name = f"{root}-{index:03d}{ext}"
    if "%" in name:
        name = time.strftime(name, time.localtime(when))
    return name


def check_writable(path: str) -> None:
    """StageError if `path` cannot be created or overwritten (checked before reading input)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise StageError(f"cannot write {path}: directory {folder} does not exist")
    if os.path.isdir(path):
        raise StageError(f"cannot write {path}: it is a directory; give a file name")
    if os.path.exists(path) and not os.access(path, os.W_OK):
        raise StageError(f"cannot write {path}: permission denied")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StageError(f"cannot write {path}: directory {folder} is not writable")


def bgr8(image: Any) -> Any:
    """A 3-channel uint8 BGR picture of any frame (grey, BGRA, 16-bit), for encoders."""
    cv2 = cv2_module()
    import numpy as np

    if image.dtype != np.uint8:
        if image.dtype == np.uint16:
            image = (image >> 8).astype(np.uint8)
        elif image.dtype.kind == "f":
            image = np.clip(image * (255.0 if image.max(initial=0) <= 1.0 else 1.0), 0, 255)
            image = image.astype(np.uint8)
        else:
            image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.ndim != 3 or image.shape[2] != 3:
        raise StageError(f"cannot encode an image of shape {tuple(image.shape)} as video")
    return image


def shape_of(image: Any) -> tuple[int, ...]:
    return tuple(int(n) for n in image.shape)


# -- processors -------------------------------------------------------------------------------


def map_images(
    packets: Iterator[Any],
    change: Callable[[Any], Any],
    stream: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[Any]:
    """Apply `change` to the picture of every packet that has one (decoded first if it travels
    compressed); `stream` updates 'stream' announcements in place. Everything else passes."""
    from vflow_cli.images import pixels

    for packet in packets:
        image = packet.get("image")
        if image is not None:
            packet["image"] = change(pixels(image))
        elif stream is not None and packet.get("kind") == "stream":
            stream(packet)
        yield packet


def stream_size(packet: dict[str, Any]) -> tuple[int, int] | None:
    """(width, height) a 'stream' packet announces, if it does."""
    width, height = packet.get("width"), packet.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return width, height
    return None


def checked(parse: Callable[[str], Any]) -> Callable[[Any, Any, Any], Any]:
    """A click callback that checks an argument with `parse` at parse time (so the usage
    error names the parameter) and hands the stage the text unchanged."""

    def callback(ctx: Any, param: Any, value: Any) -> Any:
        if value is not None:
            parse(value)
        return value

    return callback


# -- colour spaces ----------------------------------------------------------------------------

COLORSPACES = ("bgr", "rgb", "gray", "hsv", "yuv", "lab", "ycrcb")


def _codes(cv2: Any) -> tuple[dict[str, int], dict[str, int]]:
    from_bgr = {
        "rgb": cv2.COLOR_BGR2RGB,
        "gray": cv2.COLOR_BGR2GRAY,
        "hsv": cv2.COLOR_BGR2HSV,
        "yuv": cv2.COLOR_BGR2YUV,
        "lab": cv2.COLOR_BGR2Lab,
        "ycrcb": cv2.COLOR_BGR2YCrCb,
    }
    to_bgr = {
        "rgb": cv2.COLOR_RGB2BGR,
        "gray": cv2.COLOR_GRAY2BGR,
        "hsv": cv2.COLOR_HSV2BGR,
        "yuv": cv2.COLOR_YUV2BGR,
        "lab": cv2.COLOR_Lab2BGR,
        "ycrcb": cv2.COLOR_YCrCb2BGR,
    }
    return from_bgr, to_bgr


def colorspace_of(packet: dict[str, Any], image: Any) -> str:
    """What a frame's channels mean: its 'colorspace' field, else gray or bgr by shape."""
    space = packet.get("colorspace")
    if isinstance(space, str) and space in COLORSPACES:
        return space
    return "gray" if image.ndim == 2 or image.shape[2] == 1 else "bgr"


def convert_colors(image: Any, source: str, target: str) -> Any:
    """A picture converted between colour spaces (through BGR when neither end is BGR)."""
    cv2 = cv2_module()
    if source == target:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    is_grey = image.ndim == 2 or image.shape[2] == 1
    if is_grey and source != "gray":
        source = "gray"  # a one-channel picture is grey whatever the label says
        if source == target:
            return image
    if not is_grey and source == "gray":
        source = "bgr"
    from_bgr, to_bgr = _codes(cv2)
    if source != "bgr":
        image = cv2.cvtColor(image, to_bgr[source])
    if target != "bgr":
        image = cv2.cvtColor(image, from_bgr[target])
    return image


def viewable(packet: dict[str, Any], image: Any) -> Any:
    """A 3-channel uint8 BGR picture for a window or an encoder, whatever the frame holds."""
    space = colorspace_of(packet, image)
    if space not in ("bgr", "gray"):
        image = convert_colors(image, space, "bgr")
    return bgr8(image)


# -- windows ----------------------------------------------------------------------------------


def display_problem() -> str | None:
    """Why no window can be opened here (no DISPLAY, or an X server that does not answer),
    or None. Checked before cv2 touches the display: Qt aborts the process when it cannot
    connect."""
    import sys

    if sys.platform in ("win32", "darwin"):
        return None
    display = os.environ.get("DISPLAY")
    if not display:
        if os.environ.get("WAYLAND_DISPLAY"):
            return None  # Qt may use Wayland, or Xwayland through DISPLAY; let it try
        return "no display (DISPLAY is not set)"
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("X11")
    if name:
        try:
            xlib = ctypes.CDLL(name)
            xlib.XOpenDisplay.restype = ctypes.c_void_p
            xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
            xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
            handle = xlib.XOpenDisplay(display.encode())
        except (OSError, AttributeError):
            handle = None
            name = None
        else:
            if not handle:
                return f"cannot open display {display!r}"
            xlib.XCloseDisplay(handle)
            return None
    return _x_socket_problem(display)


def _x_socket_problem(display: str) -> str | None:
    """Without libX11: can we at least connect to the display's socket?"""
    import socket

    host, _, rest = display.rpartition(":")
    number = rest.split(".")[0]
    if not number.isdigit():
        return f"DISPLAY {display!r} is not host:number"
    try:
        if host in ("", "unix"):
            with socket.socket(socket.AF_UNIX) as sock:
                sock.settimeout(2)
                try:
                    sock.connect(f"/tmp/.X11-unix/X{number}")
                except OSError:
                    sock.connect(f"\0/tmp/.X11-unix/X{number}")  # Linux abstract socket
        else:
            socket.create_connection((host, 6000 + int(number)), timeout=2).close()
    except OSError:
        return f"cannot open display {display!r}"
    return None
