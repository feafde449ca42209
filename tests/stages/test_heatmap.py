import subprocess
import sys
import time

import cv2
import pytest

from tests.helpers import ENV, pack, unpack, vflow
from tests.scene import SCENE, SCENE_FRAMES, Walker, stream
from vflow_cli.framing import PacketWriter

GREY = 96  # the scene's pixels (tests/scene.py)


def coloured(pixel):
    """Heat drawn there: no longer the scene's grey."""
    return int(pixel.max()) - int(pixel.min()) > 30


def scene_picture(tmp_path, walkers, frames, *args):
    out = tmp_path / "heat.png"
    result = vflow("heatmap", str(out), *args, input=pack(stream(walkers, frames, raw=True)))
    assert result.returncode == 0, result.stderr
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape == (576, 768, 3)
    return picture


def test_hot_where_people_walked_and_hottest_where_one_stood(tmp_path):
    picture = scene_picture(tmp_path, SCENE, SCENE_FRAMES)
    for walker in SCENE:  # every foot point of every walker, tracked or not, person or car
        for n in range(0, SCENE_FRAMES, 5):
            foot = walker.foot(n)
            if foot is not None:
                x, y = round(foot[0]), round(foot[1])
                assert coloured(picture[y, x]), (walker, n, picture[y, x])
    # walker 4 dithers on (400, 350) for 5 s: the hottest place, red (BGR)
    b, g, r = (int(v) for v in picture[350, 400])
    assert r > 2 * max(b, g), (b, g, r)
    # a path walked once is cooler: blue to green, not red
    b, g, r = (int(v) for v in picture[200, 150])
    assert r < 150, (b, g, r)
    # far from every path the scene shows as it is
    for x, y in [(20, 20), (740, 20), (20, 560), (500, 60), (740, 300)]:
        assert (picture[y, x] == GREY).all(), (x, y, picture[y, x])


def test_the_colour_scale_is_drawn_in_the_corner(tmp_path):
    picture = scene_picture(tmp_path, SCENE, SCENE_FRAMES)
    # 576 lines: a bar 144 pixels tall, 11 wide, 10 from the right and bottom edges
    top = picture[426:436, 749:756].mean(axis=(0, 1))
    bottom = picture[552:562, 749:756].mean(axis=(0, 1))
    assert top[2] > 2 * max(top[:2])  # red at the top (BGR)
    assert bottom[0] > 150 and bottom[2] < 120  # blue at the bottom


def stand(ident, x, y, start, stop):
    return Walker(ident, [(start, x, y), (stop, x, y)])


def test_decay_lets_old_heat_fade(tmp_path):
    early, late = stand(1, 200, 200, 0, 40), stand(2, 600, 400, 60, 99)
    kept = scene_picture(tmp_path, [early, late], 100)
    assert coloured(kept[200, 200]) and coloured(kept[400, 600])
    faded = scene_picture(tmp_path, [early, late], 100, "--decay", "1")
    assert (faded[200, 200] == GREY).all()  # gone 6 s ago: e^-6 of the heat is left
    assert coloured(faded[400, 600])


def test_classes_choose_what_is_counted(tmp_path):
    car = next(w for w in SCENE if w.label == "car")
    picture = scene_picture(tmp_path, [car, stand(1, 200, 100, 0, 60)], 60, "--classes", "person")
    assert coloured(picture[100, 200])
    assert not coloured(picture[400, 400])  # the car's path (650 -> 150 along y=400)


def test_update_rewrites_the_picture_while_the_stream_runs(tmp_path):
    out, log = tmp_path / "live.png", tmp_path / "stderr"
    with log.open("wb") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vflow_cli", "heatmap", str(out), "--update", "1"],
            stdin=subprocess.PIPE,
            stderr=errors,
            env=ENV,
        )
    assert proc.stdin is not None
    writer = PacketWriter(proc.stdin)
    packets = list(stream([stand(1, 300, 300, 0, 40)], 40, raw=True))
    for packet in packets[:25]:  # 2.4 s of media time: the stream goes on
        writer.write(packet)
    writer.flush()
    deadline = time.monotonic() + 30
    while not out.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert out.exists(), "no picture while the stream runs"
    assert cv2.imread(str(out)) is not None  # whole, never half written
    for packet in packets[25:]:
        writer.write(packet)
    writer.close()
    proc.stdin.close()
    assert proc.wait(timeout=60) == 0, log.read_text()
    assert not list(tmp_path.glob("*.part.png"))


@pytest.mark.parametrize(
    ("name", "message"),
    [("heat.jpg", b"PNG"), ("no/such/dir/heat.png", b"does not exist")],
)
def test_a_bad_file_name_is_one_line(tmp_path, name, message):
    result = vflow("heatmap", str(tmp_path / name), input=pack(stream(SCENE, 3, raw=True)))
    assert result.returncode == 1
    assert message in result.stderr and b"Traceback" not in result.stderr
    assert result.stderr.count(b"\n") == 1


def test_no_frames_is_an_error_not_an_empty_picture(tmp_path):
    out = tmp_path / "heat.png"
    result = vflow("heatmap", str(out), input=pack([{"kind": "data", "seq": 0, "value": 1}]))
    assert result.returncode == 1 and b"no frames" in result.stderr
    assert not out.exists()


def test_annotate_heatmap_colours_the_frames_where_people_went():
    walker = Walker(1, [(0, 100, 300), (29, 700, 300)])
    out = [
        p
        for p in unpack(
            vflow(
                "annotate",
                "--heatmap",
                "--hide",
                "boxes,labels,ids,trails",
                input=pack(stream([walker], 30, raw=True)),
            ).stdout
        )
        if p.get("kind") == "frame"
    ]
    assert len(out) == 30
    last = out[-1]["image"]
    for x in range(120, 680, 40):  # the whole walk, under the last frame
        assert coloured(last[300, x]), (x, last[300, x])
    assert (last[100, 300] == GREY).all()  # nobody went there
    # the fifth frame: heat only as far as the walker had come
    assert coloured(out[5]["image"][300, 150]) and not coloured(out[5]["image"][300, 500])


def test_decay_without_heatmap_is_a_usage_error():
    result = vflow("annotate", "--decay", "5", input=pack(stream(SCENE, 2, raw=True)))
    assert result.returncode == 2 and b"--heatmap" in result.stderr
