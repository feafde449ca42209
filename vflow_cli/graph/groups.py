"""graph.groups: nodes with the same `group = "NAME"` become one node, one process.

    [nodes.small] run = ["resize", "640x360"]         ──>   [group "fast"]
    [nodes.flip]  run = ["flip"], from = ["small"]          run = ["chain", "resize",
    group = "fast" on both                                   "640x360", ",", "flip"]

The members must form one line (each reads the one before it, and only it reads that
one); the group then runs them with `vflow chain`, joined by iterators. Everything after
this (the plan, the runner, `--dot`, the live page) sees one node named after the group.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from vflow_cli.graph.model import Node, Spec

# what only the group's first node may set (its input), or its last (its output)
FIRST_ONLY = ("queue", "join", "unmatched", "workers", "window", "env", "cwd", "device")
LAST_ONLY = ("stdout", "optional")


def merge(spec: Spec, tables: dict[str, Any], lines: Any, err: Any) -> bool:
    """Replace each group's nodes by one node; False if a group is wrong (err says why)."""
    groups: dict[str, list[str]] = {}
    ok = True
    for name in spec.nodes:
        group = tables[name].get("group")
        if group is None:
            continue
        where = lines.node(name, "group")
        if not isinstance(group, str) or not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", group):
            err(where, f"node '{name}': group must be a name (letters, digits, '_', '-', '.')")
            ok = False
        elif "run" not in tables[name]:
            err(where, f"node '{name}': only `run` nodes (vflow stages) can be grouped")
            ok = False
        elif group in spec.nodes and group != name and tables[group].get("group") != group:
            err(where, f"node '{name}': group '{group}' has the name of a node outside it")
            ok = False
        else:
            groups.setdefault(group, []).append(name)
    if not ok:
        return False
    for group, names in groups.items():
        order = _line(spec, group, names, lines, err)
        if order is None or not _settings(group, order, tables, lines, err):
            ok = False
            continue
        kinds = [spec.nodes[n].kind for n in order]
        where = lines.node(order[0], "group")
        if kinds[0] == "producer" and kinds[-1] == "consumer":
            err(
                where,
                f"group '{group}': from a producer to a consumer, it would have neither input "
                "nor output; leave one of them out of the group",
            )
            ok = False
            continue
        if spec.nodes[order[0]].workers > 1 and any(spec.nodes[n].stateful for n in order):
            err(
                where,
                f"group '{group}': it keeps state across packets (a stateful stage); "
                "run it once, without workers",
            )
            ok = False
            continue
        _replace(spec, group, order, tables)
    return ok


def _line(spec: Spec, group: str, names: list[str], lines: Any, err: Any) -> list[str] | None:
    """The members in data-flow order, if they form one line."""
    nodes = spec.nodes
    inside = set(names)
    if len(names) < 2:
        err(lines.node(names[0], "group"), f"group '{group}': a group joins two nodes or more")
        return None
    heads = [n for n in names if not inside & set(nodes[n].inputs)]
    for name in names:
        node = nodes[name]
        inner_inputs = inside & set(node.inputs)
        inner_readers = inside & set(node.readers)
        problem = None
        if inner_inputs and len(node.inputs) != 1:
            problem = "reads from the group and from outside it: a group is one line of nodes"
        elif len(inner_readers) > 1:
            problem = "feeds two nodes of the group: a group is one line of nodes"
        elif inner_readers and len(node.readers) > 1:
            problem = "is read from inside the group and outside it: only the last node may be"
        if problem:
            err(lines.node(name, "from"), f"group '{group}': node '{name}' {problem}")
            return None
    if len(heads) != 1:
        first = ", ".join(f"'{h}'" for h in heads)
        err(
            lines.node(heads[-1], "group"),
            f"group '{group}': {first} each start it; a group is one line of nodes",
        )
        return None
    order = [heads[0]]
    while True:
        nxt = [r for r in nodes[order[-1]].readers if r in inside]
        if not nxt:
            break
        order.append(nxt[0])
    return order


def _settings(group: str, order: list[str], tables: dict[str, Any], lines: Any, err: Any) -> bool:
    ok = True
    for i, name in enumerate(order):
        misplaced = [(key, "first", order[0]) for key in FIRST_ONLY if i]
        misplaced += [(key, "last", order[-1]) for key in LAST_ONLY if i < len(order) - 1]
        for key, end, owner in misplaced:
            if key in tables[name]:
                err(
                    lines.node(name, key),
                    f"group '{group}': node '{name}': set `{key}` on the group's {end} node "
                    f"('{owner}'): the group is one process",
                )
                ok = False
    return ok


def _replace(spec: Spec, group: str, order: list[str], tables: dict[str, Any]) -> None:
    nodes = spec.nodes
    head, tail = nodes[order[0]], nodes[order[-1]]
    words: list[str] = []
    for name in order:
        words += ([","] if words else []) + list(tables[name]["run"])
    kinds = [nodes[n].kind for n in order]
    kind = "producer" if kinds[0] == "producer" else kinds[-1]  # as chain.kind_of
    merged = Node(
        group,
        head.line,
        [sys.executable, "-m", "vflow_cli", "chain", *words],
        " , ".join(nodes[n].label for n in order),
        kind,
        inputs=list(head.inputs),
    )
    for key in ("join", "unmatched", "queue_size", "leaky", "workers", "window", "device"):
        setattr(merged, key, getattr(head, key))
    merged.env, merged.cwd = head.env, head.cwd
    merged.stdout, merged.optional = tail.stdout, tail.optional
    merged.stateful = any(nodes[n].stateful for n in order)
    merged.members = list(order)
    rebuilt: dict[str, Node] = {}
    for name, node in nodes.items():
        if name == order[0]:
            rebuilt[group] = merged
        elif name not in order:
            node.inputs = [group if i == tail.name else i for i in node.inputs]
            rebuilt[name] = node
    for node in rebuilt.values():
        node.readers = []
    spec.nodes = rebuilt
