import numpy as np
from vflow_stages.testcard import testcard as card

from tests.helpers import sh, unpack
from vflow_cli.cli import cli


def test_stream_announcement_then_frames():
    packets = list(card(size="small", frames=3, fps=None, animated=False, name="card"))
    stream, *frames = packets
    assert stream == {
        "kind": "stream",
        "source": "card",
        "width": 320,
        "height": 240,
        "fps": 30.0,
        "length": 3,
    }
    assert [f["seq"] for f in frames] == [0, 1, 2]
    assert [f["t"] for f in frames] == [0.0, 0.033333, 0.066667]  # to the microsecond
    for f in frames:
        assert f["image"].shape == (240, 320, 3) and f["image"].dtype == np.uint8


def test_explicit_sizes_and_the_caption_changes_each_frame():
    _, a, b = card(size="100x60", frames=2, fps=None, animated=False, name="t")
    assert a["image"].shape == (60, 100, 3)
    assert not np.array_equal(a["image"], b["image"])  # the frame number is drawn on it


def test_animated_frames_move():
    frames = list(card(size="small", frames=3, fps=None, animated=True, name="t"))[1:]
    lower = [f["image"][100:, :] for f in frames]  # below the caption
    assert not np.array_equal(lower[0], lower[1]) and not np.array_equal(lower[1], lower[2])


def test_colour_bars_are_where_they_should_be():
    _, f = card(size="700x300", frames=1, fps=None, animated=False, name="t")
    image = f["image"]
    assert tuple(image[150, 650]) == (192, 0, 0)  # the last bar is blue (BGR)
    assert tuple(image[150, 450]) == (192, 0, 192)  # magenta
    assert image[280, 5].tolist() == [1, 1, 1] or image[280, 5].max() < 5  # the ramp starts dark


def test_cli_round_trip(runner):
    result = runner.invoke(cli, ["testcard", "--size", "64x48", "--frames", "2"])
    assert result.exit_code == 0, result.output
    kinds = [p["kind"] for p in unpack(result.stdout_bytes)]
    assert kinds == ["stream", "frame", "frame"]


def test_issue_example_runs_through_fps_and_null():
    result = sh("vflow testcard --size 1280x720 --frames 30 | vflow fps | vflow null -v")
    assert result.statuses == [0, 0, 0]
    assert b"vflow null: in 31 packets" in result.stderr


def test_real_time_pacing_stamps_wall_time():
    result = sh("vflow testcard --size small --frames 6 --fps 20 | vflow print --kind frame")
    walls = [float(line.split(b'"wall":')[1].split(b",")[0]) for line in result.stdout.splitlines()]
    assert len(walls) == 6
    assert walls[-1] - walls[0] >= 0.2  # 5 intervals of 50 ms: paced, not a burst
