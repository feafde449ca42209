"""vflow worker: competing workers on a real nats-server, real kills, real dead letters."""

from __future__ import annotations

import signal
import subprocess

import numpy as np

from tests.helpers import pack, unpack
from tests.net.util import BURN, Watched, nats, sh, start, wait_for
from vflow_cli.framing import Encoded

N = 300


def _workers(server, subject_in, subject_out, works, *extra):
    return [
        start(
            "worker",
            "--mode",
            "durable",
            "--ack-wait",
            "2",
            "-v",
            *extra,
            "--from",
            server.url(subject_in),
            "--to",
            server.url(subject_out),
            "--",
            BURN,
            "--work",
            str(work),
        )
        for work in works
    ]


def _finish(procs, timeout=60):
    return [p.communicate(timeout=timeout) for p in procs]


def _ready(server, subject_in, count):
    """The workers made the work queue and the output stream (then they listen for the
    input's heartbeats)."""
    server.wait_subscribed(f"_VFLOW.beat.{subject_in}", count)


def test_three_workers_of_different_speeds_deliver_each_frame_once_in_order(server):
    workers = _workers(server, "in", "out", [2000, 20000, 60000])
    _ready(server, "in", 3)
    # a loaded machine may hold the slow worker's "busy" heartbeat: order, not speed, is tested
    recv = start("recv", "-v", "--reorder", "10", server.url("out"))
    server.wait_subscribed("out")
    send = sh(f"vflow int 0 {N - 1} | vflow send --durable {server.url('in')}")
    assert send.statuses == [0, 0], send.stderr
    out, err = recv.communicate(timeout=120)
    assert recv.returncode == 0, err
    values = [p["value"] for p in unpack(out)]
    assert values == list(range(N))  # exactly once, in order
    assert all(p["burn"] for p in unpack(out)[1:])  # the stage really ran
    results = _finish(workers)
    counts = [int(e.decode().split("worked on ")[1].split()[0]) for _, e in results]
    assert sum(counts) == N and all(c > 0 for c in counts), counts
    assert all(w.returncode == 0 for w in workers), [e for _, e in results]


GATE = """
import os, time

import click

from vflow_cli.stage import main, processor


@processor(pixels=False)
@click.option("--dir", "folder", required=True)
def gate(packets, folder):
    \"\"\"Hold packet V while FOLDER/hold.V or FOLDER/hold.all exists (saying so in
    FOLDER/holding.PID.V); mark what passes with this worker's pid.\"\"\"
    for packet in packets:
        value = packet["value"]
        held = [os.path.join(folder, f"hold.{name}") for name in (value, "all")]
        if any(os.path.exists(path) for path in held):
            open(os.path.join(folder, f"holding.{os.getpid()}.{value}"), "w").close()
            while any(os.path.exists(path) for path in held):
                time.sleep(0.01)
        packet["by"] = os.getpid()
        yield packet
"""


def _gated_worker(server, gate, folder):
    return start(
        "worker",
        "--mode",
        "durable",
        "--ack-wait",
        "2",
        "--from",
        server.url("kin"),
        "--to",
        server.url("kout"),
        "--",
        str(gate),
        "--dir",
        str(folder),
    )


def _holding(folder, pid):
    """The value the worker with this pid is holding, or None."""
    held = sorted(folder.glob(f"holding.{pid}.*"))
    return int(held[0].name.rsplit(".", 1)[1]) if held else None


