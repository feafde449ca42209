"""web.mjpeg: one JPEG encode per frame for any number of viewers, none for no viewer.

    stage thread                encoder thread                viewer threads (one each)
    ────────────                ──────────────                ─────────────────────────
    frame n ─wanted()?─ no ─> dropped, never read or encoded
              │ yes
              └─offer()─> raw slot ─> encode the newest ─> Jpeg slot ─> each viewer sends
                 (replaces what          (cv2.imencode,      (replaced,      the newest it
                  was not taken)          GIL released)       shared)        has not sent

Every slot holds one item and is replaced, never queued: the stage never waits for the
encoder, the encoder never waits for a viewer, and a viewer that is slow (or stalled, until
the server's timeout drops it) skips frames and holds at most the one JPEG it is sending.
Memory stays flat whatever the viewers do. A frame that arrives already JPEG-compressed
(`vflow jpeg`) is sent as it is, without decoding or encoding.

The multipart stream each viewer gets (multipart/x-mixed-replace, shown by every browser
in an <img>, and by VLC, ffplay, OpenCV and Home Assistant):

    --vflowframe
    Content-Type: image/jpeg
    Content-Length: 48213
    X-Frame-Seq: 41               the packet's seq, when it has one
    X-Timestamp: 1732258800.123   its wall time, when it has one
    <JPEG>
    --vflowframe                  sent right after the picture: a browser shows a part
    ...                           only once the next boundary arrives
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from vflow_cli.errors import StageError

BOUNDARY = b"vflowframe"
CONTENT_TYPE = "multipart/x-mixed-replace; boundary=vflowframe"


@dataclass(frozen=True)
class Raw:
    """A frame handed over by the stage: its number in the stream (1, 2, ...) and pixels."""

    number: int
    picture: Any  # a numpy array, or an Encoded image
    colorspace: str | None
    seq: Any
    wall: Any


@dataclass(frozen=True)
class Jpeg:
    number: int  # the frame's number among the frames that arrived (1, 2, ...)
    index: int  # its number among the JPEGs made (1, 2, ...): a viewer's gaps are skips
    data: bytes
    seq: Any
    wall: Any

    def part(self) -> bytes:
        """The multipart headers that go before the picture."""
        head = [b"Content-Type: image/jpeg", b"Content-Length: %d" % len(self.data)]
        if isinstance(self.seq, int) and not isinstance(self.seq, bool):
            head.append(b"X-Frame-Seq: %d" % self.seq)
        if isinstance(self.wall, (int, float)) and not isinstance(self.wall, bool):
            head.append(b"X-Timestamp: %.3f" % self.wall)
        return b"\r\n".join(head) + b"\r\n\r\n"


class Broadcaster:
    """The raw-frame slot, the encoder thread and the JPEG slot that viewers read."""

    def __init__(self, *, quality: int = 80, max_fps: float | None = None, log: Any = None) -> None:
        self.log = log or logging.getLogger("vflow")
        self.quality = quality
        self.period = 1.0 / max_fps if max_fps else 0.0
        self._cond = threading.Condition()
        self._raw: Raw | None = None
        self.latest: Jpeg | None = None
        self.viewers = 0  # streams being watched now
        self._demand = 0  # /frame.jpg requests waiting for a frame
        self.seen = 0  # frames that arrived (the stage counts them)
        self._done = 0  # the number of the last frame the encoder took
        self.ended = False  # the input has ended: no frame will come
        self.closed = False
        # numbers for /metrics
        self.encoded = 0
        self.passed = 0  # frames that came JPEG already and were sent as they were
        self.encode_seconds = 0.0
        self.sent = 0  # frames sent to viewers, all viewers together
        self.skipped = 0  # frames encoded but not sent to a viewer that was busy
        self.dropped_stalled = 0  # viewers dropped for not reading
        self.failed: str | None = None  # why the last encode failed (logged once a kind)
        self._thread = threading.Thread(target=self._encode_loop, name="mjpeg", daemon=True)
        self._thread.start()

    # -- the stage's side ------------------------------------------------------------------

    def wanted(self) -> bool:
        """Does anyone want the next frame? (Read without a lock: a frame more or less.)"""
        return self.viewers > 0 or self._demand > 0

    def offer(self, raw: Raw) -> None:
        """The newest frame; replaces one the encoder has not taken yet."""
        with self._cond:
            self._raw = raw
            self._cond.notify_all()

    def end(self) -> None:
        """The input ended: waiting snapshot requests get the last picture there is."""
        with self._cond:
            self.ended = True
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()
        self._thread.join(timeout=5)

    # -- the encoder thread ------------------------------------------------------------------

    def _due(self) -> bool:
        raw = self._raw
        return raw is not None and raw.number > self._done and self.wanted()

    def _encode_loop(self) -> None:
        last = 0.0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self.closed or self._due())
                if self.closed:
                    return
            if self.period:  # --max-fps: wait, then take whatever is newest by then
                pause = last + self.period - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
            with self._cond:
                raw = self._raw
                assert raw is not None
                self._done = raw.number
            last = time.monotonic()
            try:
                data: bytes | None = self._jpeg(raw)
            except Exception as exc:  # a picture that cannot be encoded: say so, skip it
                message = str(exc) if isinstance(exc, StageError) else repr(exc)
                if message != self.failed:
                    self.log.warning("not shown to viewers: %s", message)
                self.failed = message
                data = None
            with self._cond:
                if data is not None:
                    index = self.latest.index + 1 if self.latest is not None else 1
                    self.latest = Jpeg(raw.number, index, data, raw.seq, raw.wall)
                if self._raw is raw:
                    self._raw = None if not self.keep_last else raw
                self._cond.notify_all()

    keep_last = False  # --wait: the newest frame stays in the slot for a viewer to come

    def _jpeg(self, raw: Raw) -> bytes:
        from vflow_cli.framing import Encoded

        picture = raw.picture
        if isinstance(picture, Encoded) and picture.format == "jpeg":
            from vflow_cli.framing import max_packet_size
            from vflow_cli.image_headers import check_encoded

            check_encoded(picture, max_packet_size())  # a browser would decode it
            self.passed += 1
            return bytes(picture.data)
        import cv2

        from vflow_cli.colors import viewable
        from vflow_cli.images import VIEWS, pixels

        started = time.perf_counter()
        image = pixels(picture)
        VIEWS.check(image, {"seq": raw.seq, "colorspace": raw.colorspace})  # one clear line
        grey = raw.colorspace in (None, "gray") and (image.ndim == 2 or image.shape[2] == 1)
        if not (grey and image.dtype.name == "uint8"):
            image = viewable({"colorspace": raw.colorspace}, image)
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise ValueError(f"OpenCV could not encode a {image.shape} picture")
        self.encoded += 1
        self.encode_seconds += time.perf_counter() - started
        return data.tobytes()

    # -- the viewers' side -------------------------------------------------------------------

    def watching(self) -> _Watch:
        """`with broadcaster.watching():` around a viewer's stream: frames are read and
        encoded while at least one viewer watches."""
        return _Watch(self)

    def next(self, after: int, timeout: float) -> Jpeg | None:
        """The newest JPEG of a frame after number `after`; None if none came within
        `timeout` s, or the broadcaster is closed."""
        with self._cond:
            self._cond.wait_for(
                lambda: self.closed or (self.latest is not None and self.latest.number > after),
                timeout,
            )
            if self.closed or self.latest is None or self.latest.number <= after:
                return None
            return self.latest

    def snapshot(self, timeout: float) -> Jpeg | None:
        """The newest frame as JPEG: at once if it is encoded already, else the next frame
        that arrives (within `timeout` s). After the end of input, the last one there is."""
        with self._cond:
            target = max(self.seen, 1)

            def unencoded() -> bool:  # a frame in the slot that nobody has encoded yet
                return self._raw is not None and self._raw.number > self._done

            def ready() -> bool:
                latest = self.latest
                if latest is not None and latest.number >= target:
                    return True
                return self.closed or (self.ended and not unencoded())

            if not ready():
                self._demand += 1
                self._cond.notify_all()  # the encoder may have a frame in the slot for us
                try:
                    self._cond.wait_for(ready, timeout)
                finally:
                    self._demand -= 1
            latest = self.latest
            if latest is not None and (latest.number >= target or self.ended):
                return latest
            return None


class _Watch:
    def __init__(self, broadcaster: Broadcaster) -> None:
        self.b = broadcaster

    def __enter__(self) -> Broadcaster:
        with self.b._cond:
            self.b.viewers += 1
            self.b._cond.notify_all()  # a frame kept in the slot (--wait) is encoded now
        return self.b

    def __exit__(self, *exc: Any) -> None:
        with self.b._cond:
            self.b.viewers -= 1
