"""vflow mqtt against a real broker (mosquitto, started here): topics per camera and kind,
retained state, credentials, TLS, and a broker restart with nothing acknowledged lost."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.deploy.mosquitto import Mosquitto, Subscriber
from tests.helpers import ENV, frame, pack, vflow
from tests.net.util import vflow_argv, wait_for
from vflow_cli.framing import PacketWriter


def event(n: int, what: str = "cross", **more) -> dict:
    return {"kind": "event", "event": what, "line": "door", "id": n, "seq": n, "t": n / 10, **more}


@pytest.fixture
def broker(tmp_path):
    server = Mosquitto(tmp_path / "broker")
    yield server
    server.stop()


def ids_on(sub: Subscriber, topic: str) -> set[int]:
    return {json.loads(p)["id"] for p in sub.on(topic)}


def start_mqtt(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, PacketWriter, Path]:
    err = tmp_path / "mqtt.err"
    with open(err, "wb") as stderr:
        proc = subprocess.Popen(
            vflow_argv("mqtt", *args), stdin=subprocess.PIPE, stderr=stderr, env=ENV
        )
    assert proc.stdin is not None
    return proc, PacketWriter(proc.stdin), err


def send(writer: PacketWriter, packets: list[dict]) -> None:
    for packet in packets:
        writer.write(packet)
    writer.flush()


def test_events_state_and_snapshots_reach_the_broker(broker, tmp_path):
    sub = Subscriber(broker.port)
    zones = [0, 1, 1, 2, 1, 0]
    packets: list[dict] = [{"kind": "stream", "source": "front door", "fps": 10}]
    for n, inside in enumerate(zones):
        people = [{"label": "person", "id": i, "box": [1, 1, 5, 5]} for i in range(inside)]
        packets.append(
            frame(
                n,
                (48, 64, 3),
                objects=people,
                zones={"porch": {"occupancy": inside}},
                lines={"gate": {"points": [0, 0, 9, 9], "in": n // 2, "out": 0}},
            )
        )
        if n == 3:
            packets.append(event(n, "enter", zone="porch"))
    packets.append({"kind": "summary", "zones": {"porch": {"peak": 2}}})
    url = f"mqtt://127.0.0.1:{broker.port}"
    result = vflow("mqtt", url, "--snapshot", input=pack(packets))
    assert result.returncode == 0, result.stderr
    assert result.stderr == b""
    base = "vflow/front_door"
    assert wait_for(lambda: sub.on("vflow/status") == [b"online", b"offline"])
    assert wait_for(lambda: sub.on(f"{base}/summary"))
    assert [json.loads(p)["zone"] for p in sub.on(f"{base}/enter")] == ["porch"]
    assert sub.on(f"{base}/occupancy/porch") == [b"0", b"1", b"2", b"1", b"0"]  # changes only
    assert sub.on(f"{base}/objects/person") == [b"1", b"2", b"1", b"0"]  # seen, then gone
    assert [json.loads(p)["in"] for p in sub.on(f"{base}/line/gate")] == [0, 1, 2]
    (jpeg,) = sub.on(f"{base}/snapshot")
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (48, 64, 3)
    sub.stop()
    # state is retained: a newcomer learns it at once, and only the state
    later = Subscriber(broker.port, client_id="later", clean=True)
    assert wait_for(lambda: later.on(f"{base}/occupancy/porch") == [b"0"])
    assert wait_for(lambda: later.on("vflow/status") == [b"offline"])
    assert later.on(f"{base}/enter") == []
    assert all(retained for _, _, retained in later.messages)
    later.stop()


def test_a_broker_restart_loses_nothing_acknowledged(broker, tmp_path):
    sub = Subscriber(broker.port)
    proc, writer, err = start_mqtt(
        tmp_path, f"mqtt://127.0.0.1:{broker.port}", "--camera", "door", "--timeout", "60"
    )
    try:
        send(writer, [event(n) for n in range(10)])
        assert wait_for(lambda: ids_on(sub, "vflow/door/cross") == set(range(10)))
        broker.stop()
        assert wait_for(lambda: b"lost the broker" in err.read_bytes()), err.read_text()
        send(writer, [event(n) for n in range(10, 30)])
        writer.close()
        proc.stdin.close()
        # every event has been read and waits in the stage's queue: the broker comes back
        assert wait_for(lambda: b"waiting up to 60 s" in err.read_bytes()), err.read_text()
        broker.start()
        assert proc.wait(90) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_for(lambda: ids_on(sub, "vflow/door/cross") == set(range(30)), timeout=30)
    lines = err.read_text().splitlines()
    assert len(lines) == 3, lines
    assert lines[0].startswith(f"vflow mqtt: lost the broker at mqtt://127.0.0.1:{broker.port}")
    assert "take 20 messages" in lines[1]
    assert "is back after" in lines[2] and "sending 20 queued messages" in lines[2]
    sub.stop()


def test_while_the_broker_is_away_the_queue_is_bounded(broker, tmp_path):
    sub = Subscriber(broker.port)
    proc, writer, err = start_mqtt(
        tmp_path,
        f"mqtt://127.0.0.1:{broker.port}",
        "--camera",
        "door",
        "--queue",
        "5",
        "--timeout",
        "60",
    )
    try:
        send(writer, [event(0)])
        assert wait_for(lambda: ids_on(sub, "vflow/door/cross") == {0})
        broker.stop()
        assert wait_for(lambda: b"lost the broker" in err.read_bytes()), err.read_text()
        send(writer, [event(n) for n in range(1, 21)])
        writer.close()
        proc.stdin.close()
        assert wait_for(lambda: b"waiting up to 60 s" in err.read_bytes()), err.read_text()
        broker.start()
        assert proc.wait(90) == 0, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert wait_for(lambda: ids_on(sub, "vflow/door/cross") == set(range(6)), timeout=30)
    text = err.read_text()
    assert "5 messages wait for the broker (--queue); dropping new ones" in text
    assert text.splitlines()[-1] == "vflow mqtt: 15 messages were dropped while the broker was away"
    sub.stop()


def test_credentials_in_the_url(tmp_path):
    server = Mosquitto(tmp_path / "broker", users={"home": "s3cret"})
    try:
        sub = Subscriber(server.port, auth=("home", "s3cret"))
        good = vflow(
            "mqtt",
            f"mqtt://home:s3cret@127.0.0.1:{server.port}",
            "--camera",
            "c",
            input=pack([event(1)]),
        )
        assert good.returncode == 0, good.stderr
        assert wait_for(lambda: ids_on(sub, "vflow/c/cross") == {1})
        bad = vflow("mqtt", f"mqtt://home:wrong@127.0.0.1:{server.port}", input=pack([event(2)]))
        assert bad.returncode == 1
        lines = bad.stderr.decode().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vflow mqtt: the broker at mqtt://")
        assert "refused us: Not authorized" in lines[0] and "wrong" not in lines[0]
        sub.stop()
    finally:
        server.stop()


def test_tls_with_a_ca(tmp_path):
    from tests.net.test_security import _ca, _cert

    certs = tmp_path / "certs"
    certs.mkdir()
    _ca(certs, "ca")
    _cert(certs, "server", "ca", ip=True)
    server = Mosquitto(tmp_path / "broker", tls=(certs / "server.pem", certs / "server.key"))
    try:
        ca = str(certs / "ca.pem")
        sub = Subscriber(server.port, ca=ca)
        url = f"mqtts://127.0.0.1:{server.port}"
        good = vflow("mqtt", url, "--tls-ca", ca, "--camera", "c", input=pack([event(1)]))
        assert good.returncode == 0, good.stderr
        assert wait_for(lambda: ids_on(sub, "vflow/c/cross") == {1})
        untrusted = vflow("mqtt", url, "--timeout", "5", input=pack([event(2)]))
        assert untrusted.returncode == 1 and b"Traceback" not in untrusted.stderr
        assert untrusted.stderr.decode().startswith("vflow mqtt: ")
        sub.stop()
    finally:
        server.stop()


def test_an_unreachable_broker_is_one_line():
    from tests.video_support import closed_port

    result = vflow("mqtt", f"mqtt://127.0.0.1:{closed_port()}", "--timeout", "2", input=pack([]))
    assert result.returncode == 1
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vflow mqtt: "), lines
    bad = vflow("mqtt", "http://x", input=pack([]))
    assert bad.returncode == 2 and b"mqtt://" in bad.stderr


def test_a_wildcard_topic_is_refused():
    result = vflow("mqtt", "mqtt://127.0.0.1", "--topic", "home/#", input=pack([]))
    assert result.returncode == 2 and b"without + or #" in result.stderr


def test_damaged_metadata_goes_out_safely(broker):
    sub = Subscriber(broker.port)
    packets = [
        {"kind": "stream", "source": "cam/+/#\x1b[2J"},
        frame(0, objects=["junk", {"label": ["a/b"]}], zones={b"z": 1, "z+": {"occupancy": 2}}),
        {"kind": "event", "event": "x/#", b"raw": b"\x00", "id": [1]},
        {"kind": b"bytes"},
    ]
    result = vflow("mqtt", f"mqtt://127.0.0.1:{broker.port}", input=pack(packets))
    assert result.returncode == 0, result.stderr
    assert wait_for(lambda: sub.on("vflow/status")[-1:] == [b"offline"])
    topics = {t for t, _, _ in sub.messages}
    assert {"vflow/cam_2J/x", "vflow/cam_2J/occupancy/z", "vflow/cam_2J/objects/a_b"} <= topics
    sub.stop()


def test_home_assistant_discovers_the_counts(broker):
    packets = [
        {"kind": "stream", "source": "door"},
        frame(0, objects=[{"label": "person"}], zones={"porch": {"occupancy": 1}}),
        frame(1, objects=[], zones={"porch": {"occupancy": 0}}, lines={"gate": {"in": 1}}),
    ]
    url = f"mqtt://127.0.0.1:{broker.port}"
    result = vflow(
        "mqtt", url, "--topic", "home", "--discovery", "homeassistant", input=pack(packets)
    )
    assert result.returncode == 0, result.stderr
    ha = Subscriber(broker.port, topic="homeassistant/#", client_id="ha", clean=True)
    configs = {}

    def arrived():
        configs.update({t: json.loads(p) for t, p, _ in ha.messages})
        return len(configs) == 2

    assert wait_for(arrived)
    person = configs["homeassistant/sensor/vflow_home_door_objects_person/config"]
    assert person["state_topic"] == "home/door/objects/person"
    assert person["availability_topic"] == "home/status"
    assert person["device"]["name"] == "door camera"
    porch = configs["homeassistant/sensor/vflow_home_door_occupancy_porch/config"]
    assert porch["state_topic"] == "home/door/occupancy/porch" and porch["unique_id"]
    assert all(retained for _, _, retained in ha.messages)  # Home Assistant may come later
    ha.stop()
