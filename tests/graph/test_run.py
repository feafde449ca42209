"""vflow graph: real graphs as real processes on real pipes."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import shutil
import signal
import subprocess
import sys

import pytest

from tests.graph.util import (
    EXAMPLES,
    consecutive,
    env_with,
    graph,
    lines,
    node,
    pid_in,
    start,
    stderr_of,
    stop,
    wait_for,
    write_spec,
)
from tests.helpers import ENV, sh


def jsonl(data: bytes) -> list[dict]:
    return [json.loads(line) for line in data.decode().splitlines()]


# -- the Videoflow examples, translated


def test_int_sum_print_is_the_shell_pipeline(tmp_path):
    result = graph(tmp_path, EXAMPLES / "sum.toml")
    assert result.returncode == 0, result.stderr
    shell = sh("vflow int 0 40 | vflow sum | vflow print")
    assert shell.statuses == [0, 0, 0]
    strip = [{k: v for k, v in p.items() if k != "t"} for p in jsonl(result.stdout)]
    assert strip == [{k: v for k, v in p.items() if k != "t"} for p in jsonl(shell.stdout)]
    assert strip[-1]["value"] == sum(range(41))


def test_a_producer_feeding_two_consumers(tmp_path):
    result = graph(tmp_path, EXAMPLES / "two-consumers.toml")
    assert result.returncode == 0, result.stderr
    total, biggest = lines(tmp_path / "total.jsonl"), lines(tmp_path / "max.jsonl")
    assert [p["value"] for p in total][-1] == sum(range(1, 101))
    assert [p["value"] for p in biggest] == list(range(1, 101))


def test_two_producers(tmp_path):
    result = graph(tmp_path, EXAMPLES / "two-producers.toml")
    assert result.returncode == 0, result.stderr
    out = jsonl(result.stdout)
    small = [p for p in out if p["from"] == "small-sum"]
    big = [p for p in out if p["from"] == "big-sum"]
    assert (len(small), len(big)) == (10, 100)
    assert consecutive(small) and consecutive(big)  # each branch keeps its order
    assert small[-1]["value"] == 45 and big[-1]["value"] == sum(range(1000, 1100))


# -- fan-out


FANOUT = """\
[graph]
grace = 5
[nodes.src]
run = ["int", "0", "{last}"]
[nodes.fast]
run = ["print", "--field", "seq"]
from = ["src"]
stdout = "fast.jsonl"
[nodes.slow]
python = {slow}
from = ["src"]
queue = {{ size = 4, leaky = "{leaky}" }}
[nodes.slow-out]
run = ["print", "--field", "seq"]
from = ["slow"]
stdout = "slow.jsonl"
"""


def test_fan_out_lossless_every_packet_arrives_in_order(tmp_path):
    spec = FANOUT.format(last=199, slow=node("slow", "0.002"), leaky="no")
    result = graph(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    assert consecutive(lines(tmp_path / "fast.jsonl"))
    assert consecutive(lines(tmp_path / "slow.jsonl"))
    assert len(lines(tmp_path / "slow.jsonl")) == 200
    assert b"dropped" not in result.stderr


@pytest.mark.parametrize("leaky", ["old", "new"])
def test_fan_out_leaky_fast_branch_gets_all_drops_are_counted(tmp_path, leaky):
    spec = FANOUT.format(last=1999, slow=node("slow", "0.01"), leaky=leaky)
    result = graph(tmp_path, spec, timeout=20)  # 2000 x 0.01 s if the source waited for slow
    assert result.returncode == 0, result.stderr
    fast, slow = lines(tmp_path / "fast.jsonl"), lines(tmp_path / "slow.jsonl")
    assert consecutive(fast) and len(fast) == 2000
    seqs = [p["seq"] for p in slow]
    assert seqs == sorted(set(seqs)) and len(seqs) < 2000
    err = result.stderr.decode()
    match = re.search(r"edge src -> slow: dropped (\d+) of (\d+) packets", err)
    assert match, err
    assert int(match.group(2)) == 2000
    assert int(match.group(1)) + len(seqs) == 2000  # every packet accounted for
    if leaky == "new":
        assert seqs[0] == 0  # the first ones were queued, later ones dropped
    else:
        assert seqs[-1] == 1999  # the newest always gets through


def test_a_reader_that_leaves_early_is_not_a_failure(tmp_path):
    spec = """\
