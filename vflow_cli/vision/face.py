"""face: the RFB-320 face detector (shipped in vflow_cli/models) on ONNX Runtime.

    picture (any size, BGR/grey/BGRA) ──resize 320x240, RGB, (v - 127) / 128──> model
        ──> 4420 candidate boxes (fractions of the picture) with face scores
        ──> score threshold ──> non-maximum suppression ──> objects in picture pixels

The model sees the whole picture at 320x240 (stretched, as upstream does): faces smaller
than about 1/25 of the picture's height are missed; crop or tile a wide picture to find them.
About 3 ms a picture on one CPU core.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from vflow_cli.errors import StageError

MODEL = Path(__file__).resolve().parent.parent / "models" / "version-RFB-320.onnx"
INPUT_SIZE = (320, 240)  # width, height
SCORE = 0.7  # upstream's threshold
NMS = 0.3  # upstream's IoU for non-maximum suppression


class FaceDetector:
    """One loaded model; call it on pictures. `threads`: ONNX Runtime's intra-op threads
    (None: its default, one per core)."""

    def __init__(
        self, path: str | Path = MODEL, threads: int | None = None, device: str = "cpu"
    ) -> None:
        from vflow_cli.vision.runtime import open_session

        path = Path(path)
        self.session = open_session(
            str(path),
            threads=threads or 0,
            device=device,
            expected="the RFB-320 face model (reinstall vflow)",
        )
        inputs = {i.name: i.shape for i in self.session.get_inputs()}
        outputs = {o.name for o in self.session.get_outputs()}
        if inputs.get("input") != [1, 3, 240, 320] or not {"scores", "boxes"} <= outputs:
            raise StageError(
                f"face model {path}: expected input 'input' [1, 3, 240, 320] and outputs "
                f"'scores' and 'boxes' (RFB-320), found {inputs} and {sorted(outputs)}"
            )

    def __call__(self, image: Any, score: float = SCORE, nms: float = NMS) -> list[dict[str, Any]]:
        """Faces in `image` (grey, BGR or BGRA; 8-bit, 16-bit or float), best first, as
        objects {"box": [x1, y1, x2, y2] in the picture's pixels, "score", "class": 0,
        "label": "face"}."""
        import cv2
        import numpy as np

        from vflow_cli.colors import bgr8

        height, width = image.shape[:2]
        rgb = cv2.cvtColor(bgr8(image), cv2.COLOR_BGR2RGB)
        small = cv2.resize(rgb, INPUT_SIZE, interpolation=cv2.INTER_LINEAR)
        blob = ((small.astype(np.float32) - 127.0) / 128.0).transpose(2, 0, 1)[None]
        scores, boxes = self.session.run(["scores", "boxes"], {"input": blob})
        faces = scores[0, :, 1]
        keep = np.flatnonzero(faces > score)
        if keep.size == 0:
            return []
        found = boxes[0, keep] * np.array([width, height, width, height], np.float32)
        found[:, [0, 2]] = found[:, [0, 2]].clip(0, width)
        found[:, [1, 3]] = found[:, [1, 3]].clip(0, height)
        rects = [[float(x1), float(y1), float(x2 - x1), float(y2 - y1)] for x1, y1, x2, y2 in found]
        chosen = cv2.dnn.NMSBoxes(rects, faces[keep].tolist(), score, nms)
        result = []
        for i in sorted(np.asarray(chosen).reshape(-1), key=lambda i: -faces[keep[i]]):
            x1, y1, x2, y2 = (round(float(v), 1) for v in found[i])
            result.append(
                {
                    "box": [x1, y1, x2, y2],
                    "score": round(float(faces[keep[i]]), 4),
                    "class": 0,
                    "label": "face",
                }
            )
        return result


@functools.cache
def default_detector() -> FaceDetector:
    """The shipped model, loaded once per process."""
    return FaceDetector()


def detect_faces(image: Any, score: float = SCORE, nms: float = NMS) -> list[dict[str, Any]]:
    """Faces in `image` with the shipped RFB-320 model (see FaceDetector.__call__)."""
    return default_detector()(image, score, nms)
