"""geometry: points, segments and polygons in picture pixels (x right, y down), parsed and measured.

Left and right of a segment P1->P2 are as seen on the picture by someone standing at P1 and
looking at P2: the right-hand side is where P1->P2 points after a clockwise quarter turn on
screen. For a segment drawn left to right, the right-hand side is below it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import click

Point = tuple[float, float]

_NAME = re.compile(r"[A-Za-z0-9_-]+")


def check_name(text: str) -> str:
    """A line or zone name: a map key in packets and one part of a dotted path (`print -f`)."""
    if not _NAME.fullmatch(text):
        raise click.BadParameter(
            f"{text!r} is not a name; use letters, digits, '-' and '_' (e.g. door, lane_2)"
        )
    return text


def _numbers(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(math.isfinite(v) for v in values):
        raise click.BadParameter(f"{text!r} is not comma-separated numbers")
    return values


def parse_segment(text: str) -> tuple[float, float, float, float]:
    """'X1,Y1,X2,Y2' -> the segment's ends; refuses a segment of zero length."""
    values = _numbers(text) if text.count(",") == 3 else []
    if len(values) != 4:
        raise click.BadParameter(f"{text!r} is not X1,Y1,X2,Y2 (e.g. 400,0,400,576)")
    x1, y1, x2, y2 = values
    if (x1, y1) == (x2, y2):
        raise click.BadParameter(f"{text!r}: both ends are the same point; a line needs length")
    return x1, y1, x2, y2


def parse_point(text: str) -> Point:
    values = _numbers(text) if text.count(",") == 1 else []
    if len(values) != 2:
        raise click.BadParameter(f"{text!r} is not a point X,Y (e.g. 120,300)")
    return values[0], values[1]


def parse_polygon(texts: Sequence[str]) -> list[Point]:
    """Three or more 'X,Y' corners enclosing some area."""
    points = [parse_point(t) for t in texts]
    if len(points) < 3:
        raise click.BadParameter(f"a zone needs at least 3 corners X,Y, not {len(points)}")
    if abs(polygon_area(points)) < 1e-9:
        raise click.BadParameter("the corners lie on one line; a zone needs an area")
    return points


def plain(value: float) -> int | float:
    """400.0 -> 400: coordinates typed as integers stay integers in packets and JSON."""
    return int(value) if float(value).is_integer() else value


def foot(box: Sequence[float]) -> Point:
    """The bottom centre of a box (x1, y1, x2, y2): where a person stands."""
    x1, y1, x2, y2 = box[0], box[1], box[2], box[3]
    return (x1 + x2) / 2, max(y1, y2)


def polygon_area(points: Sequence[Point]) -> float:
    """Signed area (shoelace)."""
    total = 0.0
    for (ax, ay), (bx, by) in zip(points, [*points[1:], points[0]], strict=True):
        total += ax * by - bx * ay
    return total / 2


class Segment:
    """A segment P1->P2 and its signed distances (positive on its right-hand side)."""

    __slots__ = ("dx", "dy", "length", "x1", "x2", "y1", "y2")

    def __init__(self, x1: float, y1: float, x2: float, y2: float) -> None:
        self.x1, self.y1, self.x2, self.y2 = x1, y1, x2, y2
        self.dx, self.dy = x2 - x1, y2 - y1
        self.length = math.hypot(self.dx, self.dy)

    def distance(self, p: Point) -> float:
        """Signed distance from the segment's line: > 0 on its right, < 0 on its left."""
        return (self.dx * (p[1] - self.y1) - self.dy * (p[0] - self.x1)) / self.length

    def crossing(self, a: Point, b: Point) -> float | None:
        """Where the step a->b crosses the segment's (endless) line, as a fraction along
        P1->P2 (0..1: on the segment; outside: beside it), or None if it does not cross.
        A point exactly on the line counts as right of it."""
        da, db = self.distance(a), self.distance(b)
        if (da < 0) == (db < 0):
            return None
        k = da / (da - db)
        x, y = a[0] + k * (b[0] - a[0]), a[1] + k * (b[1] - a[1])
        return ((x - self.x1) * self.dx + (y - self.y1) * self.dy) / (self.length**2)

    def meets_rect(self, width: float, height: float) -> bool:
        """Does any part of the segment lie inside the rectangle 0..width x 0..height?"""
        return clip_segment(self.x1, self.y1, self.x2, self.y2, width, height) is not None