[nodes.src]
run = ["int", "0", "100000000"]
[nodes.first]
run = ["head", "5"]
from = ["src"]
[nodes.out]
run = ["print"]
from = ["first"]
"""
    result = graph(tmp_path, spec, "-v")
    assert result.returncode == 0, result.stderr
    assert len(jsonl(result.stdout)) == 5
    assert "src: exit status 141" in result.stderr.decode()


def test_one_branch_leaving_early_leaves_the_other_running(tmp_path):
    spec = """\
[nodes.src]
run = ["int", "0", "2999"]
[nodes.first]
run = ["head", "5"]
from = ["src"]
[nodes.first-out]
run = ["print"]
from = ["first"]
stdout = "first.jsonl"
[nodes.all]
run = ["print"]
from = ["src"]
stdout = "all.jsonl"
"""
    result = graph(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    assert len(lines(tmp_path / "first.jsonl")) == 5
    assert consecutive(lines(tmp_path / "all.jsonl")) and len(lines(tmp_path / "all.jsonl")) == 3000


# -- fan-in


def test_zip_by_frame_number(tmp_path):
    result = graph(tmp_path, EXAMPLES / "zip.toml")
    assert result.returncode == 0, result.stderr
    out = jsonl(result.stdout)
    assert [p["seq"] for p in out] == list(range(0, 20, 2))
    for p in out:
        assert p["value"] == p["seq"]  # the first input's packet ...
        assert p["total"]["value"] == sum(range(p["seq"] + 1))  # ... with the other's result
    assert "node 'joined': 10 unmatched packets dropped" in result.stderr.decode()


def test_zip_keep_sends_unmatched_packets_alone(tmp_path):
    spec = (
        (EXAMPLES / "zip.toml")
        .read_text()
        .replace('from = ["even", "total"]', 'from = ["total", "even"]')
    )
    spec += 'unmatched = "keep"\n'
    result = graph(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    out = jsonl(result.stdout)
    assert [p["seq"] for p in out] == list(range(20))
    assert ["even" in p for p in out] == [seq % 2 == 0 for seq in range(20)]


# -- workers


WORKERS = """\
[nodes.src]
run = ["int", "0", "{last}"]
[nodes.work]
{run}
workers = {workers}
window = {window}
from = ["src"]
[nodes.out]
run = ["print", "--field", "seq", "--field", "copy"]
from = ["work"]
"""


def test_workers_keep_the_order(tmp_path):
    result = graph(tmp_path, EXAMPLES / "workers.toml")
    assert result.returncode == 0, result.stderr
    assert consecutive(jsonl(result.stdout)) and len(jsonl(result.stdout)) == 200


def test_workers_with_a_stage_that_adds_packets(tmp_path):
    run = f"python = {node('double')}"
    result = graph(tmp_path, WORKERS.format(last=299, run=run, workers=3, window=4))
    assert result.returncode == 0, result.stderr
    out = jsonl(result.stdout)
    assert [p["seq"] for p in out] == [s for s in range(300) for _ in (0, 1)]
    assert [p.get("copy", False) for p in out] == [False, True] * 300


@pytest.mark.parametrize("n", [3, 50])
def test_workers_with_a_stage_that_drops_packets(tmp_path, n):
    # one packet in N goes on: the order must hold, and a worker that drops everything it
    # holds must not stall the pool
    run = f"python = {node('drop', str(n))}"
    result = graph(tmp_path, WORKERS.format(last=999, run=run, workers=2, window=2))
    assert result.returncode == 0, result.stderr
    assert [p["seq"] for p in jsonl(result.stdout)] == list(range(0, 1000, n))


@pytest.mark.parametrize("held", [0, 5, 17])
def test_workers_a_copy_held_on_one_packet_the_order_is_exact(tmp_path, held):
    # the copy that gets packet `held` waits until another copy has passed on a later one:
    # outputs arrive out of order for certain, and the pool must put them back
    run = f"python = {node('hold', str(held))}"
    gate = tmp_path / "gate"
    spec = WORKERS.format(last=39, run=run, workers=3, window=4)
    result = graph(tmp_path, spec, env=env_with(GATE=str(gate)))
    assert result.returncode == 0, result.stderr
    assert gate.exists()  # a later packet really was finished first
    assert [p["seq"] for p in jsonl(result.stdout)] == list(range(40))


def test_hidden_sequence_field_never_leaks(tmp_path):
    run = 'run = ["identity"]'
    result = graph(
        tmp_path,
        WORKERS.format(last=9, run=run, workers=2, window=8).replace(
            'run = ["print", "--field", "seq", "--field", "copy"]', 'run = ["print"]'
        ),
    )
    assert result.returncode == 0, result.stderr
    assert b"_vflow" not in result.stdout


# -- devices


def test_each_worker_sees_one_gpu(tmp_path):
    spec = f"""\
