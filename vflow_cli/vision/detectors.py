"""detectors: --model NAME or PATH -> a detector: a callable from a BGR frame to objects.

yolox   the YOLOX-Nano file shipped in the package (80 COCO classes)
PATH    a user's YOLOX-format .onnx file
hog     OpenCV's HOG people detector
motion  background subtraction
face    RFB-320 faces (vision.face), as `vflow blur` hides them
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vflow_cli.errors import StageError

Detector = Callable[[Any], list[dict[str, Any]]]
NAMES = ("yolox", "hog", "motion", "face")
DEFAULT_SCORE = {"yolox": 0.25, "hog": 0.5, "motion": 0.0, "face": 0.7}
# pixels of the YOLOX input with --size auto: a frame's own size between these, so that
# people 25-40 pixels wide are seen at their own size (on the PETS 2009 clip at 768x576:
# tracked boxes overlap hand-drawn ones by 0.874 on average, against 0.850 at 544x416, and
# more people are found); smaller frames are enlarged (small people are found better),
# larger ones reduced (YOLOX-Nano at 768x576 leaves a pipe 40 frames a second on 2 cores)
BUDGET = (544 * 416, 768 * 576)


@dataclass
class Settings:
    """What `vflow detect` was asked for; None means "the model's default"."""

    model: str = "yolox"
    classes: str | None = None
    score: float | None = None
    nms: float = 0.45
    size: tuple[int, int] | int | None = None
    threads: int = 0
    device: str = "cpu"
    upscale: float | None = None
    min_area: float | None = None


def kind(model: str) -> str:
    """'yolox', 'hog', 'motion', 'face' or 'file' (a path to a model)."""
    return model if model in NAMES else "file"


def open_detector(settings: Settings) -> Detector:
    """The detector `settings` describe, loaded and ready; StageError for what cannot be."""
    which = kind(settings.model)
    score = settings.score if settings.score is not None else DEFAULT_SCORE.get(which, 0.25)
    _refuse_foreign_options(settings, which)
    if which in ("yolox", "file"):
        from vflow_cli.vision.yolox import YoloX, bundled_model

        path = bundled_model() if which == "yolox" else settings.model
        return YoloX(
            path,
            classes=settings.classes or "person",
            score=score,
            nms=settings.nms,
            size=settings.size,
            budget=BUDGET,
            threads=settings.threads,
            device=settings.device,
        )
    if which == "hog":
        from vflow_cli.vision.hog import Hog

        return Hog(score=score, nms=settings.nms, upscale=settings.upscale)
    if which == "motion":
        from vflow_cli.vision.motion import Motion

        area = settings.min_area if settings.min_area is not None else 0.0005
        return Motion(score=score, min_area=area)
    from vflow_cli.vision.face import FaceDetector

    faces = FaceDetector(threads=settings.threads, device=settings.device)
    return lambda image: faces(image, score, settings.nms)


def _refuse_foreign_options(settings: Settings, which: str) -> None:
    yolo = which in ("yolox", "file")
    given = {
        "--classes": (settings.classes is not None, yolo),
        "--size": (settings.size is not None, yolo),
        "--upscale": (settings.upscale is not None, which == "hog"),
        "--min-area": (settings.min_area is not None, which == "motion"),
    }
    for option, (present, applies) in given.items():
        if present and not applies:
            raise StageError(
                f"{option} does not apply to --model {settings.model}; see vflow detect --help"
            )
