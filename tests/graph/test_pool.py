"""graph.pool on its own: the reorder buffer of a node with workers, over real pipes.

The test plays the workers: it reads what the pool sends each one from a real pipe, and
answers on another in the order it chooses (late, dropped, added, cut)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_for
from vflow_cli.framing import Packet, PacketReader, PacketWriter, StreamCut
from vflow_cli.graph.log import Log
from vflow_cli.graph.model import Node
from vflow_cli.graph.pool import TAG, Pool
from vflow_cli.graph.queues import Fanout, close_writer


class Outlet:
    """Where the pool's ordered output goes: kept in a list."""

    def __init__(self) -> None:
        self.packets: list[Packet] = []
        self.closed: bool | None = None  # None: open; else: closed cut?
        self.alive = True

    def put_many(self, packets: list[Packet]) -> None:
        self.packets.extend(packets)

    def close(self, cut: bool = False) -> None:
        self.closed = cut

    def seqs(self) -> list[Any]:
        return [(p["seq"], p.get("copy")) if "copy" in p else p["seq"] for p in self.packets]


def out_fds(pool: Pool) -> dict[int, int]:
    """The output pipes the pool watches, by worker."""
    return {i: w.out_fd for i, w in enumerate(pool.workers) if w.out_fd is not None}


class Worker:
    """One worker, played by the test: its input and output are real pipes."""

    def __init__(self, pool: Pool, index: int, sleeper: int) -> None:
        into_r, into_w = os.pipe()
        out_r, out_w = os.pipe()
        pool.add_worker(into_w, sleeper)
        pool.open_outputs += 1
        self.file = open(into_r, "rb", buffering=0)  # noqa: SIM115 (closed by close())
        self.packets = iter(PacketReader(self.file, name=f"worker {index}"))
        self.output = PacketWriter(open(out_w, "wb", buffering=0))  # noqa: SIM115
        self.out_fd = out_r
        self.ended = False
        outputs = open(out_r, "rb", buffering=0)  # noqa: SIM115 (collect() closes it)
        self.collector = threading.Thread(target=pool.collect, args=(index, outputs), daemon=True)
        self.collector.start()

    def take(self) -> Packet:
        """The next packet the pool sent this worker."""
        return next(self.packets)

    def send(self, *packets: Packet) -> None:
        for packet in packets:
            self.output.write(packet)
        self.output.flush()

    def end(self, *, cut: bool = False) -> None:
        self.ended = True
        close_writer(self.output, end=not cut)

    def close(self) -> None:
        if not self.ended:
            self.end()
        self.collector.join(10)
        self.file.close()


@pytest.fixture
def make():
    """make(workers, window): a pool of workers the test plays, and the outlet it feeds."""
    sleeper = subprocess.Popen(["sleep", "600"])  # the pid of a worker busy with its work
    wchan = Path(f"/proc/{sleeper.pid}/wchan")
    wait_for(lambda: "sleep" in wchan.read_text(), 10, "sleep to sleep")  # not still starting
    made: list[tuple[Pool, list[Worker]]] = []

    def make(workers: int = 2, window: int = 2) -> tuple[Pool, list[Worker], Outlet]:
        node = Node("work", 1, ["work"], "work", "processor", workers=workers, window=window)
        fanout = Fanout(node)
        outlet = Outlet()
        fanout.outlets.append(outlet)
        pool = Pool(node, fanout, Log(-1))
        made.append((pool, [Worker(pool, i, sleeper.pid) for i in range(workers)]))
        return pool, made[-1][1], outlet

    yield make
    for pool, workers in made:
        pool.close()
        for worker in workers:
            worker.close()
    sleeper.kill()
    sleeper.wait()


def feed(pool: Pool, *seqs: int) -> None:
    for seq in seqs:
        assert pool.write({"kind": "data", "seq": seq})
    pool.flush()


def held(pool: Pool, n: int) -> None:
    wait_for(lambda: pool.held == n, 10, f"{n} outputs in the reorder buffer")


# A worker keeps the order of its inputs: when it sends an output of input N, it has finished
# every input before N; N itself is finished by an output of a later one, or its end.


