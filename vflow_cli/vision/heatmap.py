"""heatmap: where people walked or stood, by foot point, over time; drawn with a colour scale.

    objects of a frame ──foot points──> + dt seconds in their cells ──(x e^-dt/decay)──> grid
    grid ──Gaussian (half a person wide)──> seconds near each place ──colour map, scale──> picture

The grid has one cell per CELL x CELL pixels of the frame. Each frame adds the time it
stands for (until the next frame's media time; at most MAX_STEP) to the cell under each
object's foot point (the bottom centre of its box: where a person stands, whatever
their height), so a cell holds person-seconds. Blurred with a Gaussian as wide as half a
typical box, whose peak is 1 (not its sum), a place's value reads as "seconds someone
stood within about half a person of here". With `decay`, old heat fades: each second
keeps e^(-1/decay) of it, so the picture shows about the last `decay` seconds.

Used by `vflow heatmap` (one picture at the end, over a frame of the scene) and
`vflow annotate --heatmap` (on every frame, live).
"""

from __future__ import annotations

import math
from typing import Any

CELL = 4  # pixels a side of a grid cell
MAX_STEP = 1.0  # seconds one frame may stand for at most (a gap in time is no presence)
FLOOR = 0.02  # heat under this share of the hottest place is not drawn: the scene shows
OPACITY = 0.7  # of the colours over the scene (less where the heat is faint)
START = 0.15  # where on the colour map the scale starts
BACKDROPS = 9  # frames kept for the scene's backdrop (their median: the scene without people)


