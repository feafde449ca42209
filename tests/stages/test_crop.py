import click
import pytest
from vflow_stages.crop import crop, parse_box

from tests.helpers import frame, pack, vflow


def test_crops_frames_and_the_announcement():
    stream = {"kind": "stream", "width": 6, "height": 4}
    source = frame(0)
    expect = source["image"][1:3, 2:5].copy()
    out = list(crop(iter([stream, source]), "2,1,3,2"))
    assert (out[0]["width"], out[0]["height"]) == (3, 2)
    assert (out[1]["image"] == expect).all()
    assert out[1]["image"].flags.c_contiguous


def test_a_box_past_the_edge_is_clipped():
    out = list(crop(iter([frame(0)]), "4,2,100,100"))
    assert out[0]["image"].shape == (2, 2, 3)


def test_a_box_outside_the_frame_is_one_line():
    result = vflow("crop", "10,10,2,2", input=pack([frame(0)]))
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vflow crop: crop 10,10,2,2 starts outside")


@pytest.mark.parametrize("bad", ["1,2,3", "a,b,c,d", "0,0,0,5", "-1,0,4,4"])
def test_bad_boxes_are_refused(bad):
    with pytest.raises(click.BadParameter, match="X,Y,WIDTH,HEIGHT"):
        parse_box(bad)
