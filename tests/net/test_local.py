"""The local server behind nats:///SUBJECT: started on demand, shared, idles out, stoppable."""

from __future__ import annotations

import json
import os
import subprocess
import time

from tests.net.util import local_env, sh, start, wait_for


def _info(env):
    path = os.path.join(env["XDG_STATE_HOME"], "vflow", "nats", "server.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


def test_two_vflows_starting_at_once_share_one_local_server(tmp_path):
    env = local_env(tmp_path, VFLOW_NATS_IDLE="60")
    recv = start("recv", "nats:///demo", env=env)
    send = sh("vflow int 0 9 | vflow send nats:///other", env=env)  # starts at the same time
    assert send.statuses == [0, 0], send.stderr
    info = _info(env)
    assert info and info["url"].startswith("nats://127.0.0.1:")  # this machine only
    status = sh("vflow nats", env=env)
    assert status.statuses == [0] and info["url"].encode() in status.stdout
    procs = subprocess.run(
        ["pgrep", "-f", "nats-server -c " + env["XDG_STATE_HOME"]], capture_output=True, text=True
    ).stdout.split()
    assert len(procs) == 1, procs  # one server, not two
    token = os.path.join(env["XDG_STATE_HOME"], "vflow", "nats", "token")
    assert os.stat(token).st_mode & 0o077 == 0  # only this user can read the token
    recv.terminate()
    recv.communicate(timeout=30)
    stop = sh("vflow nats stop", env=env)
    assert stop.statuses == [0], stop.stderr
    assert wait_for(lambda: not _alive(info["server_pid"]), 10)


def test_the_local_server_stops_by_itself_without_clients(tmp_path):
    env = local_env(tmp_path, VFLOW_NATS_IDLE="1")
    result = sh("vflow int 0 3 | vflow send nats:///x", env=env)
    assert result.statuses == [0, 0], result.stderr
    info = _info(env)
    assert info is not None
    started = time.monotonic()
    assert wait_for(lambda: not _alive(info["server_pid"]) and not _alive(info["pid"]), 20)
    assert time.monotonic() - started < 15
    assert b"not running" in sh("vflow nats", env=env).stdout


def test_a_stored_stream_outlives_the_local_server(tmp_path):
    env = local_env(tmp_path, VFLOW_NATS_IDLE="60")
    assert sh("vflow int 0 4 | vflow send --durable nats:///keep", env=env).statuses == [0, 0]
    assert sh("vflow nats stop", env=env).statuses == [0]
    again = sh("vflow recv --durable r nats:///keep | vflow print -f value", env=env)
    assert again.statuses == [0, 0], again.stderr
    assert again.stdout.decode().split() == [f'{{"value":{i}}}' for i in range(5)]
    sh("vflow nats stop --force", env=env)
