"""graph.run: start a checked spec as subprocesses, relay what must be relayed, stop it organically.

    cam ──pipe──> det ──pipe──> view           a one-to-one edge is a plain OS pipe:
                                               the runner never touches its bytes

                      ┌─ Edge(queue 8, block) ──> Inbox(rec) ─ feeder ─pipe─> rec
    cam ─pipe─> Fanout┤                                                     (lossless)
      (reader thread) └─ Edge(queue 2, old) ───> Inbox(view) ─ feeder ─pipe─> view
                                                                            (leaky: drops
                                                                             counted)
    a ─pipe─> Fanout ─ Edge ─┐
                             ├─> Inbox(join) ─ feeder: merge (arrival order, "from" = a|b)
    b ─pipe─> Fanout ─ Edge ─┘                         or zip (by "seq") ─pipe─> join

                                   ┌─pipe─> slow.0 ─pipe─┐ collector ┐  Pool's reorder buffer
    Inbox(slow) ─ feeder ─ Pool ───┤  (hidden seq tag)   │           ├─ (original order) ─>
                                   └─pipe─> slow.1 ─pipe─┘ collector ┘  Fanout ─> ...

Each Fanout is fed by one thread (a node's output read with PacketReader, handed over in a
batch before each read that may block, or a Pool's collectors); each Inbox by the Edges into
it, and drained by one feeder thread that writes to the node's stdin (or its workers' stdins)
with PacketWriter, so every output starts with its own header.

The main thread only starts processes, watches them (polling), forwards signals and prints
statistics; signal handlers set flags and nothing else.

Stopping: the producers get SIGINT (Ctrl-C) or SIGTERM; every other node drains until EOF.
After `grace` seconds whatever is left gets SIGTERM, and SIGKILL 3 seconds later. A second
Ctrl-C (or SIGTERM) sends SIGTERM to every node at once.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import itertools
import os
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from vflow_cli.framing import Packet, PacketReader, PacketWriter, StreamError, widen_pipe
from vflow_cli.graph.spec import Node, Spec

TAG = "_vflow_graph_seq"  # hidden sequence number of a packet sent to one of several workers
KILL_AFTER = 3.0  # seconds between SIGTERM and SIGKILL
POLL = 0.02  # seconds between looks at the processes
TAIL = 8  # stderr lines kept per process for a failure report
UNTAGGED_WARNING = 1000  # this many outputs in a row without TAG: the stage strips fields

_STAMP = itertools.count()  # arrival order across the edges of one merge


@functools.cache
def orphan_guard() -> tuple[str, ...]:
    """The argv prefix that ends a node when the runner dies, even by SIGKILL.

    The kernel does this for a child that set PR_SET_PDEATHSIG. The runner has threads, so
    it cannot set it between fork and exec itself (preexec_fn may deadlock); setpriv
    (util-linux) sets it, then execs the node in the same process. The node gets SIGTERM:
    a producer stops, a writer finalises its file. Where setpriv is missing, nothing.
    """
    path = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return (path, "--pdeathsig", "TERM", "--") if path else ()


class Log:
    """Lines for people on stderr, one writer at a time."""

    def __init__(self, verbosity: int) -> None:
        self.verbosity = verbosity
        self._lock = threading.Lock()

    def line(self, text: str) -> None:
        with self._lock:
            try:
                sys.stderr.write(text + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    def say(self, text: str) -> None:
        if self.verbosity >= 0:
            self.line(f"vflow graph: {text}")

    def info(self, text: str) -> None:
        if self.verbosity >= 1:
            self.line(f"vflow graph: {text}")


# -- edges and inboxes -------------------------------------------------------------------------


class Inbox:
    """The relayed inputs of one node; one condition for all of them."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.cond = threading.Condition()
        self.edges: list[Edge] = []
        self.takers = 0  # threads waiting for a packet (a feeder)
        self.putters = 0  # threads waiting for room (a lossless fan-out)

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

    def __init__(self, src: str, inbox: Inbox, size: int, leaky: str) -> None:
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
                queue.append((next(_STAMP), packet))
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


