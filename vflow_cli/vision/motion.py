"""motion: moving regions as boxes, by background subtraction (OpenCV's MOG2). No network.

    frame ──shrink to <= 640 wide──> MOG2 (shadows apart) ──open, close──> connected regions
    ──> boxes of at least --min-area, in the frame's pixels

The background model learns from every frame: it keeps state, and its first frames (while it
learns) give no boxes. Something that stops moving fades into the background.
"""

from __future__ import annotations

from typing import Any

WIDTH = 640  # the model runs on frames at most this wide: 4x less work on 1080p, same boxes


class Motion:
    """Boxes around moving regions; score = the fraction of the box that moved."""

    def __init__(self, *, score: float = 0.0, min_area: float = 0.0005, history: int = 500) -> None:
        import cv2

        self.model = cv2.createBackgroundSubtractorMOG2(
            history=history, varThreshold=16, detectShadows=True
        )
        self.kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        self.score, self.min_area = score, min_area
        self.frames = 0

    def __call__(self, image: Any) -> list[dict[str, Any]]:
        import cv2
        import numpy as np

        h, w = image.shape[:2]
        factor = min(1.0, WIDTH / w)
        small = (
            image
            if factor == 1
            else cv2.resize(
                image, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA
            )
        )
        mask = self.model.apply(small)
        self.frames += 1
        if self.frames < 3:  # the model has not seen a background yet: everything "moved"
            return []
        moved = np.where(mask == 255, 255, 0).astype(np.uint8)  # 127 is a shadow
        opened = cv2.morphologyEx(moved, cv2.MORPH_OPEN, self.kernel)
        closed = cv2.morphologyEx(opened, cv2.MORPH_CLOSE, self.kernel, iterations=2)
        count, _, stats, _ = cv2.connectedComponentsWithStats(closed, connectivity=8)
        least = self.min_area * small.shape[0] * small.shape[1]
        found: list[dict[str, Any]] = []
        for x, y, bw, bh, area in stats[1:count]:
            fill = area / float(bw * bh)
            if area < least or fill < self.score:
                continue
            box = np.array([x, y, x + bw, y + bh], np.float64) / factor
            found.append(
                {
                    "box": [round(float(v), 2) for v in box],
                    "score": round(float(fill), 4),
                    "class": -1,
                    "label": "motion",
                }
            )
        found.sort(key=lambda o: -o["score"])
        return found
