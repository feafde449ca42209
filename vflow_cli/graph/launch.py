"""graph.launch: the plan made real: its queues and fan-outs, its pipes, its processes and
the threads that relay what the plan says to relay. A graph.run.Graph holds one Launch and
does the rest of the lifecycle (watching, stopping, reporting) with what it made."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vflow_cli.busy import REPORT
from vflow_cli.framing import widen_pipe
from vflow_cli.framing.pipes import narrow_pipe
from vflow_cli.graph.joins import Zip
from vflow_cli.graph.plan import PlanNode, dead_ends
from vflow_cli.graph.pool import Pool
from vflow_cli.graph.procs import Proc, node_cwd, node_env
from vflow_cli.graph.queues import Edge, Fanout, FileOutlet, NodeInbox, StdoutOutlet
from vflow_cli.graph.relays import feed_input, read_output, relay_lines
from vflow_cli.status import CLEAN

if TYPE_CHECKING:
    from vflow_cli.graph.log import Log
    from vflow_cli.graph.plan import Plan


class StartError(Exception):
    """A node could not be started (one line, naming it)."""


class Launch:
    """What a graph builds from its plan (queues, fan-outs, pools, joins, processes, relay
    threads), and how. `report_path(node, worker)` is where each process saves how busy it
    is (graph.stats reads it)."""

    def __init__(self, plan: Plan, log: Log, report_path: Callable[[str, int], str]) -> None:
        self.plan = plan
        self.spec = plan.spec
        self.log = log
        self.report_path = report_path
        self.procs: dict[str, list[Proc]] = {}
        self.fanouts: dict[str, Fanout] = {}
        self.inboxes: dict[str, NodeInbox] = {}
        self.edges: list[Edge] = []
        self.pools: dict[str, Pool] = {}
        self.zips: dict[str, Zip] = {}
        self.threads: list[threading.Thread] = []
        self.stdout_fd = 1
        self.stdout_lock = threading.Lock()  # whole lines from several consumers

    def all(self) -> list[Proc]:
        """Every process, node by node."""
        return [p for procs in self.procs.values() for p in procs]

    def wire(self) -> None:
        """Fan-outs, inboxes, queues and outlets, as the plan says."""
        for name, planned in self.plan.nodes.items():
            if planned.relayed_out:
                self.fanouts[name] = Fanout(planned.node)
            if planned.relayed_in:
                self.inboxes[name] = NodeInbox(planned.node)
        for planned_edge in self.plan.edges:
            if planned_edge.transport != "queue":
                continue
            edge = Edge(
                planned_edge.src,
                self.inboxes[planned_edge.dst],
                planned_edge.size,
                planned_edge.leaky,
            )
            self.edges.append(edge)
            self.fanouts[planned_edge.src].outlets.append(edge)
        for name, fanout in self.fanouts.items():
            outlet = self.plan.nodes[name].outlet
            if outlet == "stdout":
                fanout.outlets.append(StdoutOutlet(self.stdout_fd))
            elif outlet is not None:
                fanout.outlets.append(FileOutlet(outlet))

    def start(self) -> None:
        self.stdout_fd = sys.stdout.fileno() if _has_fd(sys.stdout) else 1
        if os.isatty(self.stdout_fd):
            for planned in dead_ends(self.plan):
                raise StartError(
                    f"node '{planned.name}' writes packets and nobody in the graph reads "
                    "them: they would go to this terminal (give it a reader, or "
                    'stdout = "FILE", or pipe the graph into a consumer)'
                )
        self.wire()
        # pipes of direct edges: src stdout -> dst stdin
        direct_in: dict[str, int] = {}
        direct_out: dict[str, int] = {}
        for edge in self.plan.edges:
            if edge.transport == "pipe":
                r, w = os.pipe()
                widen_pipe(w)
                direct_out[edge.src], direct_in[edge.dst] = w, r
        try:
            for planned in self.plan.nodes.values():
                try:
                    self._start_node(
                        planned, direct_in.get(planned.name), direct_out.get(planned.name)
                    )
                except OSError as exc:
                    where = f" ({exc.filename})" if exc.filename else ""
                    raise StartError(
                        f"node '{planned.name}': cannot start: {exc.strerror or exc}{where}"
                    ) from None
        finally:
            for fd in [*direct_in.values(), *direct_out.values()]:
                os.close(fd)
        for name, inbox in self.inboxes.items():
            self._thread(
                f"feed-{name}",
                feed_input,
                inbox,
                self.log,
                pool=self.pools.get(name),
                zipper=self.zips.get(name),
                fd=inbox.writer_fd,
            )

    def _start_node(self, planned: PlanNode, in_fd: int | None, out_fd: int | None) -> None:
        node = planned.node
        procs = self.procs[node.name] = [Proc(node, i, self.log) for i in range(node.workers)]
        fanout = self.fanouts.get(node.name)
        pool = None
        if planned.pool:
            pool = self.pools[node.name] = Pool(node, fanout, self.log)
        if planned.join == "zip":
            self.zips[node.name] = Zip(self.inboxes[node.name], node.unmatched)
        for index, proc in enumerate(procs):
            parent_ends: list[int] = []
            child_ends: list[int] = []
            stdin: Any = subprocess.DEVNULL
            if node.kind != "producer":
                if in_fd is not None:
                    stdin = in_fd
                else:
                    r, w = os.pipe()
                    if node.leaky == "no":
                        widen_pipe(w)
                    else:  # a leaky queue wants little hidden behind it, in the pipe
                        narrow_pipe(w)
                    stdin = r
                    child_ends.append(r)
                    parent_ends.append(w)
            stdout: Any = None
            out_file = None
            if node.kind != "consumer" and fanout is not None:
                r, w = os.pipe()
                widen_pipe(w)
                stdout = w
                child_ends.append(w)
                parent_ends.append(r)
            elif out_fd is not None:
                stdout = out_fd
            elif node.stdout is not None:
                out_file = open(node.stdout, "ab")  # noqa: SIM115 (closed just below)
                stdout = out_file
            elif self.plan.relay_lines:  # a consumer among several writing to our stdout
                r, w = os.pipe()
                stdout = w
                child_ends.append(w)
                self._thread(f"lines-{proc.name}", relay_lines, r, self.stdout_fd, self.stdout_lock)
            try:
                env = node_env(node, index, planned.devices[index])
                env[REPORT] = self.report_path(node.name, index)
                proc.start(stdin, stdout, env, node_cwd(node, self.spec.path))
            finally:
                for fd in child_ends:
                    os.close(fd)
                if out_file is not None:
                    out_file.close()
            if node.kind != "producer" and in_fd is None:
                w = parent_ends.pop(0)
                if pool is not None:
                    assert proc.popen is not None
                    pool.add_worker(w, proc.popen.pid)
                else:
                    self.inboxes[node.name].writer_fd = w
            if parent_ends:
                r = parent_ends.pop(0)
                stream = open(r, "rb", buffering=0)  # noqa: SIM115 (closed by its reader)
                if pool is not None:
                    pool.open_outputs += 1
                    self._thread(f"collect-{proc.name}", pool.collect, index, stream)
                else:
                    assert fanout is not None
                    self._thread(
                        f"read-{node.name}", read_output, fanout, stream, self.log, self._failed
                    )

    def _thread(self, name: str, target: Callable[..., None], *args: Any, **kw: Any) -> None:
        thread = threading.Thread(target=target, args=args, kwargs=kw, name=name, daemon=True)
        self.threads.append(thread)
        thread.start()

    def _failed(self, name: str) -> bool:
        """Did a process of this node end badly? (then its cut stream is no news)"""
        for proc in self.procs.get(name, []):
            if proc.popen is not None:
                try:
                    proc.popen.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    continue
                if proc.popen.returncode not in CLEAN:
                    return True
        return False


def _has_fd(stream: Any) -> bool:
    try:
        stream.fileno()
        return True
    except (AttributeError, OSError, ValueError):
        return False
