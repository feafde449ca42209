"""A hostile publisher on the subject: forged ends, numbers, chunks, heartbeats, text.

Each test runs the attack against real processes (a real nats-server, real `vflow send`,
`recv` and `worker`), with the stream id read from the open heartbeat subject as an
attacker would, and checks that the stream still comes out exactly, that the forgery is
refused in one line, and that the receiver stays within its CPU and memory bounds (its own
resource usage, from wait4, beside a clean run in the same test).
"""

from __future__ import annotations

import subprocess

from tests.helpers import unpack
from tests.net.util import (
    Beats,
    Watched,
    finish_send,
    first_half,
    nats,
    publish,
    second_half,
    sh,
    start,
    stream_id,
    wait_for,
)
from vflow_cli.framing import encode

MiB = 1 << 20


def _clean_run(server, subject: str) -> Watched:
    """recv of the same 10 packets, no attack: the CPU and memory to compare with."""
    recv = Watched("recv", server.url(subject))
    server.wait_subscribed(subject)
    result = sh(f"vflow int 0 9 | vflow send {server.url(subject)}")
    assert result.statuses == [0, 0], result.stderr
    assert recv.finish() == 0, bytes(recv.err)
    return recv


def _attacked(server, subject: str, attack, *recv_args: str) -> Watched:
    """send 5 packets, attack(stream id), send 5 more and end; recv's view of it."""
    recv = Watched("recv", *recv_args, server.url(subject))
    server.wait_subscribed(subject)
    send = start("send", server.url(subject), stdin=subprocess.PIPE)
    first_half(send)
    attack(stream_id(server, subject))
    return finish_send(recv, send)


def test_a_forged_end_or_number_far_ahead_is_refused_in_o1(server):
    """One header-only end claiming 10^12 packets, and one data message numbered 10^12:
    on the old code recv walked the gap one number at a time, at 100% CPU, for ever."""
    clean = _clean_run(server, "calm")

    def attack(stream: str) -> None:
        base = {"Vflow-Stream": stream}
        publish(server, "cam", {**base, "Vflow-Kind": "end", "Vflow-Packets": str(10**12)})
        body = encode({"kind": "data", "seq": -1})
        publish(server, "cam", {**base, "Vflow-Seq": str(10**12), "Vflow-Parts": "1"}, body)

    recv = _attacked(server, "cam", attack)
    assert recv.proc.returncode == 0, bytes(recv.err)
    assert [p["seq"] for p in unpack(bytes(recv.out))] == list(range(10))  # exact, trailer
    lines = bytes(recv.err).decode().splitlines()
    refused = [line for line in lines if "refused" in line]
    assert len(refused) == 1 and "far beyond" in refused[0], lines
    assert recv.cpu < clean.cpu + 0.5, (recv.cpu, clean.cpu)
    assert recv.peak < clean.peak + 64 * MiB, (recv.peak, clean.peak)


def test_chunks_claiming_more_than_the_budget_are_refused_before_allocating(server):
    """A chunk header claiming a 1 GiB packet (the old code allocated it, then checked the
    chunk), then chunks of 200 MiB packets that never finish: recv holds at most its
    256 MiB chunk budget, and the real stream comes through."""
    clean = _clean_run(server, "calm")

    def attack(stream: str) -> None:
        base = {"Vflow-Stream": stream, "Vflow-Part": "0"}
        claim = {**base, "Vflow-Seq": "7", "Vflow-Chunk": "0/4096", "Vflow-Size": str(1 << 30)}
        publish(server, "big", claim, b"x" * 10)
        chunk = b"y" * (512 * 1024)
        for seq in range(20, 24):  # 4 x 200 MiB claimed: the oldest is given up
            size = 400 * len(chunk)
            headers = {**base, "Vflow-Seq": str(seq), "Vflow-Chunk": "0/400"}
            publish(server, "big", {**headers, "Vflow-Size": str(size)}, chunk)

    recv = _attacked(server, "big", attack)
    assert recv.proc.returncode == 0, bytes(recv.err)
    assert [p["seq"] for p in unpack(bytes(recv.out))] == list(range(10))
    assert recv.peak < clean.peak + 256 * MiB + 64 * MiB, (recv.peak, clean.peak)
    assert b"held for unfinished packets" in recv.err, bytes(recv.err)


def _consumer(server, subject: str, name: str):
    async def body(client, js):
        stream = await js.find_stream_name_by_subject(subject)
        return await js.consumer_info(stream, name)

    return nats(server, body)


