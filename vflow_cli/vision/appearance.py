"""appearance: what a person looks like, cheaply: colour histograms of the upper and lower body.

Boxes alone cannot tell apart two people whose boxes overlap as they pass each other, or who
is who when someone comes out from behind a sign; a red jacket and a black coat can. Each box's
middle (its outer fifth left and right is mostly background) is shrunk to 16x32 pixels and
split into an upper and a lower half; each half gets a histogram of 8 hues x 2 saturations x
4 brightnesses for coloured pixels, and 4 brightness bins for grey ones (whose hue means
nothing). Two appearances differ by the Bhattacharyya distance of their histograms, averaged
over the halves: 0 the same, 1 nothing in common.
"""

from __future__ import annotations

from typing import Any

BINS = 8 * 2 * 4 + 4  # coloured bins, then grey ones
SIZE = (16, 32)  # width, height the box is shrunk to
GREY = 50  # saturation under which a pixel is grey


def describe(image: Any, boxes: Any) -> Any:
    """An (N, 2 * BINS) array: for each box of a BGR frame, the square roots of its two
    normalised histograms (so that a dot product is the Bhattacharyya coefficient)."""
    import cv2
    import numpy as np

    h, w = image.shape[:2]
    out = np.zeros((len(boxes), 2 * BINS))
    for n, (x1, y1, x2, y2) in enumerate(boxes):
        margin = (x2 - x1) * 0.2
        a, b = int(max(0, x1 + margin)), int(max(0, y1))
        c, d = int(min(w, x2 - margin)), int(min(h, y2))
        if c - a < 2 or d - b < 4:
            continue
        patch = cv2.resize(image[b:d, a:c], SIZE, interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(patch, cv2.COLOR_BGR2HSV).reshape(-1, 3).astype(np.int64)
        hue, sat, val = hsv[:, 0], hsv[:, 1], hsv[:, 2]
        coloured = hue * 8 // 180 * 8 + (sat >= 128) * 4 + val // 64
        bins = np.where(sat < GREY, 64 + val // 64, coloured)
        half = len(bins) // 2
        for part, chosen in enumerate((bins[:half], bins[half:])):
            counts = np.bincount(chosen, minlength=BINS)
            out[n, part * BINS : (part + 1) * BINS] = np.sqrt(counts / counts.sum())
    return out


def distance(a: Any, b: Any) -> Any:
    """The len(a) x len(b) matrix of distances (0 to 1) between appearances; rows of zeros
    (no appearance known) are at distance 0 from everything."""
    import numpy as np

    a, b = np.atleast_2d(a), np.atleast_2d(b)
    upper = a[:, None, :BINS] * b[None, :, :BINS]
    lower = a[:, None, BINS:] * b[None, :, BINS:]
    coefficient = (upper.sum(-1) + lower.sum(-1)) / 2
    known = (a.any(1)[:, None]) & (b.any(1)[None, :])
    return np.where(known, np.sqrt(np.clip(1 - coefficient, 0, 1)), 0.0)
