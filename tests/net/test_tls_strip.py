"""TLS cannot be stripped: with a tls:// URL or a TLS option, a server that answers in plain
text (a man in the middle) never sees a credential, and the stage says so in one line."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.helpers import ENV, unpack
from tests.net.fake import FakeServer, nats_info
from tests.net.test_security import _ca, _cert
from tests.net.util import Server, seqs, sh, start, wait_for

SECRET = "s3cret-t0ken-never-in-clear"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pki")
    _ca(folder, "ca")
    _cert(folder, "server", "ca", ip=True)
    return folder


def _send(url: str, *options: str) -> object:
    env = {**ENV, "VFLOW_NATS_TOKEN": SECRET, "VFLOW_NATS_PASSWORD": SECRET}
    return sh(f"vflow int 0 3 | vflow send {' '.join(options)} {url}", env=env, timeout=60)


@pytest.mark.parametrize(
    ("scheme", "options", "info"),
    [
        ("tls", (), nats_info()),  # tls:// alone: TLS first, the fake never answers it
        ("nats", ("--tls-ca", "{pki}/ca.pem"), nats_info()),  # a TLS option on nats://
        ("tls", ("--tls-upgrade",), nats_info()),  # the classic style: INFO without TLS
        ("nats", ("--tls-upgrade",), nats_info(tls_available=True)),  # offers, cannot
    ],
    ids=["tls-url", "tls-option", "upgrade", "upgrade-offered"],
)
def test_a_plain_text_server_never_sees_a_credential(pki, scheme, options, info):
    fake = FakeServer(info)
    try:
        url = f"{scheme}://alice@127.0.0.1:{fake.port}/cam1"
        result = _send(url, *(o.format(pki=pki) for o in options))
        assert result.statuses[1] == 1, result.stderr
        lines = result.stderr.decode().strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("vflow send: "), lines
        assert fake.connections >= 1  # it did reach the fake: the attack took place
        seen = fake.seen()
        assert SECRET.encode() not in seen and b"alice" not in seen
        assert b"CONNECT" not in seen, seen[:200]
    finally:
        fake.close()


def test_the_refusals_say_why(pki):
    fake = FakeServer(nats_info())
    try:
        upgrade = _send(f"tls://127.0.0.1:{fake.port}/cam1", "--tls-upgrade")
        assert b"offers no TLS" in upgrade.stderr and b"nothing was sent" in upgrade.stderr
        first = _send(f"tls://127.0.0.1:{fake.port}/cam1")
        assert b"no TLS handshake" in first.stderr and b"--tls-upgrade" in first.stderr
    finally:
        fake.close()


@pytest.mark.parametrize("first", [True, False], ids=["handshake-first", "tls-upgrade"])
def test_tls_to_a_real_server(tmp_path, pki, first):
    """The good path: TLS first (the default) against a server with handshake_first,
    --tls-upgrade against one without it; the token and the packets arrive."""
    handshake = "handshake_first: true, " if first else ""
    srv = Server(
        tmp_path / "tls",
        f'tls {{ {handshake}cert_file: "{pki}/server.pem", key_file: "{pki}/server.key" }}\n'
        f'authorization {{ token: "{SECRET}" }}',
    )
    try:
        env = {**ENV, "VFLOW_NATS_TOKEN": SECRET}
        if not first:
            env["VFLOW_NATS_TLS_UPGRADE"] = "1"
        url = srv.url("secure", scheme="tls")
        recv = start("recv", "--tls-ca", f"{pki}/ca.pem", url, env=env)
        srv.wait_subscribed("secure")
        sent = sh(f"vflow int 0 5 | vflow send --tls-ca {pki}/ca.pem {url}", env=env)
        assert sent.statuses == [0, 0], sent.stderr
        assert sent.stderr == b""  # nothing to say when all went well
        out, err = recv.communicate(timeout=60)
        assert recv.returncode == 0, err
        assert seqs(unpack(out)) == list(range(6))  # int 0 5: 0 to 5
    finally:
        srv.stop()


def test_a_reconnection_is_tls_too(tmp_path, pki):
    """A man in the middle who takes the server's place while a client reconnects gets
    a TLS handshake, never the token."""
    srv = Server(
        tmp_path / "tls",
        f'tls {{ handshake_first: true, cert_file: "{pki}/server.pem", '
        f'key_file: "{pki}/server.key" }}\nauthorization {{ token: "{SECRET}" }}',
    )
    env = {**ENV, "VFLOW_NATS_TOKEN": SECRET}
    url = srv.url("x", scheme="tls")
    recv = start("recv", "--idle", "0", "--tls-ca", f"{pki}/ca.pem", url, env=env)
    fake = None
    try:
        srv.wait_subscribed("x")
        srv.stop()
        fake = FakeServer(nats_info(), port=srv.port)
        assert wait_for(lambda: fake.connections >= 2, 60), "recv never came back"
        seen = fake.seen()
        assert SECRET.encode() not in seen and b"CONNECT" not in seen, seen[:200]
        recv.terminate()  # stopped while it reconnects: at once, not after a handshake
        _, err = recv.communicate(timeout=10)  # that nobody answers
        assert recv.returncode == 143 and b"Traceback" not in err, err
    finally:
        if recv.poll() is None:
            recv.kill()
            recv.communicate(timeout=30)
        if fake is not None:
            fake.close()


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_stopped_while_connecting_says_nothing_more(pki, how):
    """Ctrl-C or SIGTERM while the TLS handshake waits for a server that never answers:
    the stage stops at once, quietly, with no asyncio complaint on stderr."""
    hole = FakeServer(None)  # accepts, never says a word
    try:
        recv = start("recv", "--tls-ca", f"{pki}/ca.pem", f"tls://127.0.0.1:{hole.port}/x")
        assert wait_for(lambda: hole.connections >= 1, 30), "recv never connected"
        recv.send_signal(how)
        _, err = recv.communicate(timeout=10)
        assert recv.returncode == 128 + how, err
        assert err == b"", err
    finally:
        hole.close()
