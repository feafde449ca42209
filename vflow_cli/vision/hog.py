"""hog: OpenCV's HOG people detector (Dalal and Triggs), upscaled for small people.

Its window is 64x128 pixels with the person about 0.55 of its width and 0.75 of its height
(the INRIA training geometry, and what we measured against hand-labelled boxes), so a person
under about 100 pixels tall is missed unless the frame is enlarged first, and each raw box
is shrunk around its centre to the person inside it.
"""

from __future__ import annotations

from typing import Any

from vflow_cli.vision.boxes import nms

SHRINK = (0.55, 0.75)  # person / window, in width and height


def auto_upscale(height: int) -> float:
    """Enlarge frames under 1080 lines towards 1080 (at most 2x): people 70-90 pixels tall
    in 576-line footage then fill the 128-pixel window."""
    return min(2.0, max(1.0, 1080 / height))


class Hog:
    """People in BGR or grey frames; score = w / (1 + w) for the SVM margin w > 0."""

    def __init__(
        self, *, score: float = 0.5, nms: float = 0.45, upscale: float | None = None
    ) -> None:
        import cv2
        import numpy as np

        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(np.asarray(cv2.HOGDescriptor.getDefaultPeopleDetector()))
        self.score, self.nms_threshold, self.upscale = score, nms, upscale

    def __call__(self, image: Any) -> list[dict[str, Any]]:
        import cv2
        import numpy as np

        h, w = image.shape[:2]
        factor = self.upscale or auto_upscale(h)
        big = image if factor == 1 else cv2.resize(image, (round(w * factor), round(h * factor)))
        rects, weights = self.hog.detectMultiScale(
            big, winStride=(8, 8), padding=(8, 8), scale=1.05
        )
        if not len(rects):
            return []
        margin = np.ravel(weights).astype(np.float64)
        score = margin / (1 + np.maximum(margin, 0))
        windows = np.asarray(rects, np.float64) / factor  # x, y, w, h
        centre = windows[:, :2] + windows[:, 2:] / 2
        half = windows[:, 2:] * np.asarray(SHRINK) / 2
        boxes = np.concatenate((centre - half, centre + half), 1)
        np.clip(boxes, 0, [w, h, w, h], out=boxes)
        wanted = np.flatnonzero(score >= self.score)
        keep = wanted[nms(boxes[wanted], score[wanted], self.nms_threshold)]
        return [
            {
                "box": [round(float(v), 2) for v in boxes[i]],
                "score": round(float(score[i]), 4),
                "class": 0,
                "label": "person",
            }
            for i in keep
        ]
