"""camera: frames from a local camera or a network stream (RTSP, HTTP, a v4l2 device). Streaming."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Generator, Iterator
from typing import Any

import click

from vflow_cli.options import frames_option, name_option, parse_frame_size, rate_option
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


BACKOFF_FIRST, BACKOFF_MAX = 0.5, 10.0  # seconds before reconnect tries 1, 2, ...: doubling


def backoff(attempt: int) -> float:
    """Seconds to wait before reconnect try `attempt` (from 1): 0.5, 1, 2, 4, 8, 10, 10 ..."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (attempt - 1))


def rtsp_transport(source: str, transport: str) -> None:
    """Ask OpenCV's FFmpeg for RTSP over TCP or UDP (it reads OPENCV_FFMPEG_CAPTURE_OPTIONS,
    "key;value|key;value", at each open); a transport the user set there already wins."""
    if not source.lower().startswith(("rtsp://", "rtsps://")):
        return
    options = os.environ.get("OPENCV_FFMPEG_CAPTURE_OPTIONS", "")
    if "rtsp_transport" in options:
        return
    pairs = [p for p in options.split("|") if p]
    os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] = "|".join([*pairs, f"rtsp_transport;{transport}"])


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
    type=click.IntRange(min=-1),
    default=10,
    show_default=True,
    help="A URL: reconnect tries in a row after the stream is lost, waiting 0.5 s, 1 s, "
    "2 s ... up to 10 s between them, before the stream ends; -1: forever; 0: end at the "
    "first loss. A local camera: failed reads in a row before the stream ends.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1),
    default=10.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up opening after this many seconds; a source silent this long is lost.",
)
@click.option(
    "--transport",
    type=click.Choice(["tcp", "udp"]),
    default="tcp",
    show_default=True,
    help="RTSP over TCP (one connection, nothing lost) or UDP (RTP datagrams: less delay "
    "on a clean network, holes in the picture on a lossy one).",
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
    transport: str = "tcp",
) -> Iterator[Packet]:
    """Capture frames from a camera (by index or device path) or a stream URL.

    INDEX is a local camera (0 is the first, /dev/video0 on Linux); a URL is anything
    FFmpeg opens: rtsp://, http:// (MJPEG), udp://. A source that cannot be opened is one
    error line, within --timeout. Frames are {"kind": "frame", "seq", "t" (seconds since
    the first frame), "wall", "image"}.

    A URL that stops sending (a camera rebooting, a network down) is reconnected: one line
    says it was lost, one that it is back; then a {"kind": "gap"} packet (since, t,
    seconds, tries, reason: vflow-packet(5)) tells the stages after it what is missing
    (`vflow track` starts its tracks afresh), and a new "stream" announcement follows if
    the picture size changed. After --retries failed tries the stream ends (exit 0).

    \b
      vflow camera 0 --size 1280x720 | vflow show
      vflow camera rtsp://192.168.1.20/stream --duration 60 | vflow write clip.mkv
      vflow camera rtsp://cam.local/live --transport udp --retries -1 | vflow detect | ...
    """
    from vflow_cli import packets
    from vflow_cli.capture import Grabber, Timeout
    from vflow_cli.opencv import cv2_module

    cv2 = cv2_module()
    wanted = parse_frame_size(size) if size else None
    kind, target = describe(source)
    label = f"camera {source}" if kind != "url" else _printable(source)
    if kind == "url":
        rtsp_transport(source, transport)
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
        announced = packets.stream(name or source, width, height, rate, frames)
        yield announced
        started = time.monotonic()
        reconnect = _Reconnect(target, label, retries, timeout, duration, started)
        seq = failures = 0
        last_t = 0.0
        reason = ""
        while frames is None or seq < frames:
            if ok:
                failures = 0
                now = time.monotonic()
                if duration is not None and now - started >= duration:
                    break
                last_t = now - started
                yield packets.frame(seq, last_t, image, wall=wall)
                seq += 1
                if frames is not None and seq >= frames:
                    break
            elif kind == "url":
                grabber.close()
                back = yield from reconnect(announced, reason, last_t)
                if back is None:
                    break
                grabber, image, wall = back
                ok = True
                continue
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
                grabber.retry()
            try:
                ok, image, wall, _ = grabber.get(timeout)
                reason = "the stream ended"
            except Timeout:
                ok, reason = False, f"no frame for {timeout:g} s"
    finally:
        grabber.close()


class _Reconnect:
    """Opens a lost URL again, waiting longer between tries, until --retries have failed."""

    def __init__(
        self,
        target: str,
        label: str,
        retries: int,
        timeout: float,
        duration: float | None,
        started: float,
    ) -> None:
        self.target, self.label = target, label
        self.retries, self.timeout, self.duration = retries, timeout, duration
        self.started = started  # monotonic time of the first frame: t counts from it

    def __call__(
        self, announced: Packet, reason: str, last_t: float
    ) -> Generator[Packet, None, tuple[Any, Any, float] | None]:
        """Once it is back, yields the gap packet (and a new stream announcement, kept in
        `announced`, if the picture size changed) and returns (the grabber on it, its
        first image, that image's wall time); None when it is given up."""
        from vflow_cli.capture import Grabber, Timeout

        label, retries = self.label, self.retries
        lost = time.monotonic()
        if retries == 0:
            log.warning("%s lost (%s); ending the stream (--retries 0)", label, reason)
            return None
        log.warning("%s lost (%s); reconnecting", label, reason)
        attempt = 0
        while retries < 0 or attempt < retries:
            attempt += 1
            wait = backoff(attempt)
            if (
                self.duration is not None
                and time.monotonic() + wait - self.started >= self.duration
            ):
                return None
            time.sleep(wait)
            try:
                capture = open_source("url", self.target, self.timeout, label)
            except StageError as exc:
                log.info("try %d: %s", attempt, exc)
                continue
            grabber = Grabber(capture, ahead=2)
            try:
                ok, image, wall, _ = grabber.get(self.timeout)
            except Timeout:
                ok = False
            if not ok:
                log.info("try %d: %s opened but sent no frame", attempt, label)
                grabber.close()
                continue
            log.warning("%s back after %.1f s (%d tries)", label, time.monotonic() - lost, attempt)
            yield from self._gap(announced, reason, last_t, attempt, image)
            return grabber, image, wall
        log.warning(
            "%s did not come back (%d tries in %.0f s); ending the stream",
            label,
            attempt,
            time.monotonic() - lost,
        )
        return None

    def _gap(
        self, announced: Packet, reason: str, last_t: float, tries: int, image: Any
    ) -> Iterator[Packet]:
        from vflow_cli import packets

        now = time.monotonic() - self.started
        yield {
            "kind": "gap",
            "source": announced["source"],
            "since": packets.media_time(last_t),
            "t": packets.media_time(now),
            "seconds": round(now - last_t, 3),
            "wall": time.time(),
            "tries": tries,
            "reason": reason,
        }
        height, width = image.shape[:2]
        if (width, height) != (announced["width"], announced["height"]):
            log.warning(
                "%s now sends %dx%d (was %dx%d)",
                self.label,
                width,
                height,
                announced["width"],
                announced["height"],
            )
            announced.update(width=width, height=height)
            yield dict(announced)


def _printable(text: str) -> str:
    """A URL for a log line: no password, no control characters."""
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if parts.password is not None:
        host = parts.hostname or ""
        text = text.replace(
            parts.netloc,
            f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else ""),
            1,
        )
    return "".join(c if c.isprintable() else "?" for c in text)
