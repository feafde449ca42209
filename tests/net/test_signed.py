"""Signed streams (send/recv/worker --key) on a real nats-server with per-subject
permissions: a camera user that may only publish cam1, a viewer that may only subscribe,
and an intruder who may publish too (a stolen camera password, a careless permission)."""

from __future__ import annotations

import subprocess

import pytest

from tests.helpers import ENV, unpack
from tests.net.util import (
    Server,
    Watched,
    finish_send,
    first_half,
    publish,
    sh,
    start,
    stream_id,
)
from vflow_cli.framing import encode

PERMISSIONS = """
authorization {
  users = [
    { user: camera, password: c4m,
      permissions: { publish: ["cam1", "_VFLOW.beat.cam1"], subscribe: { deny: ">" } } }
    { user: viewer, password: v1ew,
      permissions: { publish: { deny: ">" }, subscribe: ["cam1", "_VFLOW.beat.cam1"] } }
    { user: intruder, password: 1ntr,
      permissions: { publish: ["cam1", "_VFLOW.beat.cam1"], subscribe: ["_VFLOW.beat.cam1"] } }
  ]
}
"""


@pytest.fixture
def guarded(tmp_path):
    srv = Server(tmp_path / "guarded", PERMISSIONS)
    yield srv
    srv.stop()


def _key(folder, name: str, *keys: str):
    path = folder / name
    path.write_text("# stream keys: the first signs, all are accepted\n" + "\n".join(keys) + "\n")
    path.chmod(0o600)
    return str(path)


OLD = "old-key-0123456789abcdef"
NEW = "new-key-fedcba9876543210"


def test_a_signed_stream_refuses_what_its_key_did_not_sign(guarded, tmp_path):
    keys = _key(tmp_path, "camera.key", OLD)
    recv = Watched("recv", "--key", keys, guarded.url("cam1", auth="viewer:v1ew"))
    guarded.wait_subscribed("cam1")
    send = start(
        "send", "--key", keys, guarded.url("cam1", auth="camera:c4m"), stdin=subprocess.PIPE
    )
    first_half(send)
    stream = stream_id(guarded, "cam1", auth="intruder:1ntr")

    # the viewer may not publish at all: the server itself refuses
    errors: list[str] = []
    cut = {"Vflow-Stream": stream, "Vflow-Kind": "cut", "Vflow-Packets": "5"}
    publish(guarded, "cam1", cut, auth="viewer:v1ew", errors=errors)
    assert any("permissions violation" in e.lower() for e in errors), errors

    # the intruder may publish: a plausible cut and end, a packet, one signed with its key
    intruder = "intruder:1ntr"
    publish(guarded, "cam1", cut, auth=intruder)
    end = {"Vflow-Stream": stream, "Vflow-Kind": "end", "Vflow-Packets": "3"}
    publish(guarded, "cam1", end, auth=intruder)
    data = {"Vflow-Stream": stream, "Vflow-Seq": "5", "Vflow-Parts": "1", "Vflow-Part": "0"}
    publish(guarded, "cam1", data, encode({"kind": "data", "seq": 666}), auth=intruder)
    from vflow_cli.net.signing import Keys

    Keys([b"intruder-key-0123456789"]).sign("cam1", end)
    publish(guarded, "cam1", end, auth=intruder)
    publish(guarded, "_VFLOW.beat.cam1", {"Vflow-Stream": "f0rged"}, auth=intruder)

    finish_send(recv, send)
    assert recv.proc.returncode == 0, bytes(recv.err)
    assert [p["seq"] for p in unpack(bytes(recv.out))] == list(range(10))  # exact
    lines = bytes(recv.err).decode().splitlines()
    assert len(lines) == 1 and "refused a message on cam1 that is not signed" in lines[0], lines


def test_recv_reports_how_many_it_refused_and_the_sender_its_permissions(guarded, tmp_path):
    keys = _key(tmp_path, "camera.key", OLD)
    recv = Watched("recv", "-v", "--key", keys, guarded.url("cam1", auth="viewer:v1ew"))
    guarded.wait_subscribed("cam1")
    send = start(
        "send", "--key", keys, guarded.url("cam1", auth="camera:c4m"), stdin=subprocess.PIPE
    )
    first_half(send)
    stream = stream_id(guarded, "cam1", auth="intruder:1ntr")
    for n in range(3):
        cut = {"Vflow-Stream": stream, "Vflow-Kind": "cut", "Vflow-Reason": f"forged {n}"}
        publish(guarded, "cam1", cut, auth="intruder:1ntr")
    finish_send(recv, send)
    assert recv.proc.returncode == 0, bytes(recv.err)
    assert b"3 refused (not signed by our key)" in recv.err, bytes(recv.err)


def test_two_keys_overlap_while_one_replaces_the_other(server, tmp_path):
    both = _key(tmp_path, "both.key", NEW, OLD)
    for name, key in (("old", OLD), ("new", NEW)):
        signer = _key(tmp_path, f"{name}.key", key)
        recv = Watched("recv", "--key", both, server.url(name))
        server.wait_subscribed(name)
        result = sh(f"vflow int 0 9 | vflow send --key {signer} {server.url(name)}")
        assert result.statuses == [0, 0], result.stderr
        assert recv.finish() == 0, bytes(recv.err)
        assert [p["value"] for p in unpack(bytes(recv.out))] == list(range(10))


def test_a_worker_with_a_key_checks_its_input_and_signs_its_output(server, tmp_path):
    keys = _key(tmp_path, "k.key", OLD)
    worker = Watched(
        "worker",
        "--key",
        keys,
        "--mode",
        "durable",
        "--from",
        server.url("sin"),
        "--to",
        server.url("sout"),
        "--",
        "identity",
    )
    server.wait_subscribed("_VFLOW.beat.sin")
    recv = Watched("recv", "--key", keys, server.url("sout"))
    server.wait_subscribed("sout")
    send = start("send", "--key", keys, "--durable", server.url("sin"), stdin=subprocess.PIPE)
    first_half(send)
    stream = stream_id(server, "sin")
    publish(server, "sin", {"Vflow-Stream": stream, "Vflow-Kind": "end", "Vflow-Packets": "2"})
    worker.wait_err("refused a message on sin that is not signed")
    finish_send(recv, send)
    assert recv.proc.returncode == 0, bytes(recv.err)  # it checked the worker's signatures
    assert [p["seq"] for p in unpack(bytes(recv.out))] == list(range(10))
    assert worker.finish() == 0, bytes(worker.err)


def test_a_bad_key_file_is_one_line(tmp_path):
    short = _key(tmp_path, "short.key", "tooshort")
    result = subprocess.run(
        [*_vflow(), "recv", "--key", short, "nats://127.0.0.1:1/x"],
        capture_output=True,
        env=ENV,
        timeout=30,
    )
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        f"vflow recv: {short}, line 2: a key of 8 characters is too short (at least 16; "
        "`openssl rand -hex 32` makes a good one)"
    ]


def _vflow():
    import sys

    return [sys.executable, "-m", "vflow_cli"]
