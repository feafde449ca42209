"""Test helpers: packets in memory, and vflow stages as real processes on real pipes."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from vflow_cli.framing import PacketReader, PacketWriter

ROOT = Path(__file__).resolve().parent.parent
BIN = str(Path(sys.executable).parent)  # where the `vflow` console script lives
ENV = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
ENV.pop("VFLOW_DEBUG", None)


def frame(seq: int, shape: tuple[int, ...] = (4, 6, 3), dtype: str = "uint8", **meta: Any):
    """A frame packet whose pixels encode its sequence number."""
    image = (np.arange(int(np.prod(shape))) + seq).astype(dtype).reshape(shape)
    return {"kind": "frame", "seq": seq, "t": seq / 30, "image": image, **meta}


def data(seq: int, value: Any = None, **meta: Any) -> dict[str, Any]:
    return {"kind": "data", "seq": seq, "value": seq if value is None else value, **meta}


def pack(packets: Iterable[dict[str, Any]], *, end: bool = True) -> bytes:
    """A whole vflow stream as bytes: header, packets and (unless end=False: a stream that
    was cut) the trailer."""
    out = io.BytesIO()
    writer = PacketWriter(out)
    for packet in packets:
        writer.write(packet)
    writer.close(end=end)
    return out.getvalue()


def unpack(stream: bytes) -> list[dict[str, Any]]:
    return list(PacketReader(io.BytesIO(stream)))


def vflow(*args: str, input: bytes | None = None, timeout: float = 60, **kw: Any):
    """Run one stage as a real process; returns CompletedProcess with bytes stdout/stderr."""
    return subprocess.run(
        [sys.executable, "-m", "vflow_cli", *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        env=kw.pop("env", ENV),
        **kw,
    )


def sh(pipeline: str, *, timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess:
    """Run a real shell pipeline with `vflow` on PATH; pipefail on, PIPESTATUS printed to fd 3.

    Returns CompletedProcess (bytes) with .statuses: the exit status of every command.
    """
    r, w = os.pipe()
    script = f"set -o pipefail; {pipeline}; echo ${{PIPESTATUS[*]}} >&{w}"
    try:
        result = subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            timeout=timeout,
            env=kw.pop("env", ENV),
            pass_fds=(w,),
            **kw,
        )
    finally:
        os.close(w)
    with os.fdopen(r) as f:
        text = f.read().split()
    result.statuses = [int(x) for x in text]  # type: ignore[attr-defined]
    return result


def wait_for(
    predicate: Callable[[], Any], timeout: float = 20, what: str = "condition", every: float = 0.02
) -> Any:
    """Wait until predicate() is true, looking every `every` seconds; return its value.

    The one way tests wait: on a condition with a deadline, never a fixed sleep. Past the
    deadline it fails the test (AssertionError naming `what`)."""
    end = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(every)
