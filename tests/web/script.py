"""A graph's status as the runner reports it, scripted over time: counters that grow at
set rates while their node runs, and nodes that fail when told. The graph itself is a real
spec, drawn by the real graph.dot."""

from __future__ import annotations

import threading
import time
from typing import Any

from tests.helpers import ROOT
from vflow_cli.graph.dot import to_dot
from vflow_cli.graph.plan import make_plan
from vflow_cli.graph.spec import load

SPEC = ROOT / "examples" / "leaky.toml"


class ScriptedGraph:
    def __init__(self, rate: float = 50.0) -> None:
        self.spec = load(SPEC)
        self.plan = make_plan(self.spec)
        self.dot = to_dot(self.plan)
        self.rate = rate
        self.started = time.time()
        self._t0 = time.monotonic()
        self._lock = threading.Lock()
        self._ended: dict[str, tuple[float, str, str, list[str]]] = {}
        self.calls = 0

    def fail(self, name: str, status: str = "killed by SIGKILL", stderr: list[str] | None = None):
        with self._lock:
            self._ended[name] = (self._elapsed(), "failed", status, stderr or [])

    def _elapsed(self) -> float:
        return time.monotonic() - self._t0

    def status(self) -> dict[str, Any]:
        self.calls += 1
        now = self._elapsed()
        nodes, edges = [], []
        counts: dict[str, int] = {}
        with self._lock:
            ended = dict(self._ended)
        for node in self.spec.nodes.values():
            stop, state, status, stderr = ended.get(node.name, (now, "running", None, []))
            count = counts[node.name] = int(min(now, stop) * self.rate)
            into = self.plan.edges_into(node.name)
            direct = bool(into) and all(e.transport == "pipe" for e in into)  # not seen
            nodes.append(
                {
                    "name": node.name,
                    "label": node.label,
                    "kind": node.kind,
                    "workers": node.workers,
                    "state": state,
                    "status": status,
                    "packets_in": None if node.kind == "producer" or direct else count,
                    "packets_out": None if node.kind == "consumer" else count,
                    "stderr": stderr,
                }
            )
        for edge in self.plan.edges:
            queue = edge.transport == "queue"
            count = counts[edge.dst]
            edges.append(
                {
                    "from": edge.src,
                    "to": edge.dst,
                    "transport": edge.transport,
                    "size": edge.size if queue else None,
                    "leaky": edge.leaky if queue else None,
                    "fill": 1 if queue else None,
                    "received": count if queue else None,
                    "delivered": count - 1 if queue else None,
                    "dropped": count // 10 if queue and edge.leaky != "no" else None,
                }
            )
        return {
            "graph": {
                "spec": str(SPEC.name),
                "started": self.started,
                "state": "running",
                "exit": None,
            },
            "nodes": nodes,
            "edges": edges,
        }