[nodes.src]
run = ["int", "0", "19"]
[nodes.det]
python = {node("env")}
device = "gpu"
workers = 2
from = ["src"]
[nodes.track]
python = {node("env")}
device = "prefer-gpu"
from = ["src"]
[nodes.plain]
python = {node("env")}
from = ["src"]
[nodes.all]
run = ["print", "--field", "node", "--field", "gpu"]
from = ["det", "track", "plain"]
"""
    result = graph(tmp_path, spec, "--gpus", "4,6", env=env_with(CUDA_VISIBLE_DEVICES="9"))
    assert result.returncode == 0, result.stderr
    seen: dict[str, set] = {}
    for p in jsonl(result.stdout):
        seen.setdefault(p["node"], set()).add(p["gpu"])
    assert seen == {"det": {"4", "6"}, "track": {""}, "plain": {"9"}}
    # VFLOW_GPUS when there is no --gpus; one GPU is not enough for det's two workers
    refused = graph(tmp_path, spec, env=env_with(VFLOW_GPUS="4"))
    assert refused.returncode == 1
    assert "node 'det': needs 2 GPUs" in refused.stderr.decode()
    assert not refused.stdout  # refused before anything started


def test_without_variables_the_gpus_come_from_nvidia_smi(tmp_path):
    # this machine has no GPU: a stand-in nvidia-smi on PATH answers the query vflow makes
    tools = tmp_path / "bin"
    tools.mkdir()
    smi = tools / "nvidia-smi"
    smi.write_text(
        "#!/bin/sh\n"
        '[ "$1 $2" = "--query-gpu=index --format=csv,noheader" ] || exit 9\n'
        "printf '0\\n1\\n'\n"
    )
    smi.chmod(0o755)
    spec = f"""\