def _stored(server, subject: str, messages: list[tuple[dict[str, str], bytes]]) -> None:
    async def body(client, js) -> None:
        for headers, data in messages:
            await js.publish(subject, data, headers=headers)

    nats(server, body)


def _has_stream(server, subject: str) -> bool:
    async def body(client, js) -> bool:
        try:
            await js.find_stream_name_by_subject(subject)
            return True
        except Exception:
            return False

    return nats(server, body)


def test_durable_recv_terminates_the_chunks_it_gave_up(server):
    """A sender dies in the middle of packet 1's chunks (or someone forges half a packet):
    recv skips 1 and terminates its chunk, so the server neither keeps it pending nor
    sends it again (the old code held it unanswered for ever)."""
    recv = Watched("recv", "--durable", "r", "--reorder", "1", server.url("dur"))
    assert wait_for(lambda: _has_stream(server, "dur"))
    packet = encode({"kind": "data", "seq": 1})
    base = {"Vflow-Stream": "s1", "Vflow-Part": "0", "Vflow-Parts": "1"}
    half = {
        **base,
        "Vflow-Seq": "1",
        "Vflow-Chunk": "0/2",
        "Vflow-Size": str(len(packet) * 2),
    }
    _stored(
        server,
        "dur",
        [
            ({**base, "Vflow-Seq": "0"}, encode({"kind": "data", "seq": 0})),
            (half, packet),
            ({**base, "Vflow-Seq": "2"}, encode({"kind": "data", "seq": 2})),
            ({"Vflow-Stream": "s1", "Vflow-Kind": "end", "Vflow-Packets": "3"}, b""),
        ],
    )
    assert recv.finish() == 0, bytes(recv.err)
    assert [p["seq"] for p in unpack(bytes(recv.out))] == [0, 2]
    assert b"skipped packet 1 " in recv.err, bytes(recv.err)
    info = _consumer(server, "dur", "r")
    assert (info.num_ack_pending, info.num_pending, info.num_redelivered) == (0, 0, 0), info


def test_a_sender_dying_mid_chunk_is_noticed_by_its_silence(server):
    """Half a packet and then nothing: recv ends with the silence error after --idle (the
    old code counted the chunk it held as work still pending on the server, and waited)."""
    recv = Watched("recv", "--durable", "r", "--idle", "3", server.url("die"))
    assert wait_for(lambda: _has_stream(server, "die"))
    packet = encode({"kind": "data", "seq": 1})
    base = {"Vflow-Stream": "s2", "Vflow-Part": "0", "Vflow-Parts": "1"}
    half = {**base, "Vflow-Seq": "1", "Vflow-Chunk": "0/2", "Vflow-Size": str(len(packet) * 2)}
    _stored(server, "die", [({**base, "Vflow-Seq": "0"}, packet), (half, packet)])
    assert recv.finish(timeout=60) == 1, bytes(recv.err)
    assert b"went silent" in recv.err, bytes(recv.err)
    assert len(bytes(recv.err).strip().splitlines()) == 1, bytes(recv.err)


def test_control_characters_from_the_network_never_reach_the_terminal(server):
    """A forged cut whose reason is terminal escapes (set the title, clear the screen)."""

    def attack(stream: str) -> None:
        reason = "\x1b]0;pwned\x07\x1b[2Jgone"
        headers = {"Vflow-Stream": stream, "Vflow-Kind": "cut", "Vflow-Packets": "5"}
        publish(server, "esc", {**headers, "Vflow-Reason": reason})

    recv = _attacked(server, "esc", attack)
    assert recv.proc.returncode == 1
    err = bytes(recv.err)
    assert b"the stream was cut: \\x1b]0;pwned\\x07\\x1b[2Jgone" in err, err
    assert not any(c < 32 and c != 10 for c in err), err


def test_recv_dead_with_a_hostile_header_is_not_an_internal_error(server):
    """Anyone who may publish on SUBJECT.dead can write any header there."""

    async def body(client, js) -> None:
        await js.add_stream(name="hostile-dead", subjects=["w.dead"])
        headers = {"Vflow-Stream": "x", "Vflow-Seq": "seven", "Vflow-Deliveries": "many"}
        await js.publish("w.dead", encode({"kind": "data", "seq": 7}), headers=headers)

    nats(server, body)
    result = sh(f"vflow recv --dead {server.url('w')} | vflow print")
    assert result.statuses == [0, 0], result.stderr
    assert b'"tries":0' in result.stdout and b'"seq":-1' in result.stdout, result.stdout


