"""web.connections.Slots on its own: who holds a client slot, with real sockets."""

from __future__ import annotations

import socket

from vflow_cli.web.connections import Slots


def test_an_evicted_pending_connection_frees_its_slot_at_once():
    # 12 connections that never send a head, against 8 slots: each beyond the 4 pending
    # allowed evicts the oldest pending one, whose slot is free before its thread runs
    slots = Slots(8)
    pairs = [socket.socketpair() for _ in range(13)]
    try:
        for ours, _theirs in pairs[:12]:
            assert slots.admit(ours)
        assert slots.evicted == 8 and slots.pending == 4 and len(slots) == 4
        assert slots.admit(pairs[12][0])  # a real client is let in
        assert slots.refused == 0
        assert pairs[0][1].recv(1) == b""  # the first one was shut down
    finally:
        for a, b in pairs:
            a.close()
            b.close()


def test_trusted_connections_fill_the_slots_and_the_next_is_refused():
    slots = Slots(2)
    pairs = [socket.socketpair() for _ in range(3)]
    try:
        for ours, _theirs in pairs[:2]:
            assert slots.admit(ours)
            slots.trust(ours)
        assert not slots.admit(pairs[2][0]) and slots.refused == 1 and slots.evicted == 0
        slots.leave(pairs[0][0])
        assert slots.admit(pairs[2][0])
    finally:
        for a, b in pairs:
            a.close()
            b.close()