[nodes.src]
run = ["int", "0", "9"]
[nodes.det]
python = {node("env")}
device = "gpu"
workers = 2
from = ["src"]
[nodes.all]
run = ["print", "--field", "gpu"]
from = ["det"]
"""
    env = env_with(CUDA_VISIBLE_DEVICES=None, VFLOW_GPUS=None)
    env["PATH"] = f"{tools}:{env['PATH']}"
    result = graph(tmp_path, spec, env=env)
    assert result.returncode == 0, result.stderr
    assert {p["gpu"] for p in jsonl(result.stdout)} == {"0", "1"}
    smi.write_text("#!/bin/sh\nexit 1\n")  # a driver that does not answer: no GPU
    refused = graph(tmp_path, spec, env=env)
    assert refused.returncode == 1
    err = refused.stderr.decode()
    assert "node 'det': needs 2 GPUs" in err and "visible GPUs (none)" in err


# -- failures


INFINITE = """\
[graph]
on_failure = "{policy}"
grace = 3
[nodes.src]
run = ["int", "0", "100000000", "--interval", "0.002"]
[nodes.bad]
python = {bad}
from = ["src"]
env = {{ PIDFILE = "bad.pid" }}
[nodes.bad-out]
run = ["print", "--field", "seq"]
from = ["bad"]
stdout = "bad.jsonl"
[nodes.good]
run = ["print", "--field", "seq"]
from = ["src"]
stdout = "good.jsonl"
"""


def test_a_node_that_raises_on_its_fifth_packet_stops_the_graph(tmp_path):
    # the source never ends: only the stop ends the graph (graph() fails past its timeout)
    result = graph(tmp_path, INFINITE.format(policy="stop", bad=node("fail", "5")), timeout=60)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "vflow graph: node 'bad' (python " in err and "failed: exit status 1" in err
    assert "bad: RuntimeError: packet 5 is one too many" in err  # its stderr, prefixed
    assert "bad|" in err  # the last lines again, in the failure report
    assert len(lines(tmp_path / "bad.jsonl")) == 4
    assert consecutive(lines(tmp_path / "good.jsonl"))


def test_a_node_killed_mid_run_stops_all(tmp_path):
    proc = start(tmp_path, INFINITE.format(policy="stop", bad=node("slow", "0")))
    pid = pid_in(tmp_path / "bad.pid")
    wait_for(lambda: len(lines(tmp_path / "bad.jsonl")) >= 5, what="packets through 'bad'")
    os.kill(pid, signal.SIGKILL)
    code, _, err = stop(proc, 0)  # signal 0: just wait
    assert code == 128 + 9, err
    assert "node 'bad' (python " in err and "killed by SIGKILL; stopping the graph" in err
    assert consecutive(lines(tmp_path / "good.jsonl"))


def test_a_node_killed_mid_run_with_continue_keeps_the_rest(tmp_path):
    spec = INFINITE.format(policy="continue", bad=node("slow", "0")).replace(
        '"100000000", "--interval", "0.002"', '"399", "--interval", "0.005"'
    )
    proc = start(tmp_path, spec)
    pid = pid_in(tmp_path / "bad.pid")
    wait_for(lambda: len(lines(tmp_path / "bad.jsonl")) >= 5, what="packets through 'bad'")
    os.kill(pid, signal.SIGKILL)
    code, _, err = stop(proc, 0)
    assert code == 137, err
    assert 'the rest goes on (on_failure = "continue")' in err
    good = lines(tmp_path / "good.jsonl")
    assert consecutive(good) and len(good) == 400  # the other branch ran to the end
    assert len(lines(tmp_path / "bad.jsonl")) < 400


# -- stopping


TWO_CONSUMERS = """\
[nodes.src]
run = ["int", "0", "100000000", "--interval", "0.002"]
[nodes.total]
run = ["sum"]
from = ["src"]
[nodes.a]
run = ["print", "--field", "seq"]
from = ["total"]
stdout = "a.jsonl"
[nodes.b]
run = ["print", "--field", "seq"]
from = ["src"]
stdout = "b.jsonl"
queue = { size = 64 }
"""


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stop_signal_drains_everything_produced(tmp_path, signum, code):
    proc = start(tmp_path, TWO_CONSUMERS, "-v")
    wait_for(lambda: len(lines(tmp_path / "a.jsonl")) >= 20, what="packets")
    status, _, err = stop(proc, signum)
    assert status == code, err
    a, b = lines(tmp_path / "a.jsonl"), lines(tmp_path / "b.jsonl")
    assert consecutive(a) and consecutive(b)
    made = int(re.search(r"node src: in -, out (\d+)", err).group(1))  # counted by the tee
    assert len(a) == len(b) == made >= 20  # exactly what the producer made reached both
    for name in ("total", "a", "b"):
        assert f"{name}: exit status 0" in err
    assert f"src: exit status {code}" in err


def test_a_second_ctrl_c_stops_everything_at_once(tmp_path):
    spec = TWO_CONSUMERS.replace('run = ["sum"]', f"python = {node('slow', '0.5')}")
    spec = spec.replace("queue = { size = 64 }", "")
    proc = start(tmp_path, spec.replace("[nodes.total]", "[graph]\ngrace = 60\n[nodes.total]"))
    wait_for(lambda: len(lines(tmp_path / "b.jsonl")) >= 20, what="packets")
    proc.send_signal(signal.SIGINT)
    # the first one drains: slowly (the queue to 'total' full, 0.5 s a packet) ...
    drained = len(lines(tmp_path / "a.jsonl"))
    wait_for(lambda: len(lines(tmp_path / "a.jsonl")) >= drained + 2, what="the drain")
    assert proc.poll() is None
    status, _, err = stop(proc, signal.SIGINT, timeout=10)
    assert status == 130, err
    assert "interrupted again: stopping every node now" in err
    # ... and the second does not wait for it: 'total' had not passed on all 'b' got
    assert len(lines(tmp_path / "a.jsonl")) < len(lines(tmp_path / "b.jsonl"))


def test_partial_stop_with_two_producers(tmp_path):
    spec = """\
