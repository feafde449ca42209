"""vision.grid: a coordinate grid over a picture (`annotate --grid N`), to read off the
pixel coordinates a `line` or `zone` argument needs.

    0      100     200     300          lines every N pixels, blended half-way to white;
    ┼───────┼───────┼───────┼──         labels at the top and the left edge, every N
 100┼       │       │       │           pixels or, when N is small, every k*N so that
    │       │       │       │           they never overlap
"""

from __future__ import annotations

from typing import Any

MIN_LABEL_GAP = 48  # pixels between labels, at scale 1.0


def draw_grid(image: Any, step: int, font: float = 0.5, thickness: int = 1) -> None:
    """Draw grid lines every `step` pixels and their coordinates on `image` (BGR uint8, in
    place)."""
    import cv2
    import numpy as np

    height, width = image.shape[:2]
    rows, cols = image[::step, :], image[:, ::step]
    # half-way to white: visible on dark and light pictures alike, the picture shows through
    rows[...] = (rows.astype(np.uint16) + 255) // 2
    cols[...] = (cols.astype(np.uint16) + 255) // 2
    every = step * max(1, -(-round(MIN_LABEL_GAP * font / 0.5) // step))
    (_, text_h), _ = cv2.getTextSize("0", cv2.FONT_HERSHEY_SIMPLEX, font, thickness)
    for x in range(every, width, every):
        (text_w, _), _ = cv2.getTextSize(str(x), cv2.FONT_HERSHEY_SIMPLEX, font, thickness)
        if x + 3 + text_w < width:  # a label cut by the edge would misread
            _label(image, str(x), (x + 3, text_h + 3), font, thickness)
    for y in range(every, height, every):
        _label(image, str(y), (3, y - 3), font, thickness)


def _label(image: Any, text: str, origin: tuple[int, int], font: float, thickness: int) -> None:
    import cv2

    face = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, text, origin, face, font, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, face, font, (255, 255, 255), thickness, cv2.LINE_AA)
