"""The detect | track pipeline in one Python process, without pipes: for quality checks of
the whole chain on real footage, and as the peer the pipe is measured against in
tests/bench/detect.py.

    python -m tests.quality.pipeline                # tracked people on vtest.avi
    python -m tests.quality.pipeline --size auto --size 640x480 --set coast=0.3

For each detector size: precision and recall of the tracked boxes at the hand-labelled
frames (tests/quality/vtest_people.json), their false alarms and misses, what MOTA would be
on those frames without id switches (1 - (misses + false) / people: no identities are
labelled), how well the boxes fit (mean IoU of the matched ones), how many ids the clip
got, and the frames a second of the whole chain in this one process.

Frames are decoded with OpenCV, detected with the same detector and tracked with the same
tracker `vflow detect` and `vflow track` use, at the media times `vflow read` gives.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def frames(video: Path) -> Iterator[tuple[int, float, Any]]:
    """(frame number, media time, BGR image) for every frame of a video file."""
    import cv2

    capture = cv2.VideoCapture(str(video))
    fps = capture.get(cv2.CAP_PROP_FPS) or 30.0
    index = 0
    try:
        while True:
            ok, image = capture.read()
            if not ok:
                return
            yield index, index / fps, image
            index += 1
    finally:
        capture.release()


def run(video: Path, detector: Any, tracker: Any) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """(frame number, tracked objects) for every frame, decode + detect + track."""
    for index, t, image in frames(video):
        size = (image.shape[1], image.shape[0])
        yield index, tracker.update(detector(image), t, size, image)


def evaluate(size: str, score: float | None, settings: Any) -> str:
    """One line of figures for detect --size SIZE | track on vtest.avi's labelled frames."""
    import time

    import numpy as np

    from tests.quality.detection import Score, labels, match
    from tests.video_support import vtest_avi
    from vflow_cli.vision.boxes import iou, parse_input_size
    from vflow_cli.vision.detectors import Settings as DetectorSettings
    from vflow_cli.vision.detectors import open_detector
    from vflow_cli.vision.tracker import Tracker

    detector = open_detector(DetectorSettings(size=parse_input_size(size), score=score))
    truth = labels()
    result = Score()
    ids: set[int] = set()
    overlaps: list[float] = []
    frames = 0
    start = time.perf_counter()
    for index, objects in run(vtest_avi(), detector, Tracker(settings)):
        frames += 1
        ids.update(o["id"] for o in objects)
        if index not in truth:
            continue
        boxes = [(o["box"], o["score"]) for o in objects]
        match(boxes, truth[index], result)
        people = [t[:4] for t in truth[index] if len(t) == 4]
        if people and boxes:
            best = iou([b for b, _ in boxes], people).max(0)
            overlaps += [float(v) for v in best if v >= 0.5]
    fps = frames / (time.perf_counter() - start)
    people = result.hits + result.misses
    errors = result.false + result.misses
    w, h = detector.input_size(768, 576)  # type: ignore[attr-defined]
    return (
        f"{size:>8} ({w}x{h}) P {result.precision:.3f} R {result.recall:.3f} "
        f"false {result.false:3d} missed {result.misses:3d} of {people}  "
        f"MOTA-at-labels {1 - errors / max(1, people):.3f}  mean IoU "
        f"{np.mean(overlaps) if overlaps else 0:.3f}  {len(ids)} ids  {fps:.1f} fps"
    )


def main() -> None:
    from dataclasses import replace

    from vflow_cli.vision.tracker import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", action="append", help="detect --size (auto, N, WxH)")
    parser.add_argument("--score", type=float, default=None, help="detect --score")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a tracker setting (high, new, buffer, static, coast)",
    )
    args = parser.parse_args()
    settings = Settings()
    for item in args.set:
        name, _, text = item.partition("=")
        kind = type(getattr(settings, name))
        value = text.lower() in ("1", "true", "yes") if kind is bool else kind(text)
        settings = replace(settings, **{name: value})
    print(f"detect --score {args.score} | track {settings}")
    print("tracked people at vtest.avi's hand-labelled frames (IoU >= 0.5):")
    for size in args.size or ["auto", "544x416"]:
        print(evaluate(size, args.score, settings), flush=True)


if __name__ == "__main__":
    main()