def test_a_late_packet_holds_back_the_later_ones(make):
    pool, (a, b), out = make()
    feed(pool, 0, 1, 2, 3)  # least-loaded first: 0, 2 to a; 1, 3 to b
    got_a = [a.take(), a.take()]
    got_b = [b.take(), b.take()]
    assert [p["seq"] for p in got_a] == [0, 2] and [p["seq"] for p in got_b] == [1, 3]
    assert [p[TAG] for p in got_a + got_b] == [0, 2, 1, 3]
    b.send(*got_b)  # 1 and 3 finish before 0
    held(pool, 2)
    assert out.packets == []
    a.send(got_a[0])  # the oldest unfinished input's outputs go on at once
    wait_for(lambda: out.seqs() == [0], 10, "0")
    assert pool.held == 2
    a.send(got_a[1])  # 0 is finished: 1 goes, then 2; 3 waits for 2 to finish
    wait_for(lambda: out.seqs() == [0, 1, 2], 10, "0, 1, 2")
    assert pool.held == 1
    assert out_fds(pool) == {0: a.out_fd, 1: b.out_fd}  # what _starved looks at
    a.end()
    wait_for(lambda: out.seqs() == [0, 1, 2, 3], 10, "all four in order")
    assert all(TAG not in p for p in out.packets)  # the hidden field never leaves the pool
    assert out_fds(pool) == {1: b.out_fd}  # a's output has ended
    b.end()
    wait_for(lambda: out.closed is not None, 10, "the end")
    assert out.closed is False and out.seqs() == [0, 1, 2, 3]
    assert out_fds(pool) == {}
    assert pool.owner == {} and not pool.finished and not pool.outputs  # nothing kept


def test_a_gap_a_worker_dropped_is_finished_by_its_next_output(make):
    pool, (a, b), out = make()
    feed(pool, 0, 1, 2, 3)
    got_a, got_b = [a.take(), a.take()], [b.take(), b.take()]
    b.send(got_b[0])  # 1 waits for 0
    held(pool, 1)
    assert out.packets == []
    a.send(got_a[1])  # a drops 0 and sends 2: so 0 is finished, with no output
    wait_for(lambda: out.seqs() == [1], 10, "1")
    b.send(got_b[1])  # 1 is finished: 2 goes
    wait_for(lambda: out.seqs() == [1, 2], 10, "1, 2")
    a.end()
    wait_for(lambda: out.seqs() == [1, 2, 3], 10, "3")


def test_several_outputs_of_one_input_and_duplicates_keep_their_place(make):
    pool, (a, b), out = make()
    feed(pool, 0, 1)
    zero, one = a.take(), b.take()
    b.send(one, {**one, "copy": 1}, {"kind": "data", "seq": 1, "copy": 2})  # the last: untagged
    held(pool, 3)
    a.send(zero, zero)  # the same packet twice: a stage may send anything twice
    wait_for(lambda: out.seqs() == [0, 0], 10, "0 twice")
    a.end()
    wait_for(lambda: len(out.packets) == 5, 10, "five packets")
    assert out.seqs() == [0, 0, 1, (1, 1), (1, 2)]


def test_a_full_window_waits_for_a_worker_to_finish(make):
    pool, (a, b), out = make(window=1)
    feed(pool, 0, 1)
    assert pool._choose() is None  # each worker holds its window's worth
    sent = threading.Thread(target=feed, args=(pool, 2), daemon=True)
    sent.start()
    a.send(a.take())
    wait_for(lambda: out.seqs() == [0], 10, "0")
    assert pool.fed == [1, 1]  # a sent an output of 0, but may send more: it still holds 0
    b.send(b.take())
    b.end()  # b has finished all it held: it has room
    sent.join(10)
    assert not sent.is_alive()
    assert (pool.extra, pool.fed) == (0, [1, 2]) and b.take()["seq"] == 2


