"""Shared-memory frames (framing.shm): real stages on real pipes, killed, spied on and lied to."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import msgpack
import numpy as np
import pytest

from tests.graph.util import wait_for
from tests.helpers import ENV, sh, unpack
from tests.net.util import rss
from vflow_cli.framing.shm import Offer

VFLOW = [sys.executable, "-m", "vflow_cli"]


def start(*stages: list[str], env: dict[str, str] | None = None) -> list[subprocess.Popen]:
    """A pipeline of vflow stages, each its own process; the last one's output is dropped."""
    procs: list[subprocess.Popen] = []
    upstream = None
    for i, argv in enumerate(stages):
        last = i == len(stages) - 1
        proc = subprocess.Popen(
            [*VFLOW, *argv],
            stdin=upstream if upstream is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL if last else subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env or ENV,
        )
        if upstream is not None:
            upstream.close()
        upstream = proc.stdout
        procs.append(proc)
    return procs


def rings_of(pid: int) -> set[str]:
    """The vflow rings a process maps or holds open, as 'vflow-ring-PID' (its creator)."""
    found = set()
    try:
        for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
            if "memfd:vflow-ring-" in line:
                found.add(line.split("memfd:")[1].split()[0])
    except OSError:
        pass
    return found


def rings_anywhere(creators: list[int]) -> list[str]:
    """Every descriptor or mapping of a ring made by one of `creators`, in any process."""
    names = {f"vflow-ring-{pid}" for pid in creators}
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("/memfd:") and target[7:].split()[0] in names:
                    left.append(f"{entry.name}: fd {target}")
        except OSError:
            pass
        left += [f"{entry.name}: map {name}" for name in rings_of(int(entry.name)) & names]
    return left


