"""vision.transform: a stage that moves pixels (resize, crop, flip, rotate) moves the geometry
packets carry with them, so that boxes, lines and zones stay on what they marked.

    objects[].box        its four corners moved, the box around them, clipped to the new
                         picture; an object left with no area in it is dropped
    objects[].velocity   turned and scaled (no shift)
    lines.NAME.points    both ends moved (lines may lie outside the picture)
    zones.NAME.polygon   every corner moved

An Affine maps a point (x, y) of the old picture to A @ (x, y, 1) in the new one. Points
are in pixels from the picture's top-left corner (x to the right, y down): a picture of
width W spans x from 0 to W, and a box round the whole of it is [0, 0, W, H].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

GEOMETRY = ("objects", "lines", "zones")


@dataclass(frozen=True)
class Affine:
    a: float
    b: float
    c: float  # x' = a x + b y + c
    d: float
    e: float
    f: float  # y' = d x + e y + f

    @staticmethod
    def scale(sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> Affine:
        """Scale about the top-left corner, then shift by (dx, dy) pixels."""
        return Affine(sx, 0, dx, 0, sy, dy)

    @staticmethod
    def of_opencv(matrix: Any) -> Affine:
        """From OpenCV's 2x3 matrix (warpAffine), which maps pixel centres: the centre of
        the top-left pixel is its (0, 0), our (0.5, 0.5)."""
        (a, b, c), (d, e, f) = (tuple(float(v) for v in row) for row in matrix)
        return Affine(a, b, c + 0.5 - 0.5 * (a + b), d, e, f + 0.5 - 0.5 * (d + e))

    def point(self, x: float, y: float) -> tuple[float, float]:
        return self.a * x + self.b * y + self.c, self.d * x + self.e * y + self.f

    def vector(self, x: float, y: float) -> tuple[float, float]:
        return self.a * x + self.b * y, self.d * x + self.e * y


def _numbers(values: Any, n: int | None = None) -> list[float] | None:
    if not isinstance(values, (list, tuple)) or (n is not None and len(values) != n):
        return None
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        return None
    return [float(v) for v in values]


def _box(box: Sequence[float], move: Affine, width: int, height: int) -> list[float] | None:
    x1, y1, x2, y2 = box
    corners = [move.point(x, y) for x in (x1, x2) for y in (y1, y2)]
    xs, ys = [p[0] for p in corners], [p[1] for p in corners]
    nx1, nx2 = max(min(xs), 0.0), min(max(xs), float(width))
    ny1, ny2 = max(min(ys), 0.0), min(max(ys), float(height))
    if nx2 <= nx1 or ny2 <= ny1:
        return None  # nothing of it is left in the picture
    return [round(v, 2) for v in (nx1, ny1, nx2, ny2)]


def move_geometry(packet: dict[str, Any], move: Affine, width: int, height: int) -> None:
    """Move what the packet marks on its picture into a width x height one (in place).
    Values that are not what vflow-packet(5) describes are left as they are."""
    objects = packet.get("objects")
    if isinstance(objects, list):
        kept = []
        for obj in objects:
            box = _numbers(obj.get("box"), 4) if isinstance(obj, dict) else None
            if box is None:
                kept.append(obj)
                continue
            moved = _box(box, move, width, height)
            if moved is None:
                continue
            obj = {**obj, "box": moved}
            velocity = _numbers(obj.get("velocity"), 2)
            if velocity is not None:
                obj["velocity"] = [round(v, 3) for v in move.vector(*velocity)]
            kept.append(obj)
        packet["objects"] = kept
    for table, key in (("lines", "points"), ("zones", "polygon")):
        entries = packet.get(table)
        if not isinstance(entries, dict):
            continue
        for name, entry in list(entries.items()):
            if not isinstance(entry, dict):
                continue
            points = entry.get(key)
            if key == "points":
                ends = _numbers(points, 4)
                if ends is not None:
                    moved = [*move.point(ends[0], ends[1]), *move.point(ends[2], ends[3])]
                    entries[name] = {**entry, key: [round(v, 2) for v in moved]}
            elif isinstance(points, list):
                corners = [_numbers(p, 2) for p in points]
                if all(c is not None for c in corners):
                    entries[name] = {
                        **entry,
                        key: [[round(v, 2) for v in move.point(*c)] for c in corners if c],
                    }


def carries_geometry(packet: dict[str, Any]) -> bool:
    return any(key in packet for key in GEOMETRY)


def map_images(
    packets: Iterator[Any],
    change: Callable[[Any], Any],
    stream: Callable[[dict[str, Any]], None] | None = None,
    takes: Any = None,
    moves: Callable[[int, int], Any] | None = None,
) -> Iterator[Any]:
    """Apply `change` to the picture of every packet that has one (decoded first if it travels
    compressed, checked against `takes`, an images.Takes); `stream` updates 'stream'
    announcements in place. `moves(width, height)` is the Affine that `change` applies to a
    picture of that size: the boxes, lines and zones a packet carries move with its pixels
    (and those of a later summary packet, as the last frame's did). Everything else passes."""
    from vflow_cli.images import pixels

    last: tuple[Any, int, int] | None = None
    for packet in packets:
        image = packet.get("image")
        if image is not None:
            picture = pixels(image)
            if takes is not None:
                takes.check(picture, packet)
            new = change(picture)
            packet["image"] = new
            if moves is not None:
                height, width = picture.shape[:2]
                last = (moves(width, height), new.shape[1], new.shape[0])
                if carries_geometry(packet):
                    move_geometry(packet, *last)
        elif stream is not None and packet.get("kind") == "stream":
            stream(packet)
        elif last is not None and packet.get("kind") == "summary":
            move_geometry(packet, *last)
        yield packet
