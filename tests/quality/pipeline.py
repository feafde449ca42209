"""The detect | track pipeline in one Python process, without pipes: for quality checks of
the whole chain on real footage, and as the peer the pipe is measured against in
tests/bench/detect.py.

    python -m tests.quality.pipeline                # P/R of tracked people on vtest.avi

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


def main() -> None:
    from dataclasses import replace

    from tests.quality.detection import Score, labels, match
    from tests.video_support import vtest_avi
    from vflow_cli.vision.boxes import parse_size
    from vflow_cli.vision.detectors import Settings as DetectorSettings
    from vflow_cli.vision.detectors import open_detector
    from vflow_cli.vision.tracker import Settings, Tracker

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="auto")
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
    detector = open_detector(DetectorSettings(size=parse_size(args.size), score=args.score))
    truth = labels()
    score = Score()
    ids: set[int] = set()
    for index, objects in run(vtest_avi(), detector, Tracker(settings)):
        ids.update(o["id"] for o in objects)
        if index in truth:
            match([(o["box"], o["score"]) for o in objects], truth[index], score)
    print(
        f"size {args.size} score {args.score} {settings}\n"
        f"tracked people at the labelled frames: P {score.precision:.3f} R {score.recall:.3f} "
        f"(hits {score.hits}, misses {score.misses}, false {score.false}); {len(ids)} ids"
    )


if __name__ == "__main__":
    main()