def test_the_end_while_outputs_wait_sends_them_in_order(make):
    pool, (a, b), out = make()
    feed(pool, 0, 1, 2, 3)
    got_a, got_b = [a.take(), a.take()], [b.take(), b.take()]
    pool.close()  # the input ended
    b.send(*got_b)
    held(pool, 2)
    b.end()
    a.send(got_a[1])  # a dropped 0
    wait_for(lambda: out.seqs() == [1, 2], 10, "1, 2")
    assert out.closed is None  # a's output is still open; 3 waits for 2 to finish
    a.end()
    wait_for(lambda: out.closed is not None, 10, "the end")
    assert out.closed is False and out.seqs() == [1, 2, 3]


def test_an_output_that_ends_without_its_trailer_ends_the_node_cut(make, capfd):
    pool, (a, b), out = make()
    pool.log = Log(0)
    feed(pool, 0, 1)
    zero, one = a.take(), b.take()
    pool.close()
    b.send(one)
    b.end()
    held(pool, 1)
    a.end(cut=True)  # a died holding 0: what it held is given up, the rest goes on
    wait_for(lambda: out.closed is not None, 10, "the end")
    assert out.closed is True and out.seqs() == [1]
    assert zero["seq"] == 0
    assert "vflow graph: work.0: input ended without an end of stream" in capfd.readouterr().err


def test_an_output_that_is_no_stream_is_reported_by_its_name(make, capfd):
    pool, (a, b), out = make()
    pool.log = Log(0)
    pool.close()
    os.write(a.output._stream.fileno(), b"garbage")  # type: ignore[attr-defined]
    a.end(cut=True)
    b.end()
    wait_for(lambda: out.closed is not None, 10, "the end")
    err = capfd.readouterr().err
    assert "vflow graph: work.0: work.0's output is not a vflow stream (it starts with" in err
    assert out.closed is True


def test_a_cut_input_reaches_the_workers_cut(make):
    pool, (a, _), _ = make()
    feed(pool, 0)
    pool.close(end=False)  # what fed the pool was cut: so is what it feeds
    assert a.take()["seq"] == 0
    with pytest.raises(StreamCut):
        a.take()


# -- is a worker starved? (it read all it was given, and waits to read more) ------------------


@pytest.fixture
def processes():
    """Real processes in known states, by name: reading an empty pipe, sleeping, running."""
    procs = {
        "reading": subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL),
        "sleeping": subprocess.Popen(["sleep", "600"]),
        "running": subprocess.Popen([sys.executable, "-c", "while True: pass"]),
    }

    def state(pid: int) -> tuple[str, str]:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return stat, Path(f"/proc/{pid}/wchan").read_text()

    wait_for(lambda: "read" in state(procs["reading"].pid)[1], 10, "cat to wait for input")
    wait_for(lambda: "sleep" in state(procs["sleeping"].pid)[1], 10, "sleep to sleep")
    yield {name: proc.pid for name, proc in procs.items()}
    for proc in procs.values():
        proc.kill()
        proc.wait()
        if proc.stdin is not None:
            proc.stdin.close()


def pool_of(pids: list[int]) -> tuple[Pool, list[int]]:
    node = Node("work", 1, ["work"], "work", "processor", workers=len(pids), window=2)
    pool = Pool(node, Fanout(node), Log(-1))
    readers = []
    for pid in pids:
        r, w = os.pipe()
        pool.add_worker(w, pid)
        readers.append(r)
    return pool, readers


def test_a_worker_waiting_to_read_with_nothing_in_its_pipes_is_starved(processes):
    pool, readers = pool_of([processes["reading"], processes["sleeping"], processes["running"]])
    try:
        assert pool._starved(0, 0.0) is True
        assert pool._starved(1, 0.0) is False  # asleep in its work
        assert pool._starved(2, 5.0) is False  # running
        pool.workers[0].writer.write({"kind": "data"})  # type: ignore[union-attr]
        pool.flush()
        assert pool._starved(0, 0.0) is False  # it has input to read
        os.read(readers[0], 1 << 16)
        assert pool._starved(0, 0.0) is True
        out_r, out_w = os.pipe()
        pool.workers[0].out_fd = out_r
        os.write(out_w, b"x")
        assert pool._starved(0, 0.0) is False  # its output waits for us
        os.read(out_r, 1)
        assert pool._starved(0, 0.0) is True
        os.close(out_w)
        os.close(out_r)
        pool.workers[0].out_fd = None
        writer, pool.workers[0].writer = pool.workers[0].writer, None
        assert pool._starved(0, 0.0) is False  # gone
        close_writer(writer)  # type: ignore[arg-type]
    finally:
        pool.close()
        for r in readers:
            os.close(r)


