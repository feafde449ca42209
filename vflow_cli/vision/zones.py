"""zones: occupancy, entries, exits and dwell time of tracked ids inside a polygon.

An id is inside once its foot point is more than `band` pixels inside the outline, and
outside once it is more than `band` pixels outside; in between it keeps what it was, so an
id walking along the outline does not enter and leave on every frame.

    first seen clearly inside ........ enters (so occupancy = entries - exits, always)
    clearly outside after inside ..... exits (dwell: from its entry to this frame)
    unseen for more than `timeout` ... exits as lost (dwell: from its entry to when last seen)
    back after a lost exit ........... enters again: a new visit

An id unseen for less than `timeout` still counts as inside: trackers drop a person for a
few frames behind an obstacle, and keep the id when they find them again.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from vflow_cli.vision.geometry import Point, Polygon

ENTER, EXIT = "enter", "exit"


@dataclass(slots=True)
class _Track:
    inside: bool | None  # None: first seen on the outline, not yet placed
    seen: float  # seconds, when last seen
    entered: float = 0.0  # seconds, when this visit began (while inside)


@dataclass
class ZoneCounter:
    polygon: Polygon
    band: float = 8.0
    timeout: float = 3.0
    entries: int = 0
    exits: int = 0
    peak: int = 0
    visits: list[float] = field(default_factory=list)  # dwell of every finished visit
    per_id: dict[int, list[float]] = field(default_factory=dict)  # id -> [visits, dwell]
    _tracks: dict[int, _Track] = field(default_factory=dict)

    def update(
        self, feet: list[tuple[int, Point]], now: float
    ) -> list[tuple[str, int, dict[str, Any]]]:
        """Feed one frame's (id, foot point) pairs; return its (event, id, details) list."""
        events: list[tuple[str, int, dict[str, Any]]] = []
        tracks, band = self._tracks, self.band
        present = set()
        for ident, p in feet:
            present.add(ident)
            d = self.polygon.distance(p)
            inside = True if d > band else False if d < -band else None
            track = tracks.get(ident)
            if track is None:
                track = tracks[ident] = _Track(None, now)
            track.seen = now
            if inside is None or inside == track.inside:
                continue
            if inside:
                track.entered = now
                self.entries += 1
                events.append((ENTER, ident, {}))
            elif track.inside:
                events.append((EXIT, ident, self._close(ident, now - track.entered, lost=False)))
            track.inside = inside
        for ident, track in list(tracks.items()):
            if ident in present or abs(now - track.seen) <= self.timeout:
                continue
            if track.inside:
                dwell = track.seen - track.entered
                events.append((EXIT, ident, self._close(ident, dwell, lost=True)))
            del tracks[ident]
        self.peak = max(self.peak, self.occupancy)
        return events

    def _close(self, ident: int, dwell: float, *, lost: bool) -> dict[str, Any]:
        self.exits += 1
        self.visits.append(dwell)
        self._add(ident, dwell)
        return {"dwell": round(dwell, 3), "lost": lost}

    def _add(self, ident: int, dwell: float) -> None:
        tally = self.per_id.setdefault(ident, [0, 0.0])
        tally[0] += 1
        tally[1] += dwell

    @property
    def occupancy(self) -> int:
        return self.entries - self.exits

    def inside(self, now: float) -> list[dict[str, Any]]:
        """The ids inside now, each with how long it has been inside."""
        return [
            {"id": ident, "dwell": round(now - t.entered, 3)}
            for ident, t in sorted(self._tracks.items())
            if t.inside
        ]

    def summary(self) -> dict[str, Any]:
        """Totals at end of stream. Visits still open count with their dwell until the id
        was last seen."""
        dwells = list(self.visits)
        per_id = {i: list(v) for i, v in self.per_id.items()}
        open_visits = 0
        for ident, track in self._tracks.items():
            if track.inside:
                open_visits += 1
                dwell = track.seen - track.entered
                dwells.append(dwell)
                tally = per_id.setdefault(ident, [0, 0.0])
                tally[0] += 1
                tally[1] += dwell
        stats: dict[str, Any] = {"visits": len(dwells), "open": open_visits}
        if dwells:
            stats.update(
                mean=round(statistics.fmean(dwells), 3),
                median=round(statistics.median(dwells), 3),
                min=round(min(dwells), 3),
                max=round(max(dwells), 3),
                total=round(sum(dwells), 3),
            )
        return {
            "entries": self.entries,
            "exits": self.exits,
            "occupancy": self.occupancy,
            "peak": self.peak,
            "dwell": stats,
            "ids": [
                {"id": i, "visits": int(v[0]), "dwell": round(v[1], 3)}
                for i, v in sorted(per_id.items())
            ],
        }
