"""Line counting quality: crossings counted through the tracker against the crossings of the
ground-truth tracks, on MOTChallenge's TUD sequences (as tests.quality.tracking makes them).

    python -m tests.quality.counting                 # born = 0 (off) and a few distances
    python -m tests.quality.counting --born 0 --born 24 --seeds 10

Two vertical lines cut each 640x480 sequence in thirds (people walk across them). The truth
is what vflow's LineCounter counts on the ground truth's own tracks (ids never switch
there); the pipeline is noisy detections -> vflow_cli.vision.tracker -> LineCounter, per
seed. Reported per line and direction: the truth, the mean count, and the mean absolute
error per run, summed over lines and directions.
"""

from __future__ import annotations

import argparse
from typing import Any

from tests.quality.tracking import SEQUENCES, Noise, ground_truth, noisy_detections, track

LINES = {"left": (213.0, 0.0, 213.0, 480.0), "right": (427.0, 0.0, 427.0, 480.0)}
FPS = 25.0


def feet_of(objects: list[tuple[int, list[float]]]) -> list[tuple[int, tuple[float, float]]]:
    return [(ident, ((b[0] + b[2]) / 2, b[3])) for ident, b in objects]


def count(frames: dict[int, list[tuple[int, list[float]]]], points: Any, born: float) -> dict:
    from vflow_cli.vision.geometry import Segment
    from vflow_cli.vision.lines import LineCounter

    counter = LineCounter(Segment(*points), born=born)
    for frame, objects in sorted(frames.items()):
        counter.update(feet_of(objects), (frame - 1) / FPS)
    return dict(counter.counts)


def evaluate(born: float, seeds: range) -> dict[str, Any]:
    """Per sequence and line: truth, mean count and mean |error| per direction."""
    out: dict[str, Any] = {}
    for name in SEQUENCES:
        truth_frames = ground_truth(name)
        runs = []
        for seed in seeds:
            tracks = track(noisy_detections(truth_frames, Noise(), seed), 1)
            runs.append({f: [(o["id"], o["box"]) for o in objs] for f, objs in tracks.items()})
        for line, points in LINES.items():
            truth = count(truth_frames, points, 0.0)
            counted = [count(frames, points, born) for frames in runs]
            for direction in ("in", "out"):
                values = [c[direction] for c in counted]
                out[f"{name} {line} {direction}"] = (
                    truth[direction],
                    sum(values) / len(values),
                    sum(abs(v - truth[direction]) for v in values) / len(values),
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--born", type=float, action="append", help="LineCounter born, px")
    parser.add_argument("--seeds", type=int, default=5, help="noise draws per sequence")
    args = parser.parse_args()
    borns = args.born or [0.0, 12.0, 24.0, 36.0, 48.0]
    results = {born: evaluate(born, range(args.seeds)) for born in borns}
    keys = list(next(iter(results.values())))
    heads = " ".join(f"born {b:g}".rjust(14) for b in borns)
    print(f"{'line, direction':34} {'truth':>5} {heads}")
    for key in keys:
        truth = results[borns[0]][key][0]
        cells = " ".join(
            f"{results[b][key][1]:6.1f} ±{results[b][key][2]:4.1f}".rjust(14) for b in borns
        )
        print(f"{key:34} {truth:5d} {cells}")
    totals = " ".join(f"{sum(v[2] for v in results[b].values()):14.1f}" for b in borns)
    print(f"{'sum of mean |error| per run':34} {'':5} {totals}")


if __name__ == "__main__":
    main()
