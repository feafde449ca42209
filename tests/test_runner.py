"""The runner through real processes and pipes: EOF, broken pipes, signals, terminals, errors."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
from pathlib import Path

import msgpack
import pytest

from tests.helpers import ENV, data, frame, pack, sh, unpack, vflow, wait_for

TRACEBACK = b"Traceback"


def test_eof_ends_every_stage_with_status_0():
    result = sh("vflow int 0 40 | vflow sum | vflow print")
    assert result.statuses == [0, 0, 0]
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 41 and '"value":820' in lines[-1]


def test_an_empty_input_is_no_stream():
    result = vflow("print", input=b"")
    assert result.returncode == 1 and result.stdout == b""
    assert result.stderr == (
        b"vflow print: no input: the stage before this one wrote nothing (did it fail?)\n"
    )


@pytest.mark.parametrize("stage", ["int 0 100000", "testcard --size small"])
def test_a_closed_downstream_ends_the_producer_quietly(stage):
    result = sh(f"vflow {stage} | head -c 100 > /dev/null")
    assert result.statuses == [141, 0]
    assert result.stderr == b""


def test_a_closed_downstream_ends_a_whole_chain_quietly():
    result = sh("vflow int 0 1000000 | vflow identity | vflow sum | vflow head 3 | vflow print")
    assert result.statuses[-2:] == [0, 0]
    assert all(status in (0, 141) for status in result.statuses)
    assert result.stderr == b""
    assert len(result.stdout.splitlines()) == 3


def test_print_into_head_ends_quietly():
    result = sh("vflow int 0 100000 | vflow print | head -n 2")
    assert result.statuses[1:] == [141, 0] and result.stderr == b""


def test_garbage_on_stdin_is_one_line():
    result = sh("cat /etc/passwd | vflow print")
    assert result.statuses == [0, 1]
    err = result.stderr.decode()
    assert err.count("\n") == 1
    assert err.startswith("vflow print: stdin is not a vflow stream (it starts with b'root:")


def test_a_truncated_stream_delivers_what_arrived_then_fails():
    stream = pack([data(0), data(1), data(2)], end=False)
    result = vflow("print", input=stream[:-4])
    assert result.returncode == 1
    assert [line for line in result.stdout.splitlines()] == [
        b'{"kind":"data","seq":0,"value":0}',
        b'{"kind":"data","seq":1,"value":1}',
    ]
    assert result.stderr.decode().startswith("vflow print: input ended in the middle of packet 3")
    assert TRACEBACK not in result.stderr


def test_a_killed_upstream_is_reported_downstream():
    # the stage before is killed in the middle of writing a frame
    result = sh(
        "vflow testcard --size hd --frames 50 | head -c 9000000 | vflow identity | vflow null"
    )
    assert result.statuses[2:] == [1, 1]
    assert b"vflow identity: input ended in the middle of packet 3" in result.stderr
    assert TRACEBACK not in result.stderr


def test_an_oversize_packet_is_refused():
    env = {**ENV, "VFLOW_MAX_PACKET": "100K"}
    result = sh("vflow testcard --size medium --frames 2 | vflow print", env=env)
    assert result.statuses[0] in (0, 141) and result.statuses[1] == 1  # print may leave first
    assert b"image is larger than the 100 KiB limit (set VFLOW_MAX_PACKET" in result.stderr


def test_a_bad_limit_is_reported():
    result = vflow("print", input=pack([data(0)]), env={**ENV, "VFLOW_MAX_PACKET": "lots"})
    assert result.returncode == 1
    assert result.stderr.startswith(b"vflow print: VFLOW_MAX_PACKET: 'LOTS' is not a size")


def test_usage_errors_exit_2_without_traceback():
    result = vflow("int", "zero", "10")
    assert result.returncode == 2 and TRACEBACK not in result.stderr
    assert b"'zero' is not a valid integer" in result.stderr
    result = vflow("testcard", "--size", "huge", "--frames", "1")
    assert result.returncode == 2 and b"'huge' is not WIDTHxHEIGHT" in result.stderr


def test_a_field_that_is_not_a_number_is_a_user_error():
    result = vflow("sum", input=pack([data(0, value="abc")]))
    assert result.returncode == 1
    assert result.stderr == b"vflow sum: packet 0: field 'value' is 'abc', not a number\n"


# -- terminals -------------------------------------------------------------------------------


def run_with_tty(args: list[str], *, stdin_tty: bool, stdout_tty: bool, stderr_tty=False):
    """Run a stage with a pseudo-terminal on the chosen streams; returns (status, tty text, err)."""
    master, slave = pty.openpty()
    streams = {
        "stdin": slave if stdin_tty else subprocess.DEVNULL,
        "stdout": slave if stdout_tty else subprocess.DEVNULL,
        "stderr": slave if stderr_tty else subprocess.PIPE,
    }
    proc = subprocess.Popen([sys.executable, "-m", "vflow_cli", *args], env=ENV, **streams)
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every holder of the terminal has closed it
            break
        if not chunk:
            break
        seen += chunk
    _, err = proc.communicate(timeout=30)
    os.close(master)
    for stream in (proc.stdout, proc.stderr):
        if stream:
            stream.close()
    return proc.returncode, seen, err or b""


def test_packets_are_never_read_from_a_terminal():
    status, _, err = run_with_tty(["print"], stdin_tty=True, stdout_tty=False)
    assert status == 2
    assert b"stdin is a terminal, not a packet stream" in err
    assert b"vflow testcard --frames 10 | vflow print" in err


def test_packets_are_never_written_to_a_terminal():
    status, screen, err = run_with_tty(["int", "0", "3"], stdin_tty=False, stdout_tty=True)
    assert status == 2
    assert b"stdout is a terminal" in err and b"| vflow print" in err
    assert screen == b""  # not one binary byte reached the screen


def test_a_progress_bar_shows_only_on_a_terminal():
    args = ["testcard", "--size", "small", "--frames", "60", "--fps", "60"]
    status, screen, _ = run_with_tty([*args], stdin_tty=False, stdout_tty=False, stderr_tty=True)
    assert status == 0
    assert re.search(rb"vflow testcard: +\d+%\|", screen), screen[-300:]
    assert re.search(rb" [1-9]\d*/60 \[", screen), screen[-300:]  # it moved
    plain = vflow(*args)
    assert plain.returncode == 0 and plain.stderr == b""
    status, screen, _ = run_with_tty(
        [*args, "-q"], stdin_tty=False, stdout_tty=False, stderr_tty=True
    )
    assert status == 0 and b"%|" not in screen


# -- logging and errors ----------------------------------------------------------------------


def test_verbose_reports_and_quiet_is_quiet():
    result = sh("vflow testcard --size small --frames 20 | vflow null -v")
    assert result.statuses == [0, 0]
    line, busy = result.stderr.decode().splitlines()
    assert re.match(r"vflow null: busy \d+% of [\d.]+ s; waiting for input \d+%", busy)
    assert re.match(r"vflow null: in 21 packets, [\d.]+ MB \(.*packets/s.*\) in [\d.]+ s$", line)
    result = vflow("print", "-q", input=b"junk")
    assert result.returncode == 1 and b"not a vflow stream" in result.stderr  # errors still show


def test_an_internal_error_is_one_line_unless_debugging(tmp_path):
    # a stage with a bug, loaded through the same decorator and runner as every stage
    plugin = tmp_path / "buggy.py"
    plugin.write_text(
        "from vflow_cli.stage import processor\n"
        "from vflow_cli.cli import cli\n"
        "@processor\n"
        "def buggy(packets):\n"
        "    for packet in packets:\n"
        "        yield packet['missing']\n"
        "from vflow_cli.stage import REGISTRY\n"
        "cli.add_command(REGISTRY['buggy'])\n"
        "cli(['buggy', *__import__('sys').argv[1:]], prog_name='vflow')\n"
    )
    stream = pack([data(0)])
    run = lambda *args, **kw: subprocess.run(  # noqa: E731
        [sys.executable, str(plugin), *args], input=stream, capture_output=True, **kw
    )
    result = run(env=ENV)
    assert result.returncode == 70
    assert result.stderr == (
        b"vflow buggy: internal error: KeyError: 'missing' "
        b"(run with --debug or VFLOW_DEBUG=1 for a traceback)\n"
    )
    assert TRACEBACK in run("--debug", env=ENV).stderr
    assert TRACEBACK in run(env={**ENV, "VFLOW_DEBUG": "1"}).stderr


# -- signals ---------------------------------------------------------------------------------


def start_group(pipeline: str, **kw) -> subprocess.Popen:
    """A shell pipeline in a process group of its own, as a terminal's foreground job is."""
    return subprocess.Popen(
        ["bash", "-c", f"set -o pipefail; {pipeline}; echo ${{PIPESTATUS[*]}} >&2"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
        **kw,
    )


def signal_pending(pid: int, signum: int) -> bool:
    """Is signum sent to pid but not yet delivered? (Once delivered, Python has run its
    handler before the interrupted read returns.)"""
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    status = dict(line.split(":\t", 1) for line in lines)
    pending = int(status["SigPnd"], 16) | int(status["ShdPnd"], 16)
    return bool(pending & (1 << (signum - 1)))


def statuses(stderr: bytes) -> list[int]:
    return [int(x) for x in stderr.decode().strip().splitlines()[-1].split()]


def test_ctrl_c_stops_the_producer_and_the_rest_drain(tmp_path):
    out = tmp_path / "out.jsonl"
    # bash runs the pipeline's commands with SIGINT as they inherited it: interrupt them all
    proc = start_group(
        "vflow int 0 100000000 --interval 0.001 -v | vflow identity | vflow sum"
        f" | vflow print > {out}"
    )
    wait_for(lambda: out.exists() and out.read_text().count("\n") >= 50, 30, "50 lines")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert statuses(err) == [130, 0, 0, 0], err
    produced = int(re.search(rb"vflow int: out (\d+) packets", err).group(1))
    lines = out.read_text().splitlines()
    assert len(lines) == produced >= 50  # every packet the producer wrote reached the end
    last = produced - 1
    assert f'"value":{last * (last + 1) // 2}' in lines[-1]
    assert TRACEBACK.decode() not in err.decode()


def test_a_second_ctrl_c_aborts_a_draining_stage(tmp_path):
    # upstream never ends: the first ^C makes print drain, the second stops it
    r, w = os.pipe()
    os.write(w, pack([data(0)]))  # and the write end stays open: no EOF ever comes
    with subprocess.Popen(
        [sys.executable, "-m", "vflow_cli", "print"],
        stdin=r,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=ENV,
    ) as proc:
        os.close(r)
        assert proc.stdout is not None
        assert proc.stdout.readline() == b'{"kind":"data","seq":0,"value":0}\n'
        proc.send_signal(signal.SIGINT)
        wait_for(lambda: not signal_pending(proc.pid, signal.SIGINT), 10, "the first ^C")
        os.write(w, msgpack.packb(data(1)))  # the stream goes on: print still reads it
        assert proc.stdout.readline() == b'{"kind":"data","seq":1,"value":1}\n'
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    os.close(w)
    assert proc.returncode == 130 and err == b""


def test_sigterm_stops_a_stage_with_143(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "vflow_cli", "int", "0", "1000000", "--interval", "0.01"],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    seen = bytearray()  # what it wrote before the SIGTERM: at least two whole packets

    def two_packets() -> bool:
        seen.extend(os.read(proc.stdout.fileno(), 1 << 16))  # (it writes every 10 ms)
        unpacker = msgpack.Unpacker()
        unpacker.feed(seen)
        return sum("vflow" not in obj for obj in unpacker) >= 2

    wait_for(two_packets, 30, "two packets")
    proc.terminate()
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and err == b""
    packets = unpack(bytes(seen) + out)  # whole packets only: the stream ends cleanly
    assert packets and [p["value"] for p in packets] == list(range(len(packets)))


# -- small packets leave at once ------------------------------------------------------------


@pytest.mark.parametrize("chain", [["identity"], ["identity", "sum", "count"]])
def test_a_lone_small_packet_reaches_the_end_while_input_stays_open(chain):
    pipeline = " | ".join(f"{sys.executable} -m vflow_cli {stage}" for stage in chain)
    with subprocess.Popen(
        ["bash", "-c", f"{pipeline} | {sys.executable} -m vflow_cli print"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=ENV,
    ) as proc:
        assert proc.stdin and proc.stdout
        proc.stdin.write(pack([data(7)]))  # and keep stdin open: no EOF to push it through
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], 20)
        assert ready, "the packet did not come out while the input stayed open"
        assert b'"seq":7' in proc.stdout.readline()
        proc.stdin.close()
        assert proc.wait(timeout=20) == 0


