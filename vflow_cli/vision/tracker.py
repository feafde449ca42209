"""tracker: multi-object tracking by detection, in the manner of ByteTrack.

One call per frame, with that frame's detections and media time:

    tracks ──Kalman predict (dt seconds)──> predicted boxes
    1. confident detections (score >= high) <-> tracked and lost tracks      IoU x score
    2. weak detections (score < high)       <-> tracked tracks unmatched    IoU >= 0.5
       (a partly hidden person scores low: this keeps their id through the occlusion)
    3. confident leftovers                  <-> tracks seen only once       IoU x score
    4. confident leftovers                  <-> lost tracks, by distance   (matching.recover)
    5. confident leftovers over `new`      ──> new tracks (confirmed when seen again)
    tracks unmatched: lost; lost longer than `buffer`: forgotten

Who goes with whom in each pass (costs, gates, the optimal assignment, within a class) is
matching.py's; this module decides which tracks and detections take part, and what a pair
means for a track's life. A track found again after a gap restarts its motion from where it was last
seen to where it is now (OC-SORT's observation-centric re-update), not from a prediction that
drifted while nobody saw it.

Given the frame, the tracker also compares what people look like (appearance.py: colour
histograms of upper and lower body, learnt from clear sightings only). In matching 1 the
appearance distance weighs in (LOOK_WEIGHT), a lost track must look much the same
(LOOK_LIMIT) and no track takes a detection that looks like someone else (LOOK_NEVER, in
every matching): on the PETS 2009 clip this ended most id swaps between people passing each
other.

What is reported: each track seen in this frame, at its filtered box; a track lost for at
most `coast` seconds at its predicted box, marked "predicted" (scorers count a hidden
person as there: on MOTChallenge's TUD sequences with noisy detections 0.3 s raised MOTA by
0.09-0.15 and IDF1 by 0.04-0.05); and, with `fill`, a box much shorter than the track's
last clear, confident sighting (SHRUNK: someone nearer hides the legs) grown back to that
size, hanging from its top, as the ground truth of such scenes draws hidden parts.

Scenery: a track that has stood still (its box overlapping, by IoU >= 0.5, where it stood
`static` seconds ago) for `static` seconds while its detections scored under SURE on average
is scenery: a signpost a detector half takes for a person, frame after frame. It is still
followed, so that it starts no new tracks, but not reported until it moves; a weak new track
where scenery stood is scenery from the start. A person standing still is kept as long as
the detector is sure of them; a weak one standing still is the price of the rule.

One class, Tracker, whose five matching passes and track life cycle (new, tracked, lost,
scenery, forgotten) work on the same tracks in one order; the pairing (matching.py), the
motion filter (kalman.py) and the appearance model (appearance.py) live apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from vflow_cli.vision.boxes import iou
from vflow_cli.vision.kalman import BoxFilter, corners
from vflow_cli.vision.matching import LOOK_LIMIT, Frame, frame_of, match, recover

NEW, TRACKED, LOST = "new", "tracked", "lost"
MOVED_IOU = 0.5  # a box overlapping where it stood less than this has moved
SURE = 0.7  # a track scoring this much on average is no scenery, moving or not
LOOK_MEMORY = 0.9  # a track's appearance: this much of the old, the rest of the new sighting
SHRUNK = 0.85  # a box this much shorter than the last clear one: part of the person is hidden
SCENERY_PLACES = 64  # how many places of scenery are remembered


@dataclass
class Settings:
    high: float = 0.5  # detections at least this confident take part in the first matching
    new: float = 0.6  # ... and start a track when nothing claims them
    match: float = 0.8  # first matching: 1 - IoU x score at most this
    weak_match: float = 0.5  # second matching (weak detections): 1 - IoU at most this
    new_match: float = 0.7  # tracks seen once: 1 - IoU x score at most this
    buffer: float = 2.0  # seconds (or frames, with buffer_frames) a lost track is remembered
    buffer_frames: bool = False
    static: float = 2.0  # seconds without moving after which a track is scenery; 0: never
    coast: float = 0.3  # seconds a lost track is still reported at its predicted place
    appearance: bool = True  # compare colours when frames are given (appearance.py)
    fps: float = 30.0  # frames a second, when packets carry no media time
    fill: bool = True  # report a partly hidden person's whole box (see SHRUNK)


@dataclass
class Track:
    mean: Any
    covariance: Any
    detection: dict[str, Any]
    cls: Any
    score: float
    seen: float  # media time it was last observed
    seen_frame: int
    born: float
    last: Any  # the last observed box, for the re-update after a gap
    still: Any  # where it has stood since `still_since` (x1, y1, x2, y2), for the static rule
    still_since: float
    scores: float = 0.0  # the sum of its detections' scores since then
    hits: int = 0  # ... and their number
    look: Any = None  # its appearance (appearance.describe), None until seen clearly
    whole: Any = None  # (width, height) of its last clear, confident sighting
    id: int = 0  # 0 until confirmed
    state: str = NEW
    scenery: bool = False

    def box(self) -> Any:
        return corners(self.mean[:4])

    @property
    def lost(self) -> bool:
        return self.state == LOST


@dataclass
class Tracker:
    settings: Settings = field(default_factory=Settings)
    tracks: list[Track] = field(default_factory=list)
    scenery: list[Any] = field(default_factory=list)  # boxes where static objects stood
    next_id: int = 1
    time: float | None = None
    frame: int = -1

    def __post_init__(self) -> None:
        # imported now, before the first frame, not in the middle of a stream (about 0.5 s)
        import scipy.optimize  # noqa: F401

        self.filter = BoxFilter()

    def reset(self) -> None:
        """Forget every track (a new stream); ids keep counting up."""
        self.tracks, self.scenery = [], []
        self.time, self.frame = None, -1

    def update(
        self,
        objects: list[dict[str, Any]],
        t: float,
        size: tuple[int, int] | None = None,
        image: Any = None,
    ) -> list[dict[str, Any]]:
        """The objects of one frame at media time t -> the tracked ones, each a copy of its
        detection with the filtered "box" (inside a frame of `size` (width, height), when
        given), an "id" and a "velocity" [vx, vy] in pixels a second. Objects without a
        usable box are left out. `image` (the frame, BGR) lets appearance help matching."""
        s = self.settings
        first_frame = self.time is None
        dt = 0.0 if self.time is None else t - self.time
        if dt < 0:  # time ran backwards: another stream (or a loop) starts
            self.reset()
            first_frame, dt = True, 0.0
        self.time = t
        self.frame += 1
        self._predict(dt)

        now = frame_of([o for o in objects if _usable(o)], t, image, s.appearance)
        strong = [i for i in range(len(now.detections)) if now.scores[i] >= s.high]
        weak = [i for i in range(len(now.detections)) if now.scores[i] < s.high]

        confirmed = [k for k in self.tracks if k.state in (TRACKED, LOST)]
        pairs, tracks_left, strong_left = match(
            now, confirmed, strong, s.match, fuse=True, looks=True
        )
        for k, i in pairs:
            self._observe(k, now, i)
        missed = [k for k in tracks_left if k.state == TRACKED]
        pairs, unmatched, _ = match(now, missed, weak, s.weak_match)
        for k, i in pairs:
            self._observe(k, now, i)
        for k in unmatched:
            k.state = LOST

        newborn = [k for k in self.tracks if k.state == NEW]
        pairs, dropped, strong_left = match(now, newborn, strong_left, s.new_match, fuse=True)
        for k, i in pairs:
            self._observe(k, now, i)
            self._confirm(k)
        lost = [
            k
            for k in self.tracks
            if k.state == LOST and not self._expired(k, t) and not _at_edge(k.last, size)
        ]
        for k, i in recover(now, lost, strong_left):
            self._observe(k, now, i)
            strong_left.remove(i)
        gone = {id(k) for k in dropped}
        self.tracks = [k for k in self.tracks if id(k) not in gone and not self._expired(k, t)]
        for i in strong_left:
            if now.scores[i] >= s.new:
                self._start(now, i, confirm=first_frame)
        self._drop_duplicates()
        shown = [k for k in sorted(self.tracks, key=lambda k: k.id) if self._shown(k, size)]
        seen = [k.box() for k in shown if k.state == TRACKED]
        if seen and len(seen) < len(shown):  # a guess on top of someone in view: not shown
            shown = [k for k in shown if k.state == TRACKED or iou([k.box()], seen).max() < 0.5]
        return [self._report(k, size) for k in shown]

    # -- steps ------------------------------------------------------------------------------

    def _predict(self, dt: float) -> None:
        import numpy as np

        if not self.tracks or dt <= 0:
            return
        means = np.stack([k.mean for k in self.tracks])
        for n, k in enumerate(self.tracks):
            if k.state != TRACKED:
                means[n, 7] = 0  # a box nobody sees keeps its height (ByteTrack)
        covariances = np.stack([k.covariance for k in self.tracks])
        means, covariances = self.filter.predict(means, covariances, dt)
        for n, k in enumerate(self.tracks):
            k.mean, k.covariance = means[n], covariances[n]

    def _observe(self, k: Track, now: Frame, i: int) -> None:
        import numpy as np

        detection, box, score, t = now.detections[i], now.boxes[i], now.scores[i], now.t
        gap = t - k.seen
        if k.state == LOST and gap > 0:
            # re-update: restart the motion from the last sighting, not from the drifted
            # prediction (OC-SORT)
            mean, covariance = self.filter.initiate(box)
            shift = (box - k.last) / gap
            mean[4] = (shift[0] + shift[2]) / 2
            mean[5] = (shift[1] + shift[3]) / 2
            k.mean, k.covariance = mean, covariance
        else:
            k.mean, k.covariance = self.filter.update(k.mean, k.covariance, box)
        if k.state == LOST:
            k.state = TRACKED
        k.detection, k.score, k.seen, k.seen_frame = detection, float(score), t, self.frame
        k.last = np.array(box, np.float64)
        if now.clear[i] and score >= self.settings.high:
            k.whole = (box[2] - box[0], box[3] - box[1])
        self._watch_motion(k, float(score), t)
        self._remember_look(k, now, i)

    def _remember_look(self, k: Track, now: Frame, i: int) -> None:
        """Learn a track's appearance from clear, confident sightings only: a box that
        overlaps another holds some of the other person's colours."""
        import numpy as np

        if now.looks is None or not now.clear[i] or now.scores[i] < self.settings.high:
            return
        look = now.looks[i]
        if not look.any():
            return
        if k.look is None:
            k.look = look.copy()
            return
        mixed = LOOK_MEMORY * k.look + (1 - LOOK_MEMORY) * look
        half = len(mixed) // 2  # each half a unit vector again (square roots of a histogram)
        for part in (slice(0, half), slice(half, None)):
            norm = np.linalg.norm(mixed[part])
            if norm > 0:
                mixed[part] /= norm
        k.look = mixed

    def _start(self, now: Frame, i: int, confirm: bool) -> None:
        import numpy as np

        detection, score, t = now.detections[i], float(now.scores[i]), now.t
        box = np.array(now.boxes[i], np.float64)
        mean, covariance = self.filter.initiate(box)
        k = Track(
            mean=mean,
            covariance=covariance,
            detection=detection,
            cls=detection.get("class"),
            score=float(score),
            seen=t,
            seen_frame=self.frame,
            born=t,
            last=box,
            still=box,
            still_since=t,
            scores=float(score),
            hits=1,
        )
        if (
            self.scenery
            and self.settings.static > 0
            and score < SURE
            and iou([box], self.scenery).max() >= MOVED_IOU
        ):
            k.scenery = True  # where scenery stood: scenery, until it moves
        if now.clear[i] and score >= self.settings.high:
            k.whole = (box[2] - box[0], box[3] - box[1])
        self._remember_look(k, now, i)
        self.tracks.append(k)
        if confirm:
            self._confirm(k)

    def _confirm(self, k: Track) -> None:
        k.state = TRACKED
        if not k.id:
            k.id = self.next_id
            self.next_id += 1

    def _expired(self, k: Track, t: float) -> bool:
        if k.state != LOST:
            return False
        s = self.settings
        if s.buffer_frames:
            return self.frame - k.seen_frame > s.buffer
        return t - k.seen > s.buffer + 1e-9

    def _watch_motion(self, k: Track, score: float, t: float) -> None:
        """The static rule: scenery once it has stood still, scoring low, for `static` s."""
        s = self.settings
        if s.static <= 0:
            return
        if iou([k.box()], [k.still])[0, 0] < MOVED_IOU:  # it moves: no scenery
            if k.scenery:
                self.scenery = [p for p in self.scenery if iou([p], [k.still])[0, 0] < MOVED_IOU]
            k.scenery = False
            k.still, k.still_since, k.scores, k.hits = k.box(), t, 0.0, 0
        k.scores += score
        k.hits += 1
        if not k.scenery and t - k.still_since >= s.static and k.scores / k.hits < SURE:
            k.scenery = True
            self.scenery = [*self.scenery, k.still][-SCENERY_PLACES:]

    def _drop_duplicates(self) -> None:
        """A tracked and a lost track on the same spot, looking alike (or with no looks to
        compare): the same object followed twice; keep the one followed longer."""
        tracked = [k for k in self.tracks if k.state == TRACKED]
        lost = [k for k in self.tracks if k.state == LOST]
        if not tracked or not lost:
            return
        import numpy as np

        from vflow_cli.vision.appearance import distance

        overlap = iou(np.stack([k.box() for k in tracked]), np.stack([k.box() for k in lost]))
        gone: set[int] = set()
        for r, c in zip(*np.nonzero(overlap > 0.85), strict=True):
            a, b = tracked[r], lost[c]
            if a.cls != b.cls:
                continue
            if (
                a.look is not None
                and b.look is not None
                and distance(a.look, b.look)[0, 0] > LOOK_LIMIT
            ):
                continue  # someone else, where a lost track's prediction wandered
            gone.add(id(b) if a.seen - a.born >= b.seen - b.born else id(a))
        self.tracks = [k for k in self.tracks if id(k) not in gone]

    def _shown(self, k: Track, size: tuple[int, int] | None) -> bool:
        if k.id <= 0 or k.scenery:
            return False
        if k.state == TRACKED:
            return k.seen_frame == self.frame
        return (  # --coast: a lost track where it would be, unless it left the picture
            k.state == LOST
            and self.time is not None
            and self.time - k.seen <= self.settings.coast
            and not _at_edge(k.last, size)
        )

    def _report(self, k: Track, size: tuple[int, int] | None) -> dict[str, Any]:
        out = dict(k.detection)
        x1, y1, x2, y2 = (float(v) for v in k.box())
        if self.settings.fill and k.whole is not None and y2 - y1 < SHRUNK * k.whole[1]:
            # part of them is hidden (feet behind someone nearer): their whole box, hanging
            # from the top of what is seen
            cx, (w, h) = (x1 + x2) / 2, k.whole
            x1, x2, y2 = cx - w / 2, cx + w / 2, y1 + h
        if size is not None:
            w, h = size
            x1, x2 = min(max(x1, 0.0), w), min(max(x2, 0.0), w)
            y1, y2 = min(max(y1, 0.0), h), min(max(y2, 0.0), h)
        out["box"] = [round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)]
        out["id"] = k.id
        if k.state == LOST:
            out["predicted"] = True
        out["velocity"] = [round(float(k.mean[4]), 1), round(float(k.mean[5]), 1)]
        return out


def _at_edge(box: Any, size: tuple[int, int] | None) -> bool:
    """Does the box touch the border of a frame of `size` (within 1% of its width)?"""
    if size is None:
        return False
    w, h = size
    margin = 0.01 * max(w, h)
    return bool(
        box[0] <= margin or box[1] <= margin or box[2] >= w - margin or box[3] >= h - margin
    )


def _usable(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    box = obj.get("box")
    if not isinstance(box, (list, tuple)) or len(box) < 4:
        return False
    try:
        x1, y1, x2, y2 = (float(v) for v in box[:4])
    except (TypeError, ValueError):
        return False
    # a picture is at most 2**31 pixels a side (vflow-packet(5)): coordinates far beyond
    # that are damage, and would overflow the filter's arithmetic
    sane = all(math.isfinite(v) and abs(v) < 1e9 for v in (x1, y1, x2, y2))
    return sane and x2 > x1 and y2 > y1
