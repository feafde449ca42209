"""graph.pool: several copies of a node (`workers = N`), packets spread and put back in order."""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import BinaryIO

from vflow_cli.framing import Packet, PacketReader, PacketWriter, StreamError
from vflow_cli.graph.log import Log
from vflow_cli.graph.queues import Fanout, close_writer
from vflow_cli.graph.spec import Node

TAG = "_vflow_graph_seq"  # hidden sequence number of a packet sent to one of several workers
POLL = 0.02  # seconds a full pool waits between looks at its workers
UNTAGGED_WARNING = 1000  # this many outputs in a row without TAG: the stage strips fields


@dataclass
class Worker:
    """One copy of the node, as the pool sees it."""

    pid: int
    writer: PacketWriter | None  # its input; None once it can take no more
    # unfinished tags; the first is the input its outputs belong to now
    assigned: collections.deque[int] = field(default_factory=collections.deque)
    fed: int = 0  # packets given to it
    out_fd: int | None = None  # the pipe its output comes on, while it is open


class Pool:
    """Several copies of one node: spread packets, put their outputs back in order.

    Each input packet gets a hidden sequence number (TAG) that stages pass through with the
    rest of its fields. A worker keeps the order of its inputs, so when it sends a packet
    tagged N, all its inputs before N are finished (even those it dropped); at EOF all are.
    Outputs of the oldest unfinished input go on at once; later ones wait in the reorder
    buffer. A worker may hold `window` unfinished inputs; when all are full the feeder waits
    for one to finish. A stage that drops packets finishes nothing until it sends a later
    one: if the worker holding the oldest unfinished input has read all its input and sleeps
    (its pipe is empty and /proc says it waits), it gets one more packet. So the pool cannot
    stall, a busy worker is not given more than its share, and the reorder buffer holds at
    most (workers - 1) x window inputs' outputs.
    """

    def __init__(self, node: Node, fanout: Fanout | None, log: Log) -> None:
        self.node = node
        self.fanout = fanout  # None: a consumer; outputs are not read
        self.log = log
        self.lock = threading.Condition()  # collectors notify: a packet finished or arrived
        self.workers: list[Worker] = []
        self.owner: dict[int, int] = {}  # unfinished tag -> the worker holding it
        self.outputs: dict[int, list[Packet]] = collections.defaultdict(list)
        self.finished: set[int] = set()
        self.tail: list[Packet] = []  # untagged output of a worker that got no input
        self.next_tag = 0  # to hand out
        self.next_out = 0  # oldest not yet sent on
        self.turn = 0
        self.open_outputs = 0
        self.out_dead = False
        self.extra = 0  # packets given to a full worker that waited for more
        self.untagged = 0  # packets in a row without the hidden field
        self.warned = False
        self.cut = False  # a worker's output ended without its trailer

    def add_worker(self, stdin_fd: int, pid: int) -> None:
        writer = PacketWriter(open(stdin_fd, "wb", buffering=0))  # noqa: SIM115 (closed by close())
        self.workers.append(Worker(pid, writer))

    @property
    def fed(self) -> list[int]:
        """Packets given to each worker."""
        return [w.fed for w in self.workers]

    # feeder side

    def _live(self) -> list[int]:
        return [i for i, w in enumerate(self.workers) if w.writer is not None]

    def _choose(self) -> int | None:
        """A worker with room; None when every worker is full (or none is left)."""
        live = self._live()
        if not live:
            return None
        if self.fanout is None:  # a consumer: round robin
            self.turn += 1
            return live[self.turn % len(live)]
        free = [i for i in live if len(self.workers[i].assigned) < self.node.window]
        if free:
            return min(free, key=lambda i: len(self.workers[i].assigned))
        return None

    def _starved(self, index: int, waited: float) -> bool:
        """Has this worker read all it was given, and does it wait for more?"""
        worker = self.workers[index]
        if worker.writer is None:
            return False
        try:
            import fcntl
            import termios

            for pipe in (worker.writer.fileno(), worker.out_fd):  # its input, and its output to us
                if pipe is None:
                    continue
                unread = int.from_bytes(fcntl.ioctl(pipe, termios.FIONREAD, b"\0" * 4), "little")
                if unread:
                    return False  # it has input to read, or we have its output to read
            with open(f"/proc/{worker.pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state != "S":
                return False  # running: busy with what it holds
            wchan = ""
            with contextlib.suppress(OSError), open(f"/proc/{worker.pid}/wchan") as f:
                wchan = f.read().strip()
            if wchan in ("", "0"):
                return True  # the kernel does not say what it waits for
            # waiting to read: it wants input; waiting to write its output, or sleeping in
            # the middle of its work, it does not
            return "read" in wchan
        except (OSError, ValueError, IndexError, ImportError):
            return waited > 1.0  # no /proc: give it one more packet a second

    def write(self, packet: Packet) -> bool:
        """Send one packet to a worker; False when no worker is left."""
        while True:
            with self.lock:
                index = self._choose()
            if index is None and self._live():
                self.flush()  # what the workers wait for must reach them before we wait
                began = time.monotonic()
                pause = 0.0005  # a dropping worker reads at once, a busy one may take long
                with self.lock:
                    while True:
                        index = self._choose()
                        if index is not None or not self._live():
                            break
                        self.lock.wait(timeout=pause)
                        pause = min(pause * 2, POLL)
                        index = self._choose()
                        if index is not None:
                            break
                        # the worker with the oldest unfinished packet may have dropped all it
                        # holds: then only more input moves it (and the pool) on
                        lagging = self.owner.get(self.next_out)
                        if lagging is None or lagging not in self._live():
                            lagging = self._live()[0]
                        if self._starved(lagging, time.monotonic() - began):
                            index = lagging
                            self.extra += 1
                            break
            with self.lock:
                if index is None or self.workers[index].writer is None:
                    if not self._live():
                        return False
                    continue
                worker = self.workers[index]
                writer = worker.writer
                assert writer is not None
                tag = self.next_tag
                self.next_tag += 1
                self.owner[tag] = index
                worker.assigned.append(tag)
                worker.fed += 1
            try:
                writer.write({**packet, TAG: tag})
                return True
            except OSError:  # BrokenPipeError included
                self._stopped_reading(index)

    def _stopped_reading(self, index: int) -> None:
        """A worker's input broke: it takes no more, and what it held is given up (its
        process has failed; the graph reports that when it exits)."""
        self.log.info(f"{self.node.name}.{index} stopped reading")
        with self.lock:
            writer, self.workers[index].writer = self.workers[index].writer, None
            self._worker_done(index)
            self.lock.notify_all()
        if writer is not None:
            close_writer(writer, end=False)  # its pipe, and the helper thread, go

    def flush(self) -> None:
        for index, worker in enumerate(self.workers):
            if worker.writer is not None:
                try:
                    worker.writer.flush()
                except OSError:
                    self._stopped_reading(index)

    def close(self, end: bool = True) -> None:
        for worker in self.workers:
            if worker.writer is not None:
                with contextlib.suppress(OSError):
                    worker.writer.flush()
                close_writer(worker.writer, end=end)
                worker.writer = None

    # collector side

    def collect(self, index: int, stream: BinaryIO) -> None:
        assert self.fanout is not None
        with self.lock:
            self.workers[index].out_fd = stream.fileno()
        try:
            for packet in PacketReader(stream, name=f"{self.node.name}.{index}'s output"):
                with self.lock:
                    self._arrive(index, packet)
                    self._send_ready()
                    self.lock.notify_all()
                if self.out_dead:
                    break
        except StreamError as exc:
            self.cut = True
            self.log.say(f"{self.node.name}.{index}: {exc}")
        finally:
            with self.lock:
                self.workers[index].out_fd = None
            stream.close()
            with self.lock:
                self.lock.notify_all()
                self._worker_done(index)
                self.open_outputs -= 1
                if self.open_outputs == 0:
                    for tag in sorted(self.outputs):
                        self._emit(self.outputs.pop(tag))
                    self._emit(self.tail)
                    self.tail = []
                    self.fanout.close(self.cut)

    def _arrive(self, index: int, packet: Packet) -> None:
        tag = packet.pop(TAG, None)
        worker = self.workers[index]
        assigned = worker.assigned
        if type(tag) is int and self.owner.get(tag) == index:
            while assigned[0] < tag:  # tag itself is assigned: the loop stops at it
                self._finish(assigned.popleft())
            self.untagged = 0
        else:
            self.untagged += 1
            if self.untagged == UNTAGGED_WARNING and not self.warned:
                self.warned = True
                self.log.say(
                    f"node '{self.node.name}': {self.untagged} packets in a row came back "
                    f"without the hidden {TAG} field; a stage with workers must pass fields "
                    "it does not know, or its packets wait in the reorder buffer"
                )
            # the oldest input it holds: the one its last tagged output came from, or the
            # first it was given if it has sent none (a header)
            tag = assigned[0] if assigned else None
        if tag is None:
            self.tail.append(packet)
        elif tag == self.next_out:
            self._emit([packet])
        else:
            self.outputs[tag].append(packet)

    def _finish(self, tag: int) -> None:
        self.finished.add(tag)
        del self.owner[tag]

    def _worker_done(self, index: int) -> None:
        """A worker's output ended (or it can take no more): all its inputs are finished,
        and the outputs that waited for them go on."""
        if self.fanout is None:
            return
        worker = self.workers[index]
        while worker.assigned:
            self._finish(worker.assigned.popleft())
        self._send_ready()

    def _send_ready(self) -> None:
        while self.next_out in self.finished:
            self.finished.discard(self.next_out)
            self.next_out += 1
            self._emit(self.outputs.pop(self.next_out, []))

    def _emit(self, packets: list[Packet]) -> None:
        assert self.fanout is not None
        for packet in packets:
            if not self.out_dead and not self.fanout.put(packet):
                self.out_dead = True

    @property
    def held(self) -> int:
        return sum(len(v) for v in self.outputs.values())
