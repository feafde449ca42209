"""Across NATS: send | recv beside a pipe, workers beside one worker, latency at 30 fps.

Every row runs against the local server (nats:///...) in a scratch state folder, as a
user's `vflow testcard | vflow send nats:///x` would.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time

from tests.bench.common import ENV, Row, wall

FRAMES = 300  # 1280x720 frames
BURN = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "burn.py")


def rows() -> list[Row]:
    with tempfile.TemporaryDirectory(prefix="vflow-bench-net-") as tmp:
        env = {**ENV, "XDG_STATE_HOME": tmp, "VFLOW_NATS_IDLE": "30"}
        subprocess.run([sys.executable, "-m", "vflow_cli", "nats", "start"], env=env, check=True)
        try:
            return [
                *_throughput(env),
                _signing(env, tmp),
                _workers(env),
                _latency(env),
            ]
        finally:
            subprocess.run(
                [sys.executable, "-m", "vflow_cli", "nats", "stop", "--force"],
                env=env,
                capture_output=True,
            )


def _through_nats(
    env: dict[str, str], flags: str, subject: str, recv_flags: tuple[str, ...] = ()
) -> float:
    """Wall time of FRAMES 720p frames through send | recv (recv started first)."""
    recv = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vflow_cli",
            "recv",
            *recv_flags,
            "--durable",
            subject,
            f"nats:///{subject}",
        ],
        stdout=subprocess.PIPE,
        env=env,
    )
    # durable: nothing is dropped, whatever the start order, so the time is the whole trip
    start = time.perf_counter()
    subprocess.run(
        [
            "bash",
            "-c",
            f"vflow testcard --size large --frames {FRAMES} | vflow send --durable {flags} "
            f"nats:///{subject}",
        ],
        env=env,
        check=True,
    )
    assert recv.stdout is not None
    subprocess.run(
        [sys.executable, "-m", "vflow_cli", "null"], stdin=recv.stdout, env=env, check=True
    )
    recv.wait()
    return time.perf_counter() - start


def _throughput(env: dict[str, str]) -> list[Row]:
    pipe = wall(f"vflow testcard --size large --frames {FRAMES} | vflow identity | vflow null")
    out = []
    for flags, name in (("", "JPEG q90"), ("--raw", "raw")):
        seconds = min(_through_nats(env, flags, f"bench{name[:3]}{i}") for i in range(2))
        fps = FRAMES / seconds
        out.append(
            Row(
                f"720p {name}: testcard | send --durable | recv | null ({FRAMES} frames)",
                fps,
                "fps",
                "testcard | identity | null (a pipe)",
                FRAMES / pipe,
                ">= 30 fps" if name.startswith("JPEG") else "reported",
                fps >= 30 if name.startswith("JPEG") else None,
            )
        )
    return out


def _signing(env: dict[str, str], tmp: str) -> Row:
    """Signed streams: every message's HMAC-SHA256 made by send and checked by recv."""
    key = os.path.join(tmp, "stream.key")
    with open(key, "w") as file:
        file.write("bench-key-0123456789abcdef\n")
    os.chmod(key, 0o600)
    plain, signed = [], []
    for i in range(3):  # interleaved, so that the machine's load falls on both alike
        plain.append(_through_nats(env, "", f"benchplain{i}"))
        signed.append(_through_nats(env, f"--key {key}", f"benchkey{i}", ("--key", key)))
    with_key, without = FRAMES / min(signed), FRAMES / min(plain)
    return Row(
        f"720p JPEG q90: send --key | recv --key ({FRAMES} frames, signed)",
        with_key,
        "fps",
        "the same without --key",
        without,
        "< 10% slower",
        with_key >= 0.9 * without,
    )


def _workers(env: dict[str, str]) -> Row:
    """A CPU-bound stage behind 1, then 2 competing workers: packets per second."""
    count = 200

    def run(workers: int, tag: str) -> float:
        start = time.perf_counter()
        script = (
            f"vflow worker --workers {workers} --mode durable --from nats:///w{tag}.in "
            f"--to nats:///w{tag}.out -- {BURN} --work 200000 & "
            f"sleep 1; vflow int 0 {count - 1} | vflow send --durable nats:///w{tag}.in & "
            f"vflow recv --durable c nats:///w{tag}.out | vflow null; wait"
        )
        subprocess.run(["bash", "-c", script], env=env, check=True)
        return count / (time.perf_counter() - start - 1)

    one = run(1, "one")
    two = run(2, "two")
    cores = os.cpu_count() or 1
    return Row(
        f"burn.py --work 200000 behind 2 workers ({count} packets, {cores} cores)",
        two,
        "packets/s",
        "behind 1 worker",
        one,
        ">= 1.7x one worker (when the machine has the cores)",
        two >= 1.7 * one if cores >= 3 else None,
    )


def _latency(env: dict[str, str]) -> Row:
    """Camera time to receiver: 720p JPEG at 30 fps, live; median of 150 frames."""
    from vflow_cli.framing import PacketReader

    recv = subprocess.Popen(
        [sys.executable, "-m", "vflow_cli", "recv", "nats:///latency"],
        stdout=subprocess.PIPE,
        env=env,
    )
    time.sleep(1.5)  # subscribed
    send = subprocess.Popen(
        [
            "bash",
            "-c",
            "vflow testcard --size large --fps 30 --frames 150 | vflow send nats:///latency",
        ],
        env=env,
    )
    delays = []
    assert recv.stdout is not None
    for packet in PacketReader(recv.stdout):
        if packet.get("kind") == "frame":
            delays.append(time.time() - packet["wall"])
    send.wait()
    recv.wait()
    median = statistics.median(delays) * 1000
    p95 = sorted(delays)[int(len(delays) * 0.95)] * 1000
    return Row(
        f"latency, 720p JPEG at 30 fps, live ({len(delays)} frames; p95 {p95:.1f} ms)",
        median,
        "ms",
        "",
        None,
        "< 100 ms",
        median < 100,
    )
