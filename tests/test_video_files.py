"""Video files end to end: every writable codec round-trips, real footage reads, Ctrl-C during
a recording leaves a playable file holding every frame the producer sent."""

import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ENV, sh, unpack, vflow, wait_for
from tests.video_support import vtest_avi

CODECS = [  # (extension, --codec or None for the extension's default)
    ("mp4", None),
    ("mov", None),
    ("m4v", None),
    ("avi", None),
    ("avi", "XVID"),
    ("mkv", None),
    ("avi", "FFV1"),
    ("mkv", "MJPG"),
]


def stream_and_frames(packets):
    head = [p for p in packets if p.get("kind") == "stream"]
    return head[0] if head else None, [p for p in packets if p.get("kind") == "frame"]


@pytest.mark.parametrize(("ext", "codec"), CODECS, ids=[f"{e}-{c or 'default'}" for e, c in CODECS])
def test_write_then_read_keeps_count_size_and_rate(tmp_path, ext, codec):
    out = tmp_path / f"x.{ext}"
    extra = f" --codec {codec}" if codec else ""
    made = sh(f"vflow testcard --size 160x120 --frames 12 --animated | vflow write '{out}'{extra}")
    assert made.statuses == [0, 0], made.stderr
    back = vflow("read", str(out))
    assert back.returncode == 0, back.stderr
    head, frames = stream_and_frames(unpack(back.stdout))
    assert (head["width"], head["height"], head["fps"]) == (160, 120, 30.0)
    assert len(frames) == 12 and head["length"] == 12
    assert frames[0]["image"].shape == (120, 160, 3)


@pytest.mark.parametrize("ext", ["mkv", "avi"])
def test_ffv1_is_lossless(tmp_path, ext):
    sent = vflow("testcard", "--size", "160x120", "--frames", "6", "--animated")
    out = tmp_path / f"lossless.{ext}"
    wrote = vflow("write", str(out), "--codec", "FFV1", input=sent.stdout)
    assert wrote.returncode == 0, wrote.stderr
    _, original = stream_and_frames(unpack(sent.stdout))
    _, decoded = stream_and_frames(unpack(vflow("read", str(out)).stdout))
    assert len(decoded) == len(original) == 6
    for a, b in zip(original, decoded, strict=True):
        assert np.array_equal(a["image"], b["image"])


def test_grey_frames_are_written_as_video(tmp_path):
    out = tmp_path / "grey.mp4"
    made = sh(f"vflow testcard --size small --frames 5 | vflow gray | vflow write '{out}'")
    assert made.statuses == [0, 0, 0], made.stderr
    _, frames = stream_and_frames(unpack(vflow("read", str(out)).stdout))
    assert len(frames) == 5 and frames[0]["image"].shape == (240, 320, 3)


def test_the_pedestrian_clip_reads_whole():
    path = vtest_avi()
    result = sh(
        f"vflow read '{path}' | vflow print --kind stream --kind frame -f width -f height -f frame",
        timeout=120,
    )
    assert result.statuses == [0, 0], result.stderr
    lines = result.stdout.decode().splitlines()
    assert lines[0] == '{"width":768,"height":576}'
    assert len(lines) == 1 + 795
    assert lines[-1] == '{"frame":794}'


def test_the_pedestrian_clip_through_resize_and_write(tmp_path):
    path = vtest_avi()
    out = tmp_path / "small.mkv"
    result = sh(
        f"vflow read '{path}' --start 700 | vflow resize 384x-1 | vflow write '{out}'", timeout=120
    )
    assert result.statuses == [0, 0, 0], result.stderr
    head, frames = stream_and_frames(unpack(vflow("read", str(out)).stdout))
    assert (head["width"], head["height"], len(frames)) == (384, 288, 95)


def test_ctrl_c_leaves_a_playable_file_with_every_frame(tmp_path):
    out = tmp_path / "out.mkv"
    base = [sys.executable, "-m", "vflow_cli"]
    producer = subprocess.Popen(
        [*base, "testcard", "--size", "small", "--fps", "30", "-v"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
        process_group=0,
    )
    consumer = subprocess.Popen(
        [*base, "write", str(out), "-v"],
        stdin=producer.stdout,
        stderr=subprocess.PIPE,
        env=ENV,
        process_group=producer.pid,
    )
    producer.stdout.close()
    try:
        wait_for(lambda: out.exists() and out.stat().st_size >= 1000, 30, "frames in the file")
        os.killpg(producer.pid, signal.SIGINT)  # what a shell does on Ctrl-C
        codes = [producer.wait(timeout=30), consumer.wait(timeout=30)]
    finally:
        for p in (producer, consumer):
            if p.poll() is None:
                p.kill()
                p.wait()
    said = producer.stderr.read().decode()
    wrote = consumer.stderr.read().decode()
    producer.stderr.close()
    consumer.stderr.close()
    assert codes == [130, 0], (said, wrote)
    sent = int(re.search(r"out (\d+) packets", said).group(1)) - 1  # less the announcement
    assert sent > 0
    assert f"wrote {sent} frames" in wrote
    assert "Traceback" not in said + wrote
    check = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"],
        capture_output=True,
        timeout=60,
    )
    assert check.returncode == 0 and not check.stderr, check.stderr
    _, frames = stream_and_frames(unpack(vflow("read", str(out)).stdout))
    assert len(frames) == sent