def test_without_proc_a_worker_gets_one_more_packet_a_second():
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid has no /proc entry any more
    pool, readers = pool_of([gone.pid])
    try:
        assert pool._starved(0, 0.5) is False
        assert pool._starved(0, 1.0) is False
        assert pool._starved(0, 1.5) is True
    finally:
        pool.close()
        os.close(readers[0])


def test_a_consumer_pool_takes_turns(processes):
    node = Node("sink", 1, ["sink"], "sink", "consumer", workers=3, window=1)
    pool = Pool(node, None, Log(-1))  # a consumer: nothing comes back
    readers = []
    for _ in range(3):
        r, w = os.pipe()
        pool.add_worker(w, processes["sleeping"])
        readers.append(open(r, "rb", buffering=0))  # noqa: SIM115 (closed below)
    try:
        feed(pool, *range(7))  # no window: a consumer's inputs are never "finished"
        assert pool.fed == [2, 3, 2]
        pool.close()
        got = [[p["seq"] for p in PacketReader(f)] for f in readers]
        assert got == [[2, 5], [0, 3, 6], [1, 4]]
    finally:
        for f in readers:
            f.close()


def test_a_stage_that_strips_the_hidden_field_is_warned_about_once(make, capfd):
    pool, (a, b), out = make()
    pool.log = Log(0)
    feed(pool, 0)
    a.send(a.take())  # tagged: the count of untagged packets in a row starts here
    a.send(*[{"kind": "data", "n": n} for n in range(999)])
    wait_for(lambda: len(out.packets) == 1000, 10, "1000 packets")
    assert "came back without" not in capfd.readouterr().err
    a.send({"kind": "data", "n": 999})
    wait_for(lambda: len(out.packets) == 1001, 10, "1001 packets")
    err = capfd.readouterr().err
    assert err == (
        "vflow graph: node 'work': 1000 packets in a row came back without the hidden "
        "_vflow_graph_seq field; a stage with workers must pass fields it does not know, or "
        "its packets wait in the reorder buffer\n"
    )
    feed(pool, 1)  # to b, which holds nothing
    b.send(b.take())  # tagged again, then 1000 more: said once is enough
    b.send(*[{"kind": "data", "n": n} for n in range(1000)])
    wait_for(lambda: len(out.packets) + pool.held == 2002, 10, "2002 packets")  # b waits for a
    assert "came back without" not in capfd.readouterr().err


def test_output_of_a_worker_that_got_no_input_comes_last(make):
    pool, (a, b), out = make()
    feed(pool, 0)
    pool.close()
    b.send({"kind": "summary", "seq": "b"})  # a stage's summary at its end, with no input
    b.end()
    a.send(a.take())
    a.end()
    wait_for(lambda: out.closed is not None, 10, "the end")
    assert out.seqs() == [0, "b"] and out.closed is False


def test_closing_a_pool_whose_worker_is_gone_is_no_error(make):
    pool, (a, _), _ = make()
    pool.write({"kind": "data", "seq": 0})  # batched, not yet sent
    a.file.close()  # the worker's end of its input: gone
    pool.close()  # the unsent packet cannot go; that is the worker's failure, reported so


def test_a_full_pool_gives_a_starved_worker_one_more_packet(processes):
    pool, readers = pool_of([processes["reading"], processes["reading"]])
    pool.node.window = 1
    try:
        feed(pool, 0, 1)  # each holds one; the feeder waits for room ...
        os.read(readers[0], 1 << 16)  # ... and worker 0 has read all it had, and waits
        feed(pool, 2)
        assert (pool.extra, pool.fed) == (1, [2, 1])
        os.read(readers[0], 1 << 16)  # it read that one too, and waits again
        feed(pool, 3)
        assert (pool.extra, pool.fed) == (2, [3, 1])  # each extra packet is counted
    finally:
        pool.close()
        for r in readers:
            os.close(r)


