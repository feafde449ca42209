"""send and recv in two network namespaces joined by a veth pair: traffic on a real interface.

Needs root (creating namespaces) and iproute2 (`make install` brings it); skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.helpers import ENV, unpack
from tests.net.util import Server

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None,
    reason="network namespaces need root and iproute2's `ip`",
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def namespaces():
    a, b = f"vfa{os.getpid()}", f"vfb{os.getpid()}"
    veth = f"vfv{os.getpid() % 100000}"
    try:
        _ip("netns", "add", a)
        _ip("netns", "add", b)
        _ip("link", "add", f"{veth}a", "type", "veth", "peer", "name", f"{veth}b")
        _ip("link", "set", f"{veth}a", "netns", a)
        _ip("link", "set", f"{veth}b", "netns", b)
        _ip("-n", a, "addr", "add", "10.213.7.1/24", "dev", f"{veth}a")
        _ip("-n", b, "addr", "add", "10.213.7.2/24", "dev", f"{veth}b")
        for ns, dev in ((a, f"{veth}a"), (b, f"{veth}b")):
            _ip("-n", ns, "link", "set", dev, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        pytest.skip(f"cannot make network namespaces here: {exc.stderr.decode().strip()}")
    yield a, b, f"{veth}b"
    for ns in (a, b):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_send_and_recv_across_a_veth_pair(namespaces, tmp_path):
    a, b, dev = namespaces
    server = Server(tmp_path / "srv", host="10.213.7.1", netns=a)
    try:
        url = server.url("across")
        vflow = [sys.executable, "-m", "vflow_cli"]
        before = _rx_bytes(b, dev)
        recv = subprocess.Popen(
            ["ip", "netns", "exec", b, *vflow, "recv", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        server.wait_subscribed("across")
        send = subprocess.run(
            [
                "ip",
                "netns",
                "exec",
                b,
                "bash",
                "-c",
                f"{sys.executable} -m vflow_cli testcard --size 320x240 --frames 30 | "
                f"{sys.executable} -m vflow_cli send {url}",
            ],
            capture_output=True,
            env=ENV,
            timeout=60,
        )
        assert send.returncode == 0, send.stderr
        out, err = recv.communicate(timeout=60)
        assert recv.returncode == 0, err
        frames = [p for p in unpack(out) if p.get("kind") == "frame"]
        assert [p["seq"] for p in frames] == list(range(30))
        assert _rx_bytes(b, dev) - before > 30 * 5000  # the frames crossed the veth
    finally:
        server.stop()


def _rx_bytes(ns: str, dev: str) -> int:
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "cat", f"/sys/class/net/{dev}/statistics/rx_bytes"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out)