[nodes.short]
run = ["int", "0", "9", "--interval", "0.01"]
[nodes.long]
run = ["int", "0", "100000000", "--interval", "0.005"]
[nodes.short-out]
run = ["print", "--field", "seq"]
from = ["short"]
stdout = "short.jsonl"
[nodes.long-sum]
run = ["sum"]
from = ["long"]
[nodes.long-out]
run = ["print", "--field", "seq"]
from = ["long-sum"]
stdout = "long.jsonl"
"""
    proc = start(tmp_path, spec, "-v")
    wait_for(lambda: len(lines(tmp_path / "short.jsonl")) == 10, what="the short branch")
    before = len(lines(tmp_path / "long.jsonl"))
    wait_for(lambda: len(lines(tmp_path / "long.jsonl")) > before + 20, what="the long branch")
    assert proc.poll() is None  # the rest of the graph runs on
    status, _, err = stop(proc, signal.SIGINT)
    assert status == 130, err
    assert "short: exit status 0" in err and "short-out: exit status 0" in err
    assert consecutive(lines(tmp_path / "long.jsonl"))


# -- observability


def test_stats_every_interval(tmp_path):
    spec = FANOUT.format(last=100000000, slow=node("slow", "0.01"), leaky="old").replace(
        '"100000000"]', '"100000000", "--interval", "0.001"]'
    )
    proc = start(tmp_path, spec, "--stats", "0.3")
    wait_for(lambda: len(lines(tmp_path / "slow.jsonl")) >= 10, what="packets")  # it runs
    wait_for(lambda: stderr_of(proc).count("per node") >= 2, what="two reports")
    status, _, said = stop(proc, signal.SIGINT)
    assert status == 130, said
    check_report(said)


def test_stats_on_sigusr1(tmp_path):
    spec = FANOUT.format(last=100000000, slow=node("slow", "0.01"), leaky="old").replace(
        '"100000000"]', '"100000000", "--interval", "0.001"]'
    )
    proc = start(tmp_path, spec, "--stats", "3600")  # the interval never comes
    wait_for(lambda: len(lines(tmp_path / "slow.jsonl")) >= 10, what="packets")  # it runs
    assert "packets in/out per node" not in stderr_of(proc)
    proc.send_signal(signal.SIGUSR1)
    wait_for(lambda: "packets in/out per node" in stderr_of(proc), what="the report")
    status, _, said = stop(proc, signal.SIGINT)
    assert status == 130, said
    assert said.count("packets in/out per node") == 1  # without -v, no report at the end
    check_report(said)


def check_report(err: str) -> None:
    assert re.search(r"node fast: in \d+, out -", err)
    assert re.search(r"edge src -> slow: queue \d/4 \(leaky old\), in \d+, out \d+, dropped", err)
    assert re.search(r"edge slow -> slow-out: queue \d+/16", err)  # --stats relays every edge


def test_summary_on_failure_and_stderr_prefixes(tmp_path):
    spec = """\
