"""Tracker quality: MOTA and IDF1 on MOTChallenge ground truth fed as noisy detections.

    python -m tests.quality.tracking                # every sequence, noise and frame step
    python -m tests.quality.tracking --seeds 10 --step 1 --step 3

motmetrics ships the ground truth of two MOTChallenge 2015 sequences (TUD-Campus and
TUD-Stadtmitte: 640x480, 25 frames a second, people walking past each other). From each
ground-truth box we make the detection a detector of our kind would give:

- a person hidden behind people nearer the camera (whose box reaches lower) is found less
  often and with a lower score: the weak detections ByteTrack's second matching is for;
- boxes jitter by a few percent of their size; some detections are missed one frame,
  some for a run of frames (blur, a pose the network does not know);
- false alarms of person size turn up at random, mostly weak, a few confident;
- one static false alarm (a signpost) scores about 0.55 on nine frames in ten.

The detections go through vflow_cli.vision.tracker exactly as `vflow track` runs it, the
tracks are written in MOTChallenge format, and motmetrics scores them against the ground
truth (IoU >= 0.5). Everything is seeded: the same code gives the same numbers.
"""

from __future__ import annotations

import argparse
import io
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")
FPS = 25.0
SIZE = (640, 480)


def ground_truth(name: str) -> dict[int, list[tuple[int, list[float]]]]:
    """frame -> [(person id, [x1, y1, x2, y2])] from motmetrics' copy of the sequence."""
    import motmetrics

    path = Path(motmetrics.__file__).parent / "data" / name / "gt.txt"
    frames: dict[int, list[tuple[int, list[float]]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        f, pid, x, y, w, h = (float(v) for v in line.split(",")[:6])
        frames[int(f)].append((int(pid), [x, y, x + w, y + h]))
    return dict(sorted(frames.items()))


@dataclass(frozen=True)
class Noise:
    jitter: float = 0.04  # standard deviation of each edge, as a fraction of the box size
    miss: float = 0.05  # chance a visible person is missed in a frame
    runs: float = 0.01  # chance a run of misses (3 to 8 frames) starts for a person
    false: float = 0.4  # weak false alarms a frame (Poisson mean)
    confident_false: float = 0.03  # confident false alarms a frame
    signpost: bool = True  # a static false alarm scoring about 0.55
    occlusion: bool = True  # people hidden behind others are found less often, scoring less


CLEAN = Noise(0.0, 0.0, 0.0, 0.0, 0.0, signpost=False, occlusion=False)


def _hidden(box: list[float], others: list[list[float]]) -> float:
    """The share of `box` covered by boxes nearer the camera (lower bottom edge)."""
    import numpy as np

    x1, y1, x2, y2 = box
    area = max(1e-6, (x2 - x1) * (y2 - y1))
    mask = np.zeros((max(1, int(y2 - y1)), max(1, int(x2 - x1))), bool)
    for o in others:
        if o[3] <= y2:
            continue
        a, b = int(max(o[0], x1) - x1), int(max(o[1], y1) - y1)
        c, d = int(min(o[2], x2) - x1), int(min(o[3], y2) - y1)
        if c > a and d > b:
            mask[b:d, a:c] = True
    return float(mask.sum()) / area


def noisy_detections(
    truth: dict[int, list[tuple[int, list[float]]]], noise: Noise, seed: int
) -> dict[int, list[dict[str, Any]]]:
    """frame -> detections (vflow objects) made from the ground truth with `noise`."""
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = [b for boxes in truth.values() for _, b in boxes]
    missing_until: dict[int, int] = {}
    w, h = SIZE
    post_w, post_h = 40.0, 110.0
    px, py = rng.uniform(0, w - post_w), rng.uniform(0, h - post_h)
    post = [px, py, px + post_w, py + post_h]
    out: dict[int, list[dict[str, Any]]] = {}
    for frame, people in truth.items():
        found = []
        boxes = [b for _, b in people]
        for pid, box in people:
            hidden = _hidden(box, [b for b in boxes if b is not box]) if noise.occlusion else 0.0
            if missing_until.get(pid, -1) >= frame:
                continue
            if rng.random() < noise.runs:
                missing_until[pid] = frame + int(rng.integers(3, 9))
                continue
            visible = 1.0 - hidden
            chance = (1 - noise.miss) * float(np.clip((visible - 0.15) / 0.55, 0, 1))
            if rng.random() >= chance:
                continue
            score = rng.uniform(0.6, 0.92) * (0.35 + 0.65 * min(1.0, visible / 0.8))
            bw, bh = box[2] - box[0], box[3] - box[1]
            edges = rng.normal(0, noise.jitter, 4) * [bw, bh, bw, bh]
            found.append(_object([a + e for a, e in zip(box, edges, strict=True)], score))
        for _ in range(rng.poisson(noise.false)):
            found.append(_object(_somewhere(rng, sizes), rng.uniform(0.25, 0.5)))
        if rng.random() < noise.confident_false:
            found.append(_object(_somewhere(rng, sizes), rng.uniform(0.6, 0.75)))
        if noise.signpost and rng.random() < 0.9:
            edges = rng.normal(0, 0.01, 4) * [post_w, post_h, post_w, post_h]
            found.append(
                _object([a + e for a, e in zip(post, edges, strict=True)], rng.normal(0.55, 0.04))
            )
        out[frame] = found
    return out


def _somewhere(rng: Any, sizes: list[list[float]]) -> list[float]:
    x1, y1, x2, y2 = sizes[int(rng.integers(len(sizes)))]
    bw, bh = x2 - x1, y2 - y1
    x, y = rng.uniform(0, SIZE[0] - bw), rng.uniform(0, SIZE[1] - bh)
    return [x, y, x + bw, y + bh]


def _object(box: list[float], score: float) -> dict[str, Any]:
    return {"box": box, "score": float(min(max(score, 0.0), 1.0)), "class": 0, "label": "person"}


def track(
    detections: dict[int, list[dict[str, Any]]], step: int, settings: Any = None
) -> dict[int, list[dict[str, Any]]]:
    """Run the tracker over every `step`-th frame, at the sequence's media times."""
    from vflow_cli.vision.tracker import Settings, Tracker

    tracker = Tracker(settings or Settings())
    frames = sorted(detections)[::step]
    return {f: tracker.update(detections[f], (f - 1) / FPS, SIZE) for f in frames}


def write_mot(tracks: dict[int, list[dict[str, Any]]], out: io.TextIOBase) -> None:
    """MOTChallenge text: frame, id, x, y, w, h, score, -1, -1, -1 (frames from 1)."""
    for frame, objects in sorted(tracks.items()):
        for o in objects:
            x1, y1, x2, y2 = o["box"]
            box = f"{x1:.2f},{y1:.2f},{x2 - x1:.2f},{y2 - y1:.2f}"
            out.write(f"{frame},{o['id']},{box},{o['score']:.3f},-1,-1,-1\n")


@dataclass
class Result:
    mota: float
    idf1: float
    switches: int
    false: int
    misses: int
    ids: int


def score(name: str, tracks: dict[int, list[dict[str, Any]]]) -> Result:
    """motmetrics' MOTA and IDF1 of `tracks` on the frames they cover (IoU >= 0.5)."""
    import motmetrics
    import numpy as np

    from vflow_cli.vision.boxes import iou

    truth = ground_truth(name)
    text = io.StringIO()
    write_mot(tracks, text)  # and read back: what is scored is what the file says
    found: dict[int, list[tuple[int, list[float]]]] = defaultdict(list)
    for line in text.getvalue().splitlines():
        f, pid, x, y, w, h = (float(v) for v in line.split(",")[:6])
        found[int(f)].append((int(pid), [x, y, x + w, y + h]))
    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    for frame in sorted(tracks):
        people, guesses = truth.get(frame, []), found.get(frame, [])
        # distance 1 - IoU, no pair under IoU 0.5 (motmetrics' own iou_matrix needs numpy < 2)
        overlap = iou([b for _, b in people], [b for _, b in guesses])
        distance = np.where(overlap >= 0.5, 1 - overlap, np.nan)
        accumulator.update([p for p, _ in people], [g for g, _ in guesses], distance)
    names = ["mota", "idf1", "num_switches", "num_false_positives", "num_misses"]
    row = motmetrics.metrics.create().compute(accumulator, metrics=names).iloc[0]
    ids = len({o["id"] for objects in tracks.values() for o in objects})
    return Result(
        float(row["mota"]),
        float(row["idf1"]),
        int(row["num_switches"]),
        int(row["num_false_positives"]),
        int(row["num_misses"]),
        ids,
    )


def evaluate(noise: Noise, step: int, seeds: range, settings: Any = None) -> dict[str, Result]:
    """Per sequence, the results summed over seeds (MOTA and IDF1 averaged)."""
    out = {}
    for name in SEQUENCES:
        truth = ground_truth(name)
        runs = [
            score(name, track(noisy_detections(truth, noise, seed), step, settings))
            for seed in seeds
        ]
        n = len(runs)
        out[name] = Result(
            sum(r.mota for r in runs) / n,
            sum(r.idf1 for r in runs) / n,
            sum(r.switches for r in runs),
            sum(r.false for r in runs),
            sum(r.misses for r in runs),
            round(sum(r.ids for r in runs) / n),
        )
    return out


def variants() -> dict[str, Any]:
    """The tracker as shipped, and with one of its parts taken away, for comparison."""
    from vflow_cli.vision.tracker import Settings

    shipped = Settings()
    return {
        "vflow track (defaults)": shipped,
        "  no static rule (--static 0)": replace(shipped, static=0.0),
        "  no weak matching (--high 0.25)": replace(shipped, high=0.25),
        "  buffer 30 frames (ByteTrack's)": replace(shipped, buffer=30, buffer_frames=True),
        "  buffer 0.5 s": replace(shipped, buffer=0.5),
        "  buffer 1 s": replace(shipped, buffer=1.0),
        "  buffer 3 s": replace(shipped, buffer=3.0),
        "  no coasting (--coast 0)": replace(shipped, coast=0.0),
        "  coast 0.5 s": replace(shipped, coast=0.5),
        "  no whole boxes for the half hidden": replace(shipped, fill=False),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="noise draws per sequence")
    parser.add_argument("--step", type=int, action="append", help="keep every Nth frame (25/N fps)")
    args = parser.parse_args()
    seeds = range(args.seeds)
    head = ("MOTA", "IDF1", "IDsw", "FP", "FN", "ids")
    print(
        f"{'tracker':36} {'noise':6} {'fps':>5} {'sequence':15} "
        + " ".join(f"{h:>6}" for h in head)
    )
    for step in args.step or [1, 3]:
        for noise_name, noise in (("clean", CLEAN), ("noisy", Noise())):
            for label, settings in variants().items():
                if noise_name == "clean" and label.startswith(" "):
                    continue
                for name, r in evaluate(noise, step, seeds, settings).items():
                    numbers = f"{r.mota:6.3f} {r.idf1:6.3f} {r.switches:6d} {r.false:6d} "
                    numbers += f"{r.misses:6d} {r.ids:6d}"
                    print(f"{label:36} {noise_name:6} {FPS / step:5.1f} {name:15} {numbers}")


if __name__ == "__main__":
    main()
