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


# born past the line: an id that appears just past it, over the segment, after the first
# frame, and walks a band further away has crossed (a tracker lost someone at the line)


def test_born_past_the_line_counts_once_it_is_a_band_further_away():
    line = counter(band=8.0, born=30.0)
    got = walk(
        line,
        (0, [(1, (50, -40))]),  # the first frame: nobody in it is born
        (1, [(1, (50, -40)), (2, (50, 10))]),  # 10 px right of the line: born at 10
        (2, [(1, (50, -40)), (2, (50, 17.5))]),  # 7.5 px further: not yet a band
        (3, [(1, (50, -40)), (2, (50, 18))]),  # 8 px further: it crossed, in
        (4, [(1, (50, -40)), (2, (50, 60))]),  # and counts once
    )
    assert got == [[], [], [], [(2, IN)], []]
    assert line.counts == {IN: 1, OUT: 0} and line.crossed == {2} and line.seen_ids == 2


def test_born_on_the_left_counts_out():
    line = counter(born=30.0)
    got = walk(line, (0, []), (1, [(2, (50, -30))]), (2, [(2, (50, -38))]))
    assert got == [[], [], [(2, OUT)]]
    assert line.counts == {IN: 0, OUT: 1}


def test_born_up_to_the_limit_and_not_beyond():
    line = counter(born=30.0)
    got = walk(
        line,
        (0, []),
        (1, [(2, (50, 30)), (3, (50, 30.5))]),  # 2 at the limit, 3 beyond it
        (2, [(2, (50, 80)), (3, (50, 80))]),
    )
    assert got == [[], [], [(2, IN)]]


def test_nobody_in_the_first_frame_is_born_even_with_an_empty_clock():
    line = counter(born=30.0)
    assert walk(line, (0, [(1, (50, 10))]), (1, [(1, (50, 60))])) == [[], []]


def test_born_exactly_on_the_line_is_not_born():
    line = counter(born=30.0)
    assert walk(line, (0, []), (1, [(2, (50, 0))]), (2, [(2, (50, 60))])) == [[], [], []]


def test_born_beside_the_segment_is_not_born_and_its_ends_are_in():
    line = counter(born=30.0)
    got = walk(
        line,
        (0, []),
        (1, [(2, (-0.5, 10)), (3, (100.5, 10)), (4, (0, 10)), (5, (100, 10))]),
        (2, [(2, (-0.5, 60)), (3, (100.5, 60)), (4, (0, 60)), (5, (100, 60))]),
    )
    assert got == [[], [], [(4, IN), (5, IN)]]


def test_level_with_a_slanted_segment():
    # P1 (10, 20) to P2 (110, 120): level with it is between the perpendiculars at its ends
    line = LineCounter(Segment(10, 20, 110, 120), born=30.0)
    inside, before, after = (70, 60), (0, 25), (115, 120)  # all within 14 px of the line
    got = walk(line, (0, []), (1, [(1, inside), (2, before), (3, after)]))
    assert got == [[], []]
    assert line._tracks[1].born is not None
    assert line._tracks[2].born is None and line._tracks[3].born is None
    assert line._over((60, 70)) and line._over((10, 20)) and line._over((110, 120))
    assert not line._over((9, 19)) and not line._over((111, 120.5))


def test_born_measures_from_where_it_began_while_it_stays_past_the_line():
    line = counter(band=8.0, born=30.0)
    got = walk(
        line,
        (0, []),
        (1, [(2, (50, 20))]),  # born 20 px right
        (2, [(2, (50, 15))]),  # nearer the line, still past it: still born
        (3, [(2, (50, 27.5))]),  # 7.5 px beyond where it began: not yet
        (4, [(2, (50, 28))]),  # a band beyond it: in
    )
    assert got == [[], [], [], [], [(2, IN)]]


def test_born_then_back_over_the_line_counts_only_a_real_crossing():
    line = counter(band=8.0, born=30.0)
    got = walk(
        line,
        (0, []),
        (1, [(2, (50, 20))]),  # born 20 px right
        (2, [(2, (50, -5))]),  # back over the line (inside the band): no longer born
        (3, [(2, (50, 60))]),  # away again: it never left its side, nothing
        (4, [(2, (50, -20))]),  # crosses for real: out
    )
    assert got == [[], [], [], [], [(2, OUT)]]


def test_born_then_straight_across_counts_the_crossing_not_the_birth():
    line = counter(band=8.0, born=30.0)
    got = walk(line, (0, []), (1, [(2, (50, 20))]), (2, [(2, (50, -20))]))
    assert got == [[], [], [(2, OUT)]]
    assert line.counts == {IN: 0, OUT: 1}


def test_born_past_the_line_with_no_born_distance_is_never_born():
    line = counter(band=8.0)  # born 0: the default
    got = walk(line, (0, []), (1, [(2, (50, 0.5))]), (2, [(2, (50, 60))]))
    assert got == [[], [], []]


def test_two_ids_born_past_the_line_count_twice():
    line = counter(born=30.0)
    got = walk(line, (0, []), (1, [(2, (40, 10)), (3, (60, 12))]), (2, [(2, (40, 60))]))
    got += walk(line, (3, [(3, (60, 60))]))
    assert got == [[], [], [(2, IN)], [(3, IN)]] and line.counts == {IN: 2, OUT: 0}


def test_born_ends_on_the_line_itself_and_not_just_short_of_it():
    line = counter(band=8.0, born=30.0)
    on = walk(line, (0, []), (1, [(2, (50, 20))]), (2, [(2, (50, 0))]), (3, [(2, (50, 28))]))
    assert on == [[], [], [], []]  # it came back to the line: no longer born
    line = counter(band=8.0, born=30.0)
    near = walk(line, (0, []), (1, [(2, (50, 20))]), (2, [(2, (50, 0.5))]), (3, [(2, (50, 28))]))
    assert near == [[], [], [], [(2, IN)]]  # half a pixel short of it: still born


def test_first_seen_in_the_band_keeps_its_side_through_the_band():
    # first seen 3 px right, it wanders over the line inside the band and out on the right:
    # it never left the right, so nothing counts; the same on the left
    line = counter(band=8.0)
    right = walk(line, (0, [(1, (50, 3))]), (1, [(1, (50, -2))]), (2, [(1, (50, 20))]))
    left = walk(line, (3, [(2, (50, -3))]), (4, [(2, (50, 2))]), (5, [(2, (50, -20))]))
    assert right == [[], [], []] and left == [[], [], []]


def test_first_seen_exactly_on_the_line_has_no_side_until_it_is_clear():
    line = counter(band=8.0)
    got = walk(
        line,
        (0, [(1, (50, 0))]),
        (1, [(1, (50, -4))]),
        (2, [(1, (50, 4))]),  # over the line, inside the band
        (3, [(1, (50, 20))]),  # its first clear side: not a crossing
    )
    assert got == [[], [], [], []]