[nodes.src]
run = ["int", "0", "9"]
[nodes.bad]
run = ["sum", "--field", "kind"]
from = ["src"]
[nodes.out]
run = ["null"]
from = ["bad"]
"""
    result = graph(tmp_path, spec)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert re.search(r"^bad: vflow sum: ", err, re.M), err
    assert "vflow graph: done in" in err  # the summary, without -v
    assert "Traceback" not in err


def test_dot_of_an_example(tmp_path):
    result = graph(tmp_path, EXAMPLES / "leaky.toml", "--dot")
    assert result.returncode == 0
    assert b'"src" -> "slow" [label="queue 4, leaky old", style="dashed"];' in result.stdout


def test_leaky_example(tmp_path):
    result = graph(tmp_path, EXAMPLES / "leaky.toml")
    assert result.returncode == 0, result.stderr
    assert len(lines(tmp_path / "fast.jsonl")) == 500
    assert 0 < len(lines(tmp_path / "slow.jsonl")) <= 500


def test_memory_stays_bounded_while_a_slow_branch_drops(tmp_path):
    # 1500 frames of 640x480 (1.4 GB) through a fan-out whose slow branch keeps few of them
    spec = f"""\
[nodes.src]
run = ["testcard", "--frames", "1500"]
[nodes.fast]
run = ["null"]
from = ["src"]
[nodes.slow]
python = {node("slow", "0.05")}
from = ["src"]
queue = {{ size = 4, leaky = "old" }}
stdout = "/dev/null"
"""
    result = graph(tmp_path, spec, "-v", timeout=60)
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert "edge src -> fast: queue 0/16 (leaky no), in 1501, out 1501, dropped 0" in err
    dropped = re.search(r"edge src -> slow: dropped (\d+) of 1501", err)
    assert dropped and int(dropped.group(1)) > 1000
    peak = float(re.search(r"runner peak memory ([\d.]+) MiB", err).group(1))
    assert peak < 200  # queues of 16 + 4 frames of 0.9 MB, not 1.4 GB


def test_any_program_that_speaks_packets_is_a_node(tmp_path):
    spec = """\
[nodes.src]
run = ["int", "0", "9"]
[nodes.copy]
command = ["cat"]
from = ["src"]
[nodes.out]
run = ["print", "--field", "value"]
from = ["copy"]
"""
    result = graph(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    assert [p["value"] for p in jsonl(result.stdout)] == list(range(10))


def test_graph_output_into_a_closed_pipe(tmp_path):
    (tmp_path / "spec.toml").write_text(
        '[nodes.src]\nrun = ["int", "0", "100000000"]\n'
        '[nodes.out]\nrun = ["print"]\nfrom = ["src"]\n'
    )
    result = sh(f"cd {tmp_path} && vflow graph spec.toml | head -n 3")
    assert result.statuses == [0, 0], result.stderr
    assert len(result.stdout.splitlines()) == 3


def test_consumers_sharing_the_graph_stdout_never_cut_into_each_others_lines(tmp_path):
    # 20 kB lines: one write(2) of such a line is not atomic on a pipe, and without the
    # runner relaying whole lines about a fifth of them came out torn
    spec = f"""\
[nodes.src]
python = {node("produce", "1500", "0", "20000")}
[nodes.a]
run = ["print", "--field", "seq", "--field", "pad"]
from = ["src"]
[nodes.b]
run = ["print", "--field", "seq", "--field", "pad"]
from = ["src"]
workers = 2
"""
    result = graph(tmp_path, spec, timeout=60)
    assert result.returncode == 0, result.stderr
    seqs = [p["seq"] for p in jsonl(result.stdout)]  # every line parses
    assert sorted(seqs) == sorted(list(range(1500)) * 2)


def test_consumers_sharing_a_closed_stdout_end_quietly(tmp_path):
    (tmp_path / "spec.toml").write_text(
        '[nodes.src]\nrun = ["int", "0", "100000000"]\n'
        '[nodes.a]\nrun = ["print"]\nfrom = ["src"]\n'
        '[nodes.b]\nrun = ["print"]\nfrom = ["src"]\n'
    )
    result = sh(f"cd {tmp_path} && vflow graph spec.toml | head -n 3")
    assert result.statuses == [0, 0], result.stderr
    assert len(result.stdout.splitlines()) == 3 and result.stderr == b""


def test_a_node_that_cannot_start_is_named_and_nothing_runs(tmp_path):
    spec = """\
