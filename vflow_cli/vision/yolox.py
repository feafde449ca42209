"""yolox: a YOLOX-format detector (the shipped YOLOX-Nano, or a user's model) on ONNX Runtime.

    frame ──letterbox (aspect kept, pad 114)──> [1,3,H,W] float BGR 0-255 ──ORT──>
    [1, anchors, 5 + classes] ──decode grid (strides 8, 16, 32)──> score filter ──> NMS
    ──> boxes in the frame's pixels

The graph is fully convolutional: it runs at any input size whose sides are multiples of
32, so the input is shaped like the frame (boxes.fit_input) instead of a padded square.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from vflow_cli.console import log
from vflow_cli.errors import StageError
from vflow_cli.vision.boxes import STRIDE, fit_input, nms
from vflow_cli.vision.coco import label, parse_classes
from vflow_cli.vision.runtime import open_session

STRIDES = (8, 16, 32)
PAD = 114  # YOLOX's letterbox grey
EXPECTED = (
    "a YOLOX-format ONNX model: one float input [1, 3, H, W] (BGR, 0-255) and an output "
    "[1, anchors, 5 + classes] of predictions at strides 8, 16, 32"
)


def bundled_model() -> str:
    """The path of the YOLOX-Nano file shipped inside the package."""
    return str(resources.files("vflow_cli") / "models" / "yolox_nano.onnx")


def anchors(width: int, height: int) -> int:
    """How many rows a YOLOX model outputs for a width x height input."""
    return sum((width // s) * (height // s) for s in STRIDES)


class YoloX:
    """Detect objects of some classes in BGR frames; call it with a frame, get objects."""

    def __init__(
        self,
        path: str,
        *,
        classes: str = "person",
        score: float = 0.25,
        nms: float = 0.45,
        size: tuple[int, int] | int | None = None,
        budget: tuple[int, int] = (416 * 416, 416 * 416),
        threads: int = 0,
        device: str = "cpu",
    ) -> None:
        import numpy as np

        self.path = path
        self.session = open_session(path, threads=threads, device=device, expected=EXPECTED)
        self.input_name, self.fixed = self._check_input()
        if self.fixed and size is not None and size != self.fixed:
            w, h = self.fixed
            raise StageError(
                f"{path}: the model's input is fixed at {w}x{h}; use --size auto or {w}x{h}"
            )
        self.size, self.budget = size, budget
        self.score, self.nms_threshold = score, nms
        self._plans: dict[tuple[int, int], tuple[int, int]] = {}
        self._grids: dict[tuple[int, int], tuple[Any, Any]] = {}
        self._buffers: dict[tuple[int, int], tuple[Any, Any]] = {}
        self._filled: dict[tuple[int, int], tuple[int, int]] = {}  # the picture's part of each
        # one run before the first frame: checks the output and pays the first-run cost
        width, height = self.fixed or fit_input((640, 480), size, budget)
        blank = np.full((1, 3, height, width), PAD, np.float32)
        first = self._run(blank)
        self.count = self._check_output(first, width, height)
        # a graph exported with --decode_in_inference gives centres in pixels (half the
        # input's width, in the middle row), raw ones give offsets within a cell (about 0.5)
        self.decoded = bool(np.median(first[0, :, 0]) > STRIDES[0])
        try:
            self.wanted = np.asarray(parse_classes(classes, self.count), np.int64)
        except ValueError as exc:
            raise StageError(f"--classes: {exc}") from None

    def _check_input(self) -> tuple[str, tuple[int, int] | None]:
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise StageError(
                f"{self.path}: the model has {len(inputs)} inputs; expected {EXPECTED}"
            )
        spec = inputs[0]
        shape = list(spec.shape)
        channels_ok = len(shape) == 4 and (shape[1] == 3 or not isinstance(shape[1], int))
        if spec.type != "tensor(float)" or not channels_ok:
            raise StageError(
                f"{self.path}: input {spec.name!r} is {spec.type} {shape}; expected {EXPECTED}"
            )
        h, w = shape[2], shape[3]
        if isinstance(h, int) and isinstance(w, int):
            if h % STRIDE or w % STRIDE:
                raise StageError(
                    f"{self.path}: input {w}x{h} is not a multiple of 32; expected {EXPECTED}"
                )
            return spec.name, (w, h)
        return spec.name, None

    def _check_output(self, output: Any, width: int, height: int) -> int:
        rows = anchors(width, height)
        if (
            output.ndim != 3
            or output.shape[0] != 1
            or output.shape[1] != rows
            or output.shape[2] < 6
        ):
            raise StageError(
                f"{self.path}: for a {width}x{height} input the output is {list(output.shape)}, "
                f"not [1, {rows}, 5 + classes]; expected {EXPECTED}"
            )
        return int(output.shape[2]) - 5

    def _run(self, blob: Any) -> Any:
        try:
            return self.session.run(None, {self.input_name: blob})[0]
        except Exception as exc:  # a graph that cannot run at this size, or is not YOLOX
            reason = " ".join(str(exc).split())[:160]
            raise StageError(
                f"{self.path}: the model failed to run ({reason}); expected {EXPECTED}"
            ) from None

    def input_size(self, width: int, height: int) -> tuple[int, int]:
        """The (W, H) this detector runs at for a frame of width x height."""
        plan = self._plans.get((width, height))
        if plan is None:
            plan = self.fixed or fit_input((width, height), self.size, self.budget)
            self._plans[(width, height)] = plan
            log.info("%dx%d frames: the network runs at %dx%d", width, height, *plan)
        return plan

    def _grid(self, width: int, height: int) -> tuple[Any, Any]:
        """(cell offsets, strides) for every output row of a width x height input."""
        found = self._grids.get((width, height))
        if found is None:
            import numpy as np

            cells, strides = [], []
            for s in STRIDES:
                xs, ys = np.meshgrid(np.arange(width // s), np.arange(height // s))
                cells.append(np.stack((xs, ys), 2).reshape(-1, 2))
                strides.append(np.full((cells[-1].shape[0], 1), s))
            found = (
                np.concatenate(cells).astype(np.float32),
                np.concatenate(strides).astype(np.float32),
            )
            self._grids[(width, height)] = found
        return found

    def _blob(self, image: Any, width: int, height: int) -> tuple[Any, float]:
        import cv2
        import numpy as np

        h, w = image.shape[:2]
        scale = min(width / w, height / h)
        sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
        found = self._buffers.get((width, height))
        if found is None:  # the padded picture and the float tensor, reused frame after frame
            found = (
                np.full((height, width, 3), PAD, np.uint8),
                np.empty((1, 3, height, width), np.float32),
            )
            self._buffers[(width, height)] = found
        canvas, blob = found
        if self._filled.get((width, height), (sw, sh)) != (sw, sh):
            canvas[:] = PAD  # the frame's size changed: no stale pixels in the padding
        self._filled[(width, height)] = (sw, sh)
        canvas[:sh, :sw] = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_LINEAR)
        np.copyto(blob[0], canvas.transpose(2, 0, 1))
        return blob, scale

    def __call__(self, image: Any) -> list[dict[str, Any]]:
        """Objects in a BGR uint8 frame: {"box", "score", "class", "label"}, best first."""
        import numpy as np

        h, w = image.shape[:2]
        width, height = self.input_size(w, h)
        blob, scale = self._blob(image, width, height)
        out = self._run(blob)[0]
        # class scores are at most 1: only rows whose objectness passes can score enough
        rows = np.flatnonzero(out[:, 4] >= self.score)
        scores = out[rows, 4:5] * out[rows[:, None], 5 + self.wanted]
        best = scores.argmax(1)
        score = scores[np.arange(len(rows)), best]
        passed = score >= self.score
        rows, best, score = rows[passed], best[passed], score[passed]
        if not len(rows):
            return []
        if self.decoded:
            centre, half = out[rows, :2], out[rows, 2:4] / 2
        else:
            cells, strides = self._grid(width, height)
            centre = (out[rows, :2] + cells[rows]) * strides[rows]
            half = np.exp(np.minimum(out[rows, 2:4], 10.0)) * strides[rows] / 2
        boxes = np.concatenate((centre - half, centre + half), 1) / scale
        np.clip(boxes, 0, [w, h, w, h], out=boxes)
        classes = self.wanted[best]
        keep = nms(boxes, score, self.nms_threshold, classes if len(self.wanted) > 1 else None)
        return [
            {
                "box": [round(float(v), 2) for v in boxes[i]],
                "score": round(float(score[i]), 4),
                "class": int(classes[i]),
                "label": label(int(classes[i]), self.count),
            }
            for i in keep
            if boxes[i, 2] > boxes[i, 0] and boxes[i, 3] > boxes[i, 1]
        ]