def test_a_worker_killed_while_it_holds_a_packet_loses_nothing_and_doubles_nothing(
    server, tmp_path
):
    """The victim provably holds packet K (its stage waits on a gate the test keeps shut)
    when it is killed; the server gives K to another worker (its redelivery count says so),
    and recv hands out every packet once, K from the second worker."""
    gate = tmp_path / "gate.py"
    gate.write_text(GATE)
    folder = tmp_path / "gates"
    folder.mkdir()
    (folder / "hold.all").touch()
    victim = _gated_worker(server, gate, folder)
    _ready(server, "kin", 1)
    recv = start("recv", "--reorder", "30", server.url("kout"))
    server.wait_subscribed("kout")
    send = sh(f"vflow int 0 19 | vflow send --durable {server.url('kin')}")
    assert send.statuses == [0, 0], send.stderr
    assert wait_for(lambda: _holding(folder, victim.pid) is not None, 30)
    k = _holding(folder, victim.pid)
    (folder / f"hold.{k}").touch()  # whoever gets K next holds it too
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=30)
    (folder / "hold.all").unlink()
    rescue = _gated_worker(server, gate, folder)
    assert wait_for(lambda: _holding(folder, rescue.pid) == k, 60)  # after --ack-wait
    info = _consumer(server, "kin", "workers")
    assert info.num_redelivered >= 1, info  # the server gave K out again: JetStream says so
    (folder / f"hold.{k}").unlink()
    out, err = recv.communicate(timeout=120)
    assert recv.returncode == 0, err
    got = unpack(out)
    assert [p["value"] for p in got] == list(range(20))  # exactly once, in order
    assert [p["by"] for p in got if p["value"] == k] == [rescue.pid]
    _finish([rescue])
    assert rescue.returncode == 0 and victim.returncode == -signal.SIGKILL


def _consumer(server, subject, name):
    async def body(client, js):
        stream = await js.find_stream_name_by_subject(subject)
        return await js.consumer_info(stream, name)

    return nats(server, body)


def test_a_poison_packet_goes_to_the_dead_letters(server):
    import cv2

    ok, good = cv2.imencode(".jpg", np.full((16, 16, 3), 99, np.uint8))
    assert ok
    frames = [
        {
            "kind": "frame",
            "seq": i,
            "image": Encoded("jpeg", b"not a jpeg" if i == 7 else good.tobytes(), (16, 16, 3)),
        }
        for i in range(20)
    ]
    workers = [
        start(
            "worker",
            "--mode",
            "durable",
            "--max-deliver",
            "2",
            "--from",
            server.url("pin"),
            "--to",
            server.url("pout"),
            "--",
            "unjpeg",
        )
        for _ in range(2)
    ]
    _ready(server, "pin", 2)
    recv = start("recv", server.url("pout"))
    server.wait_subscribed("pout")
    send = subprocess.run(
        [*_vflow(), "send", "--durable", server.url("pin")],
        input=pack(frames),
        capture_output=True,
        timeout=60,
    )
    assert send.returncode == 0, send.stderr
    out, err = recv.communicate(timeout=60)
    assert recv.returncode == 0, err  # the stream ended cleanly, without frame 7
    got = unpack(out)
    assert [p["seq"] for p in got] == [i for i in range(20) if i != 7]
    assert all(p["image"].shape == (16, 16, 3) for p in got)
    assert b"packet 7 failed in the workers" in err
    dead = sh(f"vflow recv --dead {server.url('pin')} | vflow print")
    assert dead.statuses == [0, 0], dead.stderr
    lines = dead.stdout.decode().splitlines()
    assert (
        len(lines) == 1
        and '"seq":7' in lines[0]
        and "jpeg image in the stream is damaged" in lines[0]
    )
    assert '"tries":2' in lines[0]
    _finish(workers)


def test_a_stateful_stage_is_refused_as_a_worker(server):
    result = sh(f"vflow worker --from {server.url('a')} --to {server.url('b')} -- sum")
    assert result.statuses == [2]
    assert b"keeps state from one packet to the next" in result.stderr
    assert b"vflow recv URL | vflow sum" in result.stderr


def test_workers_join_while_the_stream_runs(server):
    """A second process with --workers 2 joins a running stream; all of it comes out once."""
    first = _workers(server, "jin", "jout", [40000])
    _ready(server, "jin", 1)
    recv = start("recv", server.url("jout"))
    server.wait_subscribed("jout")
    send = sh(f"vflow int 0 {N - 1} | vflow send --durable {server.url('jin')}")
    assert send.statuses == [0, 0], send.stderr
    # the stream runs: the first worker has taken some of it, and most is still waiting
    assert wait_for(lambda: _consumer(server, "jin", "workers").delivered.consumer_seq >= 5, 60)
    assert _consumer(server, "jin", "workers").num_pending > N // 2
    late = start(
        "worker",
        "--workers",
        "2",
        "--from",
        server.url("jin"),
        "--to",
        server.url("jout"),
        "--",
        BURN,
        "--work",
        "20000",
    )
    out, err = recv.communicate(timeout=120)
    assert recv.returncode == 0, err
    assert [p["value"] for p in unpack(out)] == list(range(N))
    _finish([*first, late])
    assert late.returncode == 0


