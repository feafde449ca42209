"""camera: frames from a local camera or a network stream (RTSP, HTTP, a v4l2 device). Streaming."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from typing import Any

import click

from vflow_cli.options import frames_option, name_option, parse_size, rate_option
from vflow_cli.stage import Packet, StageError, log, producer


def describe(source: str) -> tuple[str, Any]:
    """('index' | 'device' | 'url', what to hand to cv2.VideoCapture), or StageError."""
    if source.isdigit():
        index = int(source)
        node = f"/dev/video{index}"
        if sys.platform.startswith("linux") and not os.path.exists(node):
            raise StageError(
                f"no camera at index {index} ({node} does not exist); "
                "list cameras with `ls /dev/video*`"
            )
        return "index", index
    if "://" in source:
        return "url", source
    if source.startswith("/dev/"):
        if not os.path.exists(source):
            raise StageError(
                f"no camera at {source} (no such device); list them with `ls /dev/video*`"
            )
        return "device", source
    if os.path.isfile(source):
        raise StageError(f"{source} is a file, not a camera; read it with `vflow read {source}`")
    raise StageError(
        f"{source!r} is not a camera index (0), a device (/dev/video0) or a URL (rtsp://...)"
    )


def open_source(kind: str, target: Any, timeout: float, label: str):
    """An opened cv2.VideoCapture, or StageError within about `timeout` seconds."""
    from vflow_cli.capture import Timeout, call_with_timeout
    from vflow_cli.opencv import cv2_module, native_stderr_to_log

    cv2 = cv2_module()
    ms = int(timeout * 1000)
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
    backend = (
        cv2.CAP_FFMPEG
        if kind == "url"
        else (cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY)
    )

    def attempt():
        with native_stderr_to_log():
            try:
                return cv2.VideoCapture(target, backend, params)
            except cv2.error:  # a backend that refuses the timeout parameters
                return cv2.VideoCapture(target, backend)

    started = time.monotonic()
    try:
        # the watchdog: the backend's own timeouts may not cover every step of opening
        capture = call_with_timeout(attempt, timeout + 1.0, "open")
    except Timeout:
        raise StageError(
            f"{label} did not answer within {timeout:g} s; check the address or "
            "the device, or raise --timeout"
        ) from None
    if not capture.isOpened():
        capture.release()
        if time.monotonic() - started >= timeout * 0.9:  # the backend's own timeout
            raise StageError(
                f"{label} did not answer within {timeout:g} s; check the address or "
                "the device, or raise --timeout"
            )
        if kind == "url":
            raise StageError(
                f"cannot open {label} (unreachable, refused, or not a video stream); "
                "check the address with ffplay or a browser"
            )
        raise StageError(
            f"cannot open {label} (busy in another program, or not a camera); "
            "close other programs using it or try another index"
        )
    return capture


@producer
@click.argument("source", metavar="INDEX|URL")
@click.option(
    "--size",
    metavar="WxH",
    default=None,
    help="Ask the camera for this picture size (e.g. 1280x720). Default: its own.",
)
@rate_option("Ask the camera for this frame rate; also the rate the stream announces.")
@frames_option("run until interrupted")
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Stop after this many seconds.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Failed reads in a row before the stream ends (URLs reconnect between tries).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up opening or reading after this many seconds.",
)
@name_option(None, "INDEX|URL")
def camera(
    source: str,
    size: str | None,
    fps: float | None,
    frames: int | None,
    duration: float | None,
    retries: int,
    timeout: float,
    name: str | None,
) -> Iterator[Packet]:
    """Capture frames from a camera (by index or device path) or a stream URL.

    INDEX is a local camera (0 is the first, /dev/video0 on Linux); a URL is anything
    FFmpeg opens: rtsp://, http:// (MJPEG), udp://. A source that cannot be opened is one
    error line, within --timeout. A source that stops sending ends the stream (exit 0)
    after --retries failed reads. Frames are {"kind": "frame", "seq", "t" (seconds since
    the first frame), "wall", "image"}.

    \b
      vflow camera 0 --size 1280x720 | vflow show
      vflow camera rtsp://192.168.1.20/stream --duration 60 | vflow write clip.mkv
    """
    from vflow_cli import packets
    from vflow_cli.capture import Grabber, Timeout
    from vflow_cli.opencv import cv2_module

    cv2 = cv2_module()
    wanted = parse_size(size) if size else None
    kind, target = describe(source)
    label = f"camera {source}" if kind != "url" else source
    capture = open_source(kind, target, timeout, label)
    if kind != "url":
        if wanted:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, wanted[0])
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, wanted[1])
        if fps:
            capture.set(cv2.CAP_PROP_FPS, fps)
    grabber = Grabber(capture, ahead=2)
    try:
        try:
            ok, image, wall, _ = grabber.get(timeout)
        except Timeout:
            ok = False
        if not ok:
            raise StageError(
                f"{label} opened but sent no frame within {timeout:g} s "
                "(busy in another program, or not sending video)"
            )
        height, width = image.shape[:2]
        if wanted and (width, height) != wanted:
            log.warning("%s gives %dx%d, not the %dx%d asked for", label, width, height, *wanted)
        reported = capture.get(cv2.CAP_PROP_FPS) or 0.0
        rate = fps or (reported if 0 < reported < 1000 else None)
        yield packets.stream(name or source, width, height, rate, frames)
        started = time.monotonic()
        seq = failures = 0
        while frames is None or seq < frames:
            if ok:
                failures = 0
                now = time.monotonic()
                if duration is not None and now - started >= duration:
                    break
                yield packets.frame(seq, now - started, image, wall=wall)
                seq += 1
                if frames is not None and seq >= frames:
                    break
            else:
                failures += 1
                if failures > retries:
                    log.warning(
                        "%s stopped sending frames (%d failed reads); ending the stream",
                        label,
                        failures,
                    )
                    break
                time.sleep(min(1.0, 0.1 * failures))
                if kind == "url":
                    grabber.close()
                    try:
                        capture = open_source(kind, target, timeout, label)
                    except StageError as exc:
                        log.info("reconnecting failed: %s", exc)
                        ok = False
                        grabber = Grabber(_Closed(), ahead=1)
                        continue
                    grabber = Grabber(capture, ahead=2)
                else:
                    grabber.retry()
            try:
                ok, image, wall, _ = grabber.get(timeout)
            except Timeout:
                log.info("%s: no frame within %g s", label, timeout)
                ok = False
    finally:
        grabber.close()


class _Closed:
    """A capture that never delivers: stands in while a URL cannot be reopened."""

    def read(self) -> tuple[bool, None]:
        return False, None

    def get(self, prop: int) -> float:
        return 0.0

    def release(self) -> None:
        pass
