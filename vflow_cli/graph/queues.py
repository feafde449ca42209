"""graph.queues: the edges the runner relays, and where a node's output goes.

    node's output ──PacketReader──> Fanout ──┬─> Edge (bounded queue) ──> NodeInbox of a reader
      (a reader thread)                      ├─> Edge ...
                                             └─> StdoutOutlet / FileOutlet (nobody reads it)

An Edge is a bounded queue of whole packets that blocks (leaky "no") or drops the oldest
("old") or the arriving packet ("new"); all the edges into one node share its NodeInbox's lock,
so one feeder thread waits on all of them at once. A stream that reached the fan-out cut
(its trailer missing) closes every edge cut, and what is fed from them ends cut too.
"""

from __future__ import annotations

import collections
import contextlib
import itertools
import os
import threading
from typing import Any

from vflow_cli.framing import Packet, PacketWriter
from vflow_cli.graph.spec import Node

STAMP = itertools.count()  # arrival order across the edges of one merge


class NodeInbox:
    """The relayed inputs of one node; one condition for all of them."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.cond = threading.Condition()
        self.edges: list[Edge] = []
        self.takers = 0  # threads waiting for a packet (a feeder)
        self.putters = 0  # threads waiting for room (a lossless fan-out)
        self.writer_fd: int | None = None  # the node's stdin, when the runner feeds it

    def wake_takers(self) -> None:
        if self.takers:
            self.cond.notify_all()

    def wake_putters(self) -> None:
        if self.putters:
            self.cond.notify_all()

    def wait(self, *, taker: bool) -> None:
        if taker:
            self.takers += 1
        else:
            self.putters += 1
        try:
            self.cond.wait()
        finally:
            if taker:
                self.takers -= 1
            else:
                self.putters -= 1


class Edge:
    """A bounded queue of whole packets from one node to another.

    leaky "no" blocks the writer when full (lossless back-pressure), "old" drops the oldest
    queued packet, "new" drops the packet arriving.
    """

    def __init__(self, src: str, inbox: NodeInbox, size: int, leaky: str) -> None:
        self.src = src
        self.dst = inbox.node.name
        self.inbox = inbox
        self.cond = inbox.cond
        self.size = size
        self.leaky = leaky
        self.queue: collections.deque[tuple[int, Packet]] = collections.deque()
        self.received = 0
        self.delivered = 0
        self.dropped = 0
        self.eof = False  # the source has ended
        self.cut = False  # ... without its stream's trailer: what follows is cut too
        self.dead = False  # the destination has gone: discard
        inbox.edges.append(self)

    def put(self, packet: Packet) -> None:
        self.put_many([packet])

    def put_many(self, packets: list[Packet]) -> None:
        """Queue packets in order under one lock, and wake the reader once."""
        with self.cond:
            queue = self.queue
            for packet in packets:
                if self.dead:
                    return
                self.received += 1
                if len(queue) >= self.size:
                    if self.leaky == "no":
                        self.inbox.wake_takers()  # what we queued so far, before we wait
                        while len(queue) >= self.size and not self.dead:
                            self.inbox.wait(taker=False)
                        if self.dead:
                            return
                    elif self.leaky == "old":
                        queue.popleft()
                        self.dropped += 1
                    else:
                        self.dropped += 1
                        continue
                queue.append((next(STAMP), packet))
            self.inbox.wake_takers()

    def close(self, cut: bool = False) -> None:
        with self.cond:
            self.eof = True
            self.cut = cut
            self.cond.notify_all()

    def kill(self) -> None:
        with self.cond:
            self.dead = True
            self.queue.clear()
            self.cond.notify_all()

    @property
    def alive(self) -> bool:
        return not self.dead


class NoReader(Exception):
    """Every reader of a fan-out has gone."""


class StdoutOutlet:
    """The graph's own stdout, for the one node whose packets nobody in the graph reads."""

    def __init__(self, fd: int) -> None:
        self.writer = PacketWriter(open(fd, "wb", buffering=0, closefd=False))  # noqa: SIM115 (closed by close())
        self.dead = False

    def put(self, packet: Packet) -> None:
        self.put_many([packet])

    def put_many(self, packets: list[Packet]) -> None:
        if self.dead:
            return
        try:
            for packet in packets:
                self.writer.write(packet)
            self.writer.flush()
        except (BrokenPipeError, OSError):
            self.dead = True

    def close(self, cut: bool = False) -> None:
        with contextlib.suppress(OSError):
            self.writer.close(end=not cut)

    @property
    def alive(self) -> bool:
        return not self.dead


class Fanout:
    """One node's output, copied (as the same packet) to each of its outlets."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.outlets: list[Any] = []
        self.packets = 0

    def put(self, packet: Packet) -> bool:
        """False once no outlet wants anything more."""
        return self.put_many([packet])

    def put_many(self, packets: list[Packet]) -> bool:
        self.packets += len(packets)
        alive = False
        for outlet in self.outlets:
            if outlet.alive:
                outlet.put_many(packets)
                alive = alive or outlet.alive
        return alive

    def close(self, cut: bool = False) -> None:
        for outlet in self.outlets:
            outlet.close(cut)


class FileOutlet(StdoutOutlet):
    """`stdout = "FILE"` on a node whose output is relayed anyway (workers)."""

    def __init__(self, path: str | None) -> None:
        assert path is not None
        self.file = open(path, "ab")  # noqa: SIM115 (closed in close())
        super().__init__(self.file.fileno())

    def close(self, cut: bool = False) -> None:
        super().close(cut)
        self.file.close()


def close_writer(writer: PacketWriter, *, end: bool = True) -> None:
    """Send what is left (and the trailer, when `end`), stop its helper thread, close the
    pipe (the reader sees EOF)."""
    with contextlib.suppress(OSError):
        writer.close(end=end)
    with contextlib.suppress(OSError):
        writer.close_stream()


def write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]
