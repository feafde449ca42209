"""examples/vflow-graph@.service: systemd accepts it, and `vflow graph` stopped the way it
stops it (SIGTERM to the graph alone) leaves finalised files and a status it counts as clean."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess

import pytest

from tests.helpers import BIN, ENV, ROOT
from tests.net.util import vflow_argv, wait_for
from tests.stages.test_write import count_frames

UNIT = ROOT / "examples" / "vflow-graph@.service"


def test_systemd_analyze_verify_passes(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (Debian's systemd package)")
    # the unit names the vflow that `make install` links; here, the one under test
    unit = UNIT.read_text().replace("/usr/local/bin/vflow", f"{BIN}/vflow")
    assert unit != UNIT.read_text()
    (tmp_path / UNIT.name).write_text(unit)
    for name in (UNIT.name, "vflow-graph@home.service"):
        result = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", name],
            cwd=tmp_path,
            capture_output=True,
            text=True,
        )
        # warnings ("ignoring ...") do not change the status: any output is a failure
        assert result.returncode == 0 and not result.stdout + result.stderr, result.stderr


def test_a_sigterm_to_the_graph_finalises_its_files(tmp_path):
    settings = dict(re.findall(r"^(\w+)=(.*)$", UNIT.read_text(), re.M))
    assert settings["KillSignal"] == "SIGTERM" and settings["KillMode"] == "mixed"
    clean = {0, *map(int, settings["SuccessExitStatus"].split())}
    out = tmp_path / "rec.mkv"
    spec = tmp_path / "rec.toml"
    spec.write_text(
        '[nodes.cam]\nrun = ["testcard", "--size", "160x120", "--fps", "25"]\n'
        f'[nodes.rec]\nrun = ["write", "{out}"]\nfrom = ["cam"]\n'
    )
    err = tmp_path / "graph.err"
    with open(err, "wb") as stderr:
        graph = subprocess.Popen(vflow_argv("graph", str(spec)), stderr=stderr, env=ENV)
    try:
        assert wait_for(lambda: out.exists() and out.stat().st_size > 20_000, timeout=60)
        graph.send_signal(signal.SIGTERM)  # KillMode=mixed: the main process alone
        status = graph.wait(int(settings["TimeoutStopSec"]))
    finally:
        if graph.poll() is None:
            graph.kill()
            graph.wait()
    assert status in clean, err.read_text()
    frames, _ = count_frames(out)
    assert frames > 0, err.read_text()
