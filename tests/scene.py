"""A synthetic tracked scene with known crossings, entries and exits, for line, zone, annotate
and mot tests.

Each Walker is one track: an id, a label, and key frames (frame, foot x, foot y) between
which its foot point moves in a straight line, at one position per frame; outside its key
frames, and on its `hidden` frames, it is not in the picture. Its box is 30x80 pixels
standing on its foot point. `stream()` turns walkers into the packets `vflow track` would
write: a 'stream' announcement, then one frame packet per frame with its "objects".

SCENE is a 768x576 clip at 10 fps whose truth is written beside each walker, for three
lines: DOOR (400,0 -> 400,576: "in" is right to left), HALL (0,300 -> 768,300: "in" is
downwards) and SHORT (100,100 -> 300,100: "in" is downwards, only between x=100 and 300).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vflow_cli.framing import Encoded

WIDTH, HEIGHT, FPS = 768, 576, 10.0
DOOR = "400,0,400,576"
HALL = "0,300,768,300"
SHORT = "100,100,300,100"


@dataclass
class Walker:
    id: int | None  # None: an untracked detection
    keys: Sequence[tuple[int, float, float]]  # (frame, foot x, foot y), frames increasing
    label: str = "person"
    hidden: range | None = None  # frames on which the tracker has lost it
    size: tuple[float, float] = (30.0, 80.0)
    crossings: dict[str, list[str]] = field(default_factory=dict)  # truth: line -> directions

    def foot(self, frame: int) -> tuple[float, float] | None:
        if frame < self.keys[0][0] or frame > self.keys[-1][0]:
            return None
        if self.hidden is not None and frame in self.hidden:
            return None
        for (f0, x0, y0), (f1, x1, y1) in zip(self.keys, self.keys[1:], strict=False):
            if f0 <= frame <= f1:
                k = 0.0 if f1 == f0 else (frame - f0) / (f1 - f0)
                return x0 + k * (x1 - x0), y0 + k * (y1 - y0)
        _, x, y = self.keys[-1]
        return x, y

    def object(self, frame: int) -> dict[str, Any] | None:
        p = self.foot(frame)
        if p is None:
            return None
        w, h = self.size
        obj: dict[str, Any] = {
            "box": [p[0] - w / 2, p[1] - h, p[0] + w / 2, p[1]],
            "score": 0.9,
            "class": 0 if self.label == "person" else 2,
            "label": self.label,
        }
        if self.id is not None:
            obj["id"] = self.id
            obj["velocity"] = [0.0, 0.0]
        return obj


def _blank_jpeg(width: int, height: int) -> Encoded:
    """A small grey JPEG of the picture's size: the counting stages never decode it."""
    import cv2

    ok, data = cv2.imencode(".jpg", np.full((height, width, 3), 96, np.uint8))
    assert ok
    return Encoded("jpeg", data.tobytes(), (height, width, 3))


def stream(
    walkers: Sequence[Walker],
    frames: int,
    *,
    size: tuple[int, int] = (WIDTH, HEIGHT),
    fps: float = FPS,
    raw: bool = False,
) -> Iterator[dict[str, Any]]:
    """The packets of a tracked scene. raw=True: real pixel arrays (for drawing stages)."""
    width, height = size
    picture = None if raw else _blank_jpeg(width, height)
    yield {"kind": "stream", "source": "scene", "width": width, "height": height, "fps": fps}
    for n in range(frames):
        objects = [o for o in (w.object(n) for w in walkers) if o is not None]
        image = np.full((height, width, 3), 96, np.uint8) if raw else picture
        packet = {"kind": "frame", "seq": n, "frame": n, "t": n / fps, "wall": 1.8e9 + n / fps}
        packet["image"] = image
        if objects:
            packet["objects"] = objects
        yield packet


def _dither(start: int, stop: int, x: float, y: float, amplitude: float) -> list:
    return [(f, x + (amplitude if f % 2 else -amplitude), y) for f in range(start, stop)]


