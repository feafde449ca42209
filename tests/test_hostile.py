"""Hostile input: whatever a stream claims, a stage stays within its memory bounds, says what
is wrong in one line and exits 1. Each stage runs as a real process; its peak memory is the
kernel's (wait4's ru_maxrss), not an estimate.

The table behind these bounds (stream, stage, status, peak RSS) prints with
`python -m tests.test_hostile`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from tests.helpers import ENV

TRACEBACK = b"Traceback"
MIB = 1 << 20
# stages of every family: metadata only (null, print, sum), pixels passed on by splice
# (identity), pixels decoded (resize), files written (save, write: OpenCV and FFmpeg loaded)
STAGES = [
    ["null"],
    ["identity"],
    ["print"],
    ["sum"],
    ["resize", "64x64"],
    ["save", "{tmp}/saved"],
    ["write", "{tmp}/out.mkv"],
]
TIGHT = ("null", "resize", "write")  # also run with VFLOW_MAX_PACKET=1M
HEADER = msgpack.packb({"vflow": 1})


def _map_with(key: bytes, head: bytes) -> bytes:
    """The start of {"kind": "data", KEY: ...}: the value's bytes follow."""
    return b"\x82\xa4kind\xa4data" + msgpack.packb(key.decode()) + head


def nested_empty_maps(out) -> None:
    """36 MB of [{}, {}, ...] arrays: 70x its size in Python objects if parsed naively."""
    out.write(HEADER + _map_with(b"x", b"\xdd" + (600).to_bytes(4, "big")))
    row = b"\xdd" + (60_000).to_bytes(4, "big") + b"\x80" * 60_000
    for _ in range(600):
        out.write(row)


def floats(out) -> None:
    """15 MB of float64s in arrays: 32 bytes of Python objects each."""
    out.write(HEADER + _map_with(b"x", b"\xdd" + (20).to_bytes(4, "big")))
    row = b"\xdd" + (80_000).to_bytes(4, "big") + msgpack.packb(0.5) * 80_000
    for _ in range(20):
        out.write(row)


def big_string(out) -> None:
    """A 200 MB string field."""
    out.write(HEADER + _map_with(b"x", b"\xdb" + (200 * MIB).to_bytes(4, "big")))
    chunk = b"x" * MIB
    for _ in range(200):
        out.write(chunk)


def bin_claiming_3_75_gb(out) -> None:
    """A map holding a bin32 that claims 3.75 GB, with 40 MB of it present."""
    out.write(HEADER + _map_with(b"x", b"\xc6" + (0xF0000000).to_bytes(4, "big")))
    for _ in range(40):
        out.write(b"\0" * MIB)


def jpeg_claiming_1_gib(out) -> None:
    """A 1 KB input whose jpeg payload claims 1 GiB."""
    desc = {"format": "jpeg", "dtype": "uint8", "shape": [480, 640, 3]}
    out.write(HEADER + msgpack.packb({"kind": "frame", "seq": 0, "image": desc}))
    out.write(b"\xc6" + (1 << 30).to_bytes(4, "big") + b"\xff\xd8" + b"\0" * 1000)


def jpeg_of_a_huge_picture(out) -> None:
    """A jpeg payload that a 20000x20000 picture could need, 1 KB of it present."""
    desc = {"format": "jpeg", "dtype": "uint8", "shape": [20000, 20000, 3]}
    out.write(HEADER + msgpack.packb({"kind": "frame", "seq": 0, "image": desc}))
    out.write(b"\xc6" + (1000 * MIB).to_bytes(4, "big") + b"\xff\xd8" + b"\0" * 1000)


def raw_claiming_768_mib(out) -> None:
    """A raw 16384x16384x3 frame (768 MiB) of which 1 KB arrives."""
    desc = {"format": "raw", "dtype": "uint8", "shape": [16384, 16384, 3]}
    out.write(HEADER + msgpack.packb({"kind": "frame", "seq": 0, "image": desc}))
    out.write(b"\xc6" + (768 * MIB).to_bytes(4, "big") + b"\0" * 1000)


def deep_nesting(out) -> None:
    """[[[[...]]]] 100000 levels deep."""
    out.write(HEADER + _map_with(b"x", b"\x91" * 100_000 + b"\x90"))


