"""vflow worker shares the flags of every command: --debug shows the traceback of a bug."""

from __future__ import annotations

import textwrap

import pytest

from tests.net.util import start


@pytest.mark.parametrize("debug", [False, True])
def test_worker_debug_shows_the_traceback_of_a_bug(server, tmp_path, debug):
    broken = tmp_path / "broken.py"
    broken.write_text(
        textwrap.dedent(
            """
            from vflow_cli.stage import processor

            @processor
            def broken(packets):
                raise RuntimeError("a bug before the first packet")
                yield from packets
            """
        )
    )
    flags = ["--debug"] if debug else []
    worker = start(
        "worker",
        *flags,
        "--mode",
        "live",
        "--from",
        server.url("in"),
        "--to",
        server.url("out"),
        "--",
        str(broken),
    )
    _, err = worker.communicate(timeout=60)
    text = err.decode()
    assert worker.returncode == (1 if debug else 70), text
    assert "a bug before the first packet" in text
    assert ("Traceback (most recent call last)" in text) is debug, text