def clip_segment(
    x1: float, y1: float, x2: float, y2: float, width: float, height: float
) -> tuple[float, float, float, float] | None:
    """The part of a segment inside 0..width x 0..height (Liang-Barsky), or None."""
    dx, dy = x2 - x1, y2 - y1
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x1), (dx, width - x1), (-dy, y1), (dy, height - y1)):
        if p == 0:
            if q < 0:
                return None
            continue
        r = q / p
        if p < 0:
            t0 = max(t0, r)
        else:
            t1 = min(t1, r)
        if t0 > t1:
            return None
    return x1 + t0 * dx, y1 + t0 * dy, x1 + t1 * dx, y1 + t1 * dy


def clip_polygon(
    points: Sequence[Point], left: float, top: float, right: float, bottom: float
) -> list[Point]:
    """The part of a polygon inside a rectangle (Sutherland-Hodgman); [] if none."""

    def cut(pts: list[Point], inside, meet) -> list[Point]:
        out: list[Point] = []
        for i, p in enumerate(pts):
            q = pts[i - 1]
            if inside(p):
                if not inside(q):
                    out.append(meet(q, p))
                out.append(p)
            elif inside(q):
                out.append(meet(q, p))
        return out

    def at_x(x: float):
        return lambda a, b: (x, a[1] + (b[1] - a[1]) * (x - a[0]) / (b[0] - a[0]))

    def at_y(y: float):
        return lambda a, b: (a[0] + (b[0] - a[0]) * (y - a[1]) / (b[1] - a[1]), y)

    pts = [(float(x), float(y)) for x, y in points]
    for inside, meet in (
        (lambda p: p[0] >= left, at_x(left)),
        (lambda p: p[0] <= right, at_x(right)),
        (lambda p: p[1] >= top, at_y(top)),
        (lambda p: p[1] <= bottom, at_y(bottom)),
    ):
        if not pts:
            break
        pts = cut(pts, inside, meet)
    return pts


class Polygon:
    """A closed polygon (even-odd rule) and signed distances to its outline."""

    __slots__ = ("edges", "points")

    def __init__(self, points: Sequence[Point]) -> None:
        self.points = [(float(x), float(y)) for x, y in points]
        self.edges = list(zip(self.points, [*self.points[1:], self.points[0]], strict=True))

    def contains(self, p: Point) -> bool:
        x, y = p
        inside = False
        for (ax, ay), (bx, by) in self.edges:
            if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
                inside = not inside
        return inside

    def distance(self, p: Point) -> float:
        """Distance to the outline: positive inside, negative outside."""
        x, y = p
        best = math.inf
        for (ax, ay), (bx, by) in self.edges:
            ex, ey = bx - ax, by - ay
            span = ex * ex + ey * ey
            k = 0.0 if span == 0 else max(0.0, min(1.0, ((x - ax) * ex + (y - ay) * ey) / span))
            best = min(best, math.hypot(x - ax - k * ex, y - ay - k * ey))
        return best if self.contains(p) else -best

    def meets_rect(self, width: float, height: float) -> bool:
        """Does the polygon overlap the rectangle 0..width x 0..height?"""
        if any(0 <= x <= width and 0 <= y <= height for x, y in self.points):
            return True
        if self.contains((width / 2, height / 2)):
            return True
        return any(
            clip_segment(ax, ay, bx, by, width, height) is not None
            for (ax, ay), (bx, by) in self.edges
        )