def test_a_paced_producer_sends_each_packet_when_made():
    with subprocess.Popen(
        ["bash", "-c", "vflow int 0 2 --interval 3600 | vflow print"],
        stdout=subprocess.PIPE,
        env=ENV,
        process_group=0,
    ) as proc:
        assert proc.stdout
        ready, _, _ = select.select([proc.stdout], [], [], 60)  # long before the 2nd is due
        assert ready and b'"value":0' in proc.stdout.readline()
        os.killpg(proc.pid, signal.SIGKILL)


# -- the environment's problems are the user's, not bugs -------------------------------------


def test_a_full_stdout_is_one_line_and_status_1():
    result = sh("vflow testcard --frames 3 > /dev/full")
    assert result.statuses == [1]
    assert result.stderr == (
        b"vflow testcard: cannot write packets to stdout: No space left on device\n"
    )


def test_a_closed_stdout_is_one_line_and_status_1():
    result = sh("vflow int 0 10 | vflow print >&-")
    assert result.statuses[1] == 1 and result.statuses[0] in (0, 141)
    assert result.stderr == b"vflow print: stdout is closed; give this stage a pipe or a file\n"
    result = sh("vflow int 0 10 >&-")
    assert result.statuses == [1]
    assert result.stderr == b"vflow int: stdout is closed; give this stage a pipe or a file\n"


