"""A NATS cluster that loses a server: how long packets stop while it fails over.

Three nats-server processes with JetStream (replicas 3) on loopback; send --durable at
50 packets/s, two durable workers, recv --durable. The stream's leader is SIGKILLed
mid-stream and restarted once packets flow again. The pause is the longest time between
two packets at recv; the peer is the same stream on the same cluster with no server lost.
"""

from __future__ import annotations

import itertools
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from tests.bench.common import ENV, Row
from tests.net.cluster import Cluster
from tests.net.util import wait_for
from vflow_cli.net.connection import stream_name

PACKETS = 400
INTERVAL = 0.02


def rows() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="vflow-bench-cluster-") as tmp:
        cluster = Cluster(Path(tmp) / "cluster")
        try:
            calm = _longest_gap(cluster, "calm", kill=False)
            failover = _longest_gap(cluster, "fail", kill=True)
        finally:
            cluster.stop()
    return [
        Row(
            f"cluster failover pause: the stream's leader SIGKILLed ({PACKETS} packets "
            f"at {1 / INTERVAL:.0f}/s, 2 workers)",
            failover,
            "s",
            "longest gap, no server lost",
            calm,
            "reported",
        )
    ]


def _longest_gap(cluster: Cluster, name: str, *, kill: bool) -> float:
    """The longest time between two packets at recv (seconds)."""
    url = cluster.url
    arrivals: list[float] = []
    recv = subprocess.Popen(
        ["bash", "-c", f"vflow recv --durable {name} {url(name + '.out')} | vflow print -f seq"],
        stdout=subprocess.PIPE,
        env=ENV,
    )

    def read() -> None:
        assert recv.stdout is not None
        for _ in recv.stdout:
            arrivals.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    workers = [
        subprocess.Popen(
            [
                "vflow",
                "worker",
                "--mode",
                "durable",
                "--from",
                url(name + ".in"),
                "--to",
                url(name + ".out"),
                "--",
                "identity",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=ENV,
        )
        for _ in range(2)
    ]
    wait_for(lambda: cluster.leader(stream_name(name + ".in")) is not None, 60)
    send = subprocess.Popen(
        [
            "bash",
            "-c",
            f"vflow int 0 {PACKETS - 1} --interval {INTERVAL} | "
            f"vflow send --durable {url(name + '.in')}",
        ],
        env=ENV,
    )
    try:
        if kill:
            wait_for(lambda: len(arrivals) >= 100, 60)
            victim = cluster.leader(stream_name(name + ".in"))
            if victim is not None:
                cluster.kill(victim)
                at_kill = len(arrivals)
                wait_for(lambda: len(arrivals) >= at_kill + 50, 120)
                cluster.start(victim)
        send.wait(180)
        recv.wait(180)
        reader.join(10)
    finally:
        for proc in (send, recv, *workers):
            if proc.poll() is None:
                proc.terminate()
            proc.wait(30)
    if len(arrivals) != PACKETS:
        raise RuntimeError(f"cluster bench: {len(arrivals)} of {PACKETS} packets arrived")
    return max(b - a for a, b in itertools.pairwise(arrivals))
