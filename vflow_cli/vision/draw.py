"""draw: boxes, labels, trails, counting lines and zones drawn on a frame, sized to the frame.

Sizes follow the picture's height (a unit of 1.0 at 720 lines): a 768x576 frame and a 1080p
one read alike when scaled to the same screen. Colours are stable: a track id always gets
the same colour (hues spaced by the golden ratio, so neighbouring ids differ), a line or
zone one derived from its name.
"""

from __future__ import annotations

import colorsys
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any

from vflow_cli.vision.geometry import clip_polygon, clip_segment, foot
from vflow_cli.vision.objects import track_id

PARTS = ("boxes", "labels", "scores", "ids", "trails", "lines", "zones", "counts")
Colour = tuple[int, int, int]
_GOLDEN = 0.618033988749895


def _bgr(hue: float, saturation: float = 0.8, value: float = 1.0) -> Colour:
    r, g, b = colorsys.hsv_to_rgb(hue % 1.0, saturation, value)
    return round(b * 255), round(g * 255), round(r * 255)


def id_colour(ident: int) -> Colour:
    """The colour of a track id: the same on every frame and in every run."""
    return _bgr(0.1 + ident * _GOLDEN)


def class_colour(number: Any) -> Colour:
    """Untracked objects: a colour per class, paler than the track colours."""
    n = number if isinstance(number, int) else zlib.crc32(str(number).encode())
    return _bgr(0.55 + n * _GOLDEN, saturation=0.45)


def name_colour(name: str) -> Colour:
    return _bgr(zlib.crc32(name.encode()) / 2**32, saturation=0.9, value=0.95)


def _ink(colour: Colour) -> Colour:
    """Black or white text, whichever reads better on `colour` (BGR)."""
    b, g, r = colour
    return (0, 0, 0) if 0.114 * b + 0.587 * g + 0.299 * r > 140 else (255, 255, 255)


@dataclass(frozen=True)
class Style:
    """Stroke and text sizes for one frame height."""

    thickness: int
    font: float
    text: int  # text stroke
    pad: int
    # anti-aliased text only with a thin stroke: a 2-pixel anti-aliased stroke costs 5-6x
    # as much (0.35 ms a label at 1080p) and its jagged edges do not show at that size
    smooth: int

    @classmethod
    def for_height(cls, height: int, scale: float | None = None) -> Style:
        import cv2

        unit = max(0.5, height / 720) if scale is None else scale
        text = max(1, round(1.4 * unit))
        return cls(
            thickness=max(1, round(2 * unit)),
            font=0.6 * unit,
            text=text,
            pad=max(2, round(3 * unit)),
            smooth=cv2.LINE_AA if text == 1 else cv2.LINE_8,
        )


