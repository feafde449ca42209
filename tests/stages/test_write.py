import json
import os
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
from vflow_stages.write import write

from tests.helpers import ENV, frame, pack, sh, vflow, wait_for
from vflow_cli.videofile import segment_name


def count_frames(path):
    """Decode a video to the end: the number of frames it really holds."""
    capture = cv2.VideoCapture(str(path))
    assert capture.isOpened(), f"{path} does not open"
    n = 0
    while capture.grab():
        n += 1
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return n, fps


def clip(n=6, shape=(48, 64, 3), fps=12.0):
    yield {"kind": "stream", "source": "t", "width": shape[1], "height": shape[0], "fps": fps}
    for i in range(n):
        yield {
            "kind": "frame",
            "seq": i,
            "t": i / fps,
            "image": np.full(shape, 20 * i % 256, np.uint8),
        }


def test_plain_function_writes_a_playable_file_at_the_stream_rate(tmp_path):
    out = tmp_path / "a.mkv"
    write(clip(), str(out), None, None, None, None)
    assert count_frames(out) == (6, 12.0)


def test_grey_and_mixed_size_frames_are_written(tmp_path):
    out = tmp_path / "g.avi"
    packets = list(clip(4, shape=(48, 64)))
    packets.append({"kind": "frame", "seq": 9, "image": np.zeros((30, 30, 3), np.uint8)})
    write(iter(packets), str(out), "MJPG", 5.0, None, None)
    assert count_frames(out) == (5, 5.0)


def test_segments_and_metadata(tmp_path):
    pattern = tmp_path / "seg-%02d.mkv"
    meta = tmp_path / "meta.jsonl"
    write(clip(30, fps=10.0), str(pattern), None, None, 1.0, str(meta))
    files = sorted(p.name for p in tmp_path.glob("seg-*.mkv"))
    assert files == ["seg-00.mkv", "seg-01.mkv", "seg-02.mkv"]
    assert [count_frames(tmp_path / f)[0] for f in files] == [10, 10, 10]
    lines = [json.loads(line) for line in meta.read_text().splitlines()]
    assert len(lines) == 31 and lines[0]["kind"] == "stream"
    assert lines[5]["image"] == {"format": "raw", "dtype": "uint8", "shape": [48, 64, 3]}


def test_segment_names():
    assert segment_name("a-%03d.mp4", 7, 0) == "a-007.mp4"
    assert segment_name("a.mp4", 2, 0) == "a-002.mp4"
    assert segment_name("cam-%Y.mkv", 0, 0).startswith("cam-19")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["/nonexistent-dir/x.mp4"], "does not exist"),
        (["x.webm"], "no default codec"),
        (["x.mp4", "--codec", "avc1"], "cannot be written"),
        (["x.mp4", "--codec", "zzzz"], "cannot write codec"),
        (["x.mp4", "--codec", "toolong"], "not a FOURCC"),
        (["."], "is a directory"),
    ],
)
def test_errors_come_before_any_input_is_read(tmp_path, args, message):
    # stdin stays open and silent: the stage must fail without waiting for a frame
    process = subprocess.Popen(
        [sys.executable, "-m", "vflow_cli", "write", *args],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=tmp_path,
        env=ENV,
    )
    try:
        code = process.wait(timeout=30)
    finally:
        process.stdin.close()
    lines = process.stderr.read().decode().splitlines()
    process.stderr.close()
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("vflow write: ") and message in lines[0]


def test_unwritable_meta_file(tmp_path):
    result = vflow(
        "write",
        str(tmp_path / "x.mkv"),
        "--meta",
        "/nonexistent-dir/m.jsonl",
        input=pack([frame(0)]),
    )
    assert result.returncode == 1 and b"does not exist" in result.stderr


def test_no_frames_writes_nothing(tmp_path):
    result = vflow("write", str(tmp_path / "x.mkv"), input=pack([{"kind": "data"}]))
    assert result.returncode == 0
    assert not (tmp_path / "x.mkv").exists()
    assert b"no frames arrived" in result.stderr


def test_jpeg_frames_through_real_pipes(tmp_path):
    out = tmp_path / "j.mp4"
    result = sh(f"vflow testcard --size small --frames 8 | vflow jpeg | vflow write '{out}'")
    assert result.statuses == [0, 0, 0], result.stderr
    assert count_frames(out) == (8, 30.0)


def test_a_cut_input_finalises_the_file_and_says_what_it_holds(tmp_path):
    out = tmp_path / "cut.mkv"
    stream = pack(clip(n=5), end=False)  # the stage before died after 5 frames
    result = vflow("write", str(out), input=stream)
    assert result.returncode == 1
    assert result.stderr.decode() == (
        "vflow write: input ended without an end of stream: a stage before this one "
        f"stopped early; {out} holds 5 frames\n"
    )
    assert count_frames(out)[0] == 5


def test_a_killed_middle_stage_is_noticed_by_write(tmp_path):
    # testcard --fps 30 | resize | write, with real pipes; resize is SIGKILLed mid-stream
    out = tmp_path / "out.mkv"
    run = [sys.executable, "-m", "vflow_cli"]
    quiet = {"env": ENV, "stderr": subprocess.DEVNULL, "stdout": subprocess.PIPE}
    source = subprocess.Popen([*run, "testcard", "--fps", "30", "--size", "small"], **quiet)
    middle = subprocess.Popen([*run, "resize", "160x120"], stdin=source.stdout, **quiet)
    sink = subprocess.Popen(
        [*run, "write", str(out)], stdin=middle.stdout, stderr=subprocess.PIPE, env=ENV
    )
    source.stdout.close()  # only the children hold the pipes now
    middle.stdout.close()
    wait_for(lambda: out.exists() and out.stat().st_size >= 100_000, 60, "frames in the file")
    middle.send_signal(signal.SIGKILL)
    _, err = sink.communicate(timeout=60)
    source.wait(timeout=30)  # its reader died: 141
    middle.wait()
    text = err.decode()
    assert sink.returncode == 1 and text.count("\n") == 1, text
    assert text.startswith("vflow write: input ended"), text
    assert "a stage before this one stopped early" in text
    held = int(text.split(" holds ")[1].split()[0])
    assert held > 0 and count_frames(out)[0] == held
    assert source.returncode == 141


@pytest.fixture
def tiny_disk(tmp_path):
    """A 512 KiB filesystem (a tmpfs: needs root)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    folder = tmp_path / "tiny"
    folder.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=False)


@pytest.mark.parametrize("ext", ["mkv", "mp4", "avi"])
def test_a_full_disk_stops_with_a_playable_file(tiny_disk, ext):
    out = tiny_disk / f"out.{ext}"
    result = sh(f"vflow testcard --frames 90 --animated | vflow write {out}")
    assert result.statuses[-1] == 1, result.stderr
    err = result.stderr.decode()
    assert err.count("\n") == 1 and err.startswith(
        f"vflow write: no space left on device for {out}"
    )
    held = int(err.split(" holds ")[1].split()[0])
    assert 0 < held < 90 and count_frames(out)[0] == held
