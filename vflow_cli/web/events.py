"""web.events: a Feed holds the latest value of something; Server-Sent Events send it.

    publisher ──publish(value)──> Feed (one slot: the newest value and its version)
                                    ├─> client A: sends version 7, waits, sends 9 ...
                                    └─> client B (slow): sends 7, then 12: it skips

A publisher never waits for a client: publish() replaces the slot and wakes the readers.
Each version is turned into bytes once, by the first reader that needs it, whatever the
number of readers; a slow reader skips versions instead of queueing them, so memory does
not grow with it. The stream is `text/event-stream` (EventSource in every browser):

    retry: 2000
    event: meta
    id: 9
    data: {"kind": "frame", "seq": 41, ...}
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from vflow_cli.packets import jsonable
from vflow_cli.web.server import Request

HEARTBEAT = 15.0  # seconds: a comment line keeps proxies from closing an idle stream


def to_json(value: Any) -> bytes:
    """Packet metadata as strict JSON (images described, NaN as null, any key as text)."""
    try:
        text = json.dumps(
            value, default=jsonable, allow_nan=False, ensure_ascii=False, separators=(",", ":")
        )
    except (ValueError, TypeError):
        text = json.dumps(
            _plain(value),
            default=jsonable,
            allow_nan=False,
            ensure_ascii=False,
            separators=(",", ":"),
        )
    return text.encode()


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, bool)) or value is None or isinstance(value, float):
        return value
    return _plain(jsonable(value))


class Closed(Exception):
    """The feed has ended (the server is closing)."""


class Feed:
    """The latest value of something, versioned; readers wait for a newer one."""

    def __init__(self, encode: Callable[[Any], bytes]) -> None:
        self._encode = encode
        self._cond = threading.Condition()
        self._encoding = threading.Lock()
        self._value: Any = None
        self.version = 0
        self._waiting = 0  # readers in wait()
        self._cached: tuple[int, bytes] | None = None
        self.closed = False

    def publish(self, value: Any) -> None:
        """One publisher only (the stage's thread). It takes the lock only when a reader
        waits: a stream of small packets pays two attribute writes a packet, not a lock.
        (No wake-up is lost: a reader counts itself in before it looks at the version,
        and this writes the version before it looks at the count.)"""
        self._value = value
        self.version += 1
        if self._waiting:
            with self._cond:
                self._cond.notify_all()

    @property
    def value(self) -> Any:
        return self._value

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def latest(self) -> tuple[int, bytes] | None:
        """The newest version and its bytes; None before anything was published."""
        with self._cond:
            version, value = self.version, self._value
        if version == 0:
            return None
        return version, self._bytes(version, value)

    def wait(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The first version newer than `after`, waiting up to `timeout` s (None: nothing
        new by then). Closed once the feed has ended."""
        with self._cond:
            self._waiting += 1
            try:
                if not self._cond.wait_for(lambda: self.closed or self.version > after, timeout):
                    return None
            finally:
                self._waiting -= 1
            if self.closed:
                raise Closed
            version, value = self.version, self._value
        return version, self._bytes(version, value)

    def _bytes(self, version: int, value: Any) -> bytes:
        cached = self._cached
        if cached is not None and cached[0] == version:
            return cached[1]
        with self._encoding:  # one reader encodes; the others find it done
            cached = self._cached
            if cached is not None and cached[0] == version:
                return cached[1]
            data = self._encode(value)
            self._cached = (version, data)
            return data


def stream_events(request: Request, feeds: dict[str, Feed], *, rate: float) -> None:
    """Answer with a Server-Sent Events stream of these feeds (event name -> feed): each
    feed's latest value at once, then its new versions, at most `rate` events a second per
    feed (what arrives in between is merged: the client gets the newest). The first feed
    is waited on; the others are looked at as often as the rate allows. Ends when the
    server or a feed closes, or the client leaves (ClientGone)."""
    if not request.start("text/event-stream; charset=utf-8"):
        return
    request.write(b"retry: 2000\n\n")
    sent = dict.fromkeys(feeds, 0)
    gap = 1.0 / rate
    main_name, main = next(iter(feeds.items()))
    quiet_since = time.monotonic()
    while not request.closing.is_set():
        wrote = False
        for name, feed in feeds.items():
            latest = feed.latest() if feed.version > sent[name] else None
            if latest is not None:
                sent[name] = latest[0]
                request.write(_event(name, *latest))
                wrote = True
        now = time.monotonic()
        if wrote:
            quiet_since = now
            time.sleep(gap)
            continue
        if now - quiet_since >= HEARTBEAT:
            request.write(b": keep-alive\n\n")
            quiet_since = now
        try:
            main.wait(sent[main_name], gap if len(feeds) > 1 else HEARTBEAT)
        except Closed:
            return


def _event(name: str, version: int, data: bytes) -> bytes:
    lines = data.split(b"\n")  # JSON has none; any other text is split into data lines
    body = b"".join(b"data: " + line + b"\n" for line in lines)
    return b"event: " + name.encode() + b"\nid: " + str(version).encode() + b"\n" + body + b"\n"
