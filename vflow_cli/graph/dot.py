"""graph.dot: a plan as Graphviz dot, and rendering it with Graphviz's `dot` program.

It draws the plan the runner follows (graph.plan): a plain pipe is a plain arrow, a relayed
queue is labelled with its size and policy (dashed when it drops), workers and GPUs are in
the node's label, and a GPU that could not be placed says so ("GPU ?").
"""

from __future__ import annotations

import shutil
import subprocess

from vflow_cli.graph.plan import Plan, PlanNode
from vflow_cli.redact import redact_line

SHAPES = {"producer": "invhouse", "processor": "box", "consumer": "house"}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(planned: PlanNode) -> str:
    node = planned.node
    label = redact_line(node.label)  # the drawing is on the graph's page: no secrets
    parts = [node.name, label if len(label) <= 40 else label[:37] + "..."]
    extra = []
    if node.members:
        extra.append(f"group of {', '.join(node.members)}: one process")
    if node.workers > 1:
        extra.append(f"x{node.workers} workers")
    if node.device:
        gpus = [d for d in planned.devices if d and d != "?"]
        unplaced = planned.devices.count("?")
        where = [f"GPU {','.join(gpus)}"] if gpus else []
        if unplaced:
            where.append(f"{unplaced} not placed: no GPU left")
        extra.append(node.device + (f" ({'; '.join(where)})" if where else ""))
    if planned.join:
        extra.append(f"join {planned.join}")
    if node.optional:
        extra.append("optional")
    if extra:
        parts.append(", ".join(extra))
    return "\\n".join(p.replace("\\", "\\\\").replace('"', '\\"') for p in parts)


def to_dot(plan: Plan) -> str:
    lines = [
        "digraph vflow {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for planned in plan.nodes.values():
        kind = planned.node.kind
        style = ', style="filled", fillcolor="#e8f0ff"' if kind == "producer" else ""
        lines.append(
            f"  {_quote(planned.name)} [shape={SHAPES.get(kind, 'box')}, "
            f'label="{_label(planned)}"{style}];'
        )
    for edge in plan.edges:
        if edge.transport == "queue":
            label = f"queue {edge.size}" + ("" if edge.leaky == "no" else f", leaky {edge.leaky}")
            style = ', style="dashed"' if edge.leaky != "no" else ""
            lines.append(f'  {_quote(edge.src)} -> {_quote(edge.dst)} [label="{label}"{style}];')
        else:
            lines.append(f"  {_quote(edge.src)} -> {_quote(edge.dst)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


class RenderError(Exception):
    pass


def render(plan: Plan, out: str | None, fmt: str | None = None) -> bytes:
    """Draw the graph with Graphviz's `dot`: into the file `out` (the format from its
    extension), or, with out=None, return the drawing in `fmt` (e.g. svg)."""
    program = shutil.which("dot")
    if program is None:
        raise RenderError(
            "drawing needs Graphviz's `dot` program, which is not installed "
            "(e.g. apt install graphviz); `--dot` alone prints the graph as text"
        )
    if fmt is None:
        fmt = out.rsplit(".", 1)[-1].lower() if out and "." in out else "png"
    args = [program, f"-T{fmt}"] + (["-o", out] if out else [])
    result = subprocess.run(args, input=to_dot(plan).encode(), capture_output=True)
    if result.returncode:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise RenderError(f"dot could not draw {out or fmt}: {reason[-1] if reason else 'failed'}")
    return result.stdout
