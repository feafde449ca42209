"""capture: read frames from a cv2.VideoCapture in a thread of its own, with a watchdog.

    VideoCapture ──(decoder thread)──> bounded queue ──> producer generator ──> stdout

Decoding in a thread of its own lets the next frame decode (cv2 releases the GIL) while the
producer is writing the last one to the pipe, and gives every read a watchdog: a source that
stops answering is noticed after a bounded time instead of hanging the pipeline.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from vflow_cli.console import log
from vflow_cli.opencv import cv2_module


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