[nodes.src]
run = ["int", "0", "100000000", "--interval", "0.01"]
[nodes.out]
run = ["print"]
from = ["src"]
stdout = "no/such/dir/out.jsonl"
"""
    result = graph(tmp_path, spec, timeout=20)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.count("\n") == 1 and "node 'out': cannot start: No such file or directory" in err


def test_grace_then_sigterm_then_sigkill(tmp_path):
    spec = f"""\
[graph]
grace = 1
[nodes.src]
run = ["int", "0", "100000000", "--interval", "0.01"]
[nodes.polite]
python = {node("hang")}
from = ["src"]
env = {{ PIDFILE = "polite.pid" }}
stdout = "/dev/null"
[nodes.stubborn]
python = {node("hang", "stubborn")}
from = ["src"]
env = {{ PIDFILE = "stubborn.pid" }}
stdout = "/dev/null"
"""
    proc = start(tmp_path, spec, "-v")
    for name in ("polite", "stubborn"):  # both have started and read packets
        pid_in(tmp_path / f"{name}.pid")
    status, _, err = stop(proc, signal.SIGINT)
    assert status == 130, err
    assert "still running 1 s after the stop: polite, stubborn; SIGTERM" in err
    assert "SIGKILL: stubborn" in err
    assert "polite: killed by SIGTERM" in err and "stubborn: killed by SIGKILL" in err


def test_a_consumer_with_workers(tmp_path):
    spec = """\
[nodes.src]
run = ["int", "0", "999"]
[nodes.out]
run = ["print", "--field", "seq"]
from = ["src"]
workers = 3
stdout = "out.jsonl"
"""
    result = graph(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    assert sorted(p["seq"] for p in lines(tmp_path / "out.jsonl")) == list(range(1000))


def _children(pid):
    found = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            found += [int(c) for c in f.read().split()]
    return found


def _running(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not os.path.exists("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.skipif(not shutil.which("setpriv"), reason="setpriv (util-linux) is not installed")
def test_a_runner_killed_with_sigkill_leaves_no_node_behind(tmp_path):
    import cv2

    # one-to-one edges are plain pipes between the nodes: nothing passes through the runner,
    # so its death alone would not end them
    spec = """\
[nodes.src]
run = ["testcard", "--size", "small", "--fps", "30"]
[nodes.rec]
run = ["write", "out.mkv"]
from = ["src"]
[nodes.ticks]
run = ["int", "0", "100000000", "--interval", "0.01"]
[nodes.log]
run = ["print"]
from = ["ticks"]
stdout = "log.jsonl"
"""
    proc = start(tmp_path, spec)
    out = tmp_path / "out.mkv"
    wait_for(lambda: len(lines(tmp_path / "log.jsonl")) >= 10, what="packets through 'log'")
    wait_for(lambda: out.exists() and out.stat().st_size > 0, what="frames in out.mkv")
    nodes = _children(proc.pid)
    assert len(nodes) == 4, nodes
    proc.kill()  # SIGKILL: the runner cannot stop anything itself
    proc.wait(timeout=20)
    try:
        wait_for(lambda: not any(_running(p) for p in nodes), timeout=20, what="the nodes to end")
    finally:
        for pid in nodes:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.stdout.close()
    video = cv2.VideoCapture(str(out))  # the recorder finalised its file
    frames = 0
    while video.read()[0]:
        frames += 1
    assert frames >= 10


def test_a_failure_stops_the_producers_as_ctrl_c_would(tmp_path):
    spec = INFINITE.format(policy="stop", bad=node("fail", "5"))
    result = graph(tmp_path, spec, "-v", timeout=20)
    assert result.returncode == 1
    err = result.stderr.decode()
    assert "src: exit status 130" in err, err  # stopped as by Ctrl-C: the rest drained
    assert "killed by SIGTERM" not in err
    assert consecutive(lines(tmp_path / "good.jsonl"))


def test_an_optional_node_that_fails_stops_nothing(tmp_path):
    spec = INFINITE.format(policy="stop", bad=node("fail", "5")).replace(
        '"100000000", "--interval", "0.002"', '"299"'
    )
    spec = spec.replace("[nodes.bad]\n", "[nodes.bad]\noptional = true\n")
    result = graph(tmp_path, spec, timeout=30)
    assert result.returncode == 0, result.stderr
    err = result.stderr.decode()
    assert "node 'bad' (python " in err and "it is optional: the rest goes on" in err
    good = lines(tmp_path / "good.jsonl")
    assert consecutive(good) and len(good) == 300


def test_zip_does_not_count_announcements_as_unmatched(tmp_path):
    spec = """\