def _complete(data: bytes) -> list:
    """The packets of a stream that may lack its end."""
    import contextlib
    import io

    from vflow_cli.framing import PacketReader, StreamCut

    packets: list = []
    with contextlib.suppress(StreamCut):
        packets.extend(PacketReader(io.BytesIO(data)))
    return packets


def _has_stream(server, subject):
    async def body(client, js):
        try:
            return bool(await js.find_stream_name_by_subject(subject))
        except Exception:
            return False

    return nats(server, body)


def _vflow():
    import sys

    return [sys.executable, "-m", "vflow_cli"]


def test_an_auto_worker_started_before_a_stored_stream_works_on_all_of_it(server):
    """Started before `send --durable` made the input stream, the worker used to take the
    input for live (nothing stored yet), fall behind and drop most of it, silently."""
    worker = Watched(
        "worker", "-v", "--from", server.url("ain"), "--to", server.url("aout"), "--", BURN,
        "--work", "60000",
    )  # fmt: skip
    server.wait_subscribed("_VFLOW.beat.ain")
    recv = Watched("recv", "--durable", "r", "--reorder", "20", server.url("aout"))
    assert wait_for(lambda: _has_stream(server, "aout"))
    send = sh(f"vflow int 0 {N - 1} | vflow send --durable {server.url('ain')}")
    assert send.statuses == [0, 0], send.stderr
    assert recv.finish(timeout=90) == 0, bytes(recv.err)
    assert [p["value"] for p in unpack(bytes(recv.out))] == list(range(N))
    assert worker.finish() == 0, bytes(worker.err)
    assert f"worked on {N} packets".encode() in worker.err, bytes(worker.err)
    assert b"stored" in worker.err  # it says what it decided


def test_a_live_worker_says_how_many_packets_it_missed(server):
    """A live input and a stage slower than it: what the worker could not take is lost
    (that is what live means), and the worker says how many."""
    worker = Watched(
        "worker", "-v", "--from", server.url("lin"), "--to", server.url("lout"), "--", BURN,
        "--work", "60000",
    )  # fmt: skip
    server.wait_subscribed("_VFLOW.beat.lin")
    recv = Watched("recv", "--reorder", "5", "--idle", "5", server.url("lout"))
    server.wait_subscribed("lout")
    send = sh(f"vflow int 0 {N - 1} | vflow send --queue 1000 -v {server.url('lin')}")
    assert send.statuses == [0, 0], send.stderr
    assert b"dropped" not in send.stderr  # all of it left the sender
    assert worker.finish(timeout=90) == 0, bytes(worker.err)
    err = bytes(worker.err).decode()
    assert "missed " in err, err
    missed = int(err.split("missed ")[1].split()[0])
    worked = int(err.split("worked on ")[1].split()[0])
    assert 0 < missed < N and worked + missed == N, err
    recv.finish(timeout=60)
    assert len(_complete(bytes(recv.out))) == worked


def test_worker_v_reports_the_bytes_it_sent(server):
    worker = Watched(
        "worker", "-v", "--mode", "durable", "--from", server.url("vin"), "--to",
        server.url("vout"), "--", "identity",
    )  # fmt: skip
    _ready(server, "vin", 1)
    recv = Watched("recv", server.url("vout"))
    server.wait_subscribed("vout")
    send = sh(f"vflow int 0 9 | vflow send --durable {server.url('vin')}")
    assert send.statuses == [0, 0], send.stderr
    assert recv.finish() == 0, bytes(recv.err)
    assert worker.finish() == 0, bytes(worker.err)
    line = [x for x in bytes(worker.err).decode().splitlines() if " out " in x]
    assert len(line) == 1 and "out 10 packets, " in line[0], bytes(worker.err)
    assert "out 10 packets, 0 B" not in line[0], line  # what it published, in bytes
