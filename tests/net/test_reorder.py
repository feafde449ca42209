"""net.reorder on its own: order, gaps, duplicates, a full window, the end, forged numbers."""

from __future__ import annotations

from dataclasses import dataclass

from vflow_cli.net.reorder import Reorder


@dataclass
class U:
    body: bytes = b"x"


def _seqs(out):
    return [(what, seq, count) for what, seq, _, count in out]


def test_hands_out_in_order_and_drops_duplicates():
    r = Reorder(wait=1.0, limit=8, start=0)
    for seq in (2, 0, 1):
        assert r.add(seq, 0, 1, U(), now=0.0)
    assert _seqs(r.pop(0.0)) == [("deliver", 0, 1), ("deliver", 1, 1), ("deliver", 2, 1)]
    assert not r.add(1, 0, 1, U(), now=0.0)
    assert r.counts.duplicates == 1


def test_a_gap_waits_then_is_skipped_as_one_range():
    r = Reorder(wait=1.0, limit=8, start=0)
    r.add(0, 0, 1, U(), now=0.0)
    r.add(10**12, 0, 1, U(), now=0.0)  # a forged number far ahead
    assert _seqs(r.pop(0.5)) == [("deliver", 0, 1)]  # the gap is not late yet
    out = _seqs(r.pop(1.5))
    assert out == [("skip", 1, 10**12 - 1), ("deliver", 10**12, 1)]  # one step, not 10^12
    assert r.counts.skipped == 10**12 - 1


def test_an_end_far_ahead_is_reached_in_one_step():
    r = Reorder(wait=1.0, limit=8, start=0)
    r.add(0, 0, 1, U(), now=0.0)
    r.finish(10**12, now=0.0)
    assert _seqs(r.pop(2.0)) == [("deliver", 0, 1), ("skip", 1, 10**12 - 1)]
    assert r.done()


def test_a_busy_number_stops_the_skip():
    r = Reorder(wait=1.0, limit=8, start=0)
    r.add(9, 0, 1, U(), now=0.0)
    r.busy = {5: 10.0}  # a worker says it is on 5
    assert _seqs(r.pop(2.0)) == [("skip", 0, 5)]


def test_a_full_window_or_budget_skips_at_once():
    r = Reorder(wait=60.0, limit=2, start=0)
    for seq in (1, 2, 3):
        r.add(seq, 0, 1, U(), now=0.0)
    assert _seqs(r.pop(0.0))[0] == ("skip", 0, 1)
    r = Reorder(wait=60.0, limit=100, start=0, budget=10)
    r.add(1, 0, 1, U(b"y" * 11), now=0.0)
    assert _seqs(r.pop(0.0)) == [("skip", 0, 1), ("deliver", 1, 1)]
    assert r.bytes == 0


def test_the_end_while_waiting_skips_the_missing_and_drops_what_lies_beyond():
    r = Reorder(wait=1.0, limit=8, start=0)
    r.add(0, 0, 1, U(), now=0.0)
    r.add(5, 0, 1, U(), now=0.0)
    r.finish(3, now=0.0)
    assert _seqs(r.pop(0.0)) == [("deliver", 0, 1)]
    assert _seqs(r.pop(1.5)) == [("skip", 1, 2)]
    assert r.done() and not r.held and r.bytes == 0