[nodes.a]
run = ["testcard", "--size", "16x8", "--frames", "20"]
[nodes.b]
run = ["testcard", "--size", "16x8", "--frames", "20", "--name", "other"]
[nodes.both]
run = ["print", "-f", "seq"]
from = ["a", "b"]
join = "zip"
"""
    result = graph(tmp_path, spec)
    assert result.returncode == 0, result.stderr
    assert [p.get("seq") for p in jsonl(result.stdout)][-20:] == list(range(20))
    assert b"unmatched" not in result.stderr


def test_packets_nobody_reads_are_not_sent_to_a_terminal(tmp_path):
    spec = write_spec(tmp_path, '[nodes.a]\nrun = ["int", "0", "3"]\n')
    master, slave = pty.openpty()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "vflow_cli", "graph", str(spec)],
            stdout=slave,
            stderr=subprocess.PIPE,
            env=ENV,
            timeout=30,
        )
    finally:
        os.close(slave)
        os.close(master)
    assert proc.returncode == 1
    assert b"node 'a' writes packets and nobody in the graph reads them" in proc.stderr


def test_serve_shows_the_graph_to_http_clients_with_a_token(tmp_path):
    import urllib.error
    import urllib.request

    spec = write_spec(
        tmp_path,
        '[nodes.src]\nrun = ["int", "0", "99"]\n[nodes.out]\nrun = ["null"]\nfrom = ["src"]\n',
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "vflow_cli", "graph", "--serve", "0", "--linger", "30",
         "--token", "s3cret", str(spec)],
        stderr=subprocess.PIPE,
        env=ENV,
    )  # fmt: skip
    try:
        assert proc.stderr is not None
        url = proc.stderr.readline().decode().split()[-1]

        def get(path: str, token: str | None) -> tuple[int, bytes]:
            request = urllib.request.Request(url + path.lstrip("/"))
            if token:
                request.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    return reply.status, reply.read()
            except urllib.error.HTTPError as error:
                with error:
                    return error.code, b""

        assert get("/status.json", None)[0] == 401
        assert get("/status.json", "wrong")[0] == 401
        wait_for(lambda: json.loads(get("/status.json", "s3cret")[1])["graph"]["state"] == "done")
        status = json.loads(get("/status.json", "s3cret")[1])
        assert status["graph"]["exit"] == 0
        assert {n["name"]: n["packets_out"] for n in status["nodes"]}["src"] == 100
        code, metrics = get("/metrics", "s3cret")
        assert code == 200 and b'vflow_node_packets_out_total{node="src"' in metrics
        assert get("/nowhere", "s3cret")[0] == 404
    finally:
        proc.send_signal(signal.SIGINT)  # ends the linger; the graph's status stays its own
        assert proc.wait(timeout=20) == 0
        if proc.stderr is not None:
            proc.stderr.close()