SCENE = [
    # 1: left to right along y=200: out of DOOR
    Walker(1, [(0, 100, 200), (59, 700, 200)], crossings={"door": ["out"]}),
    # 2: right to left along y=450: into DOOR
    Walker(2, [(10, 700, 450), (69, 100, 450)], crossings={"door": ["in"]}),
    # 3: downwards along x=600: into HALL
    Walker(3, [(0, 600, 100), (79, 600, 500)], crossings={"hall": ["in"]}),
    # 4: comes up to DOOR, dithers on it (+-5 px for 50 frames), goes back, and later
    # crosses it for real: one "out", not dozens
    Walker(
        4,
        [
            (0, 340, 350),
            (9, 395, 350),
            *_dither(10, 60, 400, 350, 5),
            (60, 400, 350),
            (69, 340, 350),
            (89, 470, 350),
        ],
        crossings={"door": ["out"]},
    ),
    # 5: crosses DOOR and comes back: once each way
    Walker(5, [(0, 300, 520), (29, 500, 520), (59, 300, 520)], crossings={"door": ["out", "in"]}),
    # 6: walks down past the end of SHORT (x=350 > 300): crosses its line, not the segment
    Walker(6, [(0, 350, 50), (20, 350, 150)]),
    # 7: walks down through SHORT: into it
    Walker(7, [(0, 200, 50), (20, 200, 150)], crossings={"short": ["in"]}),
    # 8: lost by the tracker before DOOR, found again after it under the same id: out
    Walker(
        8,
        [(0, 300, 250), (60, 600, 250)],
        hidden=range(16, 40),
        crossings={"door": ["out"]},
    ),
    # 9: untracked (no id): crosses DOOR but is not counted
    Walker(None, [(0, 700, 150), (40, 100, 150)]),
    # 10: a tracked car, right to left: into DOOR (not with --classes person)
    Walker(10, [(20, 650, 400), (50, 150, 400)], label="car", crossings={"door": ["in"]}),
    # 11: its box straddles HALL for 40 frames but its foot stays above: nothing
    Walker(11, [(0, 100, 290), (40, 300, 290)]),
]
SCENE_FRAMES = 100


def truth(line: str, walkers: Sequence[Walker] = SCENE, label: str | None = None) -> list:
    """The (id, direction) crossings of `line`, in the order each walker makes them."""
    return [
        (w.id, d)
        for w in walkers
        if label is None or w.label == label
        for d in w.crossings.get(line, [])
    ]


# -- zones ------------------------------------------------------------------------------------

# An L-shaped zone: a bar 450..750 x 380..470 and a column 600..750 x 470..560 under its
# right half; the notch 450..600 x 470..560 is outside.
LOBBY = ["450,380", "750,380", "750,560", "600,560", "600,470", "450,470"]


@dataclass
class Visit:
    id: int
    enter: int  # frame of the entry
    exit: int | None  # frame of the exit; None: still inside at the end
    dwell: float | None = None  # seconds, for a finished visit
    lost: bool = False


ZONE_SCENE = [
    # 1: in from the left along y=420 (inside past x=458: frame 16), waits, and leaves
    # upwards (outside above y=372: frame 65); on its way in it crosses DOOR
    Walker(
        1,
        [(0, 300, 420), (40, 700, 420), (60, 700, 420), (72, 700, 300)],
        crossings={"door": ["out"]},
    ),
    # 2: dithers on the left edge (x=450 +-5) for 50 frames, then walks away (across DOOR):
    # never inside
    Walker(2, [*_dither(0, 51, 450, 420, 5), (60, 350, 420)], crossings={"door": ["in"]}),
    # 3: appears inside at frame 10, is last seen at frame 30 (t=3.0): a lost exit once 3 s
    # have passed, at frame 61
    Walker(3, [(10, 700, 520), (30, 700, 520)]),
    # 4: inside from frame 0; lost by the tracker for 2 s (not an exit); leaves down into
    # the notch (outside below y=478: frame 86)
    Walker(4, [(0, 520, 420), (80, 520, 420), (90, 520, 520)], hidden=range(20, 40)),
    # 5: walks in the notch only: inside the zone's bounding box, never inside the zone
    Walker(5, [(0, 520, 520), (30, 580, 520)]),
    # 6: in from the right (frame 2), out (frame 22), in again (frame 24) and stays
    Walker(6, [(0, 760, 520), (11, 650, 520), (22, 760, 520), (33, 650, 520), (99, 650, 520)]),
]
ZONE_VISITS = [
    Visit(1, 16, 65, 4.9),
    Visit(3, 10, 61, 2.0, lost=True),
    Visit(4, 0, 86, 8.6),
    Visit(6, 2, 22, 2.0),
    Visit(6, 24, None),
]
ZONE_FRAMES = 100
