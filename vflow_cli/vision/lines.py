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


@dataclass
class LineCounter:
    segment: Segment
    band: float = 8.0  # pixels each side of the line where an id keeps the side it had
    forget: float = 30.0  # seconds after which an unseen id is forgotten (memory bound)
    counts: dict[str, int] = field(default_factory=lambda: {IN: 0, OUT: 0})
    crossed: set[int] = field(default_factory=set)  # ids that crossed at least once
    seen_ids: int = 0
    _tracks: dict[int, _Track] = field(default_factory=dict)

    def update(self, feet: list[tuple[int, Point]], now: float) -> list[tuple[int, str]]:
        """Feed one frame's (id, foot point) pairs; return the crossings it completed."""
        segment, band, tracks = self.segment, self.band, self._tracks
        crossings: list[tuple[int, str]] = []
        for ident, p in feet:
            d = segment.distance(p)
            side = (1 if d > 0 else -1) if abs(d) > band else 0
            track = tracks.get(ident)
            if track is None:
                # first seen near the line: the side it is on, however near (a track often
                # starts close to a line: people come into view, or out of a crowd)
                first = side or (1 if d > 0 else -1 if d < 0 else 0)
                tracks[ident] = _Track(first, p, now)
                self.seen_ids += 1
                continue
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
