"""graph.procs: the child processes of a graph, their stderr, and how they ended."""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import shutil
import subprocess
import sys
import threading
from typing import Any

from vflow_cli.graph.log import Log
from vflow_cli.graph.spec import Node

TAIL = 8  # stderr lines kept per process for a failure report


@functools.cache
def orphan_guard() -> tuple[str, ...]:
    """The argv prefix that ends a node when the runner dies, even by SIGKILL.

    The kernel does this for a child that set PR_SET_PDEATHSIG. The runner has threads, so
    it cannot set it between fork and exec itself (preexec_fn may deadlock); setpriv
    (util-linux) sets it, then execs the node in the same process. The node gets SIGTERM:
    a producer stops, a writer finalises its file. Where setpriv is missing, nothing.
    """
    path = shutil.which("setpriv") if sys.platform.startswith("linux") else None
    return (path, "--pdeathsig", "TERM", "--") if path else ()


class Proc:
    """One running copy of a node."""

    def __init__(self, node: Node, index: int, log: Log) -> None:
        self.node = node
        self.index = index
        self.name = node.name if node.workers == 1 else f"{node.name}.{index}"
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL)
        self.code: int | None = None
        self.signalled = False  # we asked it to stop
        self.stderr_thread: threading.Thread | None = None

    def start(self, stdin: Any, stdout: Any, env: dict[str, str], cwd: str | None) -> None:
        self.popen = subprocess.Popen(
            [*orphan_guard(), *self.node.argv],
            stdin=stdin,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            process_group=0,  # our own Ctrl-C must not reach it; we decide who stops when
            close_fds=True,
        )
        self.stderr_thread = threading.Thread(
            target=self._relay_stderr, name=f"stderr-{self.name}", daemon=True
        )
        self.stderr_thread.start()

    def _relay_stderr(self) -> None:
        assert self.popen is not None and self.popen.stderr is not None
        log = self.log
        with self.popen.stderr as err:
            for raw in err:
                text = raw.decode("utf-8", "replace").rstrip("\r\n")
                self.tail.append(text)
                log.line(f"{self.name}: {text}")

    def signal(self, signum: int) -> None:
        if self.popen is None or self.code is not None:
            return
        self.signalled = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signum)

    def poll(self) -> int | None:
        if self.code is None and self.popen is not None:
            code = self.popen.poll()
            if code is not None:
                self.code = code
        return self.code


def node_env(node: Node, worker: int, device: str | None) -> dict[str, str]:
    """A worker's environment: the graph's, the node's `env`, its GPU, its name."""
    env = dict(os.environ)
    env.update(node.env)
    if device is not None:
        env["CUDA_VISIBLE_DEVICES"] = device
    env["VFLOW_GRAPH_NODE"] = node.name
    env["VFLOW_GRAPH_WORKER"] = str(worker)
    return env


def node_cwd(node: Node, spec_path: str) -> str | None:
    """`cwd` is relative to the spec's own folder."""
    if node.cwd is None:
        return None
    return os.path.join(os.path.dirname(os.path.abspath(spec_path)), node.cwd)