class StartError(Exception):
    """A node could not be started (one line, naming it)."""


class _NoReader(Exception):
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


# -- processes -------------------------------------------------------------------------------


class Proc:
    """One running copy of a node."""

    def __init__(self, node: Node, index: int, graph: Graph) -> None:
        self.node = node
        self.index = index
        self.name = node.name if node.workers == 1 else f"{node.name}.{index}"
        self.graph = graph
        self.popen: subprocess.Popen[bytes] | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL)
        self.code: int | None = None
        self.signalled = False  # we asked it to stop
        self.stderr_thread: threading.Thread | None = None

    def start(self, stdin: Any, stdout: Any, env: dict[str, str], cwd: str | None) -> None:
        self.popen = subprocess.Popen(
            [*orphan_guard(), *self.node.argv],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            process_group=0,  # our own Ctrl-C must not reach it; we decide who stops when
            close_fds=True,
        )
        self.stderr_thread = threading.Thread(
            target=self._relay_stderr, name=f"stderr-{self.name}", daemon=True
        )
        self.stderr_thread.start()

    def _relay_stderr(self) -> None:
        assert self.popen is not None and self.popen.stderr is not None
        log = self.graph.log
        with self.popen.stderr as err:
            for raw in err:
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.tail.append(text)
                log.line(f"{self.name}: {text}")

    def signal(self, signum: int) -> None:
        if self.popen is None or self.code is not None:
            return
        self.signalled = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)

    def poll(self) -> int | None:
        if self.code is None and self.popen is not None:
            code = self.popen.poll()
            if code is not None:
                self.code = code
        return self.code


