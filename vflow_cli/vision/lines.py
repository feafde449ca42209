"""lines: counting tracked ids whose foot point crosses a segment, once per crossing.

Each id has a side of the line it is known to be on: the side its foot point was last seen
clearly on, more than `band` pixels from the line. An id changes side only when its foot is
clearly on the other side; the crossing then counts if the foot's path last crossed the line
within the segment (not beside it, around one of its ends):

    left of P1->P2 ──(band)── line ──(band)── right of P1->P2
         "in":  left -> right          "out": right -> left

So an id dithering on the line counts nothing until it is clear of it, and one that crosses
and comes back counts once each way: in - out stays the number of ids on the right. An id
first seen near the line (inside the band) starts on the side it is on, however near.
An id that vanishes and returns (the tracker kept its id) is judged from where it was last
seen to where it comes back, as if it had walked straight.

An id born just past the line (within `born` pixels of it, over the segment, after the
first frame) that then walks away from it (its foot a `band` further off than where it
began) counts as having crossed: a tracker often loses a person in the crowd at a line and
finds them again under a new id a step later, and the crossing fell between the two ids.
Someone who steps out of a door beside the line and walks away counts too: keep lines a few
metres from where people appear, or set `born` to 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vflow_cli.vision.geometry import Point, Segment

IN, OUT = "in", "out"


@dataclass(slots=True)
class _Track:
    side: int  # -1 left, +1 right, 0 not yet known (first seen exactly on the line)
    last: Point  # foot point when last seen
    seen: float  # seconds, when last seen
    on_segment: bool | None = None  # did its path last cross the line on the segment?
    born: float | None = None  # |distance| at birth, while it may count as born past the line


@dataclass
class LineCounter:
    segment: Segment
    band: float = 8.0  # pixels each side of the line where an id keeps the side it had
    forget: float = 30.0  # seconds after which an unseen id is forgotten (memory bound)
    born: float = 0.0  # pixels past the line within which a new id walking away has crossed
    counts: dict[str, int] = field(default_factory=lambda: {IN: 0, OUT: 0})
    crossed: set[int] = field(default_factory=set)  # ids that crossed at least once
    seen_ids: int = 0
    _tracks: dict[int, _Track] = field(default_factory=dict)
    _started: bool = False  # has a frame been seen (ids of the first frame are not born)

    def update(self, feet: list[tuple[int, Point]], now: float) -> list[tuple[int, str]]:
        """Feed one frame's (id, foot point) pairs; return the crossings it completed."""
        segment, band, tracks = self.segment, self.band, self._tracks
        crossings: list[tuple[int, str]] = []
        first_frame, self._started = not self._started, True
        for ident, p in feet:
            d = segment.distance(p)
            side = (1 if d > 0 else -1) if abs(d) > band else 0
            track = tracks.get(ident)
            if track is None:
                # first seen near the line: the side it is on, however near (a track often
                # starts close to a line: people come into view, or out of a crowd)
                first = side or (1 if d > 0 else -1 if d < 0 else 0)
                tracks[ident] = track = _Track(first, p, now)
                self.seen_ids += 1
                if not first_frame and first and abs(d) <= self.born and self._over(p):
                    track.born = abs(d)
                continue
            if track.born is not None and (1 if d > 0 else -1) == track.side:
                if abs(d) >= track.born + band:  # walked away from the line: it crossed
                    direction = IN if track.side > 0 else OUT
                    self.counts[direction] += 1
                    self.crossed.add(ident)
                    crossings.append((ident, direction))
                    track.born = None
            elif track.born is not None:
                track.born = None  # back towards the line: it will cross, or not, as usual
            where = segment.crossing(track.last, p)
            if where is not None:
                track.on_segment = 0.0 <= where <= 1.0
            track.last, track.seen = p, now
            if side == 0 or side == track.side:
                continue
            if track.side != 0 and track.on_segment:
                direction = IN if side > 0 else OUT
                self.counts[direction] += 1
                self.crossed.add(ident)
                crossings.append((ident, direction))
            track.side, track.on_segment = side, None
        if tracks and len(feet) < len(tracks):
            stale = [i for i, t in tracks.items() if abs(now - t.seen) > self.forget]
            for ident in stale:
                del tracks[ident]
        return crossings

    def _over(self, p: Point) -> bool:
        """Is the foot point level with the segment (its projection within P1..P2)?"""
        s = self.segment
        k = ((p[0] - s.x1) * s.dx + (p[1] - s.y1) * s.dy) / (s.length**2)
        return 0.0 <= k <= 1.0
