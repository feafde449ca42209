"""net.reorder on its own: the buffer that puts a network stream back in order.

Time is a number the test passes (`now`), so every wait is exact and nothing sleeps."""

from __future__ import annotations

from vflow_cli.net.reorder import Reorder


def delivered(out) -> list:
    """What pop() handed out, as (what, seq, parts in order)."""
    return [
        (what, seq, [e.parts[k] for k in sorted(e.parts)] if e is not None else None)
        for what, seq, e, _count in out
    ]


def test_in_order_each_number_goes_when_all_its_parts_are_in():
    r = Reorder(wait=5, limit=10, start=0)
    assert r.add(0, 0, None, "a", now=0)
    assert r.pop(now=0) == []  # parts of 0 still unknown: it may have more
    assert r.add(0, 1, 2, "b", now=0)  # the last part says how many
    assert delivered(r.pop(now=0)) == [("deliver", 0, ["a", "b"])]
    assert r.add(1, 0, 0, None, now=0)  # a number with no output (a worker dropped it)
    assert delivered(r.pop(now=0)) == [("deliver", 1, [])]
    assert r.next == 2 and r.counts.delivered == 2 and r.counts.skipped == 0


def test_a_gap_waits_then_is_skipped_after_wait_seconds():
    r = Reorder(wait=5, limit=10, start=0)
    r.add(1, 0, 1, "one", now=10)
    r.add(2, 0, 1, "two", now=11)
    assert r.pop(now=14.9) == []  # 0 may still come
    assert r.deadline() == 15
    out = delivered(r.pop(now=15))
    assert out == [("skip", 0, None), ("deliver", 1, ["one"]), ("deliver", 2, ["two"])]
    assert r.counts.skipped == 1 and r.counts.delivered == 2


def test_a_gap_filled_in_time_keeps_the_order():
    r = Reorder(wait=5, limit=10, start=0)
    r.add(2, 0, 1, "two", now=0)
    r.add(1, 0, 1, "one", now=1)
    assert r.pop(now=4) == []
    r.add(0, 0, 1, "zero", now=4.5)
    assert [seq for _, seq, _, _count in r.pop(now=4.5)] == [0, 1, 2]
    assert r.counts.skipped == 0


def test_duplicates_are_dropped_and_counted():
    r = Reorder(wait=5, limit=10, start=0)
    assert r.add(0, 0, 1, "zero", now=0)
    assert [seq for _, seq, _, _count in r.pop(now=0)] == [0]
    assert not r.add(0, 0, 1, "zero again", now=1)  # below next: a redelivery
    assert r.add(1, 0, None, "first", now=1)
    assert not r.add(1, 0, None, "first again", now=1)  # the same part twice
    assert r.held[1].extra == ["first again"]  # kept, to be acknowledged
    r.add(1, 1, 2, "second", now=1)
    assert delivered(r.pop(now=1)) == [("deliver", 1, ["first", "second"])]
    assert r.counts.duplicates == 2


def test_a_full_window_skips_the_missing_number_at_once():
    r = Reorder(wait=100, limit=3, start=0)
    for seq in (1, 2, 3):
        r.add(seq, 0, 1, seq, now=0)
    assert r.pop(now=0) == []  # 3 held: the limit, not beyond
    r.add(4, 0, 1, 4, now=0)
    out = r.pop(now=0)  # 4 held, more than the limit: 0 is given up without waiting
    assert [(what, seq) for what, seq, _, _count in out] == [
        ("skip", 0),
        ("deliver", 1),
        ("deliver", 2),
        ("deliver", 3),
        ("deliver", 4),
    ]


def test_the_end_while_waiting_skips_what_never_came_after_wait():
    r = Reorder(wait=5, limit=10, start=0)
    r.add(0, 0, 1, "zero", now=0)
    assert [seq for _, seq, _, _count in r.pop(now=0)] == [0]
    r.finish(3, now=10)  # the stream had 0, 1, 2; 1 and 2 are missing
    assert not r.done()
    assert r.pop(now=14) == []
    assert r.deadline() == 15
    # a run of missing numbers is skipped as one range: ("skip", first, None, how many)
    assert [(what, seq, n) for what, seq, _, n in r.pop(now=15)] == [("skip", 1, 2)]
    assert r.done() and r.counts.skipped == 2


