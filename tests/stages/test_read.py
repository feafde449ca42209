import re

import click
import pytest
from vflow_stages.read import parse_start, read

from tests.helpers import ENV, sh, unpack, vflow
from tests.video_support import h264_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return h264_clip(tmp_path_factory.mktemp("read"), frames=30)


def frames_of(packets):
    return [p for p in packets if p.get("kind") == "frame"]


def test_announces_then_numbers_and_times_frames(clip):
    out = list(read(str(clip), None, None, False, False, None))
    head = out[0]
    assert head["kind"] == "stream" and head["source"] == clip.name
    assert (head["width"], head["height"], head["fps"]) == (320, 240, 25.0)
    assert head["length"] == 30 == head["frames"]
    frames = frames_of(out)
    assert [p["seq"] for p in frames] == list(range(30))
    assert [p["frame"] for p in frames] == list(range(30))
    assert frames[10]["t"] == pytest.approx(0.4)
    assert frames[0]["image"].shape == (240, 320, 3)


def test_start_frames_and_time(clip):
    out = frames_of(read(str(clip), "10", 5, False, False, None))
    assert [p["frame"] for p in out] == [10, 11, 12, 13, 14]
    assert out[0]["t"] == pytest.approx(0.4) and out[0]["seq"] == 0
    by_time = frames_of(read(str(clip), "0.8s", 2, False, False, None))
    assert [p["frame"] for p in by_time] == [20, 21]


def test_loop_wraps_the_file_and_time_keeps_going(clip):
    out = list(read(str(clip), "25", 12, True, False, None))
    assert out[0]["length"] == 12
    frames = frames_of(out)
    assert [p["frame"] for p in frames] == [25, 26, 27, 28, 29, 25, 26, 27, 28, 29, 25, 26]
    times = [p["t"] for p in frames]
    assert times == sorted(times) and len(set(times)) == 12


def test_realtime_still_gives_every_frame(clip):
    out = frames_of(read(str(clip), None, 3, False, True, None))
    assert len(out) == 3


@pytest.mark.parametrize("bad", ["x", "-3s", "1:xx"])
def test_bad_starts(bad):
    with pytest.raises(click.BadParameter, match=r"frame number|before the start"):
        parse_start(bad)


def test_start_past_the_end_is_one_line(clip):
    result = vflow("read", str(clip), "--start", "500")
    assert result.returncode == 1 and b"past the end" in result.stderr
    assert result.stderr.count(b"\n") == 1


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", b"no such file"),
        (lambda d: d, b"is a directory"),
        (
            lambda d: (d / "notes.txt").write_text("not a video\n" * 50) and d / "notes.txt",
            b"text file, not a video",
        ),
        (lambda d: (d / "empty.mp4").write_bytes(b"") or d / "empty.mp4", b"not a video"),
    ],
)
def test_bad_files_are_one_line(tmp_path, make, message):
    result = vflow("read", str(make(tmp_path)))
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vflow read: "), lines
    assert message in result.stderr


def test_through_a_real_pipe(clip):
    result = sh(f"vflow read '{clip}' --frames 7 | vflow print --kind frame -f frame")
    assert result.statuses == [0, 0], result.stderr
    assert result.stdout.decode().split() == [f'{{"frame":{i}}}' for i in range(7)]


def test_packets_carry_raw_frames(clip):
    result = vflow("read", str(clip), "--frames", "2", env=ENV)
    packets = unpack(result.stdout)
    assert [p["kind"] for p in packets] == ["stream", "frame", "frame"]


def test_a_damaged_file_is_reported_by_default(tmp_path):
    whole = tmp_path / "whole.mp4"
    made = sh(
        f"vflow testcard --frames 300 --animated --size small | vflow write --codec mp4v {whole}"
    )
    assert made.statuses == [0, 0]
    data = bytearray(whole.read_bytes())
    middle = len(data) // 5
    data[middle : middle + 300_000] = b"\xff" * 300_000  # damaged in the middle
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    result = sh(f"vflow read {damaged} | vflow null")
    assert result.statuses == [0, 0]
    line = result.stderr.decode()
    assert line.count("\n") == 1, line
    assert re.fullmatch(
        rf"vflow read: {damaged} ended at frame \d+ of the 300 it announced: "
        r"the file is damaged or cut short\n",
        line,
    )
    quiet = sh(f"vflow read -q {damaged} | vflow null")
    assert quiet.stderr == b""
    assert sh(f"vflow read {whole} | vflow null").stderr == b""  # a whole file: nothing
