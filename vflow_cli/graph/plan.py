"""graph.plan: what a checked spec becomes, decided once, before any process exists.

Every reader of a graph reads this one plan: the runner (which pipes to make, which edges
to relay through queues), `--dot` (what to draw), `--check` (what to warn about), the
statistics and the live page. None of them decides anything about the topology again.

    spec (graph.spec) ──> Plan ──> run.Graph   processes, pipes, relay threads
                               ├─> dot          the picture
                               └─> stats        what can be counted, and where

An edge is a plain OS `pipe` when it joins one writer to one reader and nothing has to
happen between them; otherwise it is a `queue` that the runner relays: a fan-out (each
branch its own bounded queue), a fan-in (merge or zip), workers (a pool that spreads
packets and puts them back in order), a leaky queue, or `--stats` (every edge counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vflow_cli.graph.spec import Node, Spec


@dataclass(frozen=True)
class PlanEdge:
    src: str
    dst: str
    transport: str  # "pipe" | "queue"
    size: int  # queue: packets it holds (a pipe: its 1 MiB buffer)
    leaky: str  # queue: "no" (block), "old" or "new" (drop)


@dataclass
class PlanNode:
    node: Node
    relayed_out: bool  # the runner reads its output (a fan-out, a pool, --stats)
    relayed_in: bool  # the runner writes its input (queues in, a pool)
    join: str | None  # "merge" | "zip" when it has two inputs or more
    outlet: str | None  # where output nobody in the graph reads goes: "stdout" | FILE
    devices: list[str | None]  # per worker: a GPU id, "" for the CPU, None: untouched

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def pool(self) -> bool:
        return self.node.workers > 1


@dataclass
class Plan:
    spec: Spec
    nodes: dict[str, PlanNode]  # in the order of the spec
    edges: list[PlanEdge]
    relay_lines: bool  # several consumers share the graph's stdout: relay whole lines
    warnings: list[str] = field(default_factory=list)

    def edges_into(self, name: str) -> list[PlanEdge]:
        return [e for e in self.edges if e.dst == name]


def _is_pipe(src: Node, dst: Node, relay_all: bool) -> bool:
    return (
        not relay_all
        and len(src.readers) == 1
        and len(dst.inputs) == 1
        and src.workers == 1
        and dst.workers == 1
        and dst.leaky == "no"
    )


def make_plan(
    spec: Spec, devices: dict[str, list[str | None]] | None = None, *, relay_all: bool = False
) -> Plan:
    """The plan of a checked spec; relay_all relays (and so counts) every edge."""
    devices = devices or {}
    nodes = spec.nodes
    edges: list[PlanEdge] = []
    for node in nodes.values():
        for src in node.inputs:
            pipe = _is_pipe(nodes[src], node, relay_all)
            edges.append(
                PlanEdge(src, node.name, "pipe" if pipe else "queue", node.queue_size, node.leaky)
            )
    planned: dict[str, PlanNode] = {}
    for node in nodes.values():
        queued_out = any(e.transport == "queue" for e in edges if e.src == node.name)
        relayed_out = node.kind != "consumer" and (
            node.workers > 1 or queued_out or (not node.readers and relay_all)
        )
        relayed_in = any(e.transport == "queue" for e in edges if e.dst == node.name)
        outlet = None
        if node.kind != "consumer" and not node.readers:
            outlet = node.stdout or "stdout"
        planned[node.name] = PlanNode(
            node=node,
            relayed_out=relayed_out,
            relayed_in=relayed_in,
            join=node.join if len(node.inputs) > 1 else None,
            outlet=outlet,
            devices=devices.get(node.name, [None] * node.workers),
        )
    # processes writing to the graph's own stdout: relayed packet outlets, and consumers
    sharing = sum(1 for p in planned.values() if p.relayed_out and p.outlet == "stdout")
    sharing += sum(n.workers for n in nodes.values() if n.kind == "consumer" and not n.stdout)
    plan = Plan(spec, planned, edges, relay_lines=sharing > 1)
    plan.warnings = _warnings(plan)
    return plan


def _warnings(plan: Plan) -> list[str]:
    """What `--check` tells about a spec that runs, but maybe not as meant."""
    out = []
    consumers = [n.name for n in plan.spec.nodes.values() if n.kind == "consumer" and not n.stdout]
    for p in plan.nodes.values():
        if p.outlet != "stdout":
            continue
        where = f"{plan.spec.path}:{p.node.line}: node '{p.name}'"
        if consumers:
            out.append(
                f"{where}: nobody in the graph reads its packets, so they go to the graph's "
                f"stdout, mixed with what {', '.join(consumers)} print there; give it a "
                'reader, or stdout = "FILE"'
            )
        else:
            out.append(
                f"{where}: nobody in the graph reads its packets, so they go to the graph's "
                "stdout (pipe it into a consumer, or give the node a reader or "
                'stdout = "FILE")'
            )
    return out


def dead_ends(plan: Plan) -> list[PlanNode]:
    """Nodes whose packets go to the graph's stdout."""
    return [p for p in plan.nodes.values() if p.outlet == "stdout"]
