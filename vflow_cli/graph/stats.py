"""graph.stats: what a running graph can tell about itself: packets in and out per node,
queue fill and drops per edge, each process's state. `--stats`, SIGUSR1 and the end-of-run
summary print it; snapshot() gives it to a live page as plain data.

A plain pipe's packets are not seen by the runner (it never touches their bytes): their
counts are None, unless --stats made every edge a relayed one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from typing import TYPE_CHECKING, Any, Protocol

from vflow_cli import busy
from vflow_cli.busy import bottleneck
from vflow_cli.status import describe

if TYPE_CHECKING:
    from vflow_cli.graph.joins import Zip
    from vflow_cli.graph.plan import Plan
    from vflow_cli.graph.pool import Pool
    from vflow_cli.graph.procs import Proc
    from vflow_cli.graph.queues import Edge, Fanout


class Launched(Protocol):
    """What the statistics read of what a graph built (graph.launch.Launch is one)."""

    procs: dict[str, list[Proc]]
    fanouts: dict[str, Fanout]
    edges: list[Edge]
    pools: dict[str, Pool]
    zips: dict[str, Zip]


class Running(Protocol):
    """What the statistics read of a running graph (graph.run.Graph is one): the plan, what
    its launch made, and how it is ending."""

    plan: Plan
    launch: Launched
    failures: list[Proc]
    forced: bool
    stop_reason: str | None
    started: float
    started_wall: float
    exit_code: int | None

    def ok(self, proc: Proc) -> bool: ...


class Stats:
    def __init__(self, graph: Running) -> None:
        self.graph = graph
        self.last: tuple[float, dict[str, int]] = (graph.started, {})
        # each process saves how busy it is here (vflow_cli.busy); 0700, removed at the end
        self.folder = tempfile.mkdtemp(prefix="vflow-graph-")
        self._busy: dict[str, dict[str, Any]] = {}  # the last numbers read

    def report_path(self, node: str, worker: int) -> str:
        return os.path.join(self.folder, f"{node}.{worker}.json")

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def busy(self) -> dict[str, dict[str, Any]]:
        """Per node, the shares of its run its stages were busy and it waited:
        {"stages": [[stage, share], ...], "input": share, "output": share}, averaged over
        its workers; a node that saved nothing (not a vflow stage, not started) is left out."""
        out = self._busy = dict(self._busy)
        for name, procs in self.graph.launch.procs.items():
            saved = [busy.read(self.report_path(name, p.index)) for p in procs]
            numbers = [n for n in saved if n is not None and n.get("wall")]
            if not numbers:
                continue
            stages: dict[str, float] = {}
            for n in numbers:
                for stage, seconds in n["stages"]:
                    stages[stage] = stages.get(stage, 0.0) + seconds / n["wall"] / len(numbers)
            out[name] = {
                "stages": [[stage, round(share, 4)] for stage, share in stages.items()],
                "input": round(sum(n["input"] / n["wall"] for n in numbers) / len(numbers), 4),
                "output": round(sum(n["output"] / n["wall"] for n in numbers) / len(numbers), 4),
            }
        return out

    def busiest(self) -> dict[str, float]:
        """Each stage's busy share by where it runs: NODE, or NODE/STAGE in a group."""
        busiest = {}
        for name, node in self.busy().items():
            members = node["stages"]
            for stage, share in members:  # a group's stages each by name
                busiest[name if len(members) == 1 else f"{name}/{stage}"] = share
        return busiest

    def bottleneck_node(self) -> str | None:
        """The node the others waited on: its busiest stage was busy half the run or more."""
        busiest = self.busiest()
        if not busiest:
            return None
        where, most = max(busiest.items(), key=lambda item: item[1])
        return where.split("/", 1)[0] if most >= 0.5 else None

    def bottleneck(self) -> list[str]:
        """The end-of-run lines: each stage's busy and waiting shares, and the bottleneck."""
        shares = self.busy()
        lines, busiest = [], self.busiest()
        for name, node in shares.items():
            members = node["stages"]
            each = ", ".join(f"{stage} {100 * share:.0f}%" for stage, share in members)
            lines.append(
                f"  {name}: busy {each}; waiting for input {100 * node['input']:.0f}%, "
                f"for output {100 * node['output']:.0f}%"
            )
        return ["busy and waiting, as shares of each node's run:", *lines, bottleneck(busiest)]

    def counts(self) -> dict[str, int]:
        """'out:NODE' and 'in:NODE' packet counts, where the runner sees them."""
        g = self.graph
        counts: dict[str, int] = {}
        for name, fanout in g.launch.fanouts.items():
            counts[f"out:{name}"] = fanout.packets
        for edge in g.launch.edges:
            key = f"in:{edge.dst}"
            counts[key] = counts.get(key, 0) + edge.delivered
        return counts

    def state(self, name: str) -> tuple[str, str | None]:
        """(running | done | failed | stopped, how its processes ended) of one node."""
        g = self.graph
        procs = g.launch.procs.get(name, [])
        codes = [p.code for p in procs]
        if not procs or any(c is None for c in codes):
            return "running", None
        status = ", ".join(describe(c) for c in codes if c is not None)
        if any(p in g.failures for p in procs) or any(not g.ok(p) and not g.forced for p in procs):
            return "failed", status
        if any(p.signalled for p in procs):
            return "stopped", status
        return "done", status

    def report(self) -> str:
        """The lines --stats and SIGUSR1 print."""
        g = self.graph
        now = time.monotonic()
        then, before = self.last
        counts = self.counts()
        span = max(now - then, 1e-9)
        self.last = (now, counts)
        lines = [
            f"{now - g.started:.1f} s; packets in/out per node (rate over the last "
            f"{span:.1f} s); '-': a direct pipe the runner does not see (--stats relays all)"
        ]
        for name, procs in g.launch.procs.items():
            states = ",".join("running" if p.code is None else describe(p.code) for p in procs)
            pin = counts.get(f"in:{name}")
            pout = counts.get(f"out:{name}")
            rate = ""
            if pout is not None:
                rate = f"{(pout - before.get(f'out:{name}', 0)) / span:,.1f}/s out"
            elif pin is not None:
                rate = f"{(pin - before.get(f'in:{name}', 0)) / span:,.1f}/s in"
            pool = g.launch.pools.get(name)
            extra = ""
            if pool is not None:
                shares = "/".join(map(str, pool.fed))
                extra = (
                    f", per worker in {shares} ({pool.extra} beyond the window), "
                    f"reorder buffer {pool.held}"
                )
            zipper = g.launch.zips.get(name)
            if zipper is not None:
                extra += f", joined {zipper.joined}, unmatched {zipper.unmatched}"
            lines.append(
                f"  node {name}: in {'-' if pin is None else pin}, "
                f"out {'-' if pout is None else pout}, {rate or 'no rate'}{extra} [{states}]"
            )
        for edge in g.launch.edges:
            lines.append(
                f"  edge {edge.src} -> {edge.dst}: queue {len(edge.queue)}/{edge.size} "
                f"(leaky {edge.leaky}), in {edge.received}, out {edge.delivered}, "
                f"dropped {edge.dropped}"
            )
        for planned in g.plan.edges:
            if planned.transport == "pipe":
                lines.append(f"  edge {planned.src} -> {planned.dst}: direct pipe")
        return "\n".join(lines)

    def snapshot(self) -> dict[str, Any]:
        """The whole graph as plain data (for a live page): see vflow_cli.web.graph_page."""
        g = self.graph
        counts = self.counts()
        relayed = {(e.src, e.dst): e for e in g.launch.edges}
        nodes = []
        for name, planned in g.plan.nodes.items():
            state, status = self.state(name)
            tail: list[str] = []
            if state == "failed":
                for proc in g.launch.procs.get(name, []):
                    tail.extend(proc.tail)
            nodes.append(
                {
                    "name": name,
                    "label": planned.node.label,
                    "kind": planned.node.kind,
                    "workers": planned.node.workers,
                    "state": state,
                    "status": status,
                    "packets_in": counts.get(f"in:{name}"),
                    "packets_out": counts.get(f"out:{name}"),
                    "stderr": tail,
                }
            )
        edges = []
        for planned_edge in g.plan.edges:
            edge = relayed.get((planned_edge.src, planned_edge.dst))
            edges.append(
                {
                    "from": planned_edge.src,
                    "to": planned_edge.dst,
                    "transport": planned_edge.transport,
                    "size": planned_edge.size if edge is not None else None,
                    "leaky": planned_edge.leaky if edge is not None else None,
                    "fill": len(edge.queue) if edge is not None else None,
                    "received": edge.received if edge is not None else None,
                    "delivered": edge.delivered if edge is not None else None,
                    "dropped": edge.dropped if edge is not None else None,
                }
            )
        shares = self.busy()
        for node in nodes:
            node["busy"] = shares.get(str(node["name"]))
        done = g.exit_code is not None
        return {
            "graph": {
                "spec": g.plan.spec.path,
                "started": g.started_wall,
                "state": "done" if done else "stopping" if g.stop_reason else "running",
                "exit": g.exit_code,
                "bottleneck": self.bottleneck()[-1] if shares else None,
                "bottleneck_node": self.bottleneck_node(),
            },
            "nodes": nodes,
            "edges": edges,
        }