def stop_all(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()


def test_frames_go_by_shared_memory_and_arrive_unchanged(tmp_path: Path) -> None:
    """The same pixels with and without shared memory, and only with it do they skip the
    pipe (each flip reports the images it took and gave by reference)."""
    outputs = {}
    for shm in ("1", "0"):
        out = tmp_path / f"out{shm}.vflow"
        result = sh(
            "vflow testcard --size 320x240 --frames 5 -q | vflow flip -v | vflow flip v -v "
            f"| vflow rotate 90 -v > {out}",
            env={**ENV, "VFLOW_SHM": shm},
        )
        assert result.statuses == [0, 0, 0, 0], result.stderr.decode()
        text = result.stderr.decode()
        if shm == "1":
            assert text.count("by shared memory: 5 images in, 5 out") == 2, text
            assert text.count("by shared memory: 5 images in\n") == 1, text
        else:
            assert "shared memory" not in text, text
        outputs[shm] = [p for p in unpack(out.read_bytes()) if "image" in p]
    assert len(outputs["1"]) == 5
    for a, b in zip(outputs["1"], outputs["0"], strict=True):
        assert np.array_equal(a["image"], b["image"])


def test_foreign_reader_gets_inline_bytes_and_a_stranger_gets_nothing(tmp_path: Path) -> None:
    """A msgpack reader in another program never asks, so every image arrives inline; a
    process that connects to the offer without reading the pipe is turned away."""
    script = textwrap.dedent(
        """
        import socket, subprocess, sys, msgpack
        unpacker = msgpack.Unpacker(sys.stdin.buffer, raw=False)
        header = next(unpacker)
        stranger = subprocess.Popen([sys.executable, "-c", '''
        import socket, sys
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(chr(0) + sys.argv[1][1:])
        s.settimeout(60)
        message, fds, _, _ = socket.recv_fds(s, 64, 4)
        print(len(message), len(fds))
        ''', header["shm"]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        frames = 0
        for obj in unpacker:
            if "image" in obj:
                payload = next(unpacker)
                assert "shm" not in obj["image"], obj
                assert isinstance(payload, bytes) and len(payload) == 320 * 240 * 3
                frames += 1
                # the writer turns the stranger away at a frame after it connects: read on
                if frames >= 20 and stranger.poll() is not None or frames == 3000:
                    break
        print("stranger", stranger.communicate(timeout=60)[0].strip())
        print("frames", frames)
        """
    )
    (tmp_path / "foreign.py").write_text(script)
    result = sh(
        f"vflow testcard --size 320x240 --fps 30 -q | {sys.executable} {tmp_path}/foreign.py",
        timeout=120,
    )
    out = result.stdout.decode()
    assert "stranger 0 0" in out, (out, result.stderr.decode())  # EOF: no message, no fd
    assert "frames 20" in out, (out, result.stderr.decode())
    assert result.statuses[1] == 0


@pytest.mark.parametrize("victim", [0, 1, 2])
def test_sigkill_of_any_stage_leaves_no_segment(victim: int) -> None:
    """memfd rings have no file: whichever stage dies, once the pipeline has ended no
    process holds or maps a ring, and /dev/shm holds nothing new."""
    before = set(os.listdir("/dev/shm"))
    procs = start(
        ["testcard", "--size", "320x240", "--fps", "50", "-q"], ["flip"], ["flip", "v"], ["gray"]
    )
    try:
        pids = [p.pid for p in procs]
        # each reader maps the ring of the stage before it: shared memory is in use
        wait_for(
            lambda: all(f"vflow-ring-{pids[i]}" in rings_of(pids[i + 1]) for i in range(3)),
            timeout=60,
            what="every stage to map its writer's ring",
        )
        procs[victim].send_signal(signal.SIGKILL)
        for proc in procs:  # the others see a cut stream or a closed reader, and exit
            proc.wait(timeout=60)
        assert rings_anywhere(pids) == []
        assert {n for n in set(os.listdir("/dev/shm")) - before if "vflow" in n} == set()
    finally:
        stop_all(procs)


@pytest.mark.parametrize(
    ("frames", "fps"),
    [
        (1500, "500"),
        pytest.param(
            18000, "30", marks=[pytest.mark.slow, pytest.mark.timeout(900)], id="10-minutes"
        ),
    ],
)
def test_memory_stays_flat(frames: int, fps: str) -> None:
    """Rings are made once and slots come back: a long run holds no more than its start.
    The source is paced so that the run lasts long enough to sample on any machine."""
    pace = ["--fps", fps]
    procs = start(
        ["testcard", "--size", "640x360", "--frames", str(frames), "-q", *pace],
        ["flip"],
        ["stamp", "{seq}"],
        ["null"],
    )
    try:
        wait_for(lambda: rings_of(procs[2].pid), timeout=60, what="shared memory")
        samples: list[tuple[int, int]] = []
        while True:
            try:
                procs[1].wait(timeout=0.05)  # sample until the first processor ends
                break
            except subprocess.TimeoutExpired:
                pass
            try:
                samples.append((rss(procs[1].pid), rss(procs[2].pid)))
            except (OSError, RuntimeError):
                break  # it has just exited
        for proc in procs:
            assert proc.wait(timeout=120) == 0
        assert len(samples) > 10
        for stage in (0, 1):
            early = max(s[stage] for s in samples[: len(samples) // 5])
            late = max(s[stage] for s in samples[len(samples) // 2 :])
            assert late - early < 16 << 20, (stage, early, late)
    finally:
        stop_all(procs)


def _writer_test(lie: str) -> subprocess.CompletedProcess:
    """This test is the writer: it offers shared memory to `vflow flip`, sends one honest
    frame by reference, then one whose reference lies (`lie`)."""
    proc = subprocess.Popen(
        [*VFLOW, "flip"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    )
    assert proc.stdin is not None
    offer = Offer(proc.stdin.fileno(), 1 << 30)
    pack = msgpack.Packer().pack
    try:
        address = offer.address if lie != "never offered" else None
        proc.stdin.write(pack({"vflow": 1, **({"shm": address} if address else {})}))
        proc.stdin.flush()
        image = np.arange(320 * 240 * 3, dtype=np.uint16).astype(np.uint8).reshape(240, 320, 3)
        if lie == "never offered":
            ref = {"format": "raw", "dtype": "uint8", "shape": [240, 320, 3], "shm": [1, 0, 2]}
        else:
            wait_for(offer.ready, timeout=60, what="flip to take up the offer")
            ref = offer.place(image, lambda: None)
            assert ref is not None
            proc.stdin.write(pack({"kind": "frame", "seq": 0, "image": ref}))
            ref = dict(ref)
            ring, slot, generation = ref["shm"]
            ref["shm"] = {
                "slot out of range": [ring, 99, generation],
                "another generation": [ring, slot, generation + 2],
                "a ring never sent": [ring + 1, slot, generation],
                "a longer image": [ring, slot, generation],
            }[lie]
            if lie == "a longer image":
                ref["shape"] = [240 * 400, 320, 3]
        proc.stdin.write(pack({"kind": "frame", "seq": 1, "image": ref}))
        proc.stdin.write(pack({"vflow": 1, "end": True, "packets": 2}))
        proc.stdin.close()
        proc.stdin = None  # closed: communicate() only reads
        out, err = proc.communicate(timeout=60)
    finally:
        offer.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.mark.parametrize(
    ("lie", "says"),
    [
        ("never offered", "refers to shared memory this reader was not given"),
        ("slot out of range", "shared-memory reference out of its ring"),
        ("another generation", "holds another frame"),
        ("a ring never sent", "refers to shared memory this reader was not given"),
        ("a longer image", "shared-memory reference out of its ring"),
    ],
)
def test_reader_never_trusts_a_reference(lie: str, says: str) -> None:
    result = _writer_test(lie)
    err = result.stderr.decode()
    assert result.returncode == 1, err
    assert err.count("\n") == 1 and err.startswith("vflow flip: packet "), err
    assert says in err, err
    if lie != "never offered":  # the honest frame before it went through, flipped
        frames = [p for p in unpack_cut(result.stdout) if "image" in p]
        assert len(frames) == 1 and frames[0]["image"][0, 0, 0] == 319 * 3 % 256


def unpack_cut(stream: bytes) -> list[dict]:
    """The packets of a stream that was cut (the stage failed), without its trailer."""
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(stream)
    out, objects = [], iter(unpacker)
    for obj in objects:
        if "image" in obj:
            payload = next(objects)
            obj["image"] = np.frombuffer(payload, np.uint8).reshape(obj["image"]["shape"])
        if "vflow" not in obj:
            out.append(obj)
    return out


@pytest.mark.parametrize("answer", ["yes", "none", "gone"])
def test_images_go_by_reference_only_once_the_reader_said_yes(answer: str) -> None:
    """The reader of the pipe connects, and the writer's own check of it passes; but the
    reader's check of the writer can still fail (a writer that closed the pipe by then).
    Until the reader says yes the writer sends every image inline; a reader that leaves
    without a yes never gets a reference."""
    read_end, write_end = os.pipe()
    offer = Offer(write_end, 1 << 30)
    script = textwrap.dedent(
        """
        import socket, struct, sys
        s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        s.connect(chr(0) + sys.argv[1][1:])
        if sys.argv[2] == "yes":
            s.send(struct.pack("<cIIQ", b"A", 0, 0, 0))
        print("connected", flush=True)
        if sys.argv[2] != "gone":
            sys.stdin.buffer.read()  # stay until the writer closes the pipe
        """
    )
    reader = subprocess.Popen(
        [sys.executable, "-c", script, offer.address, answer],
        stdin=read_end,
        stdout=subprocess.PIPE,
        text=True,
    )
    os.close(read_end)
    assert reader.stdout is not None
    image = np.zeros((240, 320, 3), np.uint8)
    try:
        assert reader.stdout.readline() == "connected\n"
        if answer == "yes":
            wait_for(offer.ready, timeout=60, what="the reader to say yes")
            assert offer.place(image, lambda: None) is not None
        else:
            if answer == "gone":
                assert reader.wait(timeout=60) == 0
            for _ in range(3):  # the connection is there, verified: no yes, no reference
                assert not offer.ready()
                assert offer.place(image, lambda: None) is None  # inline
    finally:
        offer.close()
        os.close(write_end)
        reader.stdout.close()
        assert reader.wait(timeout=60) == 0
