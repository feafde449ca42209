"""net.streams and net.messages.Horizon on their own: what a worker keeps of the streams it
hears of stays bounded, whatever the network sends."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from vflow_cli.net import messages, streams
from vflow_cli.net.messages import Horizon, Unit


def _beat(stream: str, **headers: str):
    return SimpleNamespace(headers={"Vflow-Stream": stream, **headers}, subject="_VFLOW.beat.x")


def test_a_flood_of_forged_stream_ids_is_bounded_and_forgotten():
    known = streams.Streams(idle=3.0, keep=False)

    async def flood() -> None:
        for i in range(10 * streams.KEEP):
            await known.on_beat(_beat(f"forged{i}"))

    asyncio.run(flood())
    assert len(known.served) == streams.KEEP
    # heard of only (never a message): forgotten once silent, and the worker waits again
    later = max(known.served.values()) + 10
    known._prune(later)
    assert known.served == {}


def test_an_end_heartbeat_far_beyond_the_stream_is_refused():
    known = streams.Streams(idle=3.0, keep=False)
    assert known.allows(Unit("s", "data", seq=4))
    forged = _beat("s", **{"Vflow-Kind": "end", "Vflow-Packets": str(10**12)})
    asyncio.run(known.on_beat(forged))
    assert "s" not in known.ended and known.refused == 1
    real = _beat("s", **{"Vflow-Kind": "end", "Vflow-Packets": "5"})
    asyncio.run(known.on_beat(real))
    assert known.ended == {"s": None}


def test_the_horizon():
    horizon = Horizon(keep=2)
    assert horizon.allows(Unit("a", "data", seq=100_000))  # a late receiver: anywhere
    assert not horizon.allows(Unit("a", "data", seq=100_001 + messages.FAR))
    assert horizon.allows(Unit("a", "data", seq=100_000 + messages.FAR))
    assert not horizon.allows(Unit("b", "end", packets=messages.FAR + 1))  # nothing shown
    assert horizon.allows(Unit("b", "end", packets=messages.FAR))
    horizon.allows(Unit("c", "data", seq=1))
    horizon.allows(Unit("d", "data", seq=1))
    assert list(horizon.shown) == ["c", "d"] and horizon.refused == 2


def test_printable_escapes_control_characters():
    assert messages.printable("a\x1b[2J\x07\x9bz") == "a\\x1b[2J\\x07\\x9bz"
    assert len(messages.printable("x" * 1000)) == 300
