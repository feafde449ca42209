"""graph.relays: the threads that move packets the runner relays (see graph.queues).

    read_output:  a node's stdout ──PacketReader──> its Fanout (batched, before each read
                  that may block) ──> edges / the graph's stdout
    feed_input:   the edges into a node ──merge or zip──> PacketWriter ──> its stdin (or
                  its Pool of workers)
    relay_lines:  a consumer's text ──whole lines──> the graph's stdout (shared with others)

Each ends its output the way its input ended: with the stream's trailer only when every
input had one (graph.queues: a cut edge).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import BinaryIO

from vflow_cli.framing import Packet, PacketReader, PacketWriter, StreamError
from vflow_cli.graph.joins import BATCH, Zip, merge
from vflow_cli.graph.log import Log
from vflow_cli.graph.pool import Pool
from vflow_cli.graph.queues import Fanout, NodeInbox, NoReader, close_writer, write_all


def read_output(fanout: Fanout, stream: BinaryIO, log: Log, failed: Callable[[str], bool]) -> None:
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
                raise NoReader

    try:
        for packet in PacketReader(stream, on_idle=hand_over, name=f"{name}'s output"):
            batch.append(packet)
            if len(batch) >= BATCH:
                hand_over()
        hand_over()
    except NoReader:
        log.info(f"{name}: no reader left; closing its output")
    except StreamError as exc:
        cut = True
        rest = batch[:]  # whole packets read before the damage still go on
        batch.clear()
        if rest:
            fanout.put_many(rest)
        if not failed(name):  # a node that failed is reported as such, not its stream
            log.say(f"{name}: {exc}")
    except OSError as exc:
        cut = True
        log.say(f"{name}: reading its output: {exc}")
    finally:
        stream.close()
        fanout.close(cut)


def feed_input(
    inbox: NodeInbox, log: Log, *, pool: Pool | None, zipper: Zip | None, fd: int | None
) -> None:
    """The edges into a node -> its stdin (or its workers' stdins)."""
    node = inbox.node
    writer: PacketWriter | None = None
    if pool is None:
        assert fd is not None
        writer = PacketWriter(open(fd, "wb", buffering=0))  # noqa: SIM115 (close_writer)
        idle = writer.flush
    else:
        idle = pool.flush
    packets = zipper(idle) if zipper is not None else merge(inbox, idle)
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
        log.info(f"{node.name}: stopped reading its input")
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
            close_writer(writer, end=end)


def relay_lines(fd: int, out_fd: int, lock: threading.Lock) -> None:
    """A consumer's stdout -> ours, whole lines only, so that the lines of consumers
    sharing the graph's stdout never cut into each other. Once our stdout is closed
    (`| head`), stop reading: the consumer then ends as it would in a shell pipe."""
    rest = b""
    try:
        while chunk := os.read(fd, 1 << 16):
            data = rest + chunk if rest else chunk
            cut = data.rfind(b"\n") + 1
            if cut:
                with lock:
                    write_all(out_fd, memoryview(data)[:cut])
            rest = data[cut:]
        if rest:  # a last line without its newline
            with lock:
                write_all(out_fd, memoryview(rest))
    except OSError:  # EPIPE: nobody reads our stdout any more
        pass
    finally:
        os.close(fd)
