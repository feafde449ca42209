"""`vflow nats rm` removes a stored stream; VFLOW_NATS_PORT sets the local server's port."""

from __future__ import annotations

from tests.net.util import free_port, local_env, sh


def test_rm_removes_one_stored_stream(tmp_path):
    env = local_env(tmp_path)
    try:
        for subject in ("keep", "gone"):
            sent = sh(f"vflow int 0 4 | vflow send --durable nats:///{subject}", env=env)
            assert sent.statuses == [0, 0], sent.stderr
        removed = sh("vflow nats rm gone", env=env)
        assert removed.statuses == [0], removed.stderr
        assert b"removed the stored stream of gone" in removed.stdout
        assert b"(6 messages" in removed.stdout  # 5 packets and the end
        listing = sh("vflow nats list", env=env).stdout
        assert b"keep\tstored" in listing and b"gone\tstored" not in listing
        again = sh("vflow nats rm nats:///gone", env=env)
        assert again.statuses == [1]
        lines = again.stderr.strip().splitlines()
        assert len(lines) == 1 and b"no stored stream for 'gone'" in lines[0], lines
        kept = sh("vflow recv --durable r nats:///keep | vflow print -f seq", env=env)
        assert kept.statuses == [0, 0] and len(kept.stdout.splitlines()) == 5
    finally:
        sh("vflow nats stop --force", env=env)


def test_rm_on_a_server_refuses_a_stream_vflow_did_not_make(server):
    import asyncio

    import nats

    async def make() -> None:
        client = await nats.connect(f"nats://127.0.0.1:{server.port}")
        await client.jetstream().add_stream(name="MINE", subjects=["mine.a", "mine.b"])
        await client.close()

    asyncio.run(make())
    refused = sh(f"vflow nats rm {server.url('mine.a')}")
    assert refused.statuses == [1]
    assert b"which vflow did not make" in refused.stderr and b"mine.b" in refused.stderr
    forced = sh(f"vflow nats rm --force {server.url('mine.a')}")
    assert forced.statuses == [0], forced.stderr
    assert sh(f"vflow nats rm --force {server.url('mine.a')}").statuses == [1]


def test_rm_without_a_subject_is_a_usage_error(tmp_path):
    result = sh("vflow nats rm", env=local_env(tmp_path))
    assert result.statuses == [2] and b"SUBJECT" in result.stderr


def test_vflow_nats_port_sets_the_local_servers_port(tmp_path):
    port = free_port()
    env = local_env(tmp_path, VFLOW_NATS_PORT=str(port))
    try:
        started = sh("vflow nats start", env=env)
        assert started.statuses == [0], started.stderr
        assert f"nats://127.0.0.1:{port}".encode() in started.stdout
        sent = sh("vflow int 0 2 | vflow send --durable nats:///p", env=env)
        assert sent.statuses == [0, 0], sent.stderr
        other = sh("vflow nats start", env={**env, "VFLOW_NATS_PORT": str(free_port())})
        assert b"takes effect when it starts" in other.stderr
    finally:
        sh("vflow nats stop --force", env=env)


def test_a_bad_vflow_nats_port_is_one_line(tmp_path):
    env = local_env(tmp_path, VFLOW_NATS_PORT="http")
    result = sh("vflow int 0 2 | vflow send nats:///p", env=env)
    assert result.statuses[1] == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and b"VFLOW_NATS_PORT='http' is not a port" in lines[0], lines