STREAMS = {
    f.__name__: f
    for f in (
        nested_empty_maps,
        floats,
        big_string,
        bin_claiming_3_75_gb,
        jpeg_claiming_1_gib,
        jpeg_of_a_huge_picture,
        raw_claiming_768_mib,
        deep_nesting,
    )
}


@pytest.fixture(scope="module")
def streams(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("hostile")
    paths = {}
    for name, make in STREAMS.items():
        paths[name] = folder / f"{name}.vflow"
        with open(paths[name], "wb") as out:
            make(out)
    empty = folder / "empty.vflow"
    empty.write_bytes(HEADER + msgpack.packb({"vflow": 1, "end": True, "packets": 0}))
    paths["empty"] = empty
    return paths


# A child's peak RSS (wait4's ru_maxrss) includes the memory of the process it was forked
# from, up to its exec: measured from this test process it would count pytest's own. So a
# bare interpreter (a few MiB) starts the stage and reports the stage's peak on a pipe.
LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
os.write(int(sys.argv[1]), b"%d %d" % (os.waitstatus_to_exitcode(status), usage.ru_maxrss))
"""


def run_measured(args: list[str], stdin: Path, env: dict[str, str]) -> tuple[int, float, bytes]:
    """(exit status, peak resident memory in MiB, stderr) of one stage reading `stdin`."""
    r, w = os.pipe()
    try:
        with open(stdin, "rb") as source:
            result = subprocess.run(
                [
                    sys.executable,
                    "-S",
                    "-I",
                    "-c",
                    LAUNCHER,
                    str(w),
                    sys.executable,
                    "-m",
                    "vflow_cli",
                    *args,
                ],
                stdin=source,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                env=env,
                pass_fds=(w,),
                timeout=120,
            )
    finally:
        os.close(w)
    with os.fdopen(r) as report:
        status, peak = report.read().split()
    assert result.returncode == 0, result.stderr
    return int(status), int(peak) / 1024, result.stderr


def _args(stage: list[str], tmp_path: Path) -> list[str]:
    return [a.replace("{tmp}", str(tmp_path)) for a in stage]


CASES = [(s, "default") for s in STAGES] + [(s, "1M") for s in STAGES if s[0] in TIGHT]


@pytest.mark.parametrize(
    ("stage", "limit"), CASES, ids=lambda c: c[0] if isinstance(c, list) else c
)
def test_no_stream_takes_a_stage_past_its_memory_bound(stage, limit, streams, tmp_path):
    env = dict(ENV)
    if limit == "1M":
        env["VFLOW_MAX_PACKET"] = "1M"
    args = _args(stage, tmp_path)
    _, baseline, _ = run_measured(args, streams["empty"], env)
    for name in STREAMS:
        status, peak, err = run_measured(args, streams[name], env)
        where = f"{name} through {stage[0]} ({limit}): {peak:.0f} MiB, baseline {baseline:.0f}"
        assert status == 1, f"{where}: status {status}, {err!r}"
        assert TRACEBACK not in err and err.count(b"\n") == 1, f"{where}: {err!r}"
        assert err.startswith(f"vflow {stage[0]}: ".encode()), f"{where}: {err!r}"
        # a legitimate stream of these carries no frame: the bound is a fixed allowance
        assert peak < baseline + 64, where
        if limit == "1M":
            assert peak < 150, where


def main() -> None:
    """Print the table: stream, stage, status, peak RSS (MiB), with both limits."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = {}
        for name, make in STREAMS.items():
            paths[name] = folder / f"{name}.vflow"
            with open(paths[name], "wb") as out:
                make(out)
        print("| stream | stage | default: status, peak MiB | VFLOW_MAX_PACKET=1M |")
        print("|---|---|---|---|")
        for name in STREAMS:
            for stage in STAGES:
                cells = []
                for limit in ("default", "1M"):
                    env = dict(ENV, **({"VFLOW_MAX_PACKET": "1M"} if limit == "1M" else {}))
                    status, peak, _ = run_measured(_args(stage, folder), paths[name], env)
                    cells.append(f"{status}, {peak:.0f}")
                print(f"| {name} | {stage[0]} | {cells[0]} | {cells[1]} |")


if __name__ == "__main__":
    main()
