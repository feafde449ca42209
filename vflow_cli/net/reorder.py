"""net.reorder: put one stream's packets back in sequence order, waiting a bounded time.

Workers finish packets out of order, a redelivered packet comes late, a live network loses
some. The buffer hands out sequence numbers in order; each number has all its parts (the
outputs a worker made from that input: 0, 1 or several packets), or is skipped:

    next ─┐
          v
      ... 5 [6: 2 of 2 parts] [7: 1 of ? parts] [9: done] ...
          │
          └ missing: wait while the oldest thing held is younger than `wait` seconds
            and fewer than `limit` numbers are held; then skip it (counted)

A number below `next` is a duplicate (a redelivery, a second worker): dropped, counted.
A tombstone (the packet went to the dead-letter subject) is skipped at once. Until the
first number of a stream is known, the smallest seen within `wait` is taken (0 at once).

Numbers come from the network: a gap is skipped as one range (next jumps to the next number
held, or to the end), so a forged number or end far ahead costs one step, not one per
number; what is held is bounded by `limit` numbers and `budget` bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Entry:
    seen: float  # when its first unit arrived
    parts: dict[int, Any] = field(default_factory=dict)
    total: int | None = None  # known from the last part
    dead: bool = False
    lost: bool = False
    size: int = 0  # bytes of its parts
    extra: list[Any] = field(default_factory=list)  # duplicates of parts (to acknowledge)

    def complete(self) -> bool:
        return self.total is not None and len(self.parts) >= self.total


@dataclass
class Counts:
    delivered: int = 0  # sequence numbers handed out
    skipped: int = 0  # missing or incomplete, given up on
    dead: int = 0  # tombstones
    duplicates: int = 0  # units dropped because their number or part was already handed out


class Reorder:
    def __init__(self, wait: float, limit: int, start: int | None = None, budget: int = 0) -> None:
        self.wait = wait
        self.limit = limit
        self.budget = budget  # bytes held at most (0: no limit); beyond, the gap is skipped
        self.bytes = 0
        self.next = start  # the next number to hand out (None: not known yet)
        self.held: dict[int, Entry] = {}
        self.end: int | None = None  # the stream's length, once its end is known
        self.end_seen: float | None = None
        self.counts = Counts()
        self.busy: dict[int, float] = {}  # numbers a worker is working on -> until when
        self._first: float | None = None

    def add(self, seq: int, part: int, parts: int | None, unit: Any, now: float) -> bool:
        """Hold one unit (a part of number seq; parts: the total, on the last part).
        False: a duplicate, not held."""
        if self.next is not None and seq < self.next:
            self.counts.duplicates += 1
            return False
        self._seen(now)
        entry = self.held.get(seq)
        if entry is None:
            entry = self.held[seq] = Entry(now)
        if parts is not None:
            entry.total = parts
        if part in entry.parts:
            self.counts.duplicates += 1
            entry.extra.append(unit)
            return False
        if unit is not None:
            entry.parts[part] = unit
            entry.size += _size(unit)
            self.bytes += _size(unit)
        return True

    def kill(self, seq: int, now: float) -> bool:
        """A tombstone: number seq went to the dead letters."""
        if self.next is not None and seq < self.next:
            return False
        self._seen(now)
        entry = self.held.setdefault(seq, Entry(now))
        entry.dead = True
        return True

    def lose(self, seq: int, now: float) -> None:
        """Number seq was lost here (a full inbox): skip it without waiting."""
        if self.next is not None and seq < self.next:
            return
        self._seen(now)
        entry = self.held.setdefault(seq, Entry(now))
        entry.lost = True

    def _seen(self, now: float) -> None:
        """Something of the stream arrived (a unit, a tombstone, a loss): while its first
        number is unknown, the wait for a smaller one runs from the first of them."""
        if self._first is None:
            self._first = now

    def finish(self, packets: int, now: float) -> None:
        """The stream had `packets` numbers, 0 .. packets - 1."""
        self.end = packets
        if self.end_seen is None:
            self.end_seen = now
        if self.next is None and not self.held:
            self.next = packets  # nothing of it will come: done

    def done(self) -> bool:
        return self.end is not None and self.next is not None and self.next >= self.end

    def deadline(self) -> float | None:
        """When pop() may next skip something without anything arriving."""
        times = [e.seen for e in self.held.values()]
        if self.end_seen is not None:
            times.append(self.end_seen)
        if self.next is None and self._first is not None:
            times.append(self._first)
        return min(times) + self.wait if times else None

    def pop(self, now: float) -> list[tuple[str, int, Entry | None, int]]:
        """Numbers ready, in order: ("deliver", seq, entry, 1), ("dead", seq, entry, 1) for a
        tombstone, ("skip", seq, entry or None, count) for `count` numbers from seq given up
        on at once (count > 1: a gap in which nothing was held)."""
        out: list[tuple[str, int, Entry | None, int]] = []
        if self.next is None:
            if not self.held:
                return out
            lowest = min(self.held)
            assert self._first is not None  # whatever is held was dated by _seen
            if lowest != 0 and now - self._first < self.wait:
                return out
            self.next = lowest
        while True:
            if self.end is not None and self.next >= self.end:
                self._drop_beyond_end()
                return out
            entry = self.held.get(self.next)
            if entry is not None and entry.dead:
                self._take(self.next)
                self.counts.dead += 1
                out.append(("dead", self.next, entry, 1))
                self.next += 1
                continue
            if entry is not None and entry.complete():
                self._take(self.next)
                self.counts.delivered += 1
                out.append(("deliver", self.next, entry, 1))
                self.next += 1
                continue
            if not (
                entry is not None and entry.lost and not entry.complete()
            ) and not self._give_up(now):
                return out
            if entry is not None:
                self._take(self.next)
                count = 1
            else:
                count = self._gap(now) - self.next
            self.counts.skipped += count
            out.append(("skip", self.next, entry, count))
            self.next += count

    def _take(self, seq: int) -> None:
        entry = self.held.pop(seq)
        self.bytes -= entry.size

    def _gap(self, now: float) -> int:
        """Where the run of missing numbers from `next` ends: the next number held, a number
        a worker is busy with, or the end."""
        assert self.next is not None
        stops = [s for s in self.held if s > self.next]
        stops += [s for s, until in self.busy.items() if s > self.next and until > now]
        if self.end is not None:
            stops.append(self.end)
        return min(stops, default=self.next + 1)

    def _give_up(self, now: float) -> bool:
        """Skip the missing (or incomplete) next number?"""
        if self.busy.get(self.next, 0.0) > now:  # type: ignore[arg-type]
            return False  # a worker is on it
        if len(self.held) > self.limit or (self.budget and self.bytes > self.budget):
            return True
        oldest = min((e.seen for e in self.held.values()), default=None)
        if self.end_seen is not None:
            oldest = min(oldest, self.end_seen) if oldest is not None else self.end_seen
        if oldest is None:
            return False  # nothing after it yet: nothing tells us it is late
        return now - oldest >= self.wait

    def _drop_beyond_end(self) -> None:
        assert self.end is not None
        for seq in [s for s in self.held if s >= self.end]:
            self._take(seq)


def _size(unit: Any) -> int:
    return len(getattr(unit, "body", None) or b"")
