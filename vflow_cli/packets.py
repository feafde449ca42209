"""packets: the packets producers make, built in one place, and what stages read of them
(the frame rate a stream announces, a picture's size, a frame's time): one reader each
(man/vflow-packet.5).

Media time `t` is in seconds, rounded to the microsecond: what the source says (a
container's timestamps, a frame number over a rate), without floating-point noise, so the
same frame has the same `t` whichever stage or program reads it.
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from vflow_cli.framing import Encoded, Packet, Pending


def media_time(seconds: float) -> float:
    return round(seconds, 6)


def stream(
    source: str, width: int, height: int, fps: float | None, length: int | None, **extra: Any
) -> Packet:
    """The announcement a producer sends before its first frame."""
    return {
        "kind": "stream",
        "source": source,
        "width": width,
        "height": height,
        "fps": fps,
        "length": length,
        **extra,
    }


def frame(seq: int, t: float, image: Any, *, wall: float | None = None, **extra: Any) -> Packet:
    """A frame: its number in the source, its media time, when it was made, its picture."""
    return {
        "kind": "frame",
        "seq": seq,
        **extra,
        "t": media_time(t),
        "wall": time.time() if wall is None else wall,
        "image": image,
    }


MAX_FPS = 10_000  # an announced rate above this is damage, not a camera


def announced_fps(packet: Packet) -> float | None:
    """The frame rate a 'stream' packet announces, if it is a sensible one."""
    fps = packet.get("fps")
    if isinstance(fps, (int, float)) and not isinstance(fps, bool) and 0 < fps < MAX_FPS:
        return float(fps)
    return None


def stream_size(packet: dict[str, Any]) -> tuple[int, int] | None:
    """(width, height) a 'stream' packet announces, if it does."""
    width, height = packet.get("width"), packet.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return width, height
    return None


def picture_size(packet: Packet) -> tuple[int, int] | None:
    """(width, height) of the packet's picture, raw or compressed, without decoding it."""
    shape = getattr(packet.get("image"), "shape", None)
    if not shape or len(shape) < 2:
        return None
    return int(shape[1]), int(shape[0])


class Clock:
    """Seconds for each frame: its media time "t", else its "wall" time, else frames counted
    at the announced frame rate (30 when none is announced). A time that is not a finite
    number (NaN, infinity: a damaged stream) counts as missing."""

    def __init__(self) -> None:
        self.fps = 30.0
        self.frames = 0

    def announce(self, packet: Packet) -> None:
        self.fps = announced_fps(packet) or self.fps

    def now(self, packet: Packet) -> float:
        self.frames += 1
        for key in ("t", "wall"):
            value = packet.get(key)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if math.isfinite(value):
                return float(value)
        return (self.frames - 1) / self.fps


def to_json(packet: dict[str, Any]) -> str:
    """A packet's metadata as one line of JSON (images described, never dumped). Map keys
    that JSON cannot have (bytes, msgpack ext types, tuples) become text: vflow-packet(5)
    asks readers to tolerate them."""
    try:
        return _ENCODE(packet)
    except TypeError:
        return _ENCODE(_text_keys(packet))


def _text_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {_key(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_text_keys(v) for v in value]
    return value


def _key(key: Any) -> Any:
    if key is None or isinstance(key, (str, int, float, bool)):
        return key
    if isinstance(key, (bytes, bytearray)):
        return bytes(key).decode("utf-8", "backslashreplace")
    return repr(key)


def jsonable(value: Any) -> Any:
    """json.dumps fallback for packet metadata (`print`, `write --meta`): images are
    described by format, dtype and shape, never dumped."""
    if type(value) is Pending:
        return value.describe()
    if isinstance(value, Encoded):
        return {
            "format": value.format,
            "dtype": value.dtype,
            "shape": list(value.shape),
            "bytes": len(value.data),
        }
    shape = getattr(value, "shape", None)
    if shape is not None and getattr(value, "ndim", 0) > 0:
        return {"format": "raw", "dtype": str(value.dtype), "shape": list(shape)}
    if hasattr(value, "item"):  # a numpy scalar
        return value.item()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"bytes": len(value)}
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    return repr(value)  # msgpack ext types and the like: readable, never a crash


_ENCODE = json.JSONEncoder(default=jsonable, separators=(",", ":"), ensure_ascii=False).encode