class Heat:
    """Person-seconds by foot point on a grid over frames of one size."""

    def __init__(self, decay: float | None = None) -> None:
        self.decay = decay
        self.grid: Any = None
        self.size: tuple[int, int] | None = None  # (width, height) of the frames
        self.time: float | None = None
        self.step = 1 / 30  # seconds a frame stands for: the last interval seen
        self.feet: list[tuple[int, int]] = []  # the grid cells of the last frame's feet
        self.widths = 0.0  # the sum of the boxes' widths, and their number: sigma follows
        self.boxes = 0

    def add(self, objects: list[dict[str, Any]], t: float, size: tuple[int, int]) -> None:
        """One frame's objects (each with a "box"), at media time t, in a frame of `size`."""
        import numpy as np

        if size != self.size:  # a new picture size: a new scene
            width, height = size
            self.grid = np.zeros((-(-height // CELL), -(-width // CELL)), np.float32)
            self.size, self.time, self.feet = size, None, []
        # a frame stands for the time until the next one: the previous frame's feet are
        # added now (after a jump back in time, or a gap over MAX_STEP: for the last
        # interval seen, since nobody was seen in between)
        if self.time is not None:
            step = t - self.time
            self.step = step if 0 < step <= MAX_STEP else self.step
            if self.decay and step > 0:
                self.grid *= math.exp(-min(step, 50 * self.decay) / self.decay)
            for row, col in self.feet:
                self.grid[row, col] += self.step
        self.time = t
        rows, cols = self.grid.shape
        self.feet = []
        for obj in objects:
            x1, y1, x2, y2 = (float(v) for v in obj["box"][:4])
            col, row = int((x1 + x2) / 2 // CELL), int(max(y1, y2) // CELL)
            if 0 <= row < rows and 0 <= col < cols:
                self.feet.append((row, col))
                self.widths += abs(x2 - x1)
                self.boxes += 1

    def seconds(self) -> Any:
        """The blurred grid: seconds someone stood near each cell (the last frame's feet
        standing for one more frame interval)."""
        import cv2

        grid = self.grid.copy()
        for row, col in self.feet:
            grid[row, col] += self.step
        width = self.widths / self.boxes if self.boxes else 8.0 * CELL
        sigma = max(1.0, width / 2 / CELL)
        blurred = cv2.GaussianBlur(grid, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
        return blurred * (2 * math.pi * sigma * sigma)  # peak 1 per second, not sum 1

    def draw(self, picture: Any, scale: float | None = None) -> None:
        """Draw the heat over `picture` (BGR, of the size added), with its colour scale."""
        import cv2
        import numpy as np

        if self.grid is None:
            return
        heat = self.seconds()
        top = float(heat.max())
        if top <= 0:
            return
        # colours and opacity at the grid's size, then enlarged: a numpy pass over the
        # frame's pixels for each step cost 74 ms a frame at 768x576 on a busy machine,
        # this 27 ms there (make bench: "annotate --heatmap")
        share = np.clip(heat / top, 0, 1)
        level = np.sqrt(share)  # a path walked once shows beside a long wait
        colours = cv2.applyColorMap(_levels(level), cv2.COLORMAP_TURBO)
        alpha = np.where(share >= FLOOR, OPACITY * np.minimum(1.0, 3 * level), 0)
        height, width = picture.shape[:2]
        linear = cv2.INTER_LINEAR
        colours = cv2.resize(colours, (width, height), interpolation=linear)
        alpha = cv2.resize(alpha.astype(np.float32), (width, height), interpolation=linear)
        picture[...] = cv2.blendLinear(colours, picture, alpha, 1 - alpha)
        _scale_bar(picture, top, scale)


def _levels(level: Any) -> Any:
    """Shares 0..1 of the colour scale -> 8-bit levels of the colour map, leaving out its
    darkest end (near black, it would darken the scene where a little heat is)."""
    import numpy as np

    return (255 * (START + (1 - START) * level)).astype(np.uint8)


def _scale_bar(picture: Any, top: float, scale: float | None) -> None:
    """A colour bar in the bottom-right corner, cold (0 s) at the bottom, hot at the top."""
    import cv2
    import numpy as np

    from vflow_cli.vision.draw import draw_label

    height, width = picture.shape[:2]
    unit = max(0.4, height / 720) if scale is None else scale
    bar_h, bar_w = int(height / 4), max(6, round(14 * unit))
    right, bottom = width - round(12 * unit), height - round(12 * unit)
    left, top_y = right - bar_w, bottom - bar_h
    if left <= 0 or top_y <= 0:
        return
    ramp = _levels(np.linspace(1, 0, bar_h))[:, None].repeat(bar_w, 1)
    picture[top_y:bottom, left:right] = cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO)
    cv2.rectangle(picture, (left - 1, top_y - 1), (right, bottom), (255, 255, 255), 1)
    em = round(20 * unit)
    # the colour follows the square root of the seconds: half way up is a quarter of the top
    for seconds, y in ((top, top_y + em // 2), (top / 4, (top_y + bottom) // 2 + em // 4)):
        text = f"{seconds:.1f} s" if seconds < 100 else f"{seconds:.0f} s"
        draw_label(picture, text, (max(0, left - 4 - em * len(text) * 6 // 10), y), unit * 0.6)
    draw_label(picture, "0 s", (max(0, left - 4 - em * 2), bottom), unit * 0.6)


class Backdrop:
    """A frame of the scene to draw the heat over: the median of up to BACKDROPS frames
    spread over the stream (people walking through are left out), or the one frame seen."""

    def __init__(self) -> None:
        self.frames: list[Any] = []
        self.every = 1
        self.seen = 0

    def offer(self, picture: Any) -> None:
        """Every frame, in order; some are kept (a copy)."""
        if self.frames and picture.shape != self.frames[-1].shape:
            self.frames, self.every, self.seen = [], 1, 0  # another scene
        if self.seen % self.every == 0:
            self.frames.append(picture.copy())
            if len(self.frames) > BACKDROPS:  # keep one in two, take half as many from now on
                self.frames = self.frames[::2]
                self.every *= 2
        self.seen += 1

    def picture(self) -> Any:
        import numpy as np

        if len(self.frames) < 3:
            return self.frames[-1].copy()
        return np.median(np.stack(self.frames), axis=0).astype(np.uint8)
