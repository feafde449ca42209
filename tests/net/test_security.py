"""Credentials and TLS: a client without valid ones is refused, in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import ENV
from tests.net.util import Server, sh, start


@pytest.fixture
def password_server(tmp_path):
    srv = Server(tmp_path / "pw", 'authorization { user: "alice", password: "s3cret" }')
    yield srv
    srv.stop()


def test_user_and_password(password_server):
    srv = password_server
    wrong = sh(f"vflow int 0 3 | vflow send {srv.url('x', auth='alice:nope')}")
    assert wrong.statuses[1] == 1
    err = wrong.stderr.decode().strip().splitlines()
    assert len(err) == 1 and "refused our credentials (user alice)" in err[0], err
    recv = start(
        "recv",
        srv.url("ok"),
        env={**ENV, "VFLOW_NATS_PASSWORD": "s3cret", "VFLOW_NATS_USER": "alice"},
    )
    srv.wait_subscribed("ok")
    right = sh(f"vflow int 0 3 | vflow send {srv.url('ok', auth='alice:s3cret')}")
    assert right.statuses == [0, 0], right.stderr
    _, err2 = recv.communicate(timeout=30)
    assert recv.returncode == 0, err2


def test_token(tmp_path):
    srv = Server(tmp_path / "tok", 'authorization { token: "t0k3n" }')
    try:
        wrong = sh(f"vflow int 0 3 | vflow send {srv.url('x', auth='bad')}")
        assert wrong.statuses[1] == 1 and b"refused our credentials (token)" in wrong.stderr
        right = sh(
            f"vflow int 0 3 | vflow send {srv.url('x')}", env={**ENV, "VFLOW_NATS_TOKEN": "t0k3n"}
        )
        assert right.statuses == [0, 0], right.stderr
    finally:
        srv.stop()


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def _ca(folder: Path, name: str) -> None:
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.pem",
        cwd=folder,
    )


def _cert(folder: Path, name: str, ca: str, ip: bool) -> None:
    _openssl(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        f"/CN={name}",
        "-keyout",
        f"{name}.key",
        "-out",
        f"{name}.csr",
        cwd=folder,
    )
    ext = folder / f"{name}.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1\n" if ip else "extendedKeyUsage=clientAuth\n")
    _openssl(
        "x509",
        "-req",
        "-in",
        f"{name}.csr",
        "-CA",
        f"{ca}.pem",
        "-CAkey",
        f"{ca}.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        ext.name,
        "-out",
        f"{name}.pem",
        cwd=folder,
    )


def test_tls_with_client_certificates(tmp_path):
    pki = tmp_path / "pki"
    pki.mkdir()
    _ca(pki, "ca")
    _ca(pki, "other")  # a CA the server does not trust
    _cert(pki, "server", "ca", ip=True)
    _cert(pki, "client", "ca", ip=False)
    _cert(pki, "stranger", "other", ip=False)
    srv = Server(
        tmp_path / "tls",
        "tls { handshake_first: true, "
        f'cert_file: "{pki}/server.pem", key_file: "{pki}/server.key", '
        f'ca_file: "{pki}/ca.pem", verify: true }}',
    )
    try:
        base = f"vflow send --tls-ca {pki}/ca.pem"
        good = sh(
            f"vflow int 0 3 | {base} --tls-cert {pki}/client.pem --tls-key {pki}/client.key "
            f"{srv.url('t', scheme='tls')}"
        )
        assert good.statuses == [0, 0], good.stderr
        stranger = sh(
            f"vflow int 0 3 | {base} --tls-cert {pki}/stranger.pem "
            f"--tls-key {pki}/stranger.key {srv.url('t', scheme='tls')}"
        )
        assert stranger.statuses[1] == 1
        assert len(stranger.stderr.strip().splitlines()) == 1, stranger.stderr
        no_cert = sh(f"vflow int 0 3 | {base} {srv.url('t', scheme='tls')}")
        assert no_cert.statuses[1] == 1, no_cert.stderr
        wrong_ca = sh(
            f"vflow int 0 3 | vflow send --tls-ca {pki}/other.pem --tls-cert "
            f"{pki}/client.pem --tls-key {pki}/client.key {srv.url('t', scheme='tls')}"
        )
        assert wrong_ca.statuses[1] == 1
        assert b"TLS" in wrong_ca.stderr and b"certificate verify failed" in wrong_ca.stderr
    finally:
        srv.stop()
