"""The local server's records are not trusted: a stale server.json never gets the token, a
foreign process is never signalled, and a state folder others could tamper with is refused."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.net.fake import FakeServer, nats_info
from tests.net.util import local_env, sh
from vflow_cli.net import ours

OLD_TOKEN = "the-token-of-a-server-long-gone"


def _folder(env: dict[str, str]) -> Path:
    return Path(env["XDG_STATE_HOME"]) / "vflow" / "nats"


@pytest.fixture
def stranger():
    """An unrelated process of ours (a reused pid, after a crash or a reboot)."""
    proc = subprocess.Popen(["sleep", "300"])
    yield proc
    proc.kill()
    proc.wait()


def _stale(env: dict[str, str], pid: int, port: int, exact: bool) -> None:
    """A server.json as a crashed server left it: its pid now someone else's, its port now
    someone else's listener. exact: even the recorded identity is that process's (so only
    the socket check can tell)."""
    folder = _folder(env)
    folder.mkdir(parents=True, mode=0o700)
    record = {"pid": pid, "server_pid": pid, "url": f"nats://127.0.0.1:{port}", "started": 0}
    if exact:
        record["server"] = record["watchdog"] = ours.identity(pid)
    else:
        record["monitor"] = f"http://127.0.0.1:{port}"  # as older versions wrote it
    (folder / "server.json").write_text(json.dumps(record))
    (folder / "token").write_text(OLD_TOKEN)
    (folder / "token").chmod(0o600)


@pytest.mark.parametrize("exact", [False, True], ids=["reused-pid", "foreign-listener"])
def test_a_stale_record_never_gets_the_token(tmp_path, stranger, exact):
    env = local_env(tmp_path, VFLOW_NATS_IDLE="5")
    fake = FakeServer(nats_info(auth_required=True))
    try:
        _stale(env, stranger.pid, fake.port, exact)
        result = sh("vflow int 0 3 | vflow send nats:///x", env=env)
        assert result.statuses == [0, 0], result.stderr  # a new server of its own
        assert fake.connections == 0 and fake.seen() == b""
        info = json.loads((_folder(env) / "server.json").read_text())
        assert info["server_pid"] != stranger.pid and str(fake.port) not in info["url"]
        token = (_folder(env) / "token").read_text()
        assert token != OLD_TOKEN  # a fresh token: the old one opens nothing
        assert stranger.poll() is None
    finally:
        fake.close()
        sh("vflow nats stop --force", env=env)


def test_every_start_has_a_new_token(tmp_path):
    env = local_env(tmp_path)
    tokens = []
    for _ in range(2):
        assert sh("vflow nats start", env=env).statuses == [0]
        tokens.append((_folder(env) / "token").read_text())
        assert sh("vflow nats stop --force", env=env).statuses == [0]
    assert tokens[0] != tokens[1]


@pytest.mark.parametrize("exact", [False, True], ids=["reused-pid", "same-identity"])
def test_stop_never_signals_a_process_not_proven_to_be_the_server(tmp_path, stranger, exact):
    env = local_env(tmp_path)
    fake = FakeServer(None)
    try:
        _stale(env, stranger.pid, fake.port, exact)
        for force in ("", "--force"):
            result = sh(f"vflow nats stop {force}", env=env)
            assert result.statuses == [0], result.stderr
            assert b"not running" in result.stdout
        assert stranger.poll() is None  # not signalled
        assert not (_folder(env) / "server.json").exists()  # the stale record is gone
    finally:
        fake.close()


def _refused(env: dict[str, str], word: bytes) -> None:
    for command in ("vflow nats start", "vflow int 0 3 | vflow send nats:///x"):
        result = sh(command, env=env)
        assert result.statuses[-1] == 1, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and word in lines[0], lines
    assert sh("vflow nats stop", env=env).statuses == [1]


def test_a_symlinked_state_folder_is_refused(tmp_path):
    env = local_env(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    _folder(env).parent.mkdir(parents=True)
    _folder(env).symlink_to(elsewhere)
    _refused(env, b"symbolic link")
    assert os.listdir(elsewhere) == []  # nothing was written through the link


def test_a_state_folder_others_may_write_is_refused(tmp_path):
    env = local_env(tmp_path)
    _folder(env).mkdir(parents=True)
    _folder(env).chmod(0o770)
    _refused(env, b"open to other users")
    assert not (_folder(env) / "token").exists()


def test_a_symlinked_token_is_not_followed(tmp_path):
    env = local_env(tmp_path)
    assert sh("vflow nats start", env=env).statuses == [0]
    try:
        target = tmp_path / "target"
        target.write_text("")
        token = _folder(env) / "token"
        token.unlink()
        token.symlink_to(target)
        result = sh("vflow int 0 3 | vflow send nats:///x", env=env)
        assert result.statuses[1] == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and b"symbolic link; not followed" in lines[0], lines
    finally:
        sh("vflow nats stop --force", env=env)


def _listening_ports(pid: int) -> set[int]:
    """Every TCP port that process PID listens on (from the kernel's tables)."""
    mine = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            if cols[3] == "0A" and f"socket:[{cols[9]}]" in mine:
                ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_the_local_server_answers_no_one_without_its_token(tmp_path):
    """No monitoring port: every port the server listens on wants the token, so another
    user of the machine learns nothing (connections, subjects, streams) from it."""
    import http.client
    import urllib.request

    env = local_env(tmp_path)
    assert sh("vflow nats start", env=env).statuses == [0]
    try:
        info = json.loads((_folder(env) / "server.json").read_text())
        ports = _listening_ports(info["server_pid"])
        assert int(info["url"].rsplit(":", 1)[1]) in ports
        for port in ports:
            for page in ("varz", "connz?subs=1", "jsz"):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{page}", timeout=5):
                        answered = True
                except (OSError, http.client.HTTPException):  # the NATS port: no HTTP
                    answered = False
                assert not answered, f"port {port} answers /{page} to anyone"
        status = sh("vflow nats", env=env)  # status and the idle count work without it
        assert status.statuses == [0] and b"clients: 0" in status.stdout, status.stdout
    finally:
        sh("vflow nats stop --force", env=env)
