"""graph.dot: a spec as Graphviz dot, and rendering it with Graphviz's `dot` program."""

from __future__ import annotations

import shutil
import subprocess

from vflow_cli.graph.spec import Node, Spec

SHAPES = {"producer": "invhouse", "processor": "box", "consumer": "house"}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(node: Node) -> str:
    parts = [node.name, node.label if len(node.label) <= 40 else node.label[:37] + "..."]
    extra = []
    if node.workers > 1:
        extra.append(f"x{node.workers} workers")
    if node.device:
        extra.append(node.device)
    if len(node.inputs) > 1:
        extra.append(f"join {node.join}")
    if extra:
        parts.append(", ".join(extra))
    return "\\n".join(p.replace("\\", "\\\\").replace('"', '\\"') for p in parts)


def to_dot(spec: Spec) -> str:
    lines = [
        "digraph vflow {",
        "  rankdir=LR;",
        '  node [fontname="Helvetica", fontsize=11];',
        '  edge [fontname="Helvetica", fontsize=9];',
    ]
    for node in spec.nodes.values():
        style = ', style="filled", fillcolor="#e8f0ff"' if node.kind == "producer" else ""
        lines.append(
            f"  {_quote(node.name)} [shape={SHAPES.get(node.kind, 'box')}, "
            f'label="{_label(node)}"{style}];'
        )
    for node in spec.nodes.values():
        for src in node.inputs:
            fan_out = len(spec.nodes[src].readers) > 1
            relayed = fan_out or len(node.inputs) > 1 or node.workers > 1 or node.leaky != "no"
            if relayed:
                label = f"queue {node.queue_size}" + (
                    "" if node.leaky == "no" else f", leaky {node.leaky}"
                )
                style = ', style="dashed"' if node.leaky != "no" else ""
                lines.append(f'  {_quote(src)} -> {_quote(node.name)} [label="{label}"{style}];')
            else:
                lines.append(f"  {_quote(src)} -> {_quote(node.name)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


class RenderError(Exception):
    pass


def render(spec: Spec, out: str) -> None:
    """Write a picture of the graph; the format comes from the file's extension."""
    program = shutil.which("dot")
    if program is None:
        raise RenderError(
            "--render needs Graphviz's `dot` program, which is not installed "
            "(e.g. apt install graphviz); `--dot` alone prints the graph as text"
        )
    fmt = out.rsplit(".", 1)[-1].lower() if "." in out else "png"
    result = subprocess.run(
        [program, f"-T{fmt}", "-o", out], input=to_dot(spec).encode(), capture_output=True
    )
    if result.returncode:
        reason = result.stderr.decode(errors="replace").strip().splitlines()
        raise RenderError(f"dot could not write {out}: {reason[-1] if reason else 'failed'}")
