"""Person detection precision and recall at IoU 0.5 on hand-labelled frames of vtest.avi.

    python -m tests.quality.detection                  # the default detector, and peers
    python -m tests.quality.detection --size 640x480 --score 0.3

vtest_people.json holds, for some frame numbers, a box [x1, y1, x2, y2] around every visible
person; a fifth item "ignore" marks a person too hidden (or too far out of the frame) to
demand: finding one is neither a hit nor a false alarm, missing one is not a miss.
Detections are matched best score first to the unmatched person they overlap most
(the PASCAL VOC rule).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABELS = Path(__file__).with_name("vtest_people.json")
IOU = 0.5


def labels() -> dict[int, list[list[Any]]]:
    return {int(k): v for k, v in json.loads(LABELS.read_text()).items()}


def labelled_frames(video: Path) -> dict[int, Any]:
    """The labelled frames of the clip, read in order (its key frames are far apart)."""
    import cv2

    wanted = set(labels())
    frames: dict[int, Any] = {}
    capture = cv2.VideoCapture(str(video))
    index = 0
    while len(frames) < len(wanted):
        ok, image = capture.read()
        if not ok:
            break
        if index in wanted:
            frames[index] = image
        index += 1
    capture.release()
    return frames


@dataclass
class Score:
    hits: int = 0
    misses: int = 0
    false: int = 0

    @property
    def precision(self) -> float:
        return self.hits / max(1, self.hits + self.false)

    @property
    def recall(self) -> float:
        return self.hits / max(1, self.hits + self.misses)

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def match(found: Iterable[tuple[list[float], float]], truth: list[list[Any]], score: Score) -> None:
    """Add one frame's hits, misses and false alarms to `score`."""
    from vflow_cli.vision.boxes import iou

    people = [t[:4] for t in truth if len(t) == 4]
    hidden = [t[:4] for t in truth if len(t) > 4]
    taken = [False] * len(people)
    for box, _ in sorted(found, key=lambda f: -f[1]):
        overlaps = iou([box], people)[0] if people else []
        best, best_iou = -1, IOU
        for i, value in enumerate(overlaps):
            if not taken[i] and value >= best_iou:
                best, best_iou = i, value
        if best >= 0:
            taken[best] = True
            score.hits += 1
        elif not (hidden and iou([box], hidden).max() >= IOU):
            score.false += 1
    score.misses += taken.count(False)


def evaluate(
    detect: Callable[[Any], list[dict[str, Any]]], frames: dict[int, Any], threshold: float = 0.0
) -> Score:
    truth = labels()
    score = Score()
    for index, image in frames.items():
        found = [(o["box"], o["score"]) for o in detect(image) if o["score"] >= threshold]
        match(found, truth[index], score)
    return score


def evaluate_stream(detect: Callable[[Any], list[dict[str, Any]]], video: Path) -> Score:
    """For a detector that learns from every frame (motion): run it over the whole clip,
    score the labelled frames."""
    import cv2

    truth = labels()
    score = Score()
    capture = cv2.VideoCapture(str(video))
    index = 0
    while index <= max(truth):
        ok, image = capture.read()
        if not ok:
            break
        found = detect(image)
        if index in truth:
            match([(o["box"], o["score"]) for o in found], truth[index], score)
        index += 1
    capture.release()
    return score


def _line(name: str, threshold: float, s: Score) -> str:
    return (
        f"{name:>22} {threshold:5.2f} {s.precision:5.3f} {s.recall:5.3f} {s.f1:5.3f}  "
        f"{s.hits:4d} {s.misses:4d} {s.false:5d}"
    )


def main() -> None:
    from tests.video_support import vtest_avi
    from vflow_cli.vision.boxes import parse_input_size
    from vflow_cli.vision.detectors import Settings, open_detector

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", action="append", help="YOLOX input sizes (auto, N, WxH)")
    parser.add_argument("--score", type=float, action="append", help="score thresholds")
    parser.add_argument("--hog", action="store_true", help="also OpenCV's HOG, enlarged 1.5 and 2x")
    parser.add_argument("--motion", action="store_true", help="also background subtraction")
    args = parser.parse_args()
    video = vtest_avi()
    frames = labelled_frames(video)
    people = sum(1 for v in labels().values() for t in v if len(t) == 4)
    print(f"{len(frames)} frames, {people} people labelled")
    print(f"{'detector':>22} {'score':>5} {'P':>5} {'R':>5} {'F1':>5}  hits miss false")
    for size in args.size or ["416x416", "auto", "640x480"]:
        detector: Any = open_detector(Settings(score=0.01, size=parse_input_size(size)))
        w, h = detector.input_size(768, 576)
        for threshold in args.score or [0.25, 0.3, 0.4, 0.5]:
            print(
                _line(f"yolox {size} ({w}x{h})", threshold, evaluate(detector, frames, threshold))
            )
    if args.hog:
        for upscale in (1.5, 2.0):
            detector = open_detector(Settings(model="hog", score=0.0, upscale=upscale))
            for threshold in args.score or [0.3, 0.5, 0.6, 0.7]:
                print(_line(f"hog x{upscale}", threshold, evaluate(detector, frames, threshold)))
    if args.motion:
        detector = open_detector(Settings(model="motion"))
        print(_line("motion", 0.0, evaluate_stream(detector, video)))


if __name__ == "__main__":
    main()
