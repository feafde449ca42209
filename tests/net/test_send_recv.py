"""send | recv across a real nats-server: order, end of stream, chunks, durable, cuts, memory."""

from __future__ import annotations

import os
import signal
import subprocess

import numpy as np
import pytest

from tests.helpers import pack, unpack
from tests.net.util import Watched, rss, sh, start, wait_for
from vflow_cli.framing import StreamCut


def test_live_pipe_ends_like_a_pipe(server):
    """recv waits, send runs, recv ends after the last packet with the trailer."""
    url = server.url("cam")
    recv = start("recv", url)
    server.wait_subscribed("cam")
    # a queue for all 41: live send drops the oldest when it can't keep up (a loaded CI)
    result = sh(f"vflow testcard --size 64x48 --frames 40 | vflow send --queue 64 -v {url}")
    out, err = recv.communicate(timeout=30)
    assert result.statuses == [0, 0], result.stderr
    assert recv.returncode == 0, err
    packets = unpack(out)  # raises StreamCut without the trailer
    frames = [p for p in packets if p.get("kind") == "frame"]
    assert [p["seq"] for p in frames] == list(range(40))
    assert packets[0]["kind"] == "stream"
    assert frames[0]["image"].shape == (48, 64, 3)  # JPEG on the wire, pixels again here
    assert b"sent 41 packets" in result.stderr and b"/s)" in result.stderr  # bytes/s with -v


def test_raw_frames_arrive_exactly_and_jpeg_nearly(server):
    url = server.url("exact")
    frames = [{"kind": "frame", "seq": i, "image": _picture(i)} for i in range(5)]
    for flags, exact in (("--raw", True), ("--quality 95", False)):
        recv = start("recv", url)
        server.wait_subscribed("exact")
        send = subprocess.run(
            ["bash", "-c", f"vflow send {flags} {url}"],
            input=pack(frames),
            capture_output=True,
            env=_env(),
            timeout=30,
        )
        out, err = recv.communicate(timeout=30)
        assert send.returncode == 0 and recv.returncode == 0, (send.stderr, err)
        got = unpack(out)
        assert [p["seq"] for p in got] == list(range(5))
        for sent, came in zip(frames, got, strict=True):
            diff = np.abs(sent["image"].astype(int) - came["image"].astype(int))
            assert diff.max() == 0 if exact else diff.mean() < 12, (flags, diff.mean())
        server.wait_subscribed("exact", 0)


def test_large_frames_go_in_chunks_and_come_back_whole(small_server):
    """A raw 640x480 frame (921 KB) over a server that takes 256 KiB messages."""
    url = small_server.url("big")
    recv = start("recv", url)
    small_server.wait_subscribed("big")
    frames = [{"kind": "frame", "seq": i, "image": _picture(i, (480, 640, 3))} for i in range(6)]
    send = subprocess.run(
        ["bash", "-c", f"vflow send --raw -v {url}"],
        input=pack(frames),
        capture_output=True,
        env=_env(),
        timeout=30,
    )
    out, err = recv.communicate(timeout=30)
    assert send.returncode == 0 and recv.returncode == 0, (send.stderr, err)
    assert b"in 24 messages" in send.stderr  # 4 chunks a frame (+ nothing else counted)
    got = unpack(out)
    for sent, came in zip(frames, got, strict=True):
        assert np.array_equal(sent["image"], came["image"])


def test_durable_stream_waits_for_a_late_receiver(server):
    url = server.url("stored")
    result = sh(f"vflow int 0 99 | vflow send --durable {url}")
    assert result.statuses == [0, 0], result.stderr
    out = sh(f"vflow recv --durable late {url} | vflow print -f value")
    assert out.statuses == [0, 0], out.stderr
    assert [int(line.split(":")[1].rstrip("}")) for line in out.stdout.decode().split()] == list(
        range(100)
    )


def test_durable_receiver_restarted_resumes_where_it_stopped(server, tmp_path):
    url = server.url("resume")
    result = sh(f"vflow int 0 999 | vflow send --durable {url}")
    assert result.statuses == [0, 0], result.stderr
    first = tmp_path / "first.vflow"
    with open(first, "wb") as out:
        recv = start("recv", "--durable", "me", url, stdout=out)
        assert wait_for(lambda: first.stat().st_size > 3000)  # some packets went through
        recv.send_signal(signal.SIGINT)  # Ctrl-C: stop cleanly, keep the place
        _, err = recv.communicate(timeout=30)
    assert recv.returncode == 130, err
    part1 = [p["value"] for p in unpack(first.read_bytes())]  # ended with its trailer
    assert 0 < len(part1) < 1000
    # what the first had fetched and not handed out went back to the server when it
    # stopped: the second gets it at once, not after the consumer's 30 s ack wait
    second = sh(f"vflow recv --durable me {url}", timeout=20)
    assert second.statuses == [0], second.stderr
    part2 = [p["value"] for p in unpack(second.stdout)]
    assert part1 + part2 == list(range(1000))  # nothing lost, nothing twice, in order