def test_a_misspelt_stage_gets_the_nearest_names():
    for typed, meant in (("resiz", "resize"), ("testcrad", "testcard")):
        result = vflow(typed)
        assert result.returncode == 2 and TRACEBACK not in result.stderr
        assert f"no stage or command '{typed}'; did you mean '{meant}'?".encode() in result.stderr


def test_negative_numbers_are_values_not_options():
    result = vflow("head", "-3", input=pack([data(0)]))
    assert result.returncode == 2
    assert b"Invalid value for 'N': -3 is not in the range x>=0." in result.stderr
    result = sh("vflow int -3 3 | vflow print -f value")
    assert result.statuses == [0, 0]
    assert result.stdout.decode().split() == [f'{{"value":{v}}}' for v in range(-3, 4)]


def test_verbose_counts_the_bytes_spliced_past_the_stage():
    result = sh("vflow testcard --size small --frames 50 | vflow identity -v | vflow null")
    line, _ = result.stderr.decode().splitlines()  # and where its time went
    sizes = re.match(
        r"vflow identity: in \d+ packets, ([\d.]+) MB .*; out \d+ packets, ([\d.]+) MB", line
    )
    assert sizes, line
    given, passed = (float(n) for n in sizes.groups())
    assert given > 10 and abs(given - passed) / given < 0.01, line