def _status(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


def _exit_code(code: int) -> int:
    return 128 - code if code < 0 else code


# -- the join policies -----------------------------------------------------------------------


BATCH = 256  # packets a feeder takes from its queues at once (one lock, one wake-up)


def _take_merge(inbox: Inbox) -> list[tuple[Edge, Packet]] | None:
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


def merge(inbox: Inbox, idle: Callable[[], None]) -> Iterator[Packet]:
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

    def __init__(self, inbox: Inbox, unmatched: str) -> None:
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
                    queue.popleft()
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
                self.unmatched += len(self.pending[edge])
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


# -- workers ---------------------------------------------------------------------------------


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
        self.writers: list[PacketWriter | None] = []
        self.assigned: list[collections.deque[int]] = []  # per worker: unfinished tags
        self.current: list[int | None] = []  # per worker: tag of its last output
        self.owner: dict[int, int] = {}
        self.outputs: dict[int, list[Packet]] = collections.defaultdict(list)
        self.finished: set[int] = set()
        self.tail: list[Packet] = []  # untagged output of a worker that got no input
        self.next_tag = 0  # to hand out
        self.next_out = 0  # oldest not yet sent on
        self.turn = 0
        self.open_outputs = 0
        self.out_dead = False
        self.pids: list[int] = []
        self.fed: list[int] = []  # packets given to each worker
        self.extra = 0  # packets given to a full worker that waited for more
        self.out_fds: dict[int, int] = {}  # worker -> the pipe its output comes on
        self.untagged = 0  # packets in a row without the hidden field
        self.warned = False
        self.cut = False  # a worker's output ended without its trailer

    def add_worker(self, stdin_fd: int, pid: int) -> None:
        self.pids.append(pid)
        self.fed.append(0)
        self.writers.append(PacketWriter(open(stdin_fd, "wb", buffering=0)))  # noqa: SIM115 (closed by close())
        self.assigned.append(collections.deque())
        self.current.append(None)

    # feeder side

    def _live(self) -> list[int]:
        return [i for i, w in enumerate(self.writers) if w is not None]

    def _choose(self) -> int | None:
        """A worker with room; None when every worker is full (or none is left)."""
        live = self._live()
        if not live:
            return None
        if self.fanout is None:  # a consumer: round robin
            self.turn += 1
            return live[self.turn % len(live)]
        free = [i for i in live if len(self.assigned[i]) < self.node.window]
        if free:
            return min(free, key=lambda i: len(self.assigned[i]))
        return None

    def _starved(self, index: int, waited: float) -> bool:
        """Has this worker read all it was given, and does it wait for more?"""
        writer = self.writers[index]
        if writer is None:
            return False
        try:
            import fcntl
            import termios

            fd = writer._stream.fileno()  # type: ignore[attr-defined]
            for pipe in (fd, self.out_fds.get(index)):  # its input, and its output to us
                if pipe is None:
                    continue
                unread = int.from_bytes(fcntl.ioctl(pipe, termios.FIONREAD, b"\0" * 4), "little")
                if unread:
                    return False  # it has input to read, or we have its output to read
            with open(f"/proc/{self.pids[index]}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            if state != "S":
                return False  # running: busy with what it holds
            wchan = ""
            with contextlib.suppress(OSError), open(f"/proc/{self.pids[index]}/wchan") as f:
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
                if index is None or self.writers[index] is None:
                    if not self._live():
                        return False
                    continue
                tag = self.next_tag
                self.next_tag += 1
                self.owner[tag] = index
                self.assigned[index].append(tag)
                self.fed[index] += 1
            writer = self.writers[index]
            assert writer is not None
            try:
                writer.write({**packet, TAG: tag})
                return True
            except (BrokenPipeError, OSError):
                self.log.info(f"{self.node.name}.{index} stopped reading")
                with self.lock:
                    self.writers[index] = None
                    self._worker_done(index)
                    self.lock.notify_all()

    def flush(self) -> None:
        for index, writer in enumerate(self.writers):
            if writer is not None:
                try:
                    writer.flush()
                except OSError:
                    with self.lock:
                        self.writers[index] = None

    def close(self, end: bool = True) -> None:
        for writer in self.writers:
            if writer is not None:
                with contextlib.suppress(OSError):
                    writer.flush()
                _close_writer(writer, end=end)
        self.writers = [None] * len(self.writers)
        if self.fanout is None:
            return
        with self.lock:
            self._send_ready()

    # collector side

    def collect(self, index: int, stream: BinaryIO) -> None:
        assert self.fanout is not None
        with self.lock:
            self.out_fds[index] = stream.fileno()
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
                self.out_fds.pop(index, None)
            stream.close()
            with self.lock:
                self.lock.notify_all()
                self._worker_done(index)
                self.open_outputs -= 1
                self._send_ready()
                if self.open_outputs == 0:
                    for tag in sorted(self.outputs):
                        self._emit(self.outputs.pop(tag))
                    self._emit(self.tail)
                    self.tail = []
                    self.fanout.close(self.cut)

    def _arrive(self, index: int, packet: Packet) -> None:
        tag = packet.pop(TAG, None)
        assigned = self.assigned[index]
        if type(tag) is int and self.owner.get(tag) == index:
            while assigned and assigned[0] < tag:
                self._finish(assigned.popleft())
            self.current[index] = tag
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
            tag = self.current[index]
            if tag is None:
                tag = assigned[0] if assigned else None
        if tag is None:
            self.tail.append(packet)
        elif tag == self.next_out:
            self._emit([packet])
        else:
            self.outputs[tag].append(packet)

    def _finish(self, tag: int) -> None:
        self.finished.add(tag)
        self.owner.pop(tag, None)

    def _worker_done(self, index: int) -> None:
        """A worker's output ended (or it can take no more): all its inputs are finished."""
        if self.fanout is None:
            return
        while self.assigned[index]:
            self._finish(self.assigned[index].popleft())
        self.current[index] = None

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


# -- the graph -------------------------------------------------------------------------------


class Graph:
    def __init__(
        self,
        spec: Spec,
        *,
        gpus: dict[str, list[str | None]],
        relay_all: bool = False,
        verbosity: int = 0,
        grace: float | None = None,
        stats: float | None = None,
    ) -> None:
        self.spec = spec
        self.gpus = gpus
        self.relay_all = relay_all
        self.log = Log(verbosity)
        self.grace = spec.grace if grace is None else grace
        self.stats_every = stats
        self.procs: dict[str, list[Proc]] = {}
        self.fanouts: dict[str, Fanout] = {}
        self.inboxes: dict[str, Inbox] = {}
        self.edges: list[Edge] = []
        self.direct: set[tuple[str, str]] = set()
        self.pools: dict[str, Pool] = {}
        self.zips: dict[str, Zip] = {}
        self.threads: list[threading.Thread] = []
        self.stdout_fd = 1
        self.stdout_lock = threading.Lock()  # whole lines from several consumers
        self.relay_lines = False
        self.failures: list[Proc] = []
        self.forced = False  # every node was told to stop at once (a second Ctrl-C or SIGTERM)
        self.stop_reason: str | None = None  # interrupt | terminate | failure
        self.stop_at: float | None = None
        self.term_at: float | None = None
        self.kill_at: float | None = None
        self.presses = 0
        self.sigterms = 0
        self.want_stats = False
        self.started = time.monotonic()
        self.last_stats = (self.started, {})  # type: tuple[float, dict[str, int]]

    # -- plan

    def _is_direct(self, src: Node, dst: Node) -> bool:
        return (
            not self.relay_all
            and len(src.readers) == 1
            and len(dst.inputs) == 1
            and src.workers == 1
            and dst.workers == 1
            and dst.leaky == "no"
        )

    def _env(self, node: Node, worker: int) -> dict[str, str]:
        env = dict(os.environ)
        env.update(node.env)
        gpu = self.gpus.get(node.name, [None] * node.workers)[worker]
        if gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = gpu
        env["VFLOW_GRAPH_NODE"] = node.name
        env["VFLOW_GRAPH_WORKER"] = str(worker)
        return env

    def _cwd(self, node: Node) -> str | None:
        if node.cwd is None:
            return None
        here = os.path.dirname(os.path.abspath(self.spec.path))
        return os.path.join(here, node.cwd)

    def start(self) -> None:
        nodes = self.spec.nodes
        for node in nodes.values():
            if node.kind != "consumer" and (
                node.workers > 1
                or (not node.readers and self.relay_all)
                or len(node.readers) > 1
                or (node.readers and not self._is_direct(node, nodes[node.readers[0]]))
            ):
                self.fanouts[node.name] = Fanout(node)
            if len(node.inputs) > 1 or (
                node.inputs and not self._is_direct(nodes[node.inputs[0]], node)
            ):
                self.inboxes[node.name] = Inbox(node)
        for node in nodes.values():
            for src in node.inputs:
                if (src, node.name) in self.direct or node.name not in self.inboxes:
                    self.direct.add((src, node.name))
                    continue
                edge = Edge(src, self.inboxes[node.name], node.queue_size, node.leaky)
                self.edges.append(edge)
                self.fanouts[src].outlets.append(edge)
        stdout_fd = self.stdout_fd = sys.stdout.fileno() if _has_fd(sys.stdout) else 1
        sharing = 0  # processes that write to the graph's stdout
        for name, fanout in self.fanouts.items():
            node = nodes[name]
            if not node.readers and node.stdout is None:
                fanout.outlets.append(StdoutOutlet(stdout_fd))
                sharing += 1
            elif not node.readers:
                fanout.outlets.append(_FileOutlet(node.stdout))
        sharing += sum(n.workers for n in nodes.values() if n.kind == "consumer" and not n.stdout)
        self.relay_lines = sharing > 1
        # pipes of direct edges: src stdout -> dst stdin
        direct_in: dict[str, int] = {}
        direct_out: dict[str, int] = {}
        for src, dst in self.direct:
            r, w = os.pipe()
            widen_pipe(w)
            direct_out[src], direct_in[dst] = w, r
        try:
            for node in nodes.values():
                try:
                    self._start_node(node, direct_in.get(node.name), direct_out.get(node.name))
                except OSError as exc:
                    where = f" ({exc.filename})" if exc.filename else ""
                    raise StartError(
                        f"node '{node.name}': cannot start: {exc.strerror or exc}{where}"
                    ) from None
        finally:
            for fd in [*direct_in.values(), *direct_out.values()]:
                os.close(fd)
        for name, inbox in self.inboxes.items():
            self._thread(f"feed-{name}", self._feed, inbox)

    def _start_node(self, node: Node, in_fd: int | None, out_fd: int | None) -> None:
        procs = self.procs[node.name] = [Proc(node, i, self) for i in range(node.workers)]
        fanout = self.fanouts.get(node.name)
        pool = None
        if node.workers > 1:
            pool = self.pools[node.name] = Pool(node, fanout, self.log)
        if node.name in self.inboxes and len(node.inputs) > 1 and node.join == "zip":
            self.zips[node.name] = Zip(self.inboxes[node.name], node.unmatched)
        for index, proc in enumerate(procs):
            parent_ends: list[int] = []
            child_ends: list[int] = []
            stdin: Any = subprocess.DEVNULL
            if node.kind != "producer":
                if in_fd is not None:
                    stdin = in_fd
                else:
                    r, w = os.pipe()
                    if node.leaky == "no":
                        widen_pipe(w)
                    else:  # a leaky queue wants little hidden behind it, in the pipe
                        _narrow_pipe(w)
                    stdin = r
                    child_ends.append(r)
                    parent_ends.append(w)
            stdout: Any = None
            out_file = None
            if node.kind != "consumer" and fanout is not None:
                r, w = os.pipe()
                widen_pipe(w)
                stdout = w
                child_ends.append(w)
                parent_ends.append(r)
            elif out_fd is not None:
                stdout = out_fd
            elif node.stdout is not None:
                out_file = open(node.stdout, "ab")  # noqa: SIM115 (closed just below)
                stdout = out_file
            elif self.relay_lines:  # a consumer among several writing to our stdout
                r, w = os.pipe()
                stdout = w
                child_ends.append(w)
                self._thread(f"lines-{proc.name}", self._relay_lines, r)
            try:
                proc.start(stdin, stdout, self._env(node, index), self._cwd(node))
            finally:
                for fd in child_ends:
                    os.close(fd)
                if out_file is not None:
                    out_file.close()
            if node.kind != "producer" and in_fd is None:
                w = parent_ends.pop(0)
                if pool is not None:
                    assert proc.popen is not None
                    pool.add_worker(w, proc.popen.pid)
                else:
                    self.inboxes[node.name].writer_fd = w  # type: ignore[attr-defined]
            if parent_ends:
                r = parent_ends.pop(0)
                stream = open(r, "rb", buffering=0)  # noqa: SIM115 (closed by close())
                if pool is not None:
                    pool.open_outputs += 1
                    self._thread(f"collect-{proc.name}", pool.collect, index, stream)
                else:
                    assert fanout is not None
                    self._thread(f"read-{node.name}", self._read, fanout, stream)

    def _thread(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    # -- relay threads

    def _relay_lines(self, fd: int) -> None:
        """A consumer's stdout -> ours, whole lines only, so that the lines of consumers
        sharing the graph's stdout never cut into each other. Once our stdout is closed
        (`| head`), stop reading: the consumer then ends as it would in a shell pipe."""
        lock = self.stdout_lock
        rest = b""
        try:
            while chunk := os.read(fd, 1 << 16):
                data = rest + chunk if rest else chunk
                cut = data.rfind(b"\n") + 1
                if cut:
                    with lock:
                        _write_all(self.stdout_fd, memoryview(data)[:cut])
                rest = data[cut:]
            if rest:  # a last line without its newline
                with lock:
                    _write_all(self.stdout_fd, memoryview(rest))
        except OSError:  # EPIPE: nobody reads our stdout any more
            pass
        finally:
            os.close(fd)

    def _read(self, fanout: Fanout, stream: BinaryIO) -> None:
        """A node's output -> its fanout, whole packets; stop reading once nobody listens."""
        name = fanout.node.name
        batch: list[Packet] = []
        cut = False

        def hand_over() -> None:
            # called before every read that may block: what has arrived goes on at once,
            # and a burst of small packets costs one lock and one wake-up per queue
            if batch:
                alive = fanout.put_many(batch)
                batch.clear()
                if not alive:
                    raise _NoReader

        try:
            for packet in PacketReader(stream, on_idle=hand_over, name=f"{name}'s output"):
                batch.append(packet)
                if len(batch) >= BATCH:
                    hand_over()
            hand_over()
        except _NoReader:
            self.log.info(f"{name}: no reader left; closing its output")
        except StreamError as exc:
            cut = True
            rest = batch[:]  # whole packets read before the damage still go on
            batch.clear()
            if rest:
                fanout.put_many(rest)
            if not self._failed(name):
                self.log.say(f"{name}: {exc}")
        except OSError as exc:
            cut = True
            self.log.say(f"{name}: reading its output: {exc}")
        finally:
            stream.close()
            fanout.close(cut)

    def _failed(self, name: str) -> bool:
        procs = self.procs.get(name, [])
        for proc in procs:
            if proc.popen is not None:
                try:
                    proc.popen.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    continue
                code = proc.popen.returncode
                if code not in (0, 141, -13):
                    return True
        return False

    def _feed(self, inbox: Inbox) -> None:
        node = inbox.node
        pool = self.pools.get(node.name)
        writer: PacketWriter | None = None
        if pool is None:
            fd = inbox.writer_fd  # type: ignore[attr-defined]
            writer = PacketWriter(open(fd, "wb", buffering=0))  # noqa: SIM115
            idle = writer.flush
        else:
            idle = pool.flush
        packets = self.zips[node.name](idle) if node.name in self.zips else merge(inbox, idle)
        finished = False
        try:
            for packet in packets:
                if pool is not None:
                    if not pool.write(packet):
                        break
                else:
                    assert writer is not None
                    writer.write(packet)
            else:
                finished = True
        except (BrokenPipeError, OSError):
            self.log.info(f"{node.name}: stopped reading its input")
        finally:
            # the node's input ends cleanly only if every input did
            end = finished and not any(edge.cut for edge in inbox.edges)
            for edge in inbox.edges:
                edge.kill()  # nobody reads here any more: let the sources go on
            if pool is not None:
                pool.close(end)
            elif writer is not None:
                with contextlib.suppress(OSError):
                    writer.flush()
                _close_writer(writer, end=end)

    # -- signals

    def _on_sigint(self, signum: int, frame: Any) -> None:
        self.presses += 1

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self.sigterms += 1

    def _on_sigusr1(self, signum: int, frame: Any) -> None:
        self.want_stats = True

    # -- main loop

    def run(self) -> int:
        handlers = {
            signal.SIGINT: self._on_sigint,
            signal.SIGTERM: self._on_sigterm,
            signal.SIGUSR1: self._on_sigusr1,
        }
        old = {s: signal.signal(s, h) for s, h in handlers.items()}
        try:
            try:
                self.start()
            except (StartError, OSError) as exc:
                self.log.say(f"{self.spec.path}: {exc}; nothing runs")
                self._stop_all(signal.SIGKILL)
                for proc in self._all():
                    if proc.popen is not None:
                        proc.popen.wait()
                return 1
            self._watch()
        finally:
            for s, h in old.items():
                signal.signal(s, h)
        for thread in self.threads:
            thread.join(timeout=2)
        return self._finish()

    def _all(self) -> list[Proc]:
        return [p for procs in self.procs.values() for p in procs]

    def _watch(self) -> None:
        handled_presses = handled_terms = 0
        next_stats = self.started + self.stats_every if self.stats_every else None
        reported: set[int] = set()
        while True:
            live = [p for p in self._all() if p.poll() is None]
            for proc in self._all():
                if proc.code is not None and id(proc) not in reported:
                    reported.add(id(proc))
                    self._exited(proc)
            if not live:
                return
            now = time.monotonic()
            if self.presses > handled_presses:
                handled_presses = self.presses
                if self.stop_reason in (None, "failure") and handled_presses == 1:
                    self._stop("interrupt", signal.SIGINT)
                else:
                    self.log.say("interrupted again: stopping every node now")
                    self.stop_reason = self.stop_reason or "interrupt"
                    self.forced = True
                    self._stop_all(signal.SIGTERM)
            if self.sigterms > handled_terms:
                handled_terms = self.sigterms
                if self.stop_reason in (None, "failure") and handled_terms == 1:
                    self._stop("terminate", signal.SIGTERM)
                else:
                    self.forced = True
                    self._stop_all(signal.SIGTERM)
            if self.term_at is None and self.stop_at is not None and now >= self.stop_at:
                names = ", ".join(p.name for p in live)
                self.log.say(f"still running {self.grace:g} s after the stop: {names}; SIGTERM")
                self._stop_all(signal.SIGTERM)
            if self.kill_at is not None and now >= self.kill_at:
                self.log.say("SIGKILL: " + ", ".join(p.name for p in live))
                for proc in live:
                    proc.signal(signal.SIGKILL)
                self.kill_at = float("inf")
            if self.want_stats or (next_stats is not None and now >= next_stats):
                self.want_stats = False
                self.print_stats()
                if next_stats is not None:
                    next_stats = now + (self.stats_every or 1)
            time.sleep(POLL)

    def _stop(self, reason: str, signum: int) -> None:
        """Producers stop; the rest drains; after `grace` seconds, SIGTERM."""
        first = self.stop_reason is None
        self.stop_reason = reason if self.stop_reason in (None, "failure") else self.stop_reason
        if reason == "interrupt":
            self.log.info("interrupted: stopping the producers; the rest drains")
        elif reason == "terminate":
            self.log.info("terminated: stopping the producers; the rest drains")
        for proc in self._all():
            if proc.node.kind == "producer":
                proc.signal(signum)
        if first or self.stop_at is None:
            self.stop_at = time.monotonic() + self.grace

    def _stop_all(self, signum: int) -> None:
        for proc in self._all():
            proc.signal(signum)
        if signum != signal.SIGKILL and self.term_at is None:
            self.term_at = time.monotonic()
            self.kill_at = self.term_at + KILL_AFTER

    def _ok(self, proc: Proc) -> bool:
        code = proc.code
        if code in (0, 141, -13):  # 141: its reader left first, which is no crash
            return True
        # stopped by us: SIGINT or SIGTERM, or SIGKILL after the grace (reported when sent)
        return proc.signalled and code in (130, 143, -2, -15, -9)

    def _exited(self, proc: Proc) -> None:
        assert proc.code is not None
        if self._ok(proc):
            self.log.info(f"{proc.name}: {_status(proc.code)}")
            return
        if proc.stderr_thread is not None:
            proc.stderr_thread.join(timeout=1)  # its last words first
        if self.forced:
            # stopped all at once, a node may see its input cut mid-packet: that is the
            # stop the user asked for, not a failure of the graph
            self.log.info(f"{proc.name}: {_status(proc.code)} (stopped at once)")
            return
        self.failures.append(proc)
        policy = self.spec.on_failure
        action = (
            "stopping the graph"
            if policy == "stop"
            else 'the rest goes on (on_failure = "continue")'
        )
        if self.stop_reason not in (None, "failure") or self.term_at is not None:
            action = "while stopping"
        self.log.say(
            f"node '{proc.name}' ({proc.node.label}) failed: {_status(proc.code)}; {action}"
        )
        for text in proc.tail:
            self.log.say(f"  {proc.name}| {text}")
        if policy == "stop" and self.stop_reason is None:
            self.stop_reason = "failure"
            self._stop("failure", signal.SIGTERM)

    # -- reports

    def _counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for name, fanout in self.fanouts.items():
            counts[f"out:{name}"] = fanout.packets
        for edge in self.edges:
            key = f"in:{edge.dst}"
            counts[key] = counts.get(key, 0) + edge.delivered
        return counts

    def print_stats(self) -> None:
        now = time.monotonic()
        then, before = self.last_stats
        counts = self._counts()
        span = max(now - then, 1e-9)
        self.last_stats = (now, counts)
        lines = [
            f"{now - self.started:.1f} s; packets in/out per node (rate over the last "
            f"{span:.1f} s); '-': a direct pipe the runner does not see (--stats relays all)"
        ]
        for name, procs in self.procs.items():
            states = ",".join("running" if p.code is None else _status(p.code) for p in procs)
            pin = counts.get(f"in:{name}")
            pout = counts.get(f"out:{name}")
            rate = ""
            if pout is not None:
                rate = f"{(pout - before.get(f'out:{name}', 0)) / span:,.1f}/s out"
            elif pin is not None:
                rate = f"{(pin - before.get(f'in:{name}', 0)) / span:,.1f}/s in"
            pool = self.pools.get(name)
            extra = ""
            if pool is not None:
                shares = "/".join(map(str, pool.fed))
                extra = (
                    f", per worker in {shares} ({pool.extra} beyond the window), "
                    f"reorder buffer {pool.held}"
                )
            zipper = self.zips.get(name)
            if zipper is not None:
                extra += f", joined {zipper.joined}, unmatched {zipper.unmatched}"
            lines.append(
                f"  node {name}: in {'-' if pin is None else pin}, "
                f"out {'-' if pout is None else pout}, {rate or 'no rate'}{extra} [{states}]"
            )
        for edge in self.edges:
            lines.append(
                f"  edge {edge.src} -> {edge.dst}: queue {len(edge.queue)}/{edge.size} "
                f"(leaky {edge.leaky}), in {edge.received}, out {edge.delivered}, "
                f"dropped {edge.dropped}"
            )
        for src, dst in sorted(self.direct):
            lines.append(f"  edge {src} -> {dst}: direct pipe")
        self.log.line("vflow graph: " + "\n".join(lines))

    def _finish(self) -> int:
        failed = bool(self.failures)
        for edge in self.edges:
            if edge.dropped:
                self.log.say(
                    f"edge {edge.src} -> {edge.dst}: dropped {edge.dropped} of {edge.received} "
                    f'packets (leaky = "{edge.leaky}", size {edge.size})'
                )
        for name, zipper in self.zips.items():
            if zipper.unmatched:
                self.log.say(
                    f"node '{name}': {zipper.unmatched} unmatched packets dropped by the zip join"
                )
        if self.log.verbosity >= 1 or failed:
            self.print_stats()
            usage = resource.getrusage(resource.RUSAGE_SELF)
            peak = usage.ru_maxrss  # KiB on Linux
            cpu = usage.ru_utime + usage.ru_stime
            summary = ", ".join(
                f"{p.name} {_status(p.code) if p.code is not None else '?'}" for p in self._all()
            )
            self.log.line(
                f"vflow graph: done in {time.monotonic() - self.started:.2f} s: {summary}; "
                f"runner peak memory {peak / 1024:.1f} MiB, CPU {cpu:.2f} s"
            )
        if failed:
            first = self.failures[0]
            assert first.code is not None
            code = _exit_code(first.code)
            return code if code not in (0, 130, 141, 143) else 1
        if self.stop_reason == "interrupt":
            return 130
        if self.stop_reason == "terminate":
            return 143
        return 0


class _FileOutlet(StdoutOutlet):
    """`stdout = "FILE"` on a node whose output is relayed anyway (workers)."""

    def __init__(self, path: str | None) -> None:
        assert path is not None
        self.file = open(path, "ab")  # noqa: SIM115 (closed in close())
        super().__init__(self.file.fileno())

    def close(self, cut: bool = False) -> None:
        super().close(cut)
        self.file.close()


def _close_writer(writer: PacketWriter, *, end: bool = True) -> None:
    """Send what is left (and the trailer, when `end`), stop its helper thread, close the
    pipe (the reader sees EOF)."""
    with contextlib.suppress(OSError):
        writer.close(end=end)
    with contextlib.suppress(OSError):
        writer._stream.close()  # type: ignore[attr-defined]


def _narrow_pipe(fd: int) -> None:
    """The smallest pipe the kernel allows (a page): few packets wait beyond a leaky queue."""
    with contextlib.suppress(OSError, ImportError):
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 4096)


def _write_all(fd: int, data: memoryview) -> None:
    while data:
        data = data[os.write(fd, data) :]


def _has_fd(stream: Any) -> bool:
    try:
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):
        return False