class Painter:
    """Draws one packet's annotations on its picture; remembers foot points for trails."""

    def __init__(
        self, hide: frozenset[str] = frozenset(), trail: int = 20, scale: float | None = None
    ) -> None:
        import cv2

        self.cv2 = cv2
        self.hide = hide
        self.trail = 0 if "trails" in hide else trail
        self.scale = scale
        self._trails: dict[int, deque[tuple[int, int]]] = {}
        self._seen: dict[int, int] = {}
        self._frames = 0
        self._styles: dict[int, Style] = {}
        self._legends: list[tuple[str, tuple[int, int], Colour, bool]] = []

    def style(self, height: int) -> Style:
        style = self._styles.get(height)
        if style is None:
            style = self._styles[height] = Style.for_height(height, self.scale)
        return style

    def paint(self, image: Any, packet: dict[str, Any], objects: list[dict[str, Any]]) -> None:
        """Draw on `image` (a writable BGR uint8 array) in place."""
        self._frames += 1
        style = self.style(image.shape[0])
        hide = self.hide
        self._legends = []
        zones = packet.get("zones")
        if "zones" not in hide and isinstance(zones, dict):
            for name, zone in zones.items():
                if isinstance(zone, dict):
                    self._zone(image, style, str(name), zone)
        lines = packet.get("lines")
        if "lines" not in hide and isinstance(lines, dict):
            for name, line in lines.items():
                if isinstance(line, dict):
                    self._line(image, style, str(name), line)
        if self.trail:
            self._trail(image, style, objects)
        for obj in objects:
            self._object(image, style, obj)
        # the counts of lines and zones last, on top: no person's label can hide them
        for text, corner, colour, centred in self._legends:
            self._tag(image, style, text, corner, colour, centred)

    # -- objects ------------------------------------------------------------------------

    def _object(self, image: Any, style: Style, obj: dict[str, Any]) -> None:
        cv2, hide = self.cv2, self.hide
        ident = track_id(obj)
        tracked = ident is not None
        colour = id_colour(ident) if ident is not None else class_colour(obj.get("class"))
        limit = 4 * max(image.shape[:2])  # cv2 takes 32-bit ints: a wild box stays drawable
        x1, y1, x2, y2 = (round(min(max(v, -limit), limit)) for v in obj["box"])
        if "boxes" not in hide:
            cv2.rectangle(image, (x1, y1), (x2, y2), colour, style.thickness, cv2.LINE_8)
        words = []
        if tracked and "ids" not in hide:
            words.append(f"#{ident}")
        if "labels" not in hide and obj.get("label") is not None:
            words.append(str(obj["label"]))
        score = obj.get("score")
        if "scores" not in hide and isinstance(score, (int, float)):
            words.append(f"{score:.2f}")
        if words:
            self._tag(image, style, " ".join(words), (x1, y1), colour)

    def _tag(
        self,
        image: Any,
        style: Style,
        text: str,
        corner: tuple[int, int],
        colour: Colour,
        centred: bool = False,
    ) -> None:
        """A label on a filled band of `colour`, above `corner` (below it at the top edge),
        or centred on it; always inside the picture."""
        cv2 = self.cv2
        font = cv2.FONT_HERSHEY_SIMPLEX
        (w, h), base = cv2.getTextSize(text, font, style.font, style.text)
        pad = style.pad
        height, width = image.shape[:2]
        if centred:
            corner = (corner[0] - w // 2 - pad, corner[1] + (h + base) // 2 + pad)
        x = min(max(0, corner[0]), max(0, width - w - 2 * pad))
        top = corner[1] - h - base - 2 * pad
        if top < 0:
            top = max(0, corner[1])
        top = min(top, max(0, height - h - base - 2 * pad))
        cv2.rectangle(image, (x, top), (x + w + 2 * pad, top + h + base + 2 * pad), colour, -1)
        origin = (x + pad, top + pad + h)
        cv2.putText(image, text, origin, font, style.font, _ink(colour), style.text, style.smooth)

    def _trail(self, image: Any, style: Style, objects: list[dict[str, Any]]) -> None:
        import numpy as np

        cv2, frames = self.cv2, self._frames
        stroke = max(1, style.thickness - 1)
        smooth = cv2.LINE_AA if stroke == 1 else cv2.LINE_8
        for obj in objects:
            ident = track_id(obj)
            if ident is None:
                continue
            x, y = foot(obj["box"])
            if not (abs(x) < 1e6 and abs(y) < 1e6):
                continue
            path = self._trails.get(ident)
            if path is None:
                path = self._trails[ident] = deque(maxlen=self.trail)
            path.append((round(x), round(y)))
            self._seen[ident] = frames
            if len(path) > 1:
                points = np.array(path, np.int32)
                cv2.polylines(image, [points], False, id_colour(ident), stroke, smooth)
        if len(self._seen) > 2 * len(objects) + 16:  # forget ids gone for a trail's length
            gone = [i for i, seen in self._seen.items() if frames - seen > self.trail]
            for ident in gone:
                del self._seen[ident], self._trails[ident]

    # -- lines and zones ----------------------------------------------------------------

    def _line(self, image: Any, style: Style, name: str, line: dict[str, Any]) -> None:
        cv2 = self.cv2
        points = line.get("points")
        if not isinstance(points, list) or not _numbers(points, 4):
            return
        x1, y1, x2, y2 = (float(v) for v in points)
        height, width = image.shape[:2]
        colour = name_colour(name)
        seen = clip_segment(x1, y1, x2, y2, width - 1, height - 1)
        if seen is None:
            return
        a, b = (round(seen[0]), round(seen[1])), (round(seen[2]), round(seen[3]))
        cv2.line(image, a, b, colour, style.thickness + 1, cv2.LINE_AA)
        # an arrow from the middle of the visible part towards the "in" (right-hand) side
        dx, dy = x2 - x1, y2 - y1
        length = (dx * dx + dy * dy) ** 0.5
        reach = 70 * style.font
        nx, ny = -dy / length, dx / length  # the unit normal towards the right-hand side
        mid = ((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)
        tip = (round(mid[0] + nx * reach), round(mid[1] + ny * reach))
        start = (round(mid[0]), round(mid[1]))
        cv2.arrowedLine(image, start, tip, colour, style.thickness + 1, cv2.LINE_AA, 0, 0.3)
        if "counts" not in self.hide:
            text = f"{name}  in {line.get('in', 0)}  out {line.get('out', 0)}"
            self._legends.append((text, a if a[1] <= b[1] else b, colour, False))
            beyond = (round(mid[0] + nx * reach * 1.6), round(mid[1] + ny * reach * 1.6))
            self._legends.append(("in", beyond, colour, True))

    def _zone(self, image: Any, style: Style, name: str, zone: dict[str, Any]) -> None:
        import numpy as np

        cv2 = self.cv2
        polygon = zone.get("polygon")
        if not isinstance(polygon, list) or len(polygon) < 3:
            return
        if not all(_numbers(p, 2) for p in polygon):
            return
        height, width = image.shape[:2]
        margin = 8 * max(width, height)  # cv2 takes 32-bit ints: cut far corners off
        kept = clip_polygon(polygon, -margin, -margin, width + margin, height + margin)
        if len(kept) < 3:
            return
        corners = np.array([[round(x), round(y)] for x, y in kept], np.int32)
        colour = name_colour(name)
        cv2.polylines(image, [corners], True, colour, style.thickness + 1, cv2.LINE_AA)
        if "counts" not in self.hide:
            top = min(range(len(corners)), key=lambda i: (corners[i][1], corners[i][0]))
            corner = (int(corners[top][0]), int(corners[top][1]))
            text = (
                f"{name}  {zone.get('occupancy', 0)} inside  "
                f"in {zone.get('entries', 0)}  out {zone.get('exits', 0)}"
            )
            self._legends.append((text, corner, colour, False))


def _numbers(values: Any, count: int) -> bool:
    return (
        isinstance(values, (list, tuple))
        and len(values) == count
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    )


def draw_label(image: Any, text: str, origin: tuple[int, int], scale: float | None = None) -> None:
    """White text with a dark outline, readable on any picture; sized to the frame."""
    import cv2

    if scale is None:
        scale = max(0.4, image.shape[0] / 720)
    thickness = max(1, round(scale * 2))
    font = cv2.FONT_HERSHEY_SIMPLEX
    white = (255,) * (image.shape[2] if image.ndim == 3 else 1)
    black = (0,) * len(white)
    # the outline lies under the white text: LINE_8 looks the same there and costs a seventh
    cv2.putText(image, text, origin, font, scale, black, thickness + 2, cv2.LINE_8)
    cv2.putText(image, text, origin, font, scale, white, thickness, cv2.LINE_AA)


def draw_text(
    image: Any, text: str, where: str | tuple[int, int] = "tl", scale: float | None = None
) -> None:
    """Lines of text (split at \\n) in a corner, "tl", "tr", "bl" or "br", 8 pixels from
    its edges, or from the point (x, y): what every stage that writes on frames uses."""
    step = line_height(image) if scale is None else int(scale * 34)
    lines = text.split("\n")
    height, width = image.shape[:2]
    for i, line in enumerate(lines):
        if isinstance(where, tuple):
            origin = (where[0], where[1] + step * (i + 1))
        else:
            text_width = len(line) * step * 6 // 10
            left = 8 if where[1] == "l" else max(0, width - text_width - 8)
            top = step * (i + 1) if where[0] == "t" else height - 8 - step * (len(lines) - 1 - i)
            origin = (left, top)
        draw_label(image, line, origin, scale)


def line_height(image: Any) -> int:
    return int(max(0.4, image.shape[0] / 720) * 34)
