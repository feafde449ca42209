"""vflow worker: competing workers on a real nats-server, real kills, real dead letters."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np

from tests.helpers import pack, unpack
from tests.net.util import BURN, sh, start, wait_for
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


def test_three_workers_of_different_speeds_deliver_each_frame_once_in_order(server):
    workers = _workers(server, "in", "out", [2000, 20000, 60000])
    time.sleep(1.5)  # they made the work queue and the output stream
    recv = start("recv", "-v", server.url("out"))
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


def test_a_worker_killed_mid_run_loses_nothing_and_doubles_nothing(server):
    workers = _workers(server, "kin", "kout", [30000, 30000, 30000])
    time.sleep(1.5)
    # a killed worker's packet comes back after --ack-wait (2 s): wait longer than that
    recv = start("recv", "-v", "--reorder", "15", server.url("kout"))
    server.wait_subscribed("kout")
    send = sh(f"vflow int 0 {N - 1} | vflow send --durable {server.url('kin')}")
    assert send.statuses == [0, 0], send.stderr
    time.sleep(1.0)  # mid-run: each worker holds a packet
    workers[0].send_signal(signal.SIGKILL)
    out, err = recv.communicate(timeout=120)
    assert recv.returncode == 0, err
    assert [p["value"] for p in unpack(out)] == list(range(N))
    _finish(workers)
    assert workers[0].returncode == -signal.SIGKILL


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
    time.sleep(1.5)
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
    assert len(lines) == 1 and '"seq":7' in lines[0] and "could not be decoded" in lines[0]
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
    time.sleep(1.5)
    recv = start("recv", server.url("jout"))
    server.wait_subscribed("jout")
    send = sh(f"vflow int 0 {N - 1} | vflow send --durable {server.url('jin')}")
    assert send.statuses == [0, 0], send.stderr
    assert wait_for(lambda: recv.poll() is not None or time.sleep(0.5) is None, 1)
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


def _vflow():
    import sys

    return [sys.executable, "-m", "vflow_cli"]