def test_a_worker_refuses_a_forged_end_and_relays_no_forged_heartbeat(server):
    """Into a worker's input: an end claiming 10^12 packets (the old worker passed it on,
    and recv then walked the gap) and a heartbeat of a stream that does not exist (the old
    worker relayed it twice a second, then failed: 'the sender went silent')."""
    worker = Watched(
        "worker",
        "--mode",
        "durable",
        "--idle",
        "4",
        "--from",
        server.url("win"),
        "--to",
        server.url("wout"),
        "--",
        "identity",
    )
    server.wait_subscribed("_VFLOW.beat.win")
    recv = Watched("recv", server.url("wout"))
    server.wait_subscribed("wout")
    relayed = Beats(server, "wout")
    try:
        send = start("send", "--durable", server.url("win"), stdin=subprocess.PIPE)
        first_half(send)
        stream = stream_id(server, "win")
        end = {"Vflow-Stream": stream, "Vflow-Kind": "end", "Vflow-Packets": str(10**12)}
        publish(server, "win", end)
        publish(server, "_VFLOW.beat.win", {"Vflow-Stream": "f0rged", "Vflow-Packets": "1"})
        worker.wait_err("refused an end after 1000000000000 packets")
        finish_send(recv, send)
        assert recv.proc.returncode == 0, bytes(recv.err)
        assert [p["seq"] for p in unpack(bytes(recv.out))] == list(range(10))
        assert worker.finish() == 0, bytes(worker.err)
        assert relayed.of(stream) > 0  # the real stream's heartbeats are relayed
        assert relayed.of("f0rged") == 0
        assert bytes(worker.err).count(b"refused") == 1, bytes(worker.err)
    finally:
        relayed.close()


SLOW = """
import time

from vflow_cli.stage import processor


@processor(pixels=False)
def slow(packets):
    for packet in packets:
        time.sleep(0.05)  # busy elsewhere, holding no lock: the worker's network side runs on
        yield packet
"""


def _live_worker(server, subject: str, stage: str) -> Watched:
    """A live worker running a slow stage, so that a flood waits inside the worker."""
    worker = Watched(
        "worker",
        "--mode",
        "live",
        "--idle",
        "4",
        "--from",
        server.url(subject),
        "--to",
        server.url(subject + "out"),
        "--",
        stage,
    )
    server.wait_subscribed(subject)
    return worker


def _one_stream(server, subject: str, attack=None) -> None:
    send = start("send", server.url(subject), stdin=subprocess.PIPE)
    first_half(send)
    if attack is not None:
        attack(stream_id(server, subject))
    second_half(send)
    assert send.stderr is not None and send.stdout is not None
    err = send.stderr.read()
    assert send.wait(60) == 0, err
    send.stderr.close()
    send.stdout.close()


def test_a_live_worker_flooded_stays_within_its_stated_memory(server, tmp_path):
    """vflow-worker(1) says a worker holds at most 128 MiB of input from the network. A
    publisher floods its input with 300 MiB of plausible data messages (and a forged end)
    while its stage is slow: the worker drops what it cannot hold, says how many, and its
    peak memory stays within the bound above a clean run's."""
    stage = tmp_path / "slow.py"
    stage.write_text(SLOW)
    clean = _live_worker(server, "calmw", str(stage))
    _one_stream(server, "calmw")
    assert clean.finish() == 0, bytes(clean.err)

    blob = b"z" * (900 * 1024)

    def flood(stream: str) -> None:
        async def body(client, js) -> None:
            base = {"Vflow-Stream": stream, "Vflow-Parts": "1"}
            for i in range(340):
                data = encode({"kind": "data", "seq": 5 + i, "blob": blob})
                await client.publish("floodw", data, headers={**base, "Vflow-Seq": str(5 + i)})
            end = {"Vflow-Stream": stream, "Vflow-Kind": "end", "Vflow-Packets": str(10**12)}
            await client.publish("floodw", b"", headers=end)
            await client.flush()

        nats(server, body)

    worker = _live_worker(server, "floodw", str(stage))
    _one_stream(server, "floodw", flood)
    assert worker.finish(timeout=120) == 0, bytes(worker.err)
    err = bytes(worker.err).decode()
    assert "refused an end after 1000000000000 packets" in err, err
    assert "missed " in err and " packets of the live input" in err, err  # says how many
    assert worker.peak < clean.peak + 128 * MiB + 32 * MiB, (worker.peak >> 20, clean.peak >> 20)
