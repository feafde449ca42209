"""graph.joins: how a node with several inputs gets one stream (merge or zip)."""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import Any

from vflow_cli.framing import Packet
from vflow_cli.graph.pool import TAG
from vflow_cli.graph.queues import Edge, NodeInbox

BATCH = 256  # packets a feeder takes from its queues at once (one lock, one wake-up)


def _take_merge(inbox: NodeInbox) -> list[tuple[Edge, Packet]] | None:
    """Packets in the order they arrived on any edge; [] when none is there; None at the end."""
    edges = inbox.edges
    got: list[tuple[Edge, Packet]] = []
    if len(edges) == 1:
        edge = edges[0]
        queue = edge.queue
        while queue and len(got) < BATCH:
            got.append((edge, queue.popleft()[1]))
        edge.delivered += len(got)
    else:
        while len(got) < BATCH:
            ready = [e for e in edges if e.queue]
            if not ready:
                break
            edge = min(ready, key=lambda e: e.queue[0][0])
            got.append((edge, edge.queue.popleft()[1]))
            edge.delivered += 1
    if got:
        inbox.wake_putters()
        return got
    if all(e.eof or e.dead for e in edges):
        return None
    return got


def merge(inbox: NodeInbox, idle: Callable[[], None]) -> Iterator[Packet]:
    """Interleave packets in arrival order; each names its upstream node in "from"."""
    cond = inbox.cond
    single = len(inbox.edges) == 1
    while True:
        with cond:
            got = _take_merge(inbox)
        if got == []:
            idle()  # flush what we wrote before we wait
            with cond:
                got = _take_merge(inbox)
                while got == []:
                    inbox.wait(taker=True)
                    got = _take_merge(inbox)
        if got is None:
            return
        for edge, packet in got:
            yield packet if single else {**packet, "from": edge.src}


class Zip:
    """Join packets of the same "seq" from every input into the first input's packet.

    The first input's packet goes on, with each other input's packet (its image left out)
    under that input's node name. Inputs are expected in increasing seq order, as every vflow
    producer makes them: once an input has passed seq N (or ended), N is unmatched there.
    Unmatched first-input packets are dropped ("drop") or sent with what matched ("keep");
    unmatched packets of the other inputs are dropped. Packets without a seq on the first
    input pass at once; on the other inputs they are dropped.
    """

    def __init__(self, inbox: NodeInbox, unmatched: str) -> None:
        self.inbox = inbox
        self.keep = unmatched == "keep"
        self.edges = inbox.edges
        self.pending: dict[Edge, collections.deque[Packet]] = {
            e: collections.deque() for e in self.edges
        }
        self.limit = max(e.size for e in self.edges) + 64  # per input, waiting for partners
        self.unmatched = 0
        self.joined = 0

    def _pull(self) -> bool:
        """Move queued packets into pending (under the lock). True if anything moved."""
        moved = False
        for edge in self.edges:
            pending = self.pending[edge]
            while edge.queue and len(pending) < self.limit:
                pending.append(edge.queue.popleft()[1])
                edge.delivered += 1
                moved = True
        if moved:
            self.inbox.wake_putters()
        return moved

    def _ended(self, edge: Edge) -> bool:
        return (edge.eof or edge.dead) and not edge.queue and not self.pending[edge]

    def _resolve(self) -> tuple[list[Packet], bool]:
        """Packets decided now, and whether the join is over."""
        out: list[Packet] = []
        first, others = self.edges[0], self.edges[1:]
        head = self.pending[first]
        while head:
            packet = head[0]
            seq = packet.get("seq")
            if seq is None:
                out.append(head.popleft())
                continue
            parts: dict[str, Packet] = {}
            undecided = False
            for edge in others:
                queue = self.pending[edge]
                while queue and (queue[0].get("seq") is None or _before(queue[0]["seq"], seq)):
                    dropped = queue.popleft()
                    if dropped.get("kind") != "stream":  # an announcement is not data
                        self.unmatched += 1
                if queue and queue[0].get("seq") == seq:
                    parts[edge.src] = queue[0]
                elif not queue and not self._ended(edge):
                    undecided = True
            if undecided:
                break
            head.popleft()
            for edge in others:
                if edge.src in parts:
                    self.pending[edge].popleft()
            if len(parts) == len(others) or self.keep:
                joined = dict(packet)
                for src, part in parts.items():
                    joined[src] = {k: v for k, v in part.items() if k != "image" and k != TAG}
                out.append(joined)
                self.joined += len(parts) == len(others)
                if len(parts) != len(others):
                    self.unmatched += 1
            else:
                self.unmatched += 1 + len(parts)
        over = self._ended(first)
        if over:
            for edge in others:
                self.unmatched += sum(p.get("kind") != "stream" for p in self.pending[edge])
                self.pending[edge].clear()
        return out, over

    def __call__(self, idle: Callable[[], None]) -> Iterator[Packet]:
        cond = self.inbox.cond
        while True:
            with cond:
                self._pull()
                out, over = self._resolve()
            for packet in out:
                yield packet
            if over:
                return
            if out:
                continue
            idle()
            with cond:
                while True:
                    if self._pull():
                        break
                    out, over = self._resolve()
                    if out or over:
                        break
                    self.inbox.wait(taker=True)
            for packet in out:
                yield packet
            if over:
                return


def _before(a: Any, b: Any) -> bool:
    try:
        return bool(a < b)
    except TypeError:
        return False