def test_the_end_drops_what_claims_to_be_beyond_it():
    r = Reorder(wait=5, limit=10, start=0)
    r.add(0, 0, 1, "zero", now=0)
    r.add(7, 0, 1, "seven", now=0)
    r.finish(1, now=0)
    assert [seq for _, seq, _, _count in r.pop(now=0)] == [0]
    assert r.done() and r.held == {}


def test_an_empty_stream_is_done_at_its_end():
    r = Reorder(wait=5, limit=10)
    r.finish(0, now=0)
    assert r.done() and r.pop(now=0) == []


def test_a_tombstone_is_skipped_at_once_and_counted_dead():
    r = Reorder(wait=100, limit=10, start=0)
    assert r.kill(0, now=0)
    r.add(1, 0, 1, "one", now=0)
    assert [(what, seq) for what, seq, _, _count in r.pop(now=0)] == [("dead", 0), ("deliver", 1)]
    assert r.counts.dead == 1 and r.counts.skipped == 0
    assert not r.kill(0, now=1)  # already past


def test_a_lost_number_is_skipped_without_waiting():
    r = Reorder(wait=100, limit=10, start=0)
    r.lose(0, now=0)
    r.add(1, 0, 1, "one", now=0)
    assert [(what, seq) for what, seq, _, _count in r.pop(now=0)] == [("skip", 0), ("deliver", 1)]


def test_a_number_a_worker_is_on_is_not_given_up():
    r = Reorder(wait=5, limit=10, start=0)
    r.busy[0] = 20.0  # a worker says it works on 0 until t=20
    r.add(1, 0, 1, "one", now=0)
    assert r.pop(now=10) == []  # past the wait, but 0 is in hand
    assert [(what, seq) for what, seq, _, _count in r.pop(now=20)] == [("skip", 0), ("deliver", 1)]


def test_an_unknown_start_takes_the_smallest_seen_within_wait():
    r = Reorder(wait=5, limit=10)
    r.add(7, 0, 1, "seven", now=100)
    r.add(5, 0, 1, "five", now=101)  # later, but smaller: the stream starts here
    assert r.pop(now=104.9) == []
    assert r.deadline() == 105
    out = [(what, seq) for what, seq, _, _count in r.pop(now=105)]
    assert out == [("deliver", 5), ("skip", 6), ("deliver", 7)]  # 7 waited 5 s for 6


def test_an_unknown_start_is_zero_at_once():
    r = Reorder(wait=5, limit=10)
    r.add(0, 0, 1, "zero", now=0)
    assert [seq for _, seq, _, _count in r.pop(now=0)] == [0]


def test_every_duplicate_is_counted():
    r = Reorder(wait=5, limit=10, start=3)
    assert not r.add(0, 0, 1, "old", now=0)
    assert not r.add(1, 0, 1, "old", now=0)
    assert r.counts.duplicates == 2


def test_tombstones_and_losses_are_dated_when_they_arrive():
    r = Reorder(wait=5, limit=10, start=0)
    assert r.deadline() is None  # nothing held, nothing ended: nothing to wait for
    r.kill(3, now=10)
    assert r.deadline() == 15
    lost = Reorder(wait=5, limit=10, start=0)
    lost.lose(3, now=20)
    assert lost.deadline() == 25
    unknown = Reorder(wait=5, limit=10)  # no start yet: a loss is still held
    unknown.lose(2, now=1)
    assert 2 in unknown.held and unknown.held[2].lost


def test_two_tombstones_from_a_later_start():
    r = Reorder(wait=100, limit=10, start=5)
    r.kill(5, now=0)
    r.kill(6, now=0)
    r.add(7, 0, 1, "seven", now=0)
    out = [(what, seq) for what, seq, _, _count in r.pop(now=0)]
    assert out == [("dead", 5), ("dead", 6), ("deliver", 7)]
    assert r.counts.dead == 2 and r.next == 8


def test_the_wait_runs_from_the_oldest_of_what_is_held_and_the_end():
    r = Reorder(wait=5, limit=10, start=0)
    r.add(1, 0, 1, "one", now=0)  # 0 is missing since t=0 ...
    r.finish(2, now=4)  # ... and the end came later: the wait runs from t=0
    assert [(what, seq) for what, seq, _, _count in r.pop(now=5)] == [("skip", 0), ("deliver", 1)]
    late = Reorder(wait=5, limit=10, start=0)
    late.finish(3, now=0)  # the end came first; 1 arrives at t=4
    late.add(1, 0, 1, "one", now=4)
    assert [(what, seq) for what, seq, _, _count in late.pop(now=5)][:1] == [("skip", 0)]