def test_libraries_chatter_never_reaches_stderr(tmp_path):
    """libpng's warnings, numpy's RuntimeWarnings: every line on stderr is the stage's own."""
    import struct
    import zlib

    import cv2
    import numpy as np

    from vflow_cli.framing import Encoded

    _, encoded = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
    png = encoded.tobytes()
    junk = b"bogus\x00\x00" + zlib.compress(b"\x00" * 200)  # a broken colour profile
    chunk = struct.pack(">I", len(junk)) + b"iCCP" + junk
    chunk += struct.pack(">I", zlib.crc32(b"iCCP" + junk) & 0xFFFFFFFF)
    bad = png[:33] + chunk + png[33:]  # libpng: "iCCP: too short"
    (tmp_path / "bad.png").write_bytes(bad)
    nan = np.full((8, 8, 3), np.nan, np.float32)
    runs = [
        sh(f"vflow images {tmp_path / 'bad.png'} | vflow null"),
        vflow("unjpeg", input=pack([{"kind": "frame", "image": Encoded("png", bad, (8, 8, 3))}])),
        vflow("write", str(tmp_path / "nan.mkv"), "--fps", "5", input=pack([frame(0, image=nan)])),
    ]
    for result in runs:
        assert result.returncode == 0, result.stderr
        assert result.stderr == b"", result.stderr


def test_frame_sizes_no_stage_could_pass_on_are_refused_before_allocating():
    for args in (["testcard", "--size", "100000x100000"], ["resize", "100000x100000"]):
        result = vflow(*args, input=pack([]))
        assert result.returncode == 2, (args, result.stderr)
        assert b"100000x100000 frames would be 27.94 GiB" in result.stderr or (
            b"100000x100000 frames would be 9.313 GiB" in result.stderr
        ), result.stderr
        assert b"over the 1 GiB packet limit (VFLOW_MAX_PACKET)" in result.stderr
