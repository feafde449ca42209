"""vision.lines.LineCounter on its own: the band, the segment's ends, first sightings,
forgetting. The line runs from (0, 0) to (100, 0): y < 0 is its left, y > 0 its right."""

from __future__ import annotations

from vflow_cli.vision.geometry import Segment
from vflow_cli.vision.lines import IN, OUT, LineCounter


def counter(**options) -> LineCounter:
    return LineCounter(Segment(0, 0, 100, 0), **options)


def walk(line: LineCounter, *steps) -> list[list[tuple[int, str]]]:
    """Each step: (time, [(id, (x, y)), ...]); the crossings each frame completed."""
    return [line.update(list(feet), now) for now, feet in steps]


def test_crossing_in_then_out():
    line = counter()
    got = walk(line, (0, [(1, (50, -20))]), (1, [(1, (50, 20))]), (2, [(1, (50, -20))]))
    assert got == [[], [(1, IN)], [(1, OUT)]]
    assert line.counts == {IN: 1, OUT: 1} and line.crossed == {1} and line.seen_ids == 1


def test_the_band_keeps_the_side_up_to_its_edge():
    line = counter(band=8.0)
    got = walk(
        line,
        (0, [(1, (50, -20))]),
        (1, [(1, (50, 8))]),  # on the band's edge: not clearly across
        (2, [(1, (50, 8.5))]),  # beyond it: across
    )
    assert got == [[], [], [(1, IN)]]


def test_first_seen_inside_the_band_starts_on_its_side():
    line = counter()
    got = walk(line, (0, [(1, (50, 3)), (2, (50, -3))]), (1, [(1, (50, -20)), (2, (50, 20))]))
    assert got == [[], [(1, OUT), (2, IN)]]
    assert line.seen_ids == 2


def test_first_seen_exactly_on_the_line_counts_only_a_later_crossing():
    line = counter()
    got = walk(
        line,
        (0, [(1, (50, 0))]),
        (1, [(1, (50, 20))]),  # its first clear side: no crossing yet
        (2, [(1, (50, -20))]),
    )
    assert got == [[], [], [(1, OUT)]]


def test_beside_the_segment_nothing_counts_and_its_ends_belong_to_it():
    line = counter()
    beside = walk(line, (0, [(1, (150, -20))]), (1, [(1, (150, 20))]))
    assert beside == [[], []] and line.counts == {IN: 0, OUT: 0}
    ends = walk(
        line,
        (2, [(2, (100, -20)), (3, (0, -20)), (4, (-1, -20))]),
        (3, [(2, (100, 20)), (3, (0, 20)), (4, (-1, 20))]),
    )
    assert ends == [[], [(2, IN), (3, IN)]]


def test_where_the_path_crossed_is_remembered_until_the_side_changes():
    line = counter()
    got = walk(
        line,
        (0, [(1, (50, -20))]),
        (1, [(1, (50, 4))]),  # crossed on the segment, into the band
        (2, [(1, (150, 20))]),  # clear of the band, beside the segment now
    )
    assert got == [[], [], [(1, IN)]]


def test_an_id_unseen_longer_than_forget_is_forgotten():
    line = counter(forget=30)
    walk(line, (0, [(1, (50, -20)), (2, (10, -20))]))
    walk(line, (30, [(2, (10, -20))]))  # 30 s: still remembered
    assert walk(line, (30.5, [(1, (50, 20)), (2, (10, -20))])) == [[(1, IN)]]
    walk(line, (61, [(2, (10, -20))]))  # 1 unseen for 30.5 s: forgotten
    assert walk(line, (62, [(1, (50, -20)), (2, (10, -20))])) == [[]]  # a new id 1
    assert line.seen_ids == 3


def test_nothing_is_forgotten_while_every_id_is_in_view():
    line = counter(forget=30)
    walk(line, (0, [(1, (50, -20))]))
    assert walk(line, (100, [(1, (50, 20))])) == [[(1, IN)]]


def test_a_clock_that_goes_back_forgets_too():
    line = counter(forget=30)
    walk(line, (100, [(1, (50, -20)), (2, (10, -20))]))
    walk(line, (50, [(2, (10, -20))]))  # 50 s before 1 was seen: as stale as 50 s after
    assert walk(line, (51, [(1, (50, 20)), (2, (10, -20))])) == [[]]


def test_first_seen_on_the_line_then_left_counts_nothing():
    line = counter()
    assert walk(line, (0, [(1, (50, 0))]), (1, [(1, (50, -20))])) == [[], []]
    assert walk(line, (2, [(1, (50, 20))])) == [[(1, IN)]]  # its side was left since


def test_near_sides_count_with_a_thin_band():
    line = counter(band=0.0)
    got = walk(line, (0, [(1, (50, 0.5)), (2, (50, -0.5))]), (1, [(1, (50, -20)), (2, (50, 0.5))]))
    assert got == [[], [(1, OUT), (2, IN)]]


def test_first_seen_just_right_of_the_line_starts_right():
    line = counter()
    assert walk(line, (0, [(1, (50, 0.5))]), (1, [(1, (50, -20))])) == [[], [(1, OUT)]]
