"""matching: which detection is which track's, for tracker.py: costs, gates, assignment.

    Frame (one frame's detections: boxes, scores, classes, looks)
      match():   tracks x detections, 1 - IoU (x score), + appearance; optimal pairs under a limit
      recover(): lost tracks x detections no overlap claimed, by distance and looks

Both pair one to one by the optimal assignment (scipy's linear_sum_assignment) and only
within a class. The tracker decides which tracks and detections take part in each pass and
what a pair means (tracker.py); this module only says who goes with whom.

Appearance (appearance.py: colour histograms of upper and lower body): measured on the
PETS 2009 clip, the same person from frame to frame is 0.1-0.33 apart, two people
0.44-0.95; LOOK_LIMIT lies between.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from vflow_cli.vision.boxes import iou

RADIUS, SPREAD = 0.25, 0.3  # how far (in heights, + per second lost) a lost track is looked for
LOOK_WEIGHT = 0.5  # appearance distance (0 to 1) added to 1 - IoU x score in the first matching
LOOK_LIMIT = 0.4  # a lost track is not given a detection that looks more different than this
LOOK_NEVER = 0.6  # ... nor any track one that looks this different (someone else, surely)


class Candidate(Protocol):
    """What matching reads of a track (tracker.Track)."""

    cls: Any
    look: Any  # appearance.describe's vector, or None
    last: Any  # the last observed box
    seen: float  # media time it was last observed

    @property
    def lost(self) -> bool: ...

    def box(self) -> Any: ...


K = TypeVar("K", bound=Candidate)


@dataclass
class Frame:
    """One frame's detections, as the matching steps use them."""

    detections: list[dict[str, Any]]
    boxes: Any  # N x 4
    scores: Any  # N
    classes: list[Any]
    looks: Any  # N x appearance.describe's width, or None without pixels
    clear: Any  # N booleans: overlapped by no other detection (its looks are its own)
    t: float


def frame_of(detections: list[dict[str, Any]], t: float, image: Any, appearance: bool) -> Frame:
    """The Frame of usable detections at media time t (`image`, BGR, for their looks)."""
    import numpy as np

    boxes = np.array([o["box"][:4] for o in detections], np.float64).reshape(-1, 4)
    scores = np.array([float(o.get("score", 1.0)) for o in detections])
    classes = [o.get("class") for o in detections]
    looks = None
    if image is not None and appearance and len(boxes):
        from vflow_cli.vision.appearance import describe

        looks = describe(image, boxes)
    overlap = iou(boxes, boxes)
    np.fill_diagonal(overlap, 0)
    clear = overlap.max(1, initial=0) < 0.3
    return Frame(detections, boxes, scores, classes, looks, clear, t)


def match(
    now: Frame,
    tracks: list[K],
    candidates: list[int],
    limit: float,
    fuse: bool = False,
    looks: bool = False,
) -> tuple[list[tuple[K, int]], list[K], list[int]]:
    """Optimal one-to-one matching of tracks and detections whose 1 - IoU (x score when
    fused) is at most `limit`: (pairs, tracks left, detections left). With frames to look
    at, no track is given a detection that looks like someone else (LOOK_NEVER); with
    `looks`, the assignment also weighs how alike they look, and a lost track must look
    much the same (LOOK_LIMIT)."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    if not tracks or not candidates:
        return [], list(tracks), list(candidates)
    predicted = np.stack([k.box() for k in tracks])
    overlap = iou(predicted, now.boxes[candidates])
    if fuse:
        overlap = overlap * now.scores[candidates][None, :]
    cost = 1.0 - overlap
    for r, k in enumerate(tracks):
        for c, i in enumerate(candidates):
            if now.classes[i] != k.cls:
                cost[r, c] = 2.0
    allowed = cost <= limit
    if now.looks is not None:
        far = apart(tracks, now.looks[candidates])
        allowed &= far <= LOOK_NEVER
        if looks:
            lost = np.array([k.lost for k in tracks])[:, None]
            allowed &= ~(lost & (far > LOOK_LIMIT))
            cost = cost + LOOK_WEIGHT * far
    cost[~allowed] = 3.0  # forbidden pairs cost more than any allowed set of pairs
    rows, cols = linear_sum_assignment(cost)
    pairs = [(tracks[r], candidates[c]) for r, c in zip(rows, cols, strict=True) if allowed[r, c]]
    taken_tracks = {id(k) for k, _ in pairs}
    taken = {i for _, i in pairs}
    return (
        pairs,
        [k for k in tracks if id(k) not in taken_tracks],
        [i for i in candidates if i not in taken],
    )


def apart(tracks: list[Any], looks: Any) -> Any:
    """Appearance distances, tracks x detections (0 where a track has no look yet)."""
    import numpy as np

    from vflow_cli.vision.appearance import distance

    known = np.stack([k.look if k.look is not None else np.zeros(looks.shape[1]) for k in tracks])
    return distance(known, looks)


def recover(now: Frame, tracks: list[K], candidates: list[int]) -> list[tuple[K, int]]:
    """Lost tracks <-> confident detections no box overlap claimed, by distance.

    Behind a pole or a sign a person's box shrinks to the part still in view, so the
    track's box and the person coming out the other side may not overlap at all. A
    detection is the lost track's when its centre is near where the track was last seen
    or where it would be by now (within RADIUS heights, plus SPREAD heights a second it
    has been lost) and its height is within a factor 1.7 of the track's. With frames to
    look at, the detection must also look like the track. (The tracker does not look for
    tracks last seen at the frame's edge: they left the picture.)"""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    if not tracks or not candidates:
        return []
    t = now.t
    far = np.zeros((len(tracks), len(candidates)))
    if now.looks is not None:
        far = apart(tracks, now.looks[candidates])
    found = now.boxes[candidates]
    centres = (found[:, :2] + found[:, 2:]) / 2
    heights = found[:, 3] - found[:, 1]
    cost = np.full((len(tracks), len(candidates)), 2.0)
    for r, k in enumerate(tracks):
        predicted, last = k.box(), k.last
        h = max(last[3] - last[1], 1.0)
        gate = RADIUS + SPREAD * (t - k.seen)
        for c, i in enumerate(candidates):
            if now.classes[i] != k.cls or not 1 / 1.7 <= heights[c] / h <= 1.7:
                continue
            if far[r, c] > LOOK_LIMIT:
                continue
            near = min(
                np.hypot(*(centres[c] - (predicted[:2] + predicted[2:]) / 2)),
                np.hypot(*(centres[c] - (last[:2] + last[2:]) / 2)),
            ) / max(h, heights[c])
            if near <= gate:
                cost[r, c] = (near / gate + far[r, c]) / 2
    rows, cols = linear_sum_assignment(cost)
    return [(tracks[r], candidates[c]) for r, c in zip(rows, cols, strict=True) if cost[r, c] <= 1]