def test_a_number_equal_to_the_end_is_beyond_it():
    r = Reorder(wait=5, limit=10, start=0)
    r.add(0, 0, 1, "zero", now=0)
    r.add(1, 0, 1, "one", now=0)
    r.finish(1, now=0)  # the stream was just 0
    assert [seq for _, seq, _, _count in r.pop(now=0)] == [0]
    assert r.held == {}


def test_an_unknown_start_first_seen_at_time_zero_is_decided_after_wait():
    """A clock that starts at 0.0 is a clock like any other: the first arrival at t=0 still
    starts the wait for a smaller number, and the wait ends."""
    r = Reorder(wait=5, limit=10)
    r.add(3, 0, 1, "three", now=0.0)
    assert r.pop(now=4.9) == []  # 0, 1 or 2 may still come
    assert [(what, seq) for what, seq, _, _count in r.pop(now=5)] == [("deliver", 3)]


class Unit:
    """A unit of a stream as the receiver holds it: its bytes are its body."""

    def __init__(self, size: int) -> None:
        self.body = b"x" * size


def test_a_stream_that_begins_with_tombstones_starts_after_wait():
    # joined mid-stream, the first thing seen is a tombstone (or a loss): it dates the start
    # as a unit would, so the buffer neither waits for ever nor spins on a past deadline
    for begin in ("kill", "lose"):
        r = Reorder(wait=5, limit=10)
        getattr(r, begin)(3, now=10)
        r.finish(4, now=10)
        assert r.pop(now=14.9) == [] and r.deadline() == 15
        what = "dead" if begin == "kill" else "skip"
        assert [(w, seq, count) for w, seq, _, count in r.pop(now=15)] == [(what, 3, 1)]
        assert r.done()


def test_the_byte_budget_skips_a_gap_once_what_is_held_is_over_it():
    r = Reorder(wait=100, limit=100, start=0, budget=10)
    assert r.bytes == 0
    r.add(1, 0, None, Unit(3), now=0)
    r.add(1, 1, 2, Unit(3), now=0)  # one number, two parts: 6 bytes
    assert r.held[1].size == 6 and r.bytes == 6 and r.pop(now=0) == []
    r.add(2, 0, 1, Unit(4), now=0)
    assert r.bytes == 10 and r.pop(now=0) == []  # at the budget, not over it
    r.add(3, 0, 1, Unit(1), now=0)
    assert r.bytes == 11
    out = [(what, seq, count) for what, seq, _, count in r.pop(now=0)]
    assert out == [("skip", 0, 1), ("deliver", 1, 1), ("deliver", 2, 1), ("deliver", 3, 1)]
    assert r.bytes == 0  # what was handed out is no longer held


def test_no_budget_holds_any_number_of_bytes():
    for r in (Reorder(wait=100, limit=100, start=0), Reorder(100, 100, start=0, budget=0)):
        r.add(1, 0, 1, Unit(1 << 20), now=0)
        assert r.bytes == 1 << 20 and r.pop(now=50) == []


def test_a_gap_is_skipped_as_one_range_and_counted_number_by_number():
    r = Reorder(wait=5, limit=100, start=0)
    r.add(2, 0, 1, "two", now=0)
    r.add(5, 0, 1, "five", now=0)
    out = [(what, seq, count) for what, seq, _, count in r.pop(now=5)]
    assert out == [("skip", 0, 2), ("deliver", 2, 1), ("skip", 3, 2), ("deliver", 5, 1)]
    assert r.counts.skipped == 4 and r.counts.delivered == 2


def test_a_gap_ends_where_a_worker_is_busy():
    r = Reorder(wait=5, limit=100, start=0)
    r.busy[2] = 10.0  # a worker has 2 until t=10
    r.busy[0] = 99.0  # and 0 was in hand too, but came back: a stale entry below next
    r.add(0, 0, 1, "zero", now=0)
    r.add(4, 0, 1, "four", now=0)
    out = [(what, seq, count) for what, seq, _, count in r.pop(now=5)]
    assert out == [("deliver", 0, 1), ("skip", 1, 1)]  # 2 may still come
    out = [(what, seq, count) for what, seq, _, count in r.pop(now=10)]
    assert out == [("skip", 2, 2), ("deliver", 4, 1)]  # its worker's time is up at 10
