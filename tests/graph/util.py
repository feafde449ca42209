"""Helpers for graph tests: write a spec, run `vflow graph` as a real process, read results."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.helpers import ENV, wait_for

HERE = Path(__file__).resolve().parent
NODE = str(HERE / "node.py")  # the plain-msgpack test node
EXAMPLES = HERE.parent.parent / "examples"


def node(*args: str) -> str:
    """A `python = [...]` value running tests/graph/node.py."""
    return json.dumps([NODE, *args])


def write_spec(tmp_path: Path, text: str, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def graph(
    tmp_path: Path, spec: str | Path, *args: str, timeout: float = 30, env: Any = None
) -> subprocess.CompletedProcess:
    """Run `vflow graph ARGS SPEC` to the end in tmp_path (spec: text or a path)."""
    path = spec if isinstance(spec, Path) else write_spec(tmp_path, spec)
    return subprocess.run(
        [sys.executable, "-m", "vflow_cli", "graph", *args, str(path)],
        capture_output=True,
        timeout=timeout,
        cwd=tmp_path,
        env=env or ENV,
    )


def start(tmp_path: Path, spec: str, *args: str, env: Any = None) -> subprocess.Popen:
    """Start `vflow graph ARGS SPEC` in tmp_path; its stderr goes to tmp_path/stderr, which a
    test can read while the graph runs (stderr_of())."""
    path = write_spec(tmp_path, spec)
    with open(tmp_path / "stderr", "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vflow_cli", "graph", *args, str(path)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            cwd=tmp_path,
            env=env or ENV,
        )
    proc.stderr_path = tmp_path / "stderr"  # type: ignore[attr-defined]
    return proc


def stderr_of(proc: subprocess.Popen) -> str:
    """What a graph started by start() has said on stderr so far."""
    return proc.stderr_path.read_text()  # type: ignore[attr-defined]


def lines(path: Path) -> list[dict[str, Any]]:
    """The JSON lines `vflow print` wrote into a file."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def stop(proc: subprocess.Popen, signum: int = signal.SIGINT, timeout: float = 20):
    """Send a signal, then wait: (exit status, stdout, stderr)."""
    proc.send_signal(signum)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        said = stderr_of(proc)
        raise AssertionError(f"the graph did not stop within {timeout} s: {said}") from None
    return proc.returncode, out, stderr_of(proc)


def consecutive(records: list[dict[str, Any]], field: str = "seq") -> bool:
    values = [r[field] for r in records]
    return values == list(range(len(values)))


def pid_in(path: Path) -> int:
    wait_for(lambda: path.exists() and path.read_text().strip(), what=f"{path.name}")
    return int(path.read_text())


def env_with(**values: str) -> dict[str, str]:
    env = dict(ENV)
    for key, value in values.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