def test_a_worker_named_like_a_proc_state_is_still_read_right(tmp_path):
    # /proc/PID/stat puts the name in parentheses, and a name may hold ") R (": its state is
    # after the last ")"
    link = tmp_path / "x) R (y"
    link.symlink_to("/bin/cat")
    reading = subprocess.Popen([str(link)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    try:
        wchan = Path(f"/proc/{reading.pid}/wchan")
        wait_for(lambda: "read" in wchan.read_text(), 10, "the renamed cat to wait for input")
        assert ") R (" in Path(f"/proc/{reading.pid}/stat").read_text()
        pool, readers = pool_of([reading.pid])
        try:
            assert pool._starved(0, 0.0) is True
        finally:
            pool.close()
            os.close(readers[0])
    finally:
        reading.kill()
        reading.wait()
        assert reading.stdin is not None
        reading.stdin.close()


def test_an_untagged_packet_before_any_output_goes_with_the_oldest_input_its_worker_holds(make):
    pool, (a, b), out = make()
    feed(pool, 0, 1)
    zero, one = a.take(), b.take()
    b.send({"kind": "header", "seq": "b"})  # before its first output: its place is input 1's
    held(pool, 1)
    a.send(zero)
    a.end()  # 0 is finished: what b made of 1 goes on, the header first
    wait_for(lambda: out.seqs() == [0, "b"], 10, "0, then b's header")
    b.send(one)
    b.end()
    wait_for(lambda: out.closed is not None, 10, "the end")
    assert out.seqs() == [0, "b", 1]


class DyingOutlet(Outlet):
    """An outlet that wants `wants` packets, then no more (its reader is gone)."""

    def __init__(self, wants: int) -> None:
        super().__init__()
        self.wants = wants

    def put_many(self, packets: list[Packet]) -> None:
        super().put_many(packets)
        self.alive = len(self.packets) < self.wants


def test_once_no_outlet_wants_more_the_workers_output_is_no_longer_read(make):
    pool, (a, b), _ = make()
    dying = DyingOutlet(2)
    pool.fanout.outlets[:] = [dying]  # type: ignore[union-attr]
    feed(pool, 0, 1)
    zero, one = a.take(), b.take()
    a.send(zero, {**zero, "copy": 1})
    wait_for(lambda: pool.out_dead, 10, "the outlet to be gone")
    a.collector.join(10)  # it stops reading at once, its output still open
    assert not a.collector.is_alive() and not a.ended
    b.send(one)  # b's collector wakes, sees nobody wants it, stops reading
    b.collector.join(10)
    assert not b.collector.is_alive()
    assert dying.seqs() == [0, (0, 1)]  # nothing after the outlet said it wanted no more


# -- workers that stop reading, tags that lie, and waiting for room --------------------------


def big(seq: int) -> Packet:
    """A packet larger than the writer batches: writing it reaches the pipe at once."""
    return {"kind": "data", "seq": seq, "blob": b"x" * (1 << 17)}


def test_a_pool_whose_workers_all_stopped_reading_takes_no_more(make, capfd):
    pool, (a, b), _ = make()
    pool.log = Log(1)  # -v: the info lines
    a.file.close()
    b.file.close()  # both died before reading anything
    assert pool.write(big(0)) is False  # tried on each, refused by each: no worker left
    err = capfd.readouterr().err
    assert "work.0 stopped reading" in err and "work.1 stopped reading" in err
    assert pool._live() == [] and pool.fed == [1, 1]
    assert pool.owner == {} and pool.next_out == 2  # what each was given is given up
    assert pool.write(big(1)) is False


def test_what_waited_for_a_worker_that_stopped_reading_goes_on_at_once(make):
    pool, (a, b), out = make()
    feed(pool, 0, 1)  # 0 to a, 1 to b
    one = b.take()
    b.send(one)  # waits for 0
    held(pool, 1)
    a.file.close()  # a died holding 0
    wrote: list[bool] = []  # larger than a pipe holds: b reads it while it is written
    sent = threading.Thread(target=lambda: wrote.append(pool.write(big(2))), daemon=True)
    sent.start()  # tried on a (the least loaded), refused: b takes it
    assert b.take()["seq"] == 2
    sent.join(10)
    wait_for(lambda: out.seqs() == [1], 10, "1, at once")  # no other output came meanwhile
    assert wrote == [True] and pool.fed == [2, 2] and pool._live() == [1]


def test_a_worker_whose_input_breaks_on_flush_takes_no_more(make, monkeypatch):
    import vflow_cli.framing.writer

    monkeypatch.setattr(vflow_cli.framing.writer, "FLUSH_AFTER", 3600.0)  # batch, always
    pool, (a, b), _ = make()
    assert pool.write({"kind": "data", "seq": 0})  # to a, batched: nothing written yet
    a.file.close()
    pool.flush()
    assert pool._live() == [1] and pool.owner == {} and pool.next_out == 1
    feed(pool, 1)
    assert b.take()["seq"] == 1


def test_a_packet_with_another_workers_tag_goes_with_its_own_workers_input(make):
    pool, (a, b), out = make()
    feed(pool, 0, 1)
    zero, one = a.take(), b.take()
    b.send({**one, "seq": "b", TAG: zero[TAG]})  # a stage that copied a field it should not
    held(pool, 1)  # it waits with input 1, b's, not with 0
    assert out.packets == []
    a.send(zero)
    a.end()
    wait_for(lambda: out.seqs() == [0, "b"], 10, "0, then b's packet")
    b.end()


def test_untagged_packets_before_any_tagged_one_count_from_the_first(make, capfd):
    pool, (a, _), out = make()
    pool.log = Log(0)
    feed(pool, 0)
    a.send(*[{"kind": "data", "n": n} for n in range(999)])
    wait_for(lambda: len(out.packets) == 999, 10, "999 packets")
    assert "came back without" not in capfd.readouterr().err
    a.send({"kind": "data", "n": 999})
    wait_for(lambda: len(out.packets) == 1000, 10, "1000 packets")
    assert "1000 packets in a row came back without" in capfd.readouterr().err


def test_the_extra_packet_goes_to_the_worker_the_pool_waits_for(processes):
    """Worker 1 holds the oldest unfinished input and has read all it had; worker 0 is busy
    with a later one. Only worker 1 can move the pool on: it gets the extra packet."""
    pool, readers = pool_of([processes["sleeping"], processes["reading"]])
    pool.node.window = 1
    try:
        feed(pool, 0, 1)  # 0 to worker 0, 1 to worker 1
        with pool.lock:
            pool._worker_done(0)  # worker 0 finished 0 (all it held) ...
        feed(pool, 2)  # ... and took 2: the oldest unfinished input is 1, worker 1's
        assert pool.next_out == 1 and pool.owner == {1: 1, 2: 0}
        for r in readers:
            os.read(r, 1 << 16)  # each has read what it was given
        sent = threading.Thread(target=feed, args=(pool, 3), daemon=True)
        sent.start()
        sent.join(30)
        assert not sent.is_alive()
        assert (pool.extra, pool.fed) == (1, [2, 2]) and pool.owner[3] == 1
    finally:
        pool.close()
        for r in readers:
            os.close(r)


def test_without_proc_a_full_pool_waits_a_second_then_gives_one_more(processes):
    gone = subprocess.Popen(["true"])
    gone.wait()  # its pid has no /proc entry any more
    pool, readers = pool_of([gone.pid, gone.pid])
    pool.node.window = 1
    try:
        feed(pool, 0, 1)
        for r in readers:
            os.read(r, 1 << 16)  # nothing left in its pipe: only /proc could say more
        done: list[float] = []

        def third() -> None:
            began = time.monotonic()
            assert pool.write({"kind": "data", "seq": 2})
            done.append(time.monotonic() - began)

        sent = threading.Thread(target=third, daemon=True)
        sent.start()
        sent.join(30)
        assert done, "the third packet never went"
        assert done[0] >= 1.0  # no /proc: the pool cannot tell, so it waits its second
        assert (pool.extra, pool.fed) == (1, [2, 1])
    finally:
        pool.close()
        for r in readers:
            os.close(r)
