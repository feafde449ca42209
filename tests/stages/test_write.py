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
        (["x.flv"], "no default codec"),
        (["x.mp4", "--codec", "hevc"], "cannot be written"),
        (["x.mp4", "--codec", "zzzz"], "cannot write codec"),
        (["x.mp4", "--codec", "toolong"], "nor a FOURCC"),
        (["x.webm", "--codec", "h264"], "cannot hold h264"),
        (["x.avi", "--quality", "80"], "are for h264, vp9 and vp8"),
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


@pytest.mark.parametrize("ext", ["mkv", "mp4", "avi", "webm"])
def test_a_full_disk_stops_with_a_playable_file(tiny_disk, tmp_path, ext):
    out = tiny_disk / f"out.{ext}"
    source = "vflow testcard --frames 90 --animated"
    if ext in ("mp4", "webm"):  # H.264 and VP9 hold 90 test cards in less than the disk
        rng = np.random.default_rng(0)
        pictures = rng.integers(0, 255, (90, 120, 160, 3), np.uint8)
        noise = [{"kind": "frame", "seq": i, "image": p} for i, p in enumerate(pictures)]
        announce = {"kind": "stream", "width": 160, "height": 120, "fps": 30.0}
        (tmp_path / "noise.vflow").write_bytes(pack([announce, *noise]))
        source = f"cat {tmp_path / 'noise.vflow'}"
    result = sh(f"{source} | vflow write {out}")
    assert result.statuses[-1] == 1, result.stderr
    err = result.stderr.decode()
    assert err.count("\n") == 1 and err.startswith(
        f"vflow write: no space left on device for {out}"
    )
    held = int(err.split(" holds ")[1].split()[0])
    assert 0 < held < 90 and count_frames(out)[0] == held


def probe(path):
    """ffprobe's codec name, size and decoded frame count of a file's video stream."""
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
         "stream=codec_name,width,height,pix_fmt,nb_read_frames", "-of", "json", str(path)],
        capture_output=True, check=True, timeout=60,
    )  # fmt: skip
    return json.loads(result.stdout)["streams"][0]


@pytest.mark.parametrize(
    ("name", "codec", "options"),
    [
        ("a.mp4", "h264", []),
        ("a.webm", "vp9", []),
        ("a.webm", "vp8", ["--codec", "vp8"]),
        ("a.mkv", "h264", ["--codec", "h264"]),
        ("a.mp4", "h264", ["--bitrate", "300k"]),
    ],
)
def test_browser_codecs_by_extension_with_every_frame(tmp_path, name, codec, options):
    """.mp4 is H.264 and .webm VP9 (what browsers play; it was MPEG-4 Part 2), 4:2:0, with
    exactly the frames sent, through a real pipe; the file plays back in OpenCV too."""
    out = tmp_path / name
    result = sh(
        f"vflow testcard --frames 47 --animated --size 322x242 | vflow write {out} "
        + " ".join(options)
    )
    assert result.statuses == [0, 0], result.stderr
    stream = probe(out)
    assert stream["codec_name"] == codec and stream["pix_fmt"] == "yuv420p"
    assert int(stream["nb_read_frames"]) == 47
    assert (stream["width"], stream["height"]) == (322, 242)
    assert count_frames(out)[0] == 47


def test_odd_sizes_are_padded_to_even_for_4_2_0(tmp_path):
    out = tmp_path / "odd.mp4"
    write(clip(5, shape=(47, 63, 3)), str(out), None, None, None, None)
    stream = probe(out)
    assert (stream["width"], stream["height"]) == (64, 48)
    assert int(stream["nb_read_frames"]) == 5


def test_quality_and_bitrate_change_the_size(tmp_path):
    sizes = {}
    for label, options in {
        "low": "--quality 20",
        "high": "--quality 90",
        "slim": "--bitrate 100k",
        "fat": "--bitrate 4M",
    }.items():
        out = tmp_path / f"{label}.mp4"
        result = sh(f"vflow testcard --frames 60 --animated | vflow write {out} {options}")
        assert result.statuses == [0, 0], result.stderr
        sizes[label] = out.stat().st_size
    assert sizes["high"] > 2 * sizes["low"]
    assert sizes["fat"] > 2 * sizes["slim"]


def test_bad_bitrate_is_a_usage_error(tmp_path):
    result = vflow("write", str(tmp_path / "x.mp4"), "--bitrate", "fast", input=pack([]))
    assert result.returncode == 2 and b"not a bit rate" in result.stderr


def test_segments_in_h264_each_play_with_their_frames(tmp_path):
    pattern = tmp_path / "seg-%02d.mp4"
    write(clip(25, fps=10.0), str(pattern), None, None, 1.0, None)
    files = sorted(tmp_path.glob("seg-*.mp4"))
    assert [int(probe(f)["nb_read_frames"]) for f in files] == [10, 10, 5]
    assert {probe(f)["codec_name"] for f in files} == {"h264"}


def test_ctrl_c_finalises_an_h264_file(tmp_path):
    """Ctrl-C in a shell reaches every stage: the producer stops, write drains and closes
    the file, whose frames are all there."""
    out = tmp_path / "live.mp4"
    run = [sys.executable, "-m", "vflow_cli"]
    source = subprocess.Popen(
        [*run, "testcard", "--fps", "120", "--size", "small", "--animated"],
        stdout=subprocess.PIPE, env=ENV, process_group=0,
    )  # fmt: skip
    sink = subprocess.Popen(
        [*run, "write", str(out), "-v"], stdin=source.stdout, stderr=subprocess.PIPE, env=ENV,
        process_group=source.pid,
    )  # fmt: skip
    source.stdout.close()
    wait_for(lambda: out.exists() and out.stat().st_size >= 20_000, timeout=60, what="a file")
    os.killpg(source.pid, signal.SIGINT)
    _, err = sink.communicate(timeout=60)
    source.wait(timeout=30)
    assert sink.returncode == 0, err
    wrote = int(err.decode().split("wrote ")[1].split()[0])
    assert wrote > 0 and int(probe(out)["nb_read_frames"]) == wrote
