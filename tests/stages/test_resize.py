import click
import pytest
from vflow_stages.resize import parse_target, plan, resize

from tests.helpers import frame, pack, unpack, vflow


def stream(width=6, height=4):
    return {"kind": "stream", "source": "t", "width": width, "height": height, "fps": 30.0}


def test_stretch_resizes_frames_and_the_announcement():
    out = list(
        resize(iter([stream(), frame(0), {"kind": "data", "x": 1}]), "12x2", "stretch", "auto", 0)
    )
    assert out[0]["width"] == 12 and out[0]["height"] == 2
    assert out[1]["image"].shape == (2, 12, 3)
    assert out[1]["seq"] == 0 and out[1]["t"] == 0
    assert out[2] == {"kind": "data", "x": 1}


@pytest.mark.parametrize(
    ("target", "mode", "expect"),
    [
        ((3, -1), "stretch", (3, 2, 3, 2)),
        ((-1, 8), "stretch", (12, 8, 12, 8)),
        ((12, 12), "fit", (12, 8, 12, 8)),
        ((12, 12), "fill", (18, 12, 12, 12)),
        ((12, 12), "pad", (12, 8, 12, 12)),
    ],
)
def test_keep_aspect_plans(target, mode, expect):
    assert plan((6, 4), target, mode) == expect


@pytest.mark.parametrize("mode", ["fit", "fill", "pad"])
def test_modes_give_the_planned_size(mode):
    out = list(resize(iter([stream(), frame(0)]), "12x12", mode, "nearest", 0))
    _, _, w, h = plan((6, 4), (12, 12), mode)
    assert (out[0]["width"], out[0]["height"]) == (w, h)
    assert out[1]["image"].shape == (h, w, 3)


def test_pad_bars_have_the_pad_value():
    out = list(resize(iter([frame(0, shape=(4, 8, 3))]), "8x8", "pad", "nearest", 7))
    assert (out[0]["image"][0] == 7).all() and (out[0]["image"][-1] == 7).all()


def test_grey_and_jpeg_frames_are_resized(tmp_path):
    from vflow_stages.jpeg import encode

    grey = frame(0, shape=(4, 6))
    coded = frame(1, shape=(16, 16, 3))
    coded["image"] = encode(coded["image"], 90)
    out = list(resize(iter([grey, coded]), "3x2", "stretch", "auto", 0))
    assert out[0]["image"].shape == (2, 3)
    assert out[1]["image"].shape == (2, 3, 3)


@pytest.mark.parametrize("bad", ["640", "0x10", "axb", "-1x-1", "-2x4"])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(click.BadParameter, match="WIDTHxHEIGHT"):
        parse_target(bad)


def test_through_a_real_process():
    result = vflow("resize", "3x-1", input=pack([stream(), frame(0), frame(1)]))
    assert result.returncode == 0, result.stderr
    packets = unpack(result.stdout)
    assert (packets[0]["width"], packets[0]["height"]) == (3, 2)
    assert [p["image"].shape for p in packets[1:]] == [(2, 3, 3)] * 2


def test_usage_error_names_the_parameter():
    result = vflow("resize", "big", input=pack([frame(0)]))
    assert result.returncode == 2
    assert b"WxH" in result.stderr and b"Traceback" not in result.stderr