def test_a_cut_input_makes_the_receiver_end_without_a_trailer(server, tmp_path):
    url = server.url("cut")
    stream = tmp_path / "cut.vflow"
    stream.write_bytes(pack([{"kind": "data", "seq": i} for i in range(5)], end=False))
    recv = start("recv", url)
    server.wait_subscribed("cut")
    send = sh(f"vflow send {url} < {stream}")
    out, err = recv.communicate(timeout=30)
    assert send.statuses == [1], send.stderr  # send itself says its input was cut
    assert recv.returncode == 1
    assert b"the stream was cut: the sender's input was cut" in err
    assert len(err.strip().splitlines()) == 1, err
    assert [p["seq"] for p in _whole(out)] == list(range(5))  # all it got, then no trailer
    with pytest.raises(StreamCut):
        unpack(out)


def test_a_sender_that_vanishes_is_noticed_by_its_silence(server):
    url = server.url("gone")
    recv = Watched("recv", "--idle", "2", url)
    server.wait_subscribed("gone")
    send = start("send", url, stdin=subprocess.PIPE)
    assert send.stdin is not None
    send.stdin.write(pack([{"kind": "data", "seq": 0}], end=False))
    send.stdin.flush()
    # recv has packet 0 (the stream header and the packet are on its stdout)
    assert wait_for(lambda: len(recv.out) > len(pack([], end=False)), 30)
    send.kill()  # SIGKILL: no cut message, only silence
    send.communicate()
    assert recv.finish(timeout=30) == 1, bytes(recv.err)
    assert b"went silent" in recv.err
    assert [p["seq"] for p in _whole(bytes(recv.out))] == [0]


def test_live_sender_memory_stays_flat_with_a_stalled_receiver(server):
    """recv's output goes to a pipe nobody reads: the sender's memory must not grow."""
    url = server.url("stall")
    recv = subprocess.Popen(
        ["bash", "-c", f"exec python3 -m vflow_cli recv -v {url} | sleep 60 2>/dev/null"],
        stderr=subprocess.PIPE,
        env=_env(),
        process_group=0,  # the pipe's every process ends with the test, not after 60 s
    )
    server.wait_subscribed("stall")
    send = start(
        "send",
        "--raw",
        "-v",
        url,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    feeder = subprocess.Popen(
        ["bash", "-c", "exec python3 -m vflow_cli testcard --size 640x480"],
        stdout=send.stdin,
        env=_env(),
    )
    try:
        # windows counted in frames the server took, not in seconds: a loaded machine is slow
        assert wait_for(lambda: server.messages_in() >= 100, 60)
        before, counted = rss(send.pid), server.messages_in()
        assert wait_for(lambda: server.messages_in() >= counted + 300, 120)
        after = rss(send.pid)
        assert send.poll() is None and feeder.poll() is None
        # 921 KB frames at hundreds a second: growth would show in gigabytes
        assert after - before < 30 << 20, (before, after)
    finally:
        feeder.kill()
        feeder.wait()
        send.kill()
        send.communicate()
        os.killpg(recv.pid, signal.SIGKILL)
        recv.communicate()


def test_durable_sender_waits_and_says_so_when_the_stream_is_full(server):
    url = server.url("full")
    send = start("send", "--durable", "--max-bytes", "200K", url, stdin=subprocess.PIPE)
    feeder = subprocess.Popen(
        ["bash", "-c", "exec python3 -m vflow_cli testcard --size 320x240"],
        stdout=send.stdin,
        env=_env(),
    )
    try:
        assert wait_for(lambda: _stderr_so_far(send) or send.poll() is not None, 30)
        # full: the sender retries every 0.25 s; its memory over 8 tries (server's count)
        before, counted = rss(send.pid), server.messages_in()
        assert wait_for(lambda: server.messages_in() >= counted + 8, 30)
        after = rss(send.pid)
        assert send.poll() is None  # waiting, not failing
        assert after - before < 20 << 20
    finally:
        feeder.kill()
        feeder.wait()
        send.kill()
        _, err = send.communicate(timeout=30)
    assert b"is full" in _seen.get(send.pid, b"") + err


def test_an_empty_url_lists_the_streams(server):
    sh(f"vflow int 0 3 | vflow send --durable {server.url('listed.one')}")
    result = sh(f"vflow recv {server.url('')}")
    assert result.statuses == [0], result.stderr
    assert b"listed.one\tstored (5 messages" in result.stdout


# -- helpers -----------------------------------------------------------------------------------


def _env():
    from tests.helpers import ENV

    return ENV


def _picture(seq: int, shape=(48, 64, 3)) -> np.ndarray:
    """A smooth picture (JPEG keeps it well) that differs per frame."""
    h, w = shape[:2]
    y, x = np.mgrid[0:h, 0:w]
    base = (x * 255 // max(w - 1, 1) + y * 128 // max(h - 1, 1) + seq * 7) % 256
    return np.dstack([base, base[::-1], base[:, ::-1]]).astype(np.uint8)


def _whole(data: bytes) -> list[dict]:
    """The complete packets of a stream that may be cut."""
    import io

    from vflow_cli.framing import PacketReader, StreamCut

    out = []
    try:
        for packet in PacketReader(io.BytesIO(data)):
            out.append(packet)
    except StreamCut:
        pass
    return out


_seen: dict[int, bytes] = {}


def _stderr_so_far(proc: subprocess.Popen) -> bool:
    """Has the process written 'is full' on stderr yet? (reads without blocking)"""
    import os

    assert proc.stderr is not None
    os.set_blocking(proc.stderr.fileno(), False)
    try:
        chunk = proc.stderr.read() or b""
    except BlockingIOError:
        chunk = b""
    _seen[proc.pid] = _seen.get(proc.pid, b"") + chunk
    return b"is full" in _seen[proc.pid]
