import click
import pytest

from vflow_cli.vision.geometry import (
    Polygon,
    Segment,
    clip_segment,
    foot,
    parse_polygon,
    parse_segment,
)


def test_right_hand_side_is_positive_on_the_picture():
    across = Segment(0, 300, 768, 300)  # drawn left to right: its right is below
    assert across.distance((10, 310)) == pytest.approx(10)
    assert across.distance((10, 290)) == pytest.approx(-10)
    down = Segment(400, 0, 400, 576)  # drawn top to bottom: its right is the picture's left
    assert down.distance((390, 50)) == pytest.approx(10)


def test_crossing_says_where_along_the_segment():
    s = Segment(100, 100, 300, 100)
    assert s.crossing((200, 90), (200, 110)) == pytest.approx(0.5)
    assert s.crossing((350, 90), (350, 110)) == pytest.approx(1.25)  # beside its end
    assert s.crossing((200, 90), (250, 95)) is None


def test_foot_is_the_bottom_centre():
    assert foot([10, 20, 30, 100]) == (20, 100)


def test_polygon_distance_is_signed_and_concave_shapes_work():
    l_shape = Polygon([(0, 0), (100, 0), (100, 100), (50, 100), (50, 50), (0, 50)])
    assert l_shape.distance((25, 25)) == pytest.approx(25)
    assert l_shape.distance((25, 75)) == pytest.approx(-25)  # the notch
    assert l_shape.distance((75, 90)) == pytest.approx(10)
    assert not l_shape.contains((25, 75)) and l_shape.contains((75, 75))


def test_clipping_and_overlap_with_the_picture():
    assert clip_segment(-100, 50, 200, 50, 100, 100) == pytest.approx((0, 50, 100, 50))
    assert clip_segment(-100, -5, 200, -5, 100, 100) is None
    assert Segment(-100, 50, 200, 50).meets_rect(100, 100)
    big = Polygon([(-10, -10), (500, -10), (500, 500), (-10, 500)])
    assert big.meets_rect(100, 100)  # the picture lies inside it: no corner or edge inside
    assert not Polygon([(200, 200), (300, 200), (300, 300)]).meets_rect(100, 100)


@pytest.mark.parametrize("text", ["1,2,1,2", "1,2,3", "1,2,3,4,5", "1,2,3,nan"])
def test_bad_segments(text):
    with pytest.raises(click.BadParameter):
        parse_segment(text)


def test_polygons_need_an_area():
    with pytest.raises(click.BadParameter):
        parse_polygon(["0,0", "1,1", "2,2"])
    assert parse_polygon(["0,0", "1,0", "0,1"]) == [(0, 0), (1, 0), (0, 1)]


def test_polygon_clipping_keeps_the_part_inside():
    from vflow_cli.vision.geometry import clip_polygon

    huge = [(0, 0), (1e12, 0), (0, 1e12)]
    assert sorted(clip_polygon(huge, -10, -10, 110, 110)) == [
        (0, 0),
        (0, 110),
        (110, 0),
        (110, 110),
    ]
    assert clip_polygon([(200, 200), (300, 200), (300, 300)], 0, 0, 100, 100) == []
