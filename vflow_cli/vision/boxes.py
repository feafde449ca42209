"""boxes: what detectors and the tracker share about boxes: IoU, NMS, a detector's input size.

Boxes are numpy arrays of rows (x1, y1, x2, y2) in pixels, x2 > x1 and y2 > y1.
"""

from __future__ import annotations

import math
from typing import Any

STRIDE = 32  # YOLOX's coarsest stride: input sides are multiples of it


def iou(a: Any, b: Any) -> Any:
    """The len(a) x len(b) matrix of intersection over union."""
    import numpy as np

    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if not len(a) or not len(b):
        return np.zeros((len(a), len(b)))
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def nms(boxes: Any, scores: Any, threshold: float, classes: Any = None) -> Any:
    """Indices of the boxes greedy non-maximum suppression keeps, best score first.

    A box is dropped when it overlaps a better-scoring kept box by IoU > threshold; with
    `classes`, only boxes of the same class suppress each other."""
    import numpy as np

    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    if classes is not None and len(boxes):  # shift each class far apart: no overlap across
        offset = np.asarray(classes, np.float64)[:, None] * (boxes.max() + 1.0)
        boxes = boxes + offset
    keep: list[int] = []
    while len(order):
        best = order[0]
        keep.append(int(best))
        if len(order) == 1:
            break
        rest = order[1:]
        order = rest[iou(boxes[best], boxes[rest])[0] <= threshold]
    return np.asarray(keep, dtype=np.int64)


def parse_input_size(text: str) -> tuple[int, int] | int | None:
    """--size: 'auto' -> None; 'N' -> N (the long side); 'WxH' -> (W, H). ValueError if bad."""
    text = text.strip().lower()
    if text == "auto":
        return None
    width, sep, height = text.partition("x")
    try:
        numbers = [int(width)] + ([int(height)] if sep else [])
    except ValueError:
        numbers = [0]
    if min(numbers) < STRIDE or any(n % STRIDE for n in numbers):
        raise ValueError(
            f"{text!r} is not auto, N or WxH in multiples of {STRIDE} (e.g. 640, 544x416)"
        )
    return (numbers[0], numbers[1]) if sep else numbers[0]


def fit_input(
    frame: tuple[int, int], size: tuple[int, int] | int | None, budget: tuple[int, int]
) -> tuple[int, int]:
    """The (width, height) a detector runs at for a frame of (width, height).

    None: the frame's own size when it has between budget[0] and budget[1] pixels, else
    enlarged to the first or reduced to the second, shaped like the frame (a 4:3 frame is
    not letterboxed into a square, which would spend a quarter of the work on padding); N:
    the long side N, the other in proportion; (W, H): exactly that. Sides are multiples of
    STRIDE."""
    if isinstance(size, tuple):
        return size
    w, h = frame
    least, most = budget
    if size is None:
        pixels = min(max(w * h, least), most)
        scale = math.sqrt(pixels / (w * h))
    else:
        scale = size / max(w, h)
    return _side(w * scale), _side(h * scale)


def _side(length: float) -> int:
    return max(STRIDE, round(length / STRIDE) * STRIDE)
