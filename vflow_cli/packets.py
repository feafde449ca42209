"""packets: the packets producers make, built in one place (man/vflow-packet.5).

Media time `t` is in seconds, rounded to the microsecond: what the source says (a
container's timestamps, a frame number over a rate), without floating-point noise, so the
same frame has the same `t` whichever stage or program reads it.
"""

from __future__ import annotations

import time
from typing import Any

from vflow_cli.framing import Packet


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
